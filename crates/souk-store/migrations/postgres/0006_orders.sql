-- Orders and the subscriptions they create. An order keeps the price it was sold at.
CREATE TABLE subscriptions (
    id              TEXT PRIMARY KEY,
    buyer_org_id    TEXT NOT NULL REFERENCES orgs(id),
    seller_org_id   TEXT NOT NULL REFERENCES orgs(id),
    product_id      TEXT NOT NULL REFERENCES products(id),
    plan_id         TEXT NOT NULL REFERENCES plans(id),
    state           TEXT NOT NULL CHECK (state IN ('pending_fulfillment', 'active', 'expired', 'released', 'cancelled')),
    quantity        BIGINT NOT NULL,
    term_start      TIMESTAMPTZ NOT NULL,
    -- NULL for one-time purchases, which do not expire.
    term_end        TIMESTAMPTZ,
    auto_renew      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX subscriptions_buyer ON subscriptions(buyer_org_id);
CREATE INDEX subscriptions_due ON subscriptions(state, term_end);

CREATE TABLE orders (
    id                TEXT PRIMARY KEY,
    buyer_org_id      TEXT NOT NULL REFERENCES orgs(id),
    seller_org_id     TEXT NOT NULL REFERENCES orgs(id),
    product_id        TEXT NOT NULL REFERENCES products(id),
    plan_id           TEXT NOT NULL REFERENCES plans(id),
    subscription_id   TEXT NOT NULL REFERENCES subscriptions(id),
    kind              TEXT NOT NULL CHECK (kind IN ('new', 'renewal', 'upgrade')),
    state             TEXT NOT NULL CHECK (state IN ('pending_payment', 'paid', 'fulfilling', 'completed', 'fulfillment_failed', 'cancelled', 'refunded')),
    currency          TEXT NOT NULL,
    unit_price_minor  BIGINT NOT NULL,
    periods           BIGINT NOT NULL,
    quantity          BIGINT NOT NULL,
    list_minor        BIGINT NOT NULL,
    discount_minor    BIGINT NOT NULL,
    total_minor       BIGINT NOT NULL,
    tax_minor         BIGINT NOT NULL,
    coupon_code       TEXT,
    plan_snapshot     TEXT NOT NULL,
    idempotency_key   TEXT,
    created_by        TEXT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    -- A retried request with the same key never makes a second order, even if the saved
    -- HTTP response was lost.
    UNIQUE (buyer_org_id, idempotency_key)
);
CREATE INDEX orders_buyer ON orders(buyer_org_id, id);
CREATE INDEX orders_seller ON orders(seller_org_id, id);
