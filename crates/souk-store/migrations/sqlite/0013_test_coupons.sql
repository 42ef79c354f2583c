-- What each seller has issued in test coupons per year and currency (seed §19). The quota
-- is taken by one conditional update, so concurrent requests cannot overshoot it.
CREATE TABLE test_coupon_quotas (
    seller_org_id TEXT NOT NULL REFERENCES orgs(id),
    year          INTEGER NOT NULL,
    currency      TEXT NOT NULL,
    used_minor    INTEGER NOT NULL CHECK (used_minor >= 0),
    PRIMARY KEY (seller_org_id, year, currency)
);
