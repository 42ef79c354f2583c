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
    /// A free trial not yet paid for.
    pub trial: bool,
    /// The terms it was sold under.
    pub grace_days: i64,
    pub no_reason_days: i64,
    /// A cheaper plan the buyer chose, taking effect at the next renewal.
    pub next_plan_id: Option<String>,
    /// When an expired subscription is released (set when it expires).
    pub release_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The seller's instance, once provisioned.
    pub instance_id: Option<String>,
    /// The access details the seller returned (JSON), once provisioned.
    pub access: Option<serde_json::Value>,
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
        trial: r.get("trial")?,
        grace_days: r.get("grace_days")?,
        no_reason_days: r.get("no_reason_days")?,
        next_plan_id: r.get("next_plan_id")?,
        release_at: r.get("release_at")?,
        created_at: r.get("created_at")?,
        instance_id: r.get("instance_id")?,
        // Stored by Souk from JSON it parsed; unreadable access is shown as none.
        access: r.get::<Option<String>>("access")?.and_then(|a| serde_json::from_str(&a).ok()),
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
    pub trial: bool,
    pub grace_days: u32,
    pub no_reason_days: u32,
}

pub async fn create_subscription(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    s: NewSubscription<'_>,
) -> Result<Subscription, StoreError> {
    let id = format!("sub_{}", souk_core::id::new_body(now));
    let row = c.fetch_one(
        q("INSERT INTO subscriptions (id, buyer_org_id, seller_org_id, product_id, plan_id, state, quantity, term_start, term_end,
                                    trial, grace_days, no_reason_days, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, 'pending_fulfillment', $6, $7, $8, $10, $11, $12, $9, $9)
           RETURNING *")
        .bind(&id)
        .bind(s.buyer)
        .bind(s.seller)
        .bind(s.product)
        .bind(s.plan)
        .bind(s.quantity)
        .bind(s.term_start)
        .bind(s.term_end)
        .bind(now)
        .bind(s.trial)
        .bind(i64::from(s.grace_days))
        .bind(i64::from(s.no_reason_days)),
    )
    .await?;
    subscription(&row)
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
    let row = c.fetch_one(
        q("INSERT INTO orders (id, buyer_org_id, seller_org_id, product_id, plan_id, subscription_id, kind, state, currency,
               unit_price_minor, periods, quantity, list_minor, discount_minor, total_minor, tax_minor, coupon_code, plan_snapshot,
               idempotency_key, created_by, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $21)
           RETURNING *")
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
    order(&row)
}

/// The buyer's order; another organization's is not found.
pub async fn get_for_buyer(c: &mut impl Conn, buyer: &OrgId, id: &str) -> Result<Order, StoreError> {
    // On the primary key, as `buyers_subscription_with_codes` explains.
    order(&c.fetch_one(q("SELECT * FROM orders WHERE id = $1 AND buyer_org_id || '' = $2").bind(id).bind(buyer.as_str())).await?)
}

pub async fn by_idempotency_key(c: &mut impl Conn, buyer: &OrgId, key: &str) -> Result<Option<Order>, StoreError> {
    let row = c
        .fetch_optional(q("SELECT * FROM orders WHERE buyer_org_id = $1 AND idempotency_key = $2").bind(buyer.as_str()).bind(key))
        .await?;
    row.as_ref().map(order).transpose()
}

pub async fn list_for_buyer(c: &mut impl Conn, buyer: &OrgId) -> Result<Vec<Order>, StoreError> {
    c.fetch_all(q("SELECT * FROM orders WHERE buyer_org_id = $1 ORDER BY id DESC").bind(buyer.as_str()))
        .await?
        .iter()
        .map(order)
        .collect()
}

pub async fn list_for_seller(c: &mut impl Conn, seller: &OrgId) -> Result<Vec<Order>, StoreError> {
    c.fetch_all(q("SELECT * FROM orders WHERE seller_org_id = $1 ORDER BY id DESC").bind(seller.as_str()))
        .await?
        .iter()
        .map(order)
        .collect()
}

/// Narrows a buyer's subscription list; every field is optional.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionFilter {
    pub state: Option<String>,
    pub product_id: Option<String>,
    /// Subscriptions older than this id (the next page).
    pub before: Option<String>,
    pub limit: u32,
}

/// A page of a buyer's subscriptions, newest first, each with its license codes: one
/// statement whatever the page holds (a code per unit bought is a row of the join).
pub async fn subscriptions_page(
    c: &mut impl Conn,
    buyer: &OrgId,
    f: &SubscriptionFilter,
) -> Result<Vec<(Subscription, Vec<String>)>, StoreError> {
    let rows = c
        .fetch_all(
            q("SELECT s.*, l.code AS license_code FROM
                 (SELECT * FROM subscriptions WHERE buyer_org_id = $1 AND ($2 IS NULL OR state = $2)
                    AND ($3 IS NULL OR product_id = $3) AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5) s
               LEFT JOIN license_codes l ON l.subscription_id = s.id ORDER BY s.id DESC, l.code")
            .bind(buyer.as_str())
            .bind(f.state.as_deref())
            .bind(f.product_id.as_deref())
            .bind(f.before.as_deref())
            .bind(i64::from(f.limit.clamp(1, 500))),
        )
        .await?;
    // The rows come grouped by subscription: cut where the id changes.
    let ids = rows.iter().map(|r| r.get::<String>("id")).collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    let mut start = 0;
    for end in 1..=rows.len() {
        if ids.get(end) != ids.get(start) {
            out.extend(with_codes(&rows[start..end])?);
            start = end;
        }
    }
    Ok(out)
}

/// Records that a coupon was used by this order.
pub async fn redeem_coupon(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    coupon_id: &str,
    buyer: &str,
    order_id: &str,
) -> Result<(), StoreError> {
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

pub async fn get_subscription(c: &mut impl Conn, id: &str) -> Result<Subscription, StoreError> {
    subscription(&c.fetch_one(q("SELECT * FROM subscriptions WHERE id = $1").bind(id)).await?)
}

/// A subscription with its license codes (in code order; none for most products), in one
/// read: a join that gives the subscription's row once per code, or once with no code.
fn with_codes(rows: &[Row]) -> Result<Option<(Subscription, Vec<String>)>, StoreError> {
    let Some(first) = rows.first() else { return Ok(None) };
    let codes =
        rows.iter().map(|r| r.get::<Option<String>>("license_code")).filter_map(Result::transpose).collect::<Result<_, _>>()?;
    Ok(Some((subscription(first)?, codes)))
}

/// A subscription and its license codes (what a seller delivery reads).
pub async fn subscription_with_codes(c: &mut impl Conn, id: &str) -> Result<(Subscription, Vec<String>), StoreError> {
    with_codes(
        &c.fetch_all(
            q("SELECT s.*, l.code AS license_code FROM subscriptions s LEFT JOIN license_codes l ON l.subscription_id = s.id
             WHERE s.id = $1 ORDER BY l.code")
            .bind(id),
        )
        .await?,
    )?
    .ok_or(StoreError::NotFound)
}

/// A subscription and its license codes, if `buyer` bought it (the buyer's view).
///
/// `buyer_org_id || ''` keeps the planners on the primary key: with `buyer_org_id = $2`
/// PostgreSQL's generic plan, made while the table was still small and never analyzed, used
/// the buyer index and filtered on the id, reading every subscription the buyer ever had (70
/// to 250 buffers per read in `souk bench purchase`, three reads per purchase).
pub async fn buyers_subscription_with_codes(
    c: &mut impl Conn,
    buyer: &OrgId,
    id: &str,
) -> Result<Option<(Subscription, Vec<String>)>, StoreError> {
    with_codes(
        &c.fetch_all(
            q("SELECT s.*, l.code AS license_code FROM subscriptions s LEFT JOIN license_codes l ON l.subscription_id = s.id
               WHERE s.id = $1 AND s.buyer_org_id || '' = $2 ORDER BY l.code")
            .bind(id)
            .bind(buyer.as_str()),
        )
        .await?,
    )
}

/// `from` as the three `state IN ($4, $5, $6)` values of a transition: fewer are padded with
/// the first (one statement text whatever the count, so one prepared statement).
fn three_states<'a>(from: &[&'a str]) -> [&'a str; 3] {
    let f = |i: usize| from.get(i).or(from.first()).copied().unwrap_or("");
    [f(0), f(1), f(2)]
}

/// Moves a subscription from one of `from` to `to`; false if it was in none of them.
pub async fn transition(c: &mut impl Conn, now: DateTime<Utc>, id: &str, from: &[&str], to: &str) -> Result<bool, StoreError> {
    let [f0, f1, f2] = three_states(from);
    let n = c
        .execute(
            q("UPDATE subscriptions SET state = $1, updated_at = $2 WHERE id = $3 AND state IN ($4, $5, $6)")
                .bind(to)
                .bind(now)
                .bind(id)
                .bind(f0)
                .bind(f1)
                .bind(f2),
        )
        .await?;
    c.changed(id);
    Ok(n == 1)
}

pub async fn set_term_end(c: &mut impl Conn, now: DateTime<Utc>, id: &str, term_end: DateTime<Utc>) -> Result<(), StoreError> {
    c.execute(q("UPDATE subscriptions SET term_end = $1, updated_at = $2 WHERE id = $3").bind(term_end).bind(now).bind(id))
        .await?;
    c.changed(id);
    Ok(())
}

/// Moves to `plan` now; any downgrade waiting for the renewal is dropped.
pub async fn set_plan(c: &mut impl Conn, now: DateTime<Utc>, id: &str, plan: &str) -> Result<(), StoreError> {
    c.execute(
        q("UPDATE subscriptions SET plan_id = $1, next_plan_id = NULL, updated_at = $2 WHERE id = $3")
            .bind(plan)
            .bind(now)
            .bind(id),
    )
    .await?;
    c.changed(id);
    Ok(())
}

/// Schedules (or, with `None`, cancels) a plan change for the next renewal.
pub async fn set_next_plan(c: &mut impl Conn, now: DateTime<Utc>, id: &str, plan: Option<&str>) -> Result<(), StoreError> {
    c.execute(q("UPDATE subscriptions SET next_plan_id = $1, updated_at = $2 WHERE id = $3").bind(plan).bind(now).bind(id))
        .await?;
    c.changed(id);
    Ok(())
}

/// A paid renewal turns a trial into a paid subscription.
pub async fn end_trial(c: &mut impl Conn, now: DateTime<Utc>, id: &str) -> Result<(), StoreError> {
    c.execute(q("UPDATE subscriptions SET trial = $1, updated_at = $2 WHERE id = $3").bind(false).bind(now).bind(id)).await?;
    c.changed(id);
    Ok(())
}

/// Expires an active subscription whose term ended, setting when it is released. Returns
/// whether this call made the change (so only one node writes the event).
pub async fn expire(c: &mut impl Conn, now: DateTime<Utc>, id: &str, release_at: DateTime<Utc>) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE subscriptions SET state = 'expired', release_at = $1, updated_at = $2 WHERE id = $3 AND state = 'active'")
                .bind(release_at)
                .bind(now)
                .bind(id),
        )
        .await?;
    c.changed(id);
    Ok(n == 1)
}

/// Active subscriptions whose term has ended.
pub async fn due_to_expire(c: &mut impl Conn, now: DateTime<Utc>) -> Result<Vec<Subscription>, StoreError> {
    c.fetch_all(q("SELECT * FROM subscriptions WHERE state = 'active' AND term_end IS NOT NULL AND term_end <= $1 ORDER BY term_end, id LIMIT 500").bind(now))
        .await?
        .iter()
        .map(subscription)
        .collect()
}

/// Expired subscriptions whose grace period has ended.
pub async fn due_to_release(c: &mut impl Conn, now: DateTime<Utc>) -> Result<Vec<Subscription>, StoreError> {
    c.fetch_all(
        q("SELECT * FROM subscriptions WHERE state = 'expired' AND release_at <= $1 ORDER BY release_at, id LIMIT 500").bind(now),
    )
    .await?
    .iter()
    .map(subscription)
    .collect()
}

/// The orders of a subscription, oldest first.
pub async fn orders_of(c: &mut impl Conn, subscription_id: &str) -> Result<Vec<Order>, StoreError> {
    c.fetch_all(q("SELECT * FROM orders WHERE subscription_id = $1 ORDER BY id").bind(subscription_id))
        .await?
        .iter()
        .map(order)
        .collect()
}

pub async fn set_order_state(c: &mut impl Conn, now: DateTime<Utc>, id: &str, state: &str) -> Result<(), StoreError> {
    c.execute(q("UPDATE orders SET state = $1, updated_at = $2 WHERE id = $3").bind(state).bind(now).bind(id)).await?;
    Ok(())
}

/// Moves the subscription's orders that are in one of `from` (up to three states) to `to`, in
/// one statement.
pub async fn set_orders_state_of(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    subscription_id: &str,
    from: &[&str],
    to: &str,
) -> Result<u64, StoreError> {
    let [f0, f1, f2] = three_states(from);
    c.execute(
        q("UPDATE orders SET state = $1, updated_at = $2 WHERE subscription_id = $3 AND state IN ($4, $5, $6)")
            .bind(to)
            .bind(now)
            .bind(subscription_id)
            .bind(f0)
            .bind(f1)
            .bind(f2),
    )
    .await
}

#[allow(clippy::too_many_arguments)]
pub async fn record_refund(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    subscription_id: &str,
    order_id: &str,
    buyer: &str,
    kind: &str,
    currency: &str,
    amount_minor: i64,
) -> Result<String, StoreError> {
    let id = format!("rfd_{}", souk_core::id::new_body(now));
    c.execute(
        q("INSERT INTO refunds (id, subscription_id, order_id, buyer_org_id, kind, currency, amount_minor, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&id)
            .bind(subscription_id)
            .bind(order_id)
            .bind(buyer)
            .bind(kind)
            .bind(currency)
            .bind(amount_minor)
            .bind(now),
    )
    .await?;
    Ok(id)
}

/// No-reason refunds the buyer had since `since` (the yearly limit counts these).
pub async fn no_reason_refunds_since(c: &mut impl Conn, buyer: &OrgId, since: DateTime<Utc>) -> Result<u32, StoreError> {
    let n: i64 = c
        .fetch_one(
            q("SELECT COUNT(*) AS n FROM refunds WHERE buyer_org_id = $1 AND kind = 'no_reason' AND at >= $2")
                .bind(buyer.as_str())
                .bind(since),
        )
        .await?
        .get("n")?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Records a trial. A second trial of the same product by the same buyer gives
/// [`StoreError::Conflict`], whatever the timing.
pub async fn record_trial(
    c: &mut impl Conn,
    buyer: &str,
    product: &str,
    plan: &str,
    subscription_id: &str,
    started_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    c.execute(
        q("INSERT INTO trials (buyer_org_id, product_id, plan_id, subscription_id, started_at, ends_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(buyer)
            .bind(product)
            .bind(plan)
            .bind(subscription_id)
            .bind(started_at)
            .bind(ends_at),
    )
    .await?;
    Ok(())
}

/// Active subscriptions whose term ends after `now` and by `horizon`.
pub async fn ending_between(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
) -> Result<Vec<Subscription>, StoreError> {
    c.fetch_all(
        q("SELECT * FROM subscriptions WHERE state = 'active' AND term_end > $1 AND term_end <= $2 ORDER BY term_end, id LIMIT 1000")
            .bind(now)
            .bind(horizon),
    )
    .await?
    .iter()
    .map(subscription)
    .collect()
}

/// Claims a once-per-term piece of work; true for exactly one caller.
pub async fn claim_notice(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    id: &str,
    term_end: DateTime<Utc>,
    kind: &str,
) -> Result<bool, StoreError> {
    Ok(c.execute(
        q("INSERT INTO subscription_notices (subscription_id, term_end, kind, at) VALUES ($1, $2, $3, $4)
               ON CONFLICT (subscription_id, term_end, kind) DO NOTHING")
        .bind(id)
        .bind(term_end)
        .bind(kind)
        .bind(now),
    )
    .await?
        == 1)
}

pub async fn set_auto_renew(c: &mut impl Conn, now: DateTime<Utc>, id: &str, on: bool) -> Result<(), StoreError> {
    c.execute(q("UPDATE subscriptions SET auto_renew = $1, updated_at = $2 WHERE id = $3").bind(on).bind(now).bind(id)).await?;
    c.changed(id);
    Ok(())
}

/// Narrows a list of orders; every field is optional.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub state: Option<String>,
    pub product_id: Option<String>,
    pub kind: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Orders older than this id (the next page).
    pub before: Option<String>,
    pub limit: u32,
}

/// Which side of the sale the organization is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Buyer,
    Seller,
}

/// An organization's orders, newest first, filtered.
pub async fn list_filtered(c: &mut impl Conn, side: Side, org: &OrgId, f: &OrderFilter) -> Result<Vec<Order>, StoreError> {
    const FILTERS: &str = "AND ($2 IS NULL OR state = $2) AND ($3 IS NULL OR product_id = $3) AND ($4 IS NULL OR kind = $4)
        AND ($5 IS NULL OR created_at >= $5) AND ($6 IS NULL OR created_at < $6) AND ($7 IS NULL OR id < $7) ORDER BY id DESC LIMIT $8";
    let sql = match side {
        Side::Buyer => format!("SELECT * FROM orders WHERE buyer_org_id = $1 {FILTERS}"),
        Side::Seller => format!("SELECT * FROM orders WHERE seller_org_id = $1 {FILTERS}"),
    };
    c.fetch_all(
        crate::q_built(sql.clone(), sql)
            .bind(org.as_str())
            .bind(f.state.as_deref())
            .bind(f.product_id.as_deref())
            .bind(f.kind.as_deref())
            .bind(f.from)
            .bind(f.to)
            .bind(f.before.as_deref())
            .bind(i64::from(f.limit.clamp(1, 500))),
    )
    .await?
    .iter()
    .map(order)
    .collect()
}

/// The products a buyer organization has tried (one trial each, ever).
pub async fn tried_products(c: &mut impl Conn, buyer: &OrgId) -> Result<Vec<String>, StoreError> {
    c.fetch_all(q("SELECT product_id FROM trials WHERE buyer_org_id = $1").bind(buyer.as_str()))
        .await?
        .iter()
        .map(|r| r.get("product_id"))
        .collect()
}

/// An order as its seller sees it: `None` if no such order, `Some(None)` if another seller's.
pub async fn get_for_seller(c: &mut impl Conn, seller: &OrgId, id: &str) -> Result<Option<Option<Order>>, StoreError> {
    let Some(r) = c.fetch_optional(q("SELECT * FROM orders WHERE id = $1").bind(id)).await? else { return Ok(None) };
    let o = order(&r)?;
    Ok(Some((o.seller_org_id == seller.as_str()).then_some(o)))
}
