-- Refunds: money returned to a wallet when a subscription is unsubscribed.
CREATE TABLE refunds (
    id              TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
    order_id        TEXT NOT NULL REFERENCES orders(id),
    buyer_org_id    TEXT NOT NULL REFERENCES orgs(id),
    kind            TEXT NOT NULL CHECK (kind IN ('no_reason', 'unused_periods', 'none')),
    currency        TEXT NOT NULL,
    amount_minor    BIGINT NOT NULL CHECK (amount_minor >= 0),
    at              TIMESTAMPTZ NOT NULL
);
CREATE INDEX refunds_buyer ON refunds(buyer_org_id, kind, at);
