-- Foundation: identity, organizations, verification, uploads, audit, idempotency, outbox.
-- Timestamps are written from Rust in UTC (TIMESTAMPTZ on PostgreSQL).

CREATE TABLE accounts (
    id              TEXT PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    site            TEXT NOT NULL CHECK (site IN ('cn', 'intl')),
    lang            TEXT NOT NULL,
    phone           TEXT,
    staff_role      TEXT CHECK (staff_role IN ('operator', 'supervisor')),
    personal_org_id TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE orgs (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    kind                TEXT NOT NULL CHECK (kind IN ('personal', 'enterprise')),
    site                TEXT NOT NULL CHECK (site IN ('cn', 'intl')),
    is_buyer            BOOLEAN NOT NULL DEFAULT TRUE,
    is_seller           BOOLEAN NOT NULL DEFAULT FALSE,
    is_reseller         BOOLEAN NOT NULL DEFAULT FALSE,
    verification_status TEXT NOT NULL DEFAULT 'unverified',
    verified_name       TEXT,
    verified_at         TIMESTAMPTZ,
    created_by          TEXT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL
);

CREATE TABLE memberships (
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    account_id TEXT NOT NULL REFERENCES accounts(id),
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, account_id)
);
CREATE INDEX memberships_account ON memberships(account_id);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_account ON sessions(account_id);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    token_hash   TEXT NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    created_by   TEXT NOT NULL REFERENCES accounts(id),
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX api_keys_org ON api_keys(org_id);

CREATE TABLE uploads (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    uploaded_by  TEXT NOT NULL,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    content      BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX uploads_org ON uploads(org_id);

CREATE TABLE verifications (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    kind         TEXT NOT NULL CHECK (kind IN ('individual', 'enterprise')),
    status       TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    display_name TEXT NOT NULL,
    details      TEXT NOT NULL,
    submitted_by TEXT NOT NULL,
    submitted_at TIMESTAMPTZ NOT NULL,
    decided_by   TEXT,
    decided_at   TIMESTAMPTZ,
    reason       TEXT
);
CREATE INDEX verifications_org ON verifications(org_id);
CREATE INDEX verifications_status ON verifications(status, submitted_at);
-- At most one pending submission per organization, even under concurrent requests.
CREATE UNIQUE INDEX verifications_one_pending ON verifications(org_id) WHERE status = 'pending';

CREATE TABLE verification_documents (
    verification_id TEXT NOT NULL REFERENCES verifications(id),
    upload_id       TEXT NOT NULL REFERENCES uploads(id),
    PRIMARY KEY (verification_id, upload_id)
);

CREATE TABLE audit_log (
    id           TEXT PRIMARY KEY,
    at           TIMESTAMPTZ NOT NULL,
    actor        TEXT NOT NULL,
    actor_org_id TEXT,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    summary      TEXT NOT NULL,
    request_id   TEXT
);
CREATE INDEX audit_log_target ON audit_log(target);

CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT,
    content_type TEXT,
    body         BYTEA,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE outbox_events (
    id           TEXT PRIMARY KEY,
    topic        TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    payload      TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'done', 'dead')),
    attempts     BIGINT NOT NULL DEFAULT 0,
    due_at       TIMESTAMPTZ NOT NULL,
    locked_by    TEXT,
    locked_until TIMESTAMPTZ,
    last_error   TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    completed_at TIMESTAMPTZ
);
CREATE INDEX outbox_due ON outbox_events(topic, status, due_at);

CREATE TABLE outbox_attempts (
    event_id    TEXT NOT NULL REFERENCES outbox_events(id),
    attempt     BIGINT NOT NULL,
    worker      TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('ok', 'error')),
    error       TEXT,
    PRIMARY KEY (event_id, attempt)
);
