//! A subscription's life after the purchase: provisioned, renewed, upgraded, unsubscribed
//! with a refund, expired into its grace period, released. Every transition is one
//! conditional update (so two nodes cannot both apply it) in the transaction that moves the
//! money and writes the event the seller's system receives.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use souk_core::catalog::{Billing, Plan, ProductKind};
use souk_core::id::{OrgId, ProductId};
use souk_core::money::{Currency, Money};
use souk_core::pricing::{self, Refund, RefundInput, RefundKind};
use souk_core::subscription::{SubscriptionState, term_end};
use souk_store::orders::{self, Order, Subscription};
use souk_store::{Tx, audit, outbox, products, wallets};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{Error, Result};

/// No-reason refunds a buyer may have in a year.
pub const NO_REASON_PER_YEAR: u32 = 10;

/// The subscription terms (grace days, no-reason days) of the product's live revision.
pub async fn live_terms(tx: &mut impl souk_store::Conn, product: &products::Product) -> Result<(u32, u32)> {
    Ok(match &product.live_revision_id {
        Some(rev) => products::get_revision(tx, rev).await?.content.terms(),
        None => terms_of(None),
    })
}

/// The terms of a product whose live content has been read (`None`: never published).
pub fn terms_of(live: Option<&souk_core::catalog::ProductContent>) -> (u32, u32) {
    live.map_or((souk_core::catalog::DEFAULT_GRACE_DAYS, souk_core::catalog::DEFAULT_NO_REASON_DAYS), |c| c.terms())
}

fn state_of(s: &Subscription) -> Result<SubscriptionState> {
    SubscriptionState::parse(&s.state).ok_or_else(|| Error::Internal(anyhow::anyhow!("unknown subscription state {}", s.state)))
}

fn illegal(e: souk_core::subscription::IllegalTransition) -> Error {
    Error::conflict("illegal_transition", e.to_string())
}

async fn buyer_subscription(tx: &mut Tx, buyer: &OrgId, id: &str) -> Result<Subscription> {
    let s = orders::get_subscription(tx, id).await?;
    if s.buyer_org_id != buyer.as_str() {
        return Err(Error::not_found());
    }
    Ok(s)
}

async fn plan_of(tx: &mut Tx, s: &Subscription) -> Result<Plan> {
    let pid: ProductId = s.product_id.parse().map_err(|_| Error::not_found())?;
    products::plans(tx, &pid, true)
        .await?
        .into_iter()
        .find(|p| p.id.as_str() == s.plan_id)
        .map(|p| p.spec)
        .ok_or_else(Error::not_found)
}

async fn event(tx: &mut Tx, now: DateTime<Utc>, topic: &str, s: &Subscription, extra: serde_json::Value) -> Result<()> {
    let mut payload =
        json!({ "subscription_id": s.id, "product_id": s.product_id, "plan_id": s.plan_id, "buyer_org_id": s.buyer_org_id });
    if let (Some(p), Some(e)) = (payload.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    outbox::enqueue(tx, now, topic, &s.id, &payload).await?;
    if topic == "instance.release" {
        // Servers deployed for a machine image are deleted too (a no-op for other products).
        outbox::enqueue(tx, now, crate::compute::RELEASE_TOPIC, &s.id, &json!({ "subscription_id": s.id })).await?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn audited(
    tx: &mut Tx,
    now: DateTime<Utc>,
    actor: &str,
    org: Option<&OrgId>,
    action: &str,
    target: &str,
    summary: String,
    request_id: Option<&str>,
) -> Result<()> {
    audit::record(tx, now, audit::NewEntry { actor, actor_org: org, action, target, summary, request_id }).await?;
    Ok(())
}

/// The seller reports the instance provisioned through the API (after answering a create
/// with 202, or for a product provisioned by hand), with the instance and access details.
pub async fn fulfilled(
    state: &AppState,
    caller: &Caller,
    seller: &OrgId,
    id: &str,
    answer: &souk_isv::answer::Answer,
    request_id: Option<&str>,
) -> Result<Subscription> {
    caller.role_in(state, seller).await?;
    let s = orders::get_subscription(&mut state.db.clone(), id).await?;
    if s.seller_org_id != seller.as_str() {
        return Err(Error::not_found());
    }
    state_of(&s)?.fulfilled().map_err(illegal)?;
    if !provisioned(state, &s, answer, &caller.actor()).await? {
        return Err(Error::conflict("illegal_transition", "the subscription changed meanwhile"));
    }
    let _ = request_id;
    Ok(orders::get_subscription(&mut state.db.clone(), id).await?)
}

/// The seller's system provisioned the instance: the subscription becomes active, its paid
/// orders complete, and the instance and access details are kept (the password only as the
/// seller encrypted it). Returns false if the subscription was no longer waiting.
pub async fn provisioned(state: &AppState, s: &Subscription, answer: &souk_isv::answer::Answer, actor: &str) -> Result<bool> {
    let mut tx = state.db.begin().await?;
    let done = provisioned_in(&mut tx, state.clock.now(), s, answer, actor).await?;
    if done {
        tx.commit().await?;
    }
    Ok(done)
}

/// [`provisioned`] in the caller's transaction (the delivery worker's, which records the
/// seller's answer and the event's completion in the same commit).
pub async fn provisioned_in(
    tx: &mut Tx,
    now: DateTime<Utc>,
    s: &Subscription,
    answer: &souk_isv::answer::Answer,
    actor: &str,
) -> Result<bool> {
    let id = s.id.as_str();
    if !orders::transition(tx, now, id, &["pending_fulfillment"], SubscriptionState::Active.as_str()).await? {
        return Ok(false);
    }
    orders::set_orders_state_of(tx, now, id, &["paid", "fulfilling"], "completed").await?;
    let access = answer.access.as_ref().map(|a| serde_json::to_value(a).unwrap_or_default());
    souk_store::fulfillment::set_instance(tx, now, id, answer.instance_id.as_deref(), access.as_ref()).await?;
    // The buyer is the subscription's for good: no need to read it again.
    let buyer: Option<OrgId> = s.buyer_org_id.parse().ok();
    // The buyer's "ready" message and email, in the provisioning's own commit.
    crate::messages::announce(
        tx,
        now,
        "subscription.provisioned",
        &json!({ "subscription_id": id, "buyer_org_id": s.buyer_org_id, "instance_id": answer.instance_id }),
    )
    .await?;
    audited(
        tx,
        now,
        actor,
        buyer.as_ref(),
        "subscription.fulfilled",
        id,
        format!("provisioned as {}", answer.instance_id.as_deref().unwrap_or("-")),
        None,
    )
    .await?;
    Ok(true)
}

/// The seller accepted a create and is still provisioning (it answered 202).
pub async fn fulfilling(state: &AppState, id: &str) -> Result<()> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    orders::set_orders_state_of(&mut tx, now, id, &["paid"], "fulfilling").await?;
    tx.commit().await?;
    Ok(())
}

/// Provisioning failed for good: the subscription is cancelled, its orders marked
/// `fulfillment_failed`, every cent paid goes back to the wallet, and seller and operators are
/// told (`order.fulfillment_failed`). Returns false if it was no longer waiting (done before).
pub async fn fail_fulfillment(state: &AppState, sub: &Subscription, why: &str) -> Result<bool> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    if !orders::transition(&mut tx, now, &sub.id, &["pending_fulfillment"], "cancelled").await? {
        return Ok(false);
    }
    let buyer: OrgId = sub.buyer_org_id.parse().map_err(|_| Error::not_found())?;
    for o in orders::orders_of(&mut tx, &sub.id).await? {
        orders::set_order_state(&mut tx, now, &o.id, "fulfillment_failed").await?;
        let currency = Currency::parse(&o.currency).map_err(|e| Error::Internal(e.into()))?;
        orders::record_refund(&mut tx, now, &sub.id, &o.id, buyer.as_str(), "fulfillment_failed", &o.currency, o.total_minor)
            .await?;
        if o.total_minor > 0 {
            wallets::credit(&mut tx, now, &buyer, Money::new(o.total_minor, currency), "refund", Some(&o.id), "system").await?;
        }
    }
    outbox::enqueue(
        &mut tx,
        now,
        "order.fulfillment_failed",
        &sub.id,
        &json!({ "subscription_id": sub.id, "buyer_org_id": sub.buyer_org_id, "seller_org_id": sub.seller_org_id, "reason": why }),
    )
    .await?;
    audited(
        &mut tx,
        now,
        "system",
        Some(&buyer),
        "subscription.fulfillment_failed",
        &sub.id,
        format!("{why}; refunded in full"),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

#[allow(clippy::too_many_arguments)]
async fn charge(
    tx: &mut Tx,
    now: DateTime<Utc>,
    actor: &str,
    s: &Subscription,
    kind: &str,
    plan_id: &str,
    snapshot: &Plan,
    unit_minor: i64,
    periods: u32,
    total: Money,
    tax_minor: i64,
) -> Result<Order> {
    let order = orders::create_order(
        tx,
        now,
        orders::NewOrder {
            buyer: &s.buyer_org_id,
            seller: &s.seller_org_id,
            product: &s.product_id,
            plan: plan_id,
            subscription: &s.id,
            kind,
            state: "completed",
            currency: total.currency.code(),
            unit_price_minor: unit_minor,
            periods: i64::from(periods),
            quantity: s.quantity,
            list_minor: total.minor,
            discount_minor: 0,
            total_minor: total.minor,
            tax_minor,
            coupon_code: None,
            plan_snapshot: &serde_json::to_value(snapshot).map_err(|e| Error::Internal(e.into()))?,
            idempotency_key: None,
            created_by: actor,
        },
    )
    .await?;
    let buyer: OrgId = s.buyer_org_id.parse().map_err(|_| Error::not_found())?;
    if let Err(short) = wallets::debit(tx, now, &buyer, total, kind, Some(&order.id), actor).await? {
        return Err(Error::new(
            axum::http::StatusCode::PAYMENT_REQUIRED,
            "insufficient_funds",
            format!("the wallet holds {}, this costs {total}", short.balance),
        ));
    }
    Ok(order)
}

fn site_price(plan: &Plan, currency: Currency) -> Result<i64> {
    plan.prices
        .iter()
        .find(|p| p.site.currency() == currency)
        .map(|p| p.amount_minor)
        .ok_or_else(|| Error::conflict("not_priced", "this plan has no price in the subscription's currency"))
}

/// Renews for `periods` more, from the end of the current term (or from now, if it already
/// expired), paid from the wallet. An expired subscription in its grace period comes back.
pub async fn renew(
    state: &AppState,
    caller: &Caller,
    buyer: &OrgId,
    id: &str,
    periods: u32,
    request_id: Option<&str>,
) -> Result<Subscription> {
    caller.admin_of(state, buyer).await?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let s = buyer_subscription(&mut tx, buyer, id).await?;
    renew_in(&mut tx, now, &caller.actor(), &s, periods, request_id).await?;
    tx.commit().await?;
    Ok(orders::get_subscription(&mut state.db.clone(), id).await?)
}

/// The currency a subscription is billed in: that of its first order, or for a trial not
/// yet paid, the buyer's site's.
async fn currency_of(tx: &mut Tx, s: &Subscription) -> Result<Currency> {
    match orders::orders_of(tx, &s.id).await?.first() {
        Some(o) => Currency::parse(&o.currency).map_err(|e| Error::Internal(e.into())),
        None => {
            let buyer: OrgId = s.buyer_org_id.parse().map_err(|_| Error::not_found())?;
            Ok(souk_store::orgs::get(tx, &buyer).await?.site.currency())
        }
    }
}

/// Renews inside the caller's transaction; `actor` pays from the buyer's wallet. A trial
/// converts to paid: its paid term starts now. A downgrade the buyer scheduled takes
/// effect here, priced at the new plan.
async fn renew_in(
    tx: &mut Tx,
    now: DateTime<Utc>,
    actor: &str,
    s: &Subscription,
    periods: u32,
    request_id: Option<&str>,
) -> Result<()> {
    let id = s.id.as_str();
    let buyer: OrgId = s.buyer_org_id.parse().map_err(|_| Error::not_found())?;
    let to = state_of(s)?.renew().map_err(illegal)?;
    let (plan_id, plan) = match &s.next_plan_id {
        Some(next) => {
            let pid: ProductId = s.product_id.parse().map_err(|_| Error::not_found())?;
            match products::plans(tx, &pid, false).await?.into_iter().find(|p| p.id.as_str() == next) {
                Some(p) => (next.clone(), p.spec),
                // The seller retired the plan meanwhile: renew on the current one.
                None => (s.plan_id.clone(), plan_of(tx, s).await?),
            }
        }
        None => (s.plan_id.clone(), plan_of(tx, s).await?),
    };
    let Billing::Periodic { period, .. } = plan.billing else {
        return Err(Error::conflict("not_renewable", "only periodic plans are renewed"));
    };
    let currency = currency_of(tx, s).await?;
    let unit = site_price(&plan, currency)?;
    let q = pricing::quote(&pricing::QuoteInput {
        unit_price: Money::new(unit, currency),
        periods,
        quantity: u32::try_from(s.quantity).unwrap_or(1),
        coupon: None,
        tax_rate: if currency == Currency::Cny { pricing::Bp(600) } else { pricing::Bp(0) },
    })
    .map_err(|e| Error::field("periods", e.to_string()))?;
    let from = match s.term_end {
        Some(end) if end > now && !s.trial => end,
        _ => now,
    };
    let new_end = term_end(from, period, periods).ok_or_else(|| Error::field("periods", "too many periods"))?;
    let kind = if s.trial { "new" } else { "renewal" };
    let order = charge(tx, now, actor, s, kind, &plan_id, &plan, unit, periods, q.total(), q.tax_included_minor).await?;
    orders::transition(tx, now, id, &["active", "expired"], to.as_str()).await?;
    orders::set_term_end(tx, now, id, new_end).await?;
    if plan_id != s.plan_id {
        orders::set_plan(tx, now, id, &plan_id).await?;
        event(tx, now, "instance.change_plan", s, json!({ "order_id": order.id, "new_plan_id": plan_id })).await?;
    } else if s.next_plan_id.is_some() {
        orders::set_next_plan(tx, now, id, None).await?;
    }
    if s.trial {
        orders::end_trial(tx, now, id).await?;
    }
    event(
        tx,
        now,
        "instance.renew",
        s,
        json!({ "order_id": order.id, "expires_at": new_end, "trial": false, "converted_from_trial": s.trial }),
    )
    .await?;
    if s.state == "expired" {
        event(tx, now, "instance.resume", s, json!({})).await?;
    }
    let what = if s.trial { "trial converted to paid" } else { "renewed" };
    audited(
        tx,
        now,
        actor,
        Some(&buyer),
        "subscription.renewed",
        id,
        format!("{what}: {periods} period(s) until {new_end} for {}", q.total()),
        request_id,
    )
    .await?;
    Ok(())
}

/// What a plan change did.
pub enum PlanChange {
    /// A dearer plan, in effect now; the difference for the rest of the term was charged.
    Upgraded { charged: Money },
    /// A cheaper plan, in effect from the next renewal (or the current plan again: the
    /// scheduled change was cancelled).
    Scheduled { at: Option<DateTime<Utc>> },
}

/// Changes plan: to a dearer plan now, paying the difference for the rest of the term; to a
/// cheaper one at the next renewal; back to the current plan cancels a scheduled change.
pub async fn change_plan(
    state: &AppState,
    caller: &Caller,
    buyer: &OrgId,
    id: &str,
    new_plan_id: &str,
    request_id: Option<&str>,
) -> Result<(Subscription, PlanChange)> {
    caller.admin_of(state, buyer).await?;
    // A KooGallery seller may have to agree first: asked before the transaction opens, since
    // it is a call to the seller's system.
    {
        let mut db = state.db.clone();
        let s = orders::get_subscription(&mut db, id).await?;
        if s.buyer_org_id != buyer.as_str() {
            return Err(Error::not_found());
        }
        let pid: ProductId = s.product_id.parse().map_err(|_| Error::not_found())?;
        let target = products::plans(&mut db, &pid, false).await?.into_iter().find(|p| p.id.as_str() == new_plan_id);
        if let Some(plan) = target.filter(|_| new_plan_id != s.plan_id && state_of(&s).ok() == Some(SubscriptionState::Active)) {
            crate::koogallery::change_check(state, &s, &plan.spec.code, &plan.spec.name).await?;
        }
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let s = buyer_subscription(&mut tx, buyer, id).await?;
    if state_of(&s)? != SubscriptionState::Active || s.trial {
        return Err(Error::conflict("illegal_transition", "only an active, paid subscription changes plan"));
    }
    if new_plan_id == s.plan_id {
        orders::set_next_plan(&mut tx, now, id, None).await?;
        if s.next_plan_id.is_some() {
            audited(
                &mut tx,
                now,
                &caller.actor(),
                Some(buyer),
                "subscription.plan_change_cancelled",
                id,
                "scheduled plan change cancelled".into(),
                request_id,
            )
            .await?;
        }
        tx.commit().await?;
        return Ok((orders::get_subscription(&mut state.db.clone(), id).await?, PlanChange::Scheduled { at: None }));
    }
    let old = plan_of(&mut tx, &s).await?;
    let pid: ProductId = s.product_id.parse().map_err(|_| Error::not_found())?;
    let new = products::plans(&mut tx, &pid, false)
        .await?
        .into_iter()
        .find(|p| p.id.as_str() == new_plan_id)
        .ok_or_else(|| Error::field("plan_id", "no such plan of this product"))?;
    let (Billing::Periodic { period: p_old, .. }, Billing::Periodic { period: p_new, .. }) = (&old.billing, &new.spec.billing)
    else {
        return Err(Error::field("plan_id", "plans change between periodic plans only"));
    };
    if p_old != p_new {
        return Err(Error::field("plan_id", "the new plan must bill by the same period"));
    }
    let currency = currency_of(&mut tx, &s).await?;
    let qty = s.quantity;
    let old_price = Money::new(site_price(&old, currency)? * qty, currency);
    let new_price = Money::new(site_price(&new.spec, currency)? * qty, currency);
    if new_price.minor <= old_price.minor {
        orders::set_next_plan(&mut tx, now, id, Some(new_plan_id)).await?;
        audited(
            &mut tx,
            now,
            &caller.actor(),
            Some(buyer),
            "subscription.downgrade_scheduled",
            id,
            format!("{} from the next renewal", new.spec.name),
            request_id,
        )
        .await?;
        tx.commit().await?;
        return Ok((orders::get_subscription(&mut state.db.clone(), id).await?, PlanChange::Scheduled { at: s.term_end }));
    }
    let end = s.term_end.ok_or_else(|| Error::conflict("illegal_transition", "no term to upgrade"))?;
    let period_secs = match p_old {
        souk_core::catalog::Period::Month => pricing::MONTH_SECS,
        souk_core::catalog::Period::Year => pricing::YEAR_SECS,
    };
    let remaining = (end - now).num_seconds().max(0);
    let due = pricing::upgrade_charge(old_price, new_price, remaining, period_secs).map_err(|e| Error::Internal(e.into()))?;
    let tax = pricing::mul_div_half_up(
        due.minor,
        if currency == Currency::Cny { 600 } else { 0 },
        10_000 + if currency == Currency::Cny { 600 } else { 0 },
    )
    .unwrap_or(0);
    let order = charge(
        &mut tx,
        now,
        &caller.actor(),
        &s,
        "upgrade",
        new_plan_id,
        &new.spec,
        site_price(&new.spec, currency)?,
        1,
        due,
        tax,
    )
    .await?;
    orders::set_plan(&mut tx, now, id, new_plan_id).await?;
    event(&mut tx, now, "instance.change_plan", &s, json!({ "order_id": order.id, "new_plan_id": new_plan_id })).await?;
    audited(
        &mut tx,
        now,
        &caller.actor(),
        Some(buyer),
        "subscription.upgraded",
        id,
        format!("upgraded to {} for {due}", new.spec.name),
        request_id,
    )
    .await?;
    tx.commit().await?;
    Ok((orders::get_subscription(&mut state.db.clone(), id).await?, PlanChange::Upgraded { charged: due }))
}

/// What unsubscribing now would refund: everything paid inside the no-reason window after
/// the purchase; afterwards the whole periods of the term not yet begun, at the price of the
/// latest order (capped at what was paid); nothing for one-time items and license codes, nor
/// for a trial never paid for (which has no order).
pub async fn refund_preview(tx: &mut Tx, now: DateTime<Utc>, buyer: &OrgId, s: &Subscription) -> Result<(Refund, Option<Order>)> {
    let plan = plan_of(tx, s).await?;
    let all: Vec<Order> = orders::orders_of(tx, &s.id).await?.into_iter().filter(|o| o.state != "refunded").collect();
    let Some(first) = orders::orders_of(tx, &s.id).await?.into_iter().next() else {
        let currency = currency_of(tx, s).await?;
        return Ok((Refund { kind: RefundKind::None, amount: Money::zero(currency) }, None));
    };
    let latest = all.last().cloned().unwrap_or_else(|| first.clone());
    let currency = Currency::parse(&first.currency).map_err(|e| Error::Internal(e.into()))?;
    let paid = Money::new(all.iter().map(|o| o.total_minor).sum(), currency);
    let unused = match (&plan.billing, s.term_end) {
        (Billing::Periodic { period, .. }, Some(end)) => {
            let months = if *period == souk_core::catalog::Period::Month { 1 } else { 12 };
            let mut n = 0u32;
            while end.checked_sub_months(chrono::Months::new(months * (n + 1))).is_some_and(|start| start >= now) {
                n += 1;
            }
            n
        }
        _ => 0,
    };
    let product = products::get(tx, &s.product_id.parse().map_err(|_| Error::not_found())?).await?;
    let non_refundable = matches!(plan.billing, Billing::OneTime) || product.kind == ProductKind::License;
    let used = orders::no_reason_refunds_since(tx, buyer, now - Duration::days(365)).await?;
    let refund = pricing::refund(&RefundInput {
        paid,
        per_period_paid: Money::new(latest.unit_price_minor * s.quantity, currency),
        periods_bought: unused,
        periods_begun: 0,
        non_refundable,
        inside_no_reason_window: now < first.created_at + Duration::days(s.no_reason_days),
        no_reason_used_this_year: used,
        no_reason_limit: NO_REASON_PER_YEAR,
    })
    .map_err(|e| Error::Internal(e.into()))?;
    Ok((refund, Some(latest)))
}

pub async fn preview(state: &AppState, buyer: &OrgId, id: &str) -> Result<Refund> {
    let mut tx = state.db.begin().await?;
    let s = buyer_subscription(&mut tx, buyer, id).await?;
    Ok(refund_preview(&mut tx, state.clock.now(), buyer, &s).await?.0)
}

/// Ends the subscription now and returns the refund its rules allow to the wallet.
pub async fn unsubscribe(state: &AppState, caller: &Caller, buyer: &OrgId, id: &str, request_id: Option<&str>) -> Result<Refund> {
    caller.admin_of(state, buyer).await?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let s = buyer_subscription(&mut tx, buyer, id).await?;
    state_of(&s)?.cancel().map_err(illegal)?;
    let (refund, term_order) = refund_preview(&mut tx, now, buyer, &s).await?;
    if !orders::transition(&mut tx, now, id, &["pending_fulfillment", "active", "expired"], "cancelled").await? {
        return Err(Error::conflict("illegal_transition", "the subscription changed meanwhile"));
    }
    let kind = match refund.kind {
        RefundKind::NoReason => "no_reason",
        RefundKind::UnusedPeriods => "unused_periods",
        RefundKind::None => "none",
    };
    if let Some(term_order) = &term_order {
        orders::record_refund(
            &mut tx,
            now,
            id,
            &term_order.id,
            buyer.as_str(),
            kind,
            refund.amount.currency.code(),
            refund.amount.minor,
        )
        .await?;
        if refund.amount.minor > 0 {
            wallets::credit(&mut tx, now, buyer, refund.amount, "refund", Some(&term_order.id), &caller.actor()).await?;
        }
    }
    if refund.kind == RefundKind::NoReason {
        for o in orders::orders_of(&mut tx, id).await? {
            orders::set_order_state(&mut tx, now, &o.id, "refunded").await?;
        }
    }
    event(&mut tx, now, "instance.release", &s, json!({ "reason": "unsubscribed", "refund_minor": refund.amount.minor })).await?;
    if refund.amount.minor > 0 {
        let money = json!({ "amount_minor": refund.amount.minor, "currency": refund.amount.currency.code(), "reason": kind });
        event(&mut tx, now, "subscription.refunded", &s, money).await?;
    }
    audited(
        &mut tx,
        now,
        &caller.actor(),
        Some(buyer),
        "subscription.unsubscribed",
        id,
        format!("unsubscribed; refund {} ({kind})", refund.amount),
        request_id,
    )
    .await?;
    tx.commit().await?;
    Ok(refund)
}

/// Days before the end of a term at which auto-renewal pays for the next period.
pub const AUTO_RENEW_DAYS: i64 = 3;

/// Turns auto-renewal on or off.
pub async fn set_auto_renew(
    state: &AppState,
    caller: &Caller,
    buyer: &OrgId,
    id: &str,
    on: bool,
    request_id: Option<&str>,
) -> Result<Subscription> {
    caller.admin_of(state, buyer).await?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    // Checks that the subscription is the buyer's.
    buyer_subscription(&mut tx, buyer, id).await?;
    orders::set_auto_renew(&mut tx, now, id, on).await?;
    audited(
        &mut tx,
        now,
        &caller.actor(),
        Some(buyer),
        "subscription.auto_renew",
        id,
        format!("auto-renew {}", if on { "on" } else { "off" }),
        request_id,
    )
    .await?;
    tx.commit().await?;
    Ok(orders::get_subscription(&mut state.db.clone(), id).await?)
}

/// Sends the 7, 3 and 1-day expiry reminders and runs auto-renewals, once per term each
/// (claimed in the database, so on one node only). Returns (reminders, renewed, failed).
pub async fn notices(state: &AppState) -> Result<(usize, usize, usize)> {
    let now = state.clock.now();
    let mut db = state.db.clone();
    let (mut reminders, mut renewed, mut failed) = (0, 0, 0);
    for s in orders::ending_between(&mut db, now, now + Duration::days(7)).await? {
        let Some(end) = s.term_end else { continue };
        for days in souk_core::subscription::due_reminders(now, end, &[]) {
            let mut tx = state.db.begin().await?;
            if orders::claim_notice(&mut tx, now, &s.id, end, &format!("reminder_{days}")).await? {
                event(
                    &mut tx,
                    now,
                    "subscription.expiry_reminder",
                    &s,
                    json!({ "days": days, "expires_at": end, "auto_renew": s.auto_renew }),
                )
                .await?;
                reminders += 1;
            }
            tx.commit().await?;
        }
        if s.auto_renew && now >= end - Duration::days(AUTO_RENEW_DAYS) {
            let mut tx = state.db.begin().await?;
            if orders::claim_notice(&mut tx, now, &s.id, end, "auto_renew").await? {
                match renew_in(&mut tx, now, "system", &s, 1, None).await {
                    Ok(()) => {
                        tx.commit().await?;
                        renewed += 1;
                        continue;
                    }
                    Err(e) => {
                        drop(tx);
                        // The renewal rolled back with its claim; claim again to report it once.
                        let mut tx = state.db.begin().await?;
                        if orders::claim_notice(&mut tx, now, &s.id, end, "auto_renew").await? {
                            event(
                                &mut tx,
                                now,
                                "subscription.auto_renew_failed",
                                &s,
                                json!({ "reason": e.message(), "expires_at": end }),
                            )
                            .await?;
                            failed += 1;
                        }
                        tx.commit().await?;
                        continue;
                    }
                }
            }
            tx.commit().await?;
        }
    }
    Ok((reminders, renewed, failed))
}

/// Expires subscriptions whose term ended (service suspended, grace begins) and releases
/// those whose grace ended. Safe on every node at once, and catches up after downtime:
/// each step is a conditional update, and the event is written only by the node whose
/// update changed the row.
pub async fn tick(state: &AppState) -> Result<(usize, usize)> {
    let now = state.clock.now();
    let mut db = state.db.clone();
    notices(state).await?;
    let mut expired = 0;
    for s in orders::due_to_expire(&mut db, now).await? {
        let mut tx = state.db.begin().await?;
        let release_at = s.term_end.unwrap_or(now) + Duration::days(s.grace_days);
        if orders::expire(&mut tx, now, &s.id, release_at).await? {
            event(&mut tx, now, "instance.suspend", &s, json!({ "reason": "expired", "release_at": release_at })).await?;
            event(&mut tx, now, "subscription.expired", &s, json!({ "release_at": release_at })).await?;
            audited(&mut tx, now, "system", None, "subscription.expired", &s.id, "term ended; grace period begins".into(), None)
                .await?;
            expired += 1;
        }
        tx.commit().await?;
    }
    let mut released = 0;
    for s in orders::due_to_release(&mut db, now).await? {
        let mut tx = state.db.begin().await?;
        if orders::transition(&mut tx, now, &s.id, &["expired"], "released").await? {
            event(&mut tx, now, "instance.release", &s, json!({ "reason": "grace_ended" })).await?;
            event(&mut tx, now, "subscription.released", &s, json!({})).await?;
            audited(&mut tx, now, "system", None, "subscription.released", &s.id, "grace period ended".into(), None).await?;
            released += 1;
        }
        tx.commit().await?;
    }
    Ok((expired, released))
}

/// Starts the plan's free trial for the buyer: real-name verification required (enterprise
/// verification where the plan says so), one trial per buyer and product ever.
pub async fn start_trial(
    state: &AppState,
    caller: &Caller,
    buyer: &OrgId,
    product_id: &str,
    plan_id: &str,
    request_id: Option<&str>,
) -> Result<Subscription> {
    caller.admin_of(state, buyer).await?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let org = souk_store::orgs::get(&mut tx, buyer).await?;
    let pid: ProductId = product_id.parse().map_err(|_| Error::field("product_id", "no such product on this site"))?;
    if !souk_store::storefront::is_listed(&mut tx, &pid, org.site).await? {
        return Err(Error::field("product_id", "no such product on this site"));
    }
    let plan = products::plans(&mut tx, &pid, false)
        .await?
        .into_iter()
        .find(|p| p.id.as_str() == plan_id)
        .ok_or_else(|| Error::field("plan_id", "no such plan of this product"))?;
    let trial = plan.spec.trial.clone().ok_or_else(|| Error::field("plan_id", "this plan has no free trial"))?;
    if org.verification_status != "verified" {
        return Err(Error::forbidden("complete real-name verification before starting a trial"));
    }
    if trial.enterprise_only && org.kind != souk_core::identity::OrgKind::Enterprise {
        return Err(Error::forbidden("this trial is for verified enterprises only"));
    }
    let product = products::get(&mut tx, &pid).await?;
    let (grace_days, no_reason_days) = live_terms(&mut tx, &product).await?;
    let ends = now + Duration::days(i64::from(trial.days));
    let sub = orders::create_subscription(
        &mut tx,
        now,
        orders::NewSubscription {
            buyer: buyer.as_str(),
            seller: product.seller_org_id.as_str(),
            product: pid.as_str(),
            plan: plan.id.as_str(),
            quantity: 1,
            term_start: now,
            term_end: Some(ends),
            trial: true,
            grace_days,
            no_reason_days,
        },
    )
    .await?;
    orders::record_trial(&mut tx, buyer.as_str(), pid.as_str(), plan.id.as_str(), &sub.id, now, ends).await.map_err(
        |e| match e {
            souk_store::StoreError::Conflict(_) => {
                Error::conflict("trial_used", "this organization has already tried this product")
            }
            other => other.into(),
        },
    )?;
    event(&mut tx, now, "instance.create", &sub, json!({ "trial": true, "expires_at": ends, "quantity": 1 })).await?;
    audited(
        &mut tx,
        now,
        &caller.actor(),
        Some(buyer),
        "subscription.trial_started",
        &sub.id,
        format!("{}-day trial of {}", trial.days, plan.spec.name),
        request_id,
    )
    .await?;
    tx.commit().await?;
    Ok(sub)
}
