-- Since when a seller's endpoint has failed every delivery (cleared by a success), and when
-- operators were told about it (once per failing spell).
ALTER TABLE integrations ADD COLUMN failing_since TIMESTAMPTZ;
ALTER TABLE integrations ADD COLUMN flagged_at TIMESTAMPTZ;
