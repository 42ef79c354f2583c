//! The audit log: who changed what, when. Written in the same transaction as the change.

use chrono::{DateTime, Utc};
use serde::Serialize;
use souk_core::id::{AuditId, OrgId};

use crate::{Conn, StoreError, q};

/// One line of the log. `actor` is an account id, an API key id or `system`.
pub struct NewEntry<'a> {
    pub actor: &'a str,
    pub actor_org: Option<&'a OrgId>,
    pub action: &'a str,
    pub target: &'a str,
    pub summary: String,
    pub request_id: Option<&'a str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub actor_org_id: Option<String>,
    pub action: String,
    pub target: String,
    pub summary: String,
    pub request_id: Option<String>,
}

pub async fn record(c: &mut impl Conn, now: DateTime<Utc>, e: NewEntry<'_>) -> Result<(), StoreError> {
    c.execute(
        q("INSERT INTO audit_log (id, at, actor, actor_org_id, action, target, summary, request_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(AuditId::generate(now).as_str())
        .bind(now)
        .bind(e.actor)
        .bind(e.actor_org.map(|o| o.as_str()))
        .bind(e.action)
        .bind(e.target)
        .bind(e.summary)
        .bind(e.request_id),
    )
    .await?;
    Ok(())
}

/// Newest first; `before` is the id of the last entry of the previous page.
pub async fn list(c: &mut impl Conn, target: Option<&str>, before: Option<&str>, limit: u32) -> Result<Vec<Entry>, StoreError> {
    let rows = c
        .fetch_all(
            q("SELECT * FROM audit_log
               WHERE ($1 IS NULL OR target = $1) AND ($2 IS NULL OR id < $2)
               ORDER BY id DESC LIMIT $3")
            .bind(target)
            .bind(before)
            .bind(i64::from(limit)),
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Entry {
                id: r.get("id")?,
                at: r.get("at")?,
                actor: r.get("actor")?,
                actor_org_id: r.get("actor_org_id")?,
                action: r.get("action")?,
                target: r.get("target")?,
                summary: r.get("summary")?,
                request_id: r.get("request_id")?,
            })
        })
        .collect()
}
