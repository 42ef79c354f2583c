-- A subscription's orders: moved together when it is provisioned or fails
-- (orders::set_state_for_subscription) and listed with it. Without this, each provisioning
-- read the whole orders table (`souk bench purchase`: one Seq Scan of orders per purchase).
CREATE INDEX orders_subscription ON orders(subscription_id, id);
