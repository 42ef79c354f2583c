-- A phone number an account is binding: it becomes the account's phone once the code sent to it
-- by SMS is entered. One pending number per account; a new request replaces it.
CREATE TABLE phone_bindings (
    account_id    TEXT PRIMARY KEY REFERENCES accounts(id),
    phone         TEXT NOT NULL,
    code_hash     TEXT NOT NULL,
    code_expires  TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);
