-- The terms a subscription was sold under (taken from the product when bought, so a later
-- edit of the product does not change a running subscription), trials, downgrades waiting
-- for the next renewal, and when an expired subscription is released.
ALTER TABLE subscriptions ADD COLUMN trial BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE subscriptions ADD COLUMN grace_days BIGINT NOT NULL DEFAULT 15;
ALTER TABLE subscriptions ADD COLUMN no_reason_days BIGINT NOT NULL DEFAULT 5;
ALTER TABLE subscriptions ADD COLUMN next_plan_id TEXT REFERENCES plans(id);
ALTER TABLE subscriptions ADD COLUMN release_at TIMESTAMPTZ;
UPDATE subscriptions SET release_at = term_end + make_interval(days => grace_days::int) WHERE state = 'expired';
CREATE INDEX subscriptions_release ON subscriptions(state, release_at);

-- Refunds gain the kind for a purchase the seller could not provision (always in full).
ALTER TABLE refunds DROP CONSTRAINT refunds_kind_check;
ALTER TABLE refunds ADD CONSTRAINT refunds_kind_check
    CHECK (kind IN ('no_reason', 'unused_periods', 'none', 'fulfillment_failed'));
