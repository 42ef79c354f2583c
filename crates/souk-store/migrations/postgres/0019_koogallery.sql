-- KooGallery-compatible mode, the rest of it: the joint-operation sync APIs' base URL and
-- access key (KooGallery keys each interface type apart; without one the basic key signs),
-- and whether the seller answers changeInstanceCheck before a plan change.
ALTER TABLE integrations ADD COLUMN sync_url TEXT;
ALTER TABLE integrations ADD COLUMN sync_key_sealed BYTEA;
ALTER TABLE integrations ADD COLUMN change_check BOOLEAN NOT NULL DEFAULT FALSE;

-- When an event was first tried: retry policies bounded by a time window (KooGallery's
-- "hourly for 3 h") measure from here. A manual redelivery starts the window again.
ALTER TABLE outbox_events ADD COLUMN first_attempt_at TIMESTAMPTZ;

-- Access key pairs (AK/SK) for Huawei API-gateway signatures on the KooGallery open APIs.
-- The secret key must be read back to verify an HMAC, so it is sealed, never hashed.
CREATE TABLE gateway_keys (
    access_key     TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES orgs(id),
    name           TEXT NOT NULL,
    secret_sealed  BYTEA NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    revoked_at     TIMESTAMPTZ
);
CREATE INDEX gateway_keys_org ON gateway_keys(org_id, created_at);

-- Uploads of codes into a license pool, imported by a worker in chunks so the seller sees
-- progress and a large file never holds one long transaction. The parsed codes wait here;
-- `processed` is how many of them are in the pool (a retried import resumes from there).
CREATE TABLE license_imports (
    id             TEXT PRIMARY KEY,
    product_id     TEXT NOT NULL REFERENCES products(id),
    seller_org_id  TEXT NOT NULL REFERENCES orgs(id),
    status         TEXT NOT NULL CHECK (status IN ('pending', 'done')),
    codes          TEXT NOT NULL,
    total          BIGINT NOT NULL,
    processed      BIGINT NOT NULL DEFAULT 0,
    added          BIGINT NOT NULL DEFAULT 0,
    duplicates     BIGINT NOT NULL,
    errors         TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ
);
CREATE INDEX license_imports_product ON license_imports(product_id, id);
