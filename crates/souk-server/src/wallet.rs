//! Wallets: operators top them up, buyers pay into them through a payment provider (the
//! sandbox built in); purchases and refunds move money through `souk_store::wallets`, whose
//! debit can never take a balance below zero.

use souk_core::id::OrgId;
use souk_core::identity::StaffRole;
use souk_core::money::{Currency, Money};
use souk_store::payments::{self, TopUp};
use souk_store::{audit, orgs, outbox, wallets};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{Error, Result};

/// Largest single top-up, in minor units (a typo guard, not a business rule).
pub const MAX_TOP_UP_MINOR: i64 = 10_000_000_000;

pub async fn top_up(
    state: &AppState,
    caller: &Caller,
    org_id: &OrgId,
    currency: &str,
    amount_minor: i64,
    reason: &str,
    request_id: Option<&str>,
) -> Result<Money> {
    let operator = caller.staff(StaffRole::Operator)?;
    let currency = Currency::parse(currency).map_err(|_| Error::field("currency", "must be CNY, USD, EUR or JPY"))?;
    if !(1..=MAX_TOP_UP_MINOR).contains(&amount_minor) {
        return Err(Error::field("amount_minor", "must be a positive amount in minor units, at most 10,000,000,000"));
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(Error::field("reason", "say why, in at most 200 characters"));
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    orgs::get(&mut tx, org_id).await?;
    let amount = Money::new(amount_minor, currency);
    let balance = wallets::credit(&mut tx, now, org_id, amount, "top_up", Some(reason), operator.id.as_str()).await?;
    outbox::enqueue(
        &mut tx,
        now,
        "wallet.topped_up",
        org_id.as_str(),
        &serde_json::json!({ "org_id": org_id, "amount_minor": amount.minor, "currency": amount.currency.code(), "by": "operator" }),
    )
    .await?;
    audit::record(
        &mut tx,
        now,
        audit::NewEntry {
            actor: operator.id.as_str(),
            actor_org: None,
            action: "wallet.top_up",
            target: org_id.as_str(),
            summary: format!("{amount} added: {reason}; balance {balance}"),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(balance)
}

/// A payment provider that takes a buyer's money for a wallet top-up. Souk sends the buyer
/// to the provider's checkout; the provider reports the outcome (for real providers, a
/// signed notification verified before [`settle`] is called). Real providers plug in here.
pub trait PaymentProvider: Send + Sync + 'static {
    /// The name recorded on each top-up.
    fn name(&self) -> &'static str;
    /// Where the buyer pays for `top_up`.
    fn checkout_url(&self, top_up: &TopUp) -> String;
}

/// The built-in sandbox: its "checkout" is a page of Souk's own where the buyer chooses to
/// pay or decline, so the whole flow runs without a real provider.
pub struct Sandbox;

impl PaymentProvider for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn checkout_url(&self, top_up: &TopUp) -> String {
        format!("/sandbox/pay/{}", top_up.id)
    }
}

/// Pending top-ups not paid within a day are abandoned.
pub const TOP_UP_EXPIRES_HOURS: i64 = 24;

/// A buyer starts paying money into its wallet: a pending top-up and the checkout to pay it at.
pub async fn start_top_up(
    state: &AppState,
    caller: &Caller,
    org_id: &OrgId,
    currency: &str,
    amount_minor: i64,
    request_id: Option<&str>,
) -> Result<(TopUp, String)> {
    caller.admin_of(state, org_id).await?;
    let currency = Currency::parse(currency).map_err(|_| Error::field("currency", "must be CNY, USD, EUR or JPY"))?;
    if !(1..=MAX_TOP_UP_MINOR).contains(&amount_minor) {
        return Err(Error::field("amount_minor", "must be a positive amount in minor units, at most 10,000,000,000"));
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let t = payments::create(&mut tx, now, org_id, Money::new(amount_minor, currency), state.payments.name(), &caller.actor())
        .await?;
    audit::record(
        &mut tx,
        now,
        audit::NewEntry {
            actor: &caller.actor(),
            actor_org: Some(org_id),
            action: "wallet.top_up_started",
            target: &t.id,
            summary: format!("top-up of {} started with {}", Money::new(amount_minor, currency), t.provider),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    let url = state.payments.checkout_url(&t);
    Ok((t, url))
}

/// Records the provider's verdict on a top-up and, when paid, credits the wallet, in one
/// transaction. Safe to call again with the same verdict: only the first call changes anything.
pub async fn settle(state: &AppState, top_up_id: &str, paid: bool, provider_ref: &str) -> Result<TopUp> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let t = payments::get(&mut tx, top_up_id).await?;
    if payments::complete(&mut tx, now, top_up_id, if paid { "succeeded" } else { "failed" }, provider_ref).await? && paid {
        let org: OrgId = t.org_id.parse().map_err(|_| Error::not_found())?;
        let amount = Money::new(t.amount_minor, Currency::parse(&t.currency).map_err(|e| Error::Internal(e.into()))?);
        let actor = format!("provider:{}", t.provider);
        let balance = wallets::credit(&mut tx, now, &org, amount, "top_up", Some(&t.id), &actor).await?;
        outbox::enqueue(
            &mut tx,
            now,
            "wallet.topped_up",
            &t.org_id,
            &serde_json::json!({ "org_id": t.org_id, "top_up_id": t.id, "amount_minor": amount.minor, "currency": amount.currency.code() }),
        )
        .await?;
        audit::record(
            &mut tx,
            now,
            audit::NewEntry {
                actor: &actor,
                actor_org: Some(&org),
                action: "wallet.top_up",
                target: org.as_str(),
                summary: format!("{amount} paid in ({}); balance {balance}", t.id),
                request_id: None,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(payments::get(&mut state.db.clone(), top_up_id).await?)
}

/// The sandbox checkout's answer, given by a member with the right to pay for the org.
pub async fn sandbox_checkout(state: &AppState, caller: &Caller, org_id: &OrgId, top_up_id: &str, pay: bool) -> Result<TopUp> {
    caller.admin_of(state, org_id).await?;
    let t = payments::get(&mut state.db.clone(), top_up_id).await?;
    if t.org_id != org_id.as_str() {
        return Err(Error::not_found());
    }
    if t.provider != "sandbox" {
        return Err(Error::conflict("not_sandbox", "this top-up is paid through a real provider"));
    }
    if t.state != "pending" {
        return Err(Error::conflict("top_up_settled", format!("this top-up is already {}", t.state)));
    }
    settle(state, top_up_id, pay, &format!("sbx_{}", t.id.trim_start_matches("top_"))).await
}
