//! Wallet top-ups paid through a payment provider.

use chrono::{DateTime, Utc};
use serde::Serialize;
use souk_core::id::OrgId;
use souk_core::money::Money;

use crate::{Conn, Row, StoreError, q};

#[derive(Debug, Clone, Serialize)]
pub struct TopUp {
    pub id: String,
    pub org_id: String,
    pub currency: String,
    pub amount_minor: i64,
    pub provider: String,
    pub provider_ref: Option<String>,
    /// `pending`, `succeeded`, `failed` or `expired`.
    pub state: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

fn top_up(r: &Row) -> Result<TopUp, StoreError> {
    Ok(TopUp {
        id: r.get("id")?,
        org_id: r.get("org_id")?,
        currency: r.get("currency")?,
        amount_minor: r.get("amount_minor")?,
        provider: r.get("provider")?,
        provider_ref: r.get("provider_ref")?,
        state: r.get("state")?,
        created_by: r.get("created_by")?,
        created_at: r.get("created_at")?,
        completed_at: r.get("completed_at")?,
    })
}

pub async fn create(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    org: &OrgId,
    amount: Money,
    provider: &str,
    created_by: &str,
) -> Result<TopUp, StoreError> {
    let id = format!("top_{}", souk_core::id::new_body(now));
    c.execute(
        q("INSERT INTO top_ups (id, org_id, currency, amount_minor, provider, state, created_by, created_at)
           VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7)")
        .bind(&id)
        .bind(org.as_str())
        .bind(amount.currency.code())
        .bind(amount.minor)
        .bind(provider)
        .bind(created_by)
        .bind(now),
    )
    .await?;
    get(c, &id).await
}

pub async fn get(c: &mut impl Conn, id: &str) -> Result<TopUp, StoreError> {
    top_up(&c.fetch_one(q("SELECT * FROM top_ups WHERE id = $1").bind(id)).await?)
}

/// A page of the organization's top-ups, newest first: those older than `before`, if given.
pub async fn list(c: &mut impl Conn, org: &OrgId, before: Option<&str>, limit: u32) -> Result<Vec<TopUp>, StoreError> {
    c.fetch_all(
        q("SELECT * FROM top_ups WHERE org_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3")
            .bind(org.as_str())
            .bind(before)
            .bind(i64::from(limit.clamp(1, 500))),
    )
    .await?
    .iter()
    .map(top_up)
    .collect()
}

/// Moves a pending top-up to `state`. Returns whether this call did it: only that caller
/// credits the wallet, so a notification delivered twice credits once.
pub async fn complete(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    id: &str,
    state: &str,
    provider_ref: &str,
) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE top_ups SET state = $1, provider_ref = $2, completed_at = $3 WHERE id = $4 AND state = 'pending'")
                .bind(state)
                .bind(provider_ref)
                .bind(now)
                .bind(id),
        )
        .await?;
    Ok(n == 1)
}

/// Pending top-ups started before `cutoff` are abandoned.
pub async fn expire_before(c: &mut impl Conn, now: DateTime<Utc>, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
    c.execute(
        q("UPDATE top_ups SET state = 'expired', completed_at = $1 WHERE state = 'pending' AND created_at < $2")
            .bind(now)
            .bind(cutoff),
    )
    .await
}
