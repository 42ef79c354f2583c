//! The members of a buyer enterprise authorized to use an application it bought.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Conn, Row, StoreError, q};

#[derive(Debug, Clone, Serialize)]
pub struct AppUser {
    pub subscription_id: String,
    pub account_id: String,
    pub email: String,
    pub name: String,
    /// `admin` or `user`.
    pub role: String,
    /// The `authorization.sync` event that told the seller of the last change.
    pub sync_event_id: Option<String>,
    /// That event's delivery: `pending`, `done` or `dead`.
    pub sync_status: Option<String>,
    pub updated_at: DateTime<Utc>,
}

fn app_user(r: &Row) -> Result<AppUser, StoreError> {
    Ok(AppUser {
        subscription_id: r.get("subscription_id")?,
        account_id: r.get("account_id")?,
        email: r.get("email")?,
        name: r.get("name")?,
        role: r.get("role")?,
        sync_event_id: r.get("sync_event_id")?,
        sync_status: r.get("sync_status")?,
        updated_at: r.get("updated_at")?,
    })
}

/// Grants or changes access; returns whether the member was already authorized.
pub async fn upsert(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    subscription_id: &str,
    account_id: &str,
    role: &str,
) -> Result<bool, StoreError> {
    let existed = c
        .fetch_optional(
            q("SELECT role FROM app_users WHERE subscription_id = $1 AND account_id = $2").bind(subscription_id).bind(account_id),
        )
        .await?
        .is_some();
    c.execute(
        q("INSERT INTO app_users (subscription_id, account_id, role, updated_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (subscription_id, account_id) DO UPDATE SET role = $3, updated_at = $4")
        .bind(subscription_id)
        .bind(account_id)
        .bind(role)
        .bind(now),
    )
    .await?;
    Ok(existed)
}

/// Revokes access; returns whether the member had it.
pub async fn remove(c: &mut impl Conn, subscription_id: &str, account_id: &str) -> Result<bool, StoreError> {
    Ok(c.execute(
        q("DELETE FROM app_users WHERE subscription_id = $1 AND account_id = $2").bind(subscription_id).bind(account_id),
    )
    .await?
        == 1)
}

pub async fn set_sync_event(
    c: &mut impl Conn,
    subscription_id: &str,
    account_id: &str,
    event_id: &str,
) -> Result<(), StoreError> {
    c.execute(
        q("UPDATE app_users SET sync_event_id = $1 WHERE subscription_id = $2 AND account_id = $3")
            .bind(event_id)
            .bind(subscription_id)
            .bind(account_id),
    )
    .await?;
    Ok(())
}

pub async fn list(c: &mut impl Conn, subscription_id: &str) -> Result<Vec<AppUser>, StoreError> {
    c.fetch_all(
        q("SELECT u.subscription_id, u.account_id, a.email, a.name, u.role, u.sync_event_id, e.status AS sync_status, u.updated_at
           FROM app_users u JOIN accounts a ON a.id = u.account_id LEFT JOIN outbox_events e ON e.id = u.sync_event_id
           WHERE u.subscription_id = $1 ORDER BY a.email")
        .bind(subscription_id),
    )
    .await?
    .iter()
    .map(app_user)
    .collect()
}
