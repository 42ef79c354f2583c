-- The message center (seed §4). Each member of an organization has an inbox of the
-- organization's messages; a message exists once per source event and member, so a retried
-- dispatch adds nothing.
CREATE TABLE messages (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES orgs(id),
    account_id       TEXT NOT NULL REFERENCES accounts(id),
    category         TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    source_event_id  TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    read_at          TIMESTAMPTZ,
    UNIQUE (source_event_id, account_id)
);
CREATE INDEX messages_inbox ON messages(account_id, id);
CREATE INDEX messages_unread ON messages(account_id, read_at);

-- Each email and SMS a message is sent as: its address, what was sent, and how it went
-- (the delivery log). One per source event, channel and address.
CREATE TABLE message_sends (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES orgs(id),
    category         TEXT NOT NULL,
    channel          TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    address          TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body_text        TEXT NOT NULL,
    body_html        TEXT,
    source_event_id  TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    sent_at          TIMESTAMPTZ,
    UNIQUE (source_event_id, channel, address)
);
CREATE INDEX message_sends_org ON message_sends(org_id, id);

-- Per organization and category: which channels are muted (only where the category allows
-- it), and who receives its emails and SMS. No row: the organization's own contact.
CREATE TABLE message_settings (
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    category    TEXT NOT NULL,
    channel     TEXT NOT NULL CHECK (channel IN ('inbox', 'email', 'sms')),
    muted       BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, category, channel)
);
CREATE TABLE message_recipients (
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    category    TEXT NOT NULL,
    channel     TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    -- A member (their bound email or phone) or a confirmed extra contact.
    account_id  TEXT REFERENCES accounts(id),
    contact_id  TEXT,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX message_recipients_org ON message_recipients(org_id, category, channel);

-- Extra email addresses and phone numbers, usable once confirmed with the code sent to them.
CREATE TABLE message_contacts (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id),
    channel       TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    address       TEXT NOT NULL,
    code_hash     TEXT,
    code_expires  TIMESTAMPTZ,
    attempts      BIGINT NOT NULL DEFAULT 0,
    confirmed_at  TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (org_id, channel, address)
);
