-- Free trials: one per buyer organization and product, ever (the primary key enforces it,
-- even under concurrent requests).
CREATE TABLE trials (
    buyer_org_id    TEXT NOT NULL REFERENCES orgs(id),
    product_id      TEXT NOT NULL REFERENCES products(id),
    plan_id         TEXT NOT NULL REFERENCES plans(id),
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
    started_at      TIMESTAMPTZ NOT NULL,
    ends_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (buyer_org_id, product_id)
);
