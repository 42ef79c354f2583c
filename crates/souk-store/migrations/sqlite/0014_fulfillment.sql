-- Each product's integration with its seller's system: where deliveries go, in which
-- protocol, signed with which secrets (sealed; the previous one stays valid during a rotation).
CREATE TABLE integrations (
    product_id       TEXT PRIMARY KEY REFERENCES products(id),
    seller_org_id    TEXT NOT NULL REFERENCES orgs(id),
    endpoint         TEXT NOT NULL,
    protocol         TEXT NOT NULL CHECK (protocol IN ('native', 'koogallery')),
    secret_sealed    BLOB,
    previous_sealed  BLOB,
    rotated_at       TEXT,
    updated_at       TEXT NOT NULL
);

-- Every attempt to deliver an event to a seller: the seller's delivery log.
CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES outbox_events(id),
    topic            TEXT NOT NULL,
    subscription_id  TEXT NOT NULL,
    seller_org_id    TEXT NOT NULL REFERENCES orgs(id),
    product_id       TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    url              TEXT NOT NULL,
    request_body     TEXT NOT NULL,
    status           INTEGER,
    response_excerpt TEXT,
    latency_ms       INTEGER NOT NULL,
    error            TEXT,
    at               TEXT NOT NULL
);
CREATE INDEX deliveries_seller ON deliveries(seller_org_id, id);
CREATE INDEX deliveries_event ON deliveries(event_id);

-- The seller's instance and how the buyer reaches it (its password as the seller encrypted it).
ALTER TABLE subscriptions ADD COLUMN instance_id TEXT;
ALTER TABLE subscriptions ADD COLUMN access TEXT;

-- Seller deliveries go out in order per subscription: the claim looks for earlier events of
-- the same aggregate.
CREATE INDEX outbox_aggregate ON outbox_events(aggregate_id, id);
