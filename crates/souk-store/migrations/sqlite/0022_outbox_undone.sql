-- The ordered claim (outbox::claim_in_order) asks, for each candidate, whether an earlier
-- event of its aggregate is not done yet. Done events pile up; this index holds only the
-- others, so the question costs the same however long the history is.
CREATE INDEX outbox_undone_aggregate ON outbox_events(aggregate_id, id) WHERE status <> 'done';
