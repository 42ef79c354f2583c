-- Wallets: one balance per buyer organization and currency, never negative, every change a
-- ledger entry written in the same transaction.
CREATE TABLE wallets (
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    currency      TEXT NOT NULL,
    balance_minor INTEGER NOT NULL CHECK (balance_minor >= 0),
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (org_id, currency)
);

CREATE TABLE wallet_ledger (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    currency      TEXT NOT NULL,
    delta_minor   INTEGER NOT NULL,
    balance_after INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    reference     TEXT,
    actor         TEXT NOT NULL,
    at            TEXT NOT NULL
);
CREATE INDEX wallet_ledger_org ON wallet_ledger(org_id, currency, id);
