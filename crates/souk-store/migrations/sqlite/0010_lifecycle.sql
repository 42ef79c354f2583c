-- The terms a subscription was sold under (taken from the product when bought, so a later
-- edit of the product does not change a running subscription), trials, downgrades waiting
-- for the next renewal, and when an expired subscription is released.
ALTER TABLE subscriptions ADD COLUMN trial BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE subscriptions ADD COLUMN grace_days INTEGER NOT NULL DEFAULT 15;
ALTER TABLE subscriptions ADD COLUMN no_reason_days INTEGER NOT NULL DEFAULT 5;
ALTER TABLE subscriptions ADD COLUMN next_plan_id TEXT REFERENCES plans(id);
ALTER TABLE subscriptions ADD COLUMN release_at TEXT;
CREATE INDEX subscriptions_release ON subscriptions(state, release_at);

-- Refunds gain the kind for a purchase the seller could not provision (always in full).
-- SQLite cannot alter a CHECK constraint, so the table is rebuilt.
CREATE TABLE refunds_new (
    id              TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
    order_id        TEXT NOT NULL REFERENCES orders(id),
    buyer_org_id    TEXT NOT NULL REFERENCES orgs(id),
    kind            TEXT NOT NULL CHECK (kind IN ('no_reason', 'unused_periods', 'none', 'fulfillment_failed')),
    currency        TEXT NOT NULL,
    amount_minor    INTEGER NOT NULL CHECK (amount_minor >= 0),
    at              TEXT NOT NULL
);
INSERT INTO refunds_new SELECT * FROM refunds;
DROP TABLE refunds;
ALTER TABLE refunds_new RENAME TO refunds;
CREATE INDEX refunds_buyer ON refunds(buyer_org_id, kind, at);
