//! Wallets: operators top them up; purchases and refunds (the commerce work) move money
//! through `souk_store::wallets`, whose debit can never take a balance below zero.

use souk_core::id::OrgId;
use souk_core::identity::StaffRole;
use souk_core::money::{Currency, Money};
use souk_store::{audit, orgs, wallets};

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
