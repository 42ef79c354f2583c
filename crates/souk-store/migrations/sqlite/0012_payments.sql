-- Wallet top-ups paid through a payment provider (the built-in sandbox, or a real one).
-- A top-up is credited once: only the update that moves it out of 'pending' credits the
-- wallet, in the same transaction.
CREATE TABLE top_ups (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    currency      TEXT NOT NULL,
    amount_minor  INTEGER NOT NULL CHECK (amount_minor > 0),
    provider      TEXT NOT NULL,
    provider_ref  TEXT,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed', 'expired')),
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    completed_at  TEXT,
    UNIQUE (provider, provider_ref)
);
CREATE INDEX top_ups_org ON top_ups(org_id, id);
CREATE INDEX top_ups_pending ON top_ups(state, created_at);
