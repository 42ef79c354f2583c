-- License codes may also come from the seller's system (license.issue). SQLite cannot alter a
-- CHECK constraint, so the table is rebuilt.
CREATE TABLE license_codes_new (
    code            TEXT NOT NULL,
    product_id      TEXT NOT NULL REFERENCES products(id),
    source          TEXT NOT NULL CHECK (source IN ('souk', 'pool', 'seller')),
    subscription_id TEXT REFERENCES subscriptions(id),
    order_id        TEXT REFERENCES orders(id),
    assigned_at     TEXT,
    activated_at    TEXT,
    activations     BIGINT NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (product_id, code)
);
INSERT INTO license_codes_new SELECT * FROM license_codes;
DROP TABLE license_codes;
ALTER TABLE license_codes_new RENAME TO license_codes;
CREATE INDEX license_codes_free ON license_codes(product_id, subscription_id);
CREATE INDEX license_codes_subscription ON license_codes(subscription_id);
