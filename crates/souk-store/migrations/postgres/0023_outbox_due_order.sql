-- The ordered claim (outbox::claim_in_order) reads each topic's oldest due events in
-- (due_at, id) order; with id in the index that range comes out in order and the read stops
-- at the limit, instead of reading every pending event and sorting them.
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox_events(topic, status, due_at, id);
