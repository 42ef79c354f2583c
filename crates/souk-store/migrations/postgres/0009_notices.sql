-- What the scheduler did once per subscription term: expiry reminders and auto-renewals.
-- The primary key is the claim: whichever node inserts the row does the work.
CREATE TABLE subscription_notices (
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
    term_end        TIMESTAMPTZ NOT NULL,
    kind            TEXT NOT NULL,
    at              TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (subscription_id, term_end, kind)
);
