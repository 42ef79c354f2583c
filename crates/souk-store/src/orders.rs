//! Orders and subscriptions. An order keeps the plan and prices it was sold at; the
//! subscription is what the buyer holds afterwards.

use chrono::{DateTime, Utc};
use serde::Serialize;
use souk_core::id::OrgId;

use crate::{Conn, Row, StoreError, q};

#[derive(Debug, Clone, Serialize)]
pub struct Order {
    pub id: String,
    pub buyer_org_id: String,
    pub seller_org_id: String,
    pub product_id: String,
    pub plan_id: String,
    pub subscription_id: String,
    pub kind: String,
    pub state: String,
    pub currency: String,
    pub unit_price_minor: i64,
    pub periods: i64,
    pub quantity: i64,
    pub list_minor: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
    pub tax_minor: i64,
    pub coupon_code: Option<String>,
    pub plan_snapshot: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

fn order(r: &Row) -> Result<Order, StoreError> {
    let snapshot: String = r.get("plan_snapshot")?;
    Ok(Order {
        id: r.get("id")?,
        buyer_org_id: r.get("buyer_org_id")?,
        seller_org_id: r.get("seller_org_id")?,
        product_id: r.get("product_id")?,
        plan_id: r.get("plan_id")?,
        subscription_id: r.get("subscription_id")?,
        kind: r.get("kind")?,
        state: r.get("state")?,
        currency: r.get("currency")?,
        unit_price_minor: r.get("unit_price_minor")?,
        periods: r.get("periods")?,
        quantity: r.get("quantity")?,
        list_minor: r.get("list_minor")?,
        discount_minor: r.get("discount_minor")?,
        total_minor: r.get("total_minor")?,
        tax_minor: r.get("tax_minor")?,
        coupon_code: r.get("coupon_code")?,
        plan_snapshot: serde_json::from_str(&snapshot).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: r.get("created_at")?,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Subscription {
    pub id: String,
    pub buyer_org_id: String,
    pub seller_org_id: String,
    pub product_id: String,
    pub plan_id: String,
    pub state: String,
    pub quantity: i64,
    pub term_start: DateTime<Utc>,
    pub term_end: Option<DateTime<Utc>>,
    pub auto_renew: bool,
    pub created_at: DateTime<Utc>,
}

fn subscription(r: &Row) -> Result<Subscription, StoreError> {
    Ok(Subscription {
        id: r.get("id")?,
        buyer_org_id: r.get("buyer_org_id")?,
        seller_org_id: r.get("seller_org_id")?,
        product_id: r.get("product_id")?,
        plan_id: r.get("plan_id")?,
        state: r.get("state")?,
        quantity: r.get("quantity")?,
        term_start: r.get("term_start")?,
        term_end: r.get("term_end")?,
        auto_renew: r.get("auto_renew")?,
        created_at: r.get("created_at")?,
    })
}

pub struct NewSubscription<'a> {
    pub buyer: &'a str,
    pub seller: &'a str,
    pub product: &'a str,
    pub plan: &'a str,
    pub quantity: i64,
    pub term_start: DateTime<Utc>,
    pub term_end: Option<DateTime<Utc>>,
}

pub async fn create_subscription(c: &mut impl Conn, now: DateTime<Utc>, s: NewSubscription<'_>) -> Result<Subscription, StoreError> {
    let id = format!("sub_{}", souk_core::id::new_body(now));
    c.execute(
        q("INSERT INTO subscriptions (id, buyer_org_id, seller_org_id, product_id, plan_id, state, quantity, term_start, term_end, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, 'pending_fulfillment', $6, $7, $8, $9, $9)")
        .bind(&id)
        .bind(s.buyer)
        .bind(s.seller)
        .bind(s.product)
        .bind(s.plan)
        .bind(s.quantity)
        .bind(s.term_start)
        .bind(s.term_end)
        .bind(now),
    )
    .await?;
    subscription(&c.fetch_one(q("SELECT * FROM subscriptions WHERE id = $1").bind(&id)).await?)
}

pub struct NewOrder<'a> {
    pub buyer: &'a str,
    pub seller: &'a str,
    pub product: &'a str,
    pub plan: &'a str,
    pub subscription: &'a str,
    pub kind: &'a str,
    pub state: &'a str,
    pub currency: &'a str,
    pub unit_price_minor: i64,
    pub periods: i64,
    pub quantity: i64,
    pub list_minor: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
    pub tax_minor: i64,
    pub coupon_code: Option<&'a str>,
    pub plan_snapshot: &'a serde_json::Value,
    pub idempotency_key: Option<&'a str>,
    pub created_by: &'a str,
}

/// Creates an order. A second order with the buyer's same idempotency key gives
/// [`StoreError::Conflict`].
pub async fn create_order(c: &mut impl Conn, now: DateTime<Utc>, o: NewOrder<'_>) -> Result<Order, StoreError> {
    let id = format!("ord_{}", souk_core::id::new_body(now));
    c.execute(
        q("INSERT INTO orders (id, buyer_org_id, seller_org_id, product_id, plan_id, subscription_id, kind, state, currency,
               unit_price_minor, periods, quantity, list_minor, discount_minor, total_minor, tax_minor, coupon_code, plan_snapshot,
               idempotency_key, created_by, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $21)")
        .bind(&id)
        .bind(o.buyer)
        .bind(o.seller)
        .bind(o.product)
        .bind(o.plan)
        .bind(o.subscription)
        .bind(o.kind)
        .bind(o.state)
        .bind(o.currency)
        .bind(o.unit_price_minor)
        .bind(o.periods)
        .bind(o.quantity)
        .bind(o.list_minor)
        .bind(o.discount_minor)
        .bind(o.total_minor)
        .bind(o.tax_minor)
        .bind(o.coupon_code)
        .bind(o.plan_snapshot.to_string())
        .bind(o.idempotency_key)
        .bind(o.created_by)
        .bind(now),
    )
    .await?;
    order(&c.fetch_one(q("SELECT * FROM orders WHERE id = $1").bind(&id)).await?)
}

/// The buyer's order; another organization's is not found.
pub async fn get_for_buyer(c: &mut impl Conn, buyer: &OrgId, id: &str) -> Result<Order, StoreError> {
    order(&c.fetch_one(q("SELECT * FROM orders WHERE id = $1 AND buyer_org_id = $2").bind(id).bind(buyer.as_str())).await?)
}

pub async fn by_idempotency_key(c: &mut impl Conn, buyer: &OrgId, key: &str) -> Result<Option<Order>, StoreError> {
    let row = c.fetch_optional(q("SELECT * FROM orders WHERE buyer_org_id = $1 AND idempotency_key = $2").bind(buyer.as_str()).bind(key)).await?;
    row.as_ref().map(order).transpose()
}

pub async fn list_for_buyer(c: &mut impl Conn, buyer: &OrgId) -> Result<Vec<Order>, StoreError> {
    c.fetch_all(q("SELECT * FROM orders WHERE buyer_org_id = $1 ORDER BY id DESC").bind(buyer.as_str())).await?.iter().map(order).collect()
}

pub async fn list_for_seller(c: &mut impl Conn, seller: &OrgId) -> Result<Vec<Order>, StoreError> {
    c.fetch_all(q("SELECT * FROM orders WHERE seller_org_id = $1 ORDER BY id DESC").bind(seller.as_str())).await?.iter().map(order).collect()
}

pub async fn subscriptions_for_buyer(c: &mut impl Conn, buyer: &OrgId) -> Result<Vec<Subscription>, StoreError> {
    c.fetch_all(q("SELECT * FROM subscriptions WHERE buyer_org_id = $1 ORDER BY id DESC").bind(buyer.as_str()))
        .await?
        .iter()
        .map(subscription)
        .collect()
}

/// Records that a coupon was used by this order.
pub async fn redeem_coupon(c: &mut impl Conn, now: DateTime<Utc>, coupon_id: &str, buyer: &str, order_id: &str) -> Result<(), StoreError> {
    c.execute(
        q("INSERT INTO coupon_redemptions (coupon_id, buyer_org_id, order_id, at) VALUES ($1, $2, $3, $4)")
            .bind(coupon_id)
            .bind(buyer)
            .bind(order_id)
            .bind(now),
    )
    .await?;
    Ok(())
}
