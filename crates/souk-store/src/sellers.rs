//! Seller onboarding (agreements, applications, approval) and enforcement (seed §3).

use chrono::{DateTime, Utc};
use serde::Serialize;
use souk_core::id::{AgreementId, EnforcementId, OrgId};

use crate::{Conn, Row, StoreError, q};

#[derive(Debug, Clone, Serialize)]
pub struct Agreement {
    pub id: String,
    /// What the agreement is, e.g. `seller-agreement`; versions share a kind.
    pub kind: String,
    pub version: i64,
    pub title: String,
    pub body: String,
    pub effective_at: DateTime<Utc>,
    pub published_by: String,
    pub published_at: DateTime<Utc>,
}

fn agreement(r: &Row) -> Result<Agreement, StoreError> {
    Ok(Agreement {
        id: r.get("id")?,
        kind: r.get("kind")?,
        version: r.get("version")?,
        title: r.get("title")?,
        body: r.get("body")?,
        effective_at: r.get("effective_at")?,
        published_by: r.get("published_by")?,
        published_at: r.get("published_at")?,
    })
}

/// Publishes the next version of an agreement of `kind`.
pub async fn publish_agreement(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    kind: &str,
    title: &str,
    body: &str,
    effective_at: DateTime<Utc>,
    by: &str,
) -> Result<Agreement, StoreError> {
    let id = AgreementId::generate(now);
    let id = id.as_str();
    c.execute(
        q("INSERT INTO agreements (id, kind, version, title, body, effective_at, published_by, published_at)
           VALUES ($1, $2, (SELECT COALESCE(MAX(version), 0) + 1 FROM agreements WHERE kind = $2), $3, $4, $5, $6, $7)")
        .bind(id)
        .bind(kind)
        .bind(title)
        .bind(body)
        .bind(effective_at)
        .bind(by)
        .bind(now),
    )
    .await?;
    agreement(&c.fetch_one(q("SELECT * FROM agreements WHERE id = $1").bind(id)).await?)
}

pub async fn all_agreements(c: &mut impl Conn) -> Result<Vec<Agreement>, StoreError> {
    c.fetch_all(q("SELECT * FROM agreements ORDER BY kind, version DESC")).await?.iter().map(agreement).collect()
}

pub async fn get_agreement(c: &mut impl Conn, id: &str) -> Result<Agreement, StoreError> {
    agreement(&c.fetch_one(q("SELECT * FROM agreements WHERE id = $1").bind(id)).await?)
}

/// The agreements in force at `now`: the latest effective version of each kind.
pub async fn current_agreements(c: &mut impl Conn, now: DateTime<Utc>) -> Result<Vec<Agreement>, StoreError> {
    c.fetch_all(
        q("SELECT a.* FROM agreements a
           WHERE a.effective_at <= $1
             AND a.version = (SELECT MAX(b.version) FROM agreements b WHERE b.kind = a.kind AND b.effective_at <= $1)
           ORDER BY a.kind")
        .bind(now),
    )
    .await?
    .iter()
    .map(agreement)
    .collect()
}

/// Agreements in force that `org` has not accepted.
pub async fn missing_acceptances(c: &mut impl Conn, now: DateTime<Utc>, org: &OrgId) -> Result<Vec<Agreement>, StoreError> {
    let accepted = accepted_ids(c, org).await?;
    Ok(current_agreements(c, now).await?.into_iter().filter(|a| !accepted.contains(&a.id)).collect())
}

pub async fn accepted_ids(c: &mut impl Conn, org: &OrgId) -> Result<Vec<String>, StoreError> {
    c.fetch_all(q("SELECT agreement_id FROM agreement_acceptances WHERE org_id = $1").bind(org.as_str()))
        .await?
        .iter()
        .map(|r| r.get("agreement_id"))
        .collect()
}

/// Records acceptance; accepting twice is harmless. Returns whether it was new.
pub async fn accept(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    org: &OrgId,
    agreement_id: &str,
    by: &str,
) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("INSERT INTO agreement_acceptances (org_id, agreement_id, accepted_by, accepted_at) VALUES ($1, $2, $3, $4)
               ON CONFLICT (org_id, agreement_id) DO NOTHING")
            .bind(org.as_str())
            .bind(agreement_id)
            .bind(by)
            .bind(now),
        )
        .await?;
    Ok(n == 1)
}

#[derive(Debug, Clone, Serialize)]
pub struct Seller {
    pub org_id: String,
    pub org_name: String,
    /// `applied`, `approved`, `rejected` or `suspended`.
    pub status: String,
    pub applied_by: String,
    pub applied_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub updated_at: DateTime<Utc>,
}

fn seller(r: &Row) -> Result<Seller, StoreError> {
    Ok(Seller {
        org_id: r.get("org_id")?,
        org_name: r.get("org_name")?,
        status: r.get("status")?,
        applied_by: r.get("applied_by")?,
        applied_at: r.get("applied_at")?,
        decided_by: r.get("decided_by")?,
        decided_at: r.get("decided_at")?,
        reason: r.get("reason")?,
        updated_at: r.get("updated_at")?,
    })
}

pub async fn get(c: &mut impl Conn, org: &OrgId) -> Result<Option<Seller>, StoreError> {
    let row = c
        .fetch_optional(
            q("SELECT s.*, o.name AS org_name FROM sellers s JOIN orgs o ON o.id = s.org_id WHERE s.org_id = $1")
                .bind(org.as_str()),
        )
        .await?;
    row.as_ref().map(seller).transpose()
}

/// Files (or, after a rejection, re-files) an application to sell.
pub async fn apply(c: &mut impl Conn, now: DateTime<Utc>, org: &OrgId, by: &str) -> Result<(), StoreError> {
    let n = c
        .execute(
            q("UPDATE sellers SET status = 'applied', applied_by = $1, applied_at = $2, decided_by = NULL, decided_at = NULL,
                  reason = NULL, updated_at = $2
               WHERE org_id = $3 AND status = 'rejected'")
            .bind(by)
            .bind(now)
            .bind(org.as_str()),
        )
        .await?;
    if n == 1 {
        return Ok(());
    }
    c.execute(
        q("INSERT INTO sellers (org_id, status, applied_by, applied_at, updated_at) VALUES ($1, 'applied', $2, $3, $3)")
            .bind(org.as_str())
            .bind(by)
            .bind(now),
    )
    .await?;
    Ok(())
}

/// Moves a seller from one status to another; false if it was not in `from`.
pub async fn transition(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    org: &OrgId,
    from: &str,
    to: &str,
    by: &str,
    reason: Option<&str>,
) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE sellers SET status = $1, decided_by = $2, decided_at = $3, reason = $4, updated_at = $3
               WHERE org_id = $5 AND status = $6")
            .bind(to)
            .bind(by)
            .bind(now)
            .bind(reason)
            .bind(org.as_str())
            .bind(from),
        )
        .await?;
    Ok(n == 1)
}

/// Sellers in `status`, oldest application first.
pub async fn list(c: &mut impl Conn, status: &str) -> Result<Vec<Seller>, StoreError> {
    c.fetch_all(
        q("SELECT s.*, o.name AS org_name FROM sellers s JOIN orgs o ON o.id = s.org_id WHERE s.status = $1 ORDER BY s.applied_at, s.org_id")
            .bind(status),
    )
    .await?
    .iter()
    .map(seller)
    .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct Enforcement {
    pub id: String,
    pub org_id: String,
    pub product_id: Option<String>,
    pub action: String,
    pub reason: String,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[allow(clippy::too_many_arguments)]
pub async fn record_enforcement(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    org: &OrgId,
    product: Option<&str>,
    action: &str,
    reason: &str,
    actor: &str,
) -> Result<(), StoreError> {
    c.execute(
        q("INSERT INTO enforcement_actions (id, org_id, product_id, action, reason, actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(EnforcementId::generate(now).as_str())
            .bind(org.as_str())
            .bind(product)
            .bind(action)
            .bind(reason)
            .bind(actor)
            .bind(now),
    )
    .await?;
    Ok(())
}

pub async fn enforcement_history(c: &mut impl Conn, org: &OrgId) -> Result<Vec<Enforcement>, StoreError> {
    let rows = c.fetch_all(q("SELECT * FROM enforcement_actions WHERE org_id = $1 ORDER BY id DESC").bind(org.as_str())).await?;
    rows.iter()
        .map(|r| {
            Ok(Enforcement {
                id: r.get("id")?,
                org_id: r.get("org_id")?,
                product_id: r.get("product_id")?,
                action: r.get("action")?,
                reason: r.get("reason")?,
                actor: r.get("actor")?,
                at: r.get("at")?,
            })
        })
        .collect()
}

/// Whether the org may act as a seller now.
pub async fn is_active(c: &mut impl Conn, org: &OrgId) -> Result<bool, StoreError> {
    Ok(get(c, org).await?.is_some_and(|s| s.status == "approved"))
}
