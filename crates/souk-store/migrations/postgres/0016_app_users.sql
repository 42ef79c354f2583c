-- Enterprise user authorization (seed §5): which members of a buyer enterprise may use an
-- application it bought, as told to the seller's system (authorization.sync).
CREATE TABLE app_users (
    subscription_id TEXT NOT NULL REFERENCES subscriptions(id),
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    role            TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    sync_event_id   TEXT,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (subscription_id, account_id)
);
