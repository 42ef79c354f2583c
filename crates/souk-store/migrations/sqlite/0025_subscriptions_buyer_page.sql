-- A buyer's subscriptions are listed newest first, a page at a time (orders::subscriptions_page):
-- the index carries the id so a page is a range read, as orders_buyer does for orders.
DROP INDEX subscriptions_buyer;
CREATE INDEX subscriptions_buyer ON subscriptions(buyer_org_id, id);
