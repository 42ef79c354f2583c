-- Coupons issued by operators (and, later, sellers' test coupons), and their redemptions.
CREATE TABLE coupons (
    id              TEXT PRIMARY KEY,
    code            TEXT NOT NULL UNIQUE,
    rule            TEXT NOT NULL,
    issued_by       TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    disabled_at     TIMESTAMPTZ
);

CREATE TABLE coupon_redemptions (
    coupon_id    TEXT NOT NULL REFERENCES coupons(id),
    buyer_org_id TEXT NOT NULL REFERENCES orgs(id),
    order_id     TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (coupon_id, order_id)
);
CREATE INDEX coupon_redemptions_buyer ON coupon_redemptions(coupon_id, buyer_org_id);
