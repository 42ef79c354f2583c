-- Servers deployed for machine-image purchases, through the compute provider. The
-- administrator password waits here sealed (encrypted with the server key) only until the
-- provider accepts the server, then it is erased.
CREATE TABLE servers (
    id              TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
    order_id        TEXT NOT NULL REFERENCES orders(id),
    buyer_org_id    TEXT NOT NULL REFERENCES orgs(id),
    name            TEXT NOT NULL,
    spec            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('requested', 'creating', 'running', 'failed', 'released')),
    provider_ref    TEXT,
    private_ip      TEXT,
    public_ip       TEXT,
    failure         TEXT,
    sealed_password BLOB,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX servers_subscription ON servers(subscription_id);
CREATE INDEX servers_buyer ON servers(buyer_org_id, id);

-- Keys this deployment generated for itself (shared by every node), used when no key is
-- configured: the sealing key for secrets waiting in the store.
CREATE TABLE server_keys (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    created_at TEXT NOT NULL
);
