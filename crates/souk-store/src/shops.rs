//! Shop pages (seed §10): revisions reviewed like products; the live revision is what
//! buyers see on the seller's shop.

use chrono::{DateTime, Utc};
use serde::Serialize;
use souk_core::catalog::{RevisionState, ShopContent};
use souk_core::id::{OrgId, ShopRevisionId};

use crate::{Conn, Row, StoreError, parse_stored, q, stored_enum};

#[derive(Debug, Clone, Serialize)]
pub struct ShopRevision {
    pub id: ShopRevisionId,
    pub org_id: OrgId,
    pub number: i64,
    pub state: RevisionState,
    pub content: ShopContent,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub sla_due_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub reasons: Vec<(String, String)>,
}

fn revision(r: &Row) -> Result<ShopRevision, StoreError> {
    let state: String = r.get("state")?;
    let content: String = r.get("content")?;
    let reasons: Option<String> = r.get("reasons")?;
    Ok(ShopRevision {
        id: parse_stored(ShopRevisionId::parse(&r.get::<String>("id")?))?,
        org_id: parse_stored(OrgId::parse(&r.get::<String>("org_id")?))?,
        number: r.get("number")?,
        state: stored_enum(RevisionState::parse(&state), &state)?,
        content: parse_stored(serde_json::from_str(&content))?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        submitted_at: r.get("submitted_at")?,
        sla_due_at: r.get("sla_due_at")?,
        decided_by: r.get("decided_by")?,
        decided_at: r.get("decided_at")?,
        reasons: match reasons {
            Some(s) => parse_stored(serde_json::from_str(&s))?,
            None => Vec::new(),
        },
    })
}

fn json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub async fn get_revision(c: &mut impl Conn, id: &ShopRevisionId) -> Result<ShopRevision, StoreError> {
    revision(&c.fetch_one(q("SELECT * FROM shop_revisions WHERE id = $1").bind(id.as_str())).await?)
}

/// The published revision, if any.
pub async fn live(c: &mut impl Conn, org: &OrgId) -> Result<Option<ShopRevision>, StoreError> {
    let row = c
        .fetch_optional(
            q("SELECT r.* FROM shops s JOIN shop_revisions r ON r.id = s.live_revision_id WHERE s.org_id = $1")
                .bind(org.as_str()),
        )
        .await?;
    row.as_ref().map(revision).transpose()
}

pub async fn open(c: &mut impl Conn, org: &OrgId) -> Result<Option<ShopRevision>, StoreError> {
    let row = c
        .fetch_optional(
            q("SELECT * FROM shop_revisions WHERE org_id = $1 AND state IN ('draft', 'submitted', 'in_review')")
                .bind(org.as_str()),
        )
        .await?;
    row.as_ref().map(revision).transpose()
}

pub async fn history(c: &mut impl Conn, org: &OrgId) -> Result<Vec<ShopRevision>, StoreError> {
    c.fetch_all(q("SELECT * FROM shop_revisions WHERE org_id = $1 ORDER BY number DESC").bind(org.as_str()))
        .await?
        .iter()
        .map(revision)
        .collect()
}

/// Saves the open draft, or opens one. A revision waiting for review gives `Ok(None)`.
pub async fn save_draft(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    org: &OrgId,
    content: &ShopContent,
    by: &str,
) -> Result<Option<ShopRevision>, StoreError> {
    match open(c, org).await? {
        Some(r) if r.state == RevisionState::Draft => {
            c.execute(
                q("UPDATE shop_revisions SET content = $1, updated_at = $2 WHERE id = $3 AND state = 'draft'")
                    .bind(json(content)?)
                    .bind(now)
                    .bind(r.id.as_str()),
            )
            .await?;
            Ok(Some(get_revision(c, &r.id).await?))
        }
        Some(_) => Ok(None),
        None => {
            let id = ShopRevisionId::generate(now);
            c.execute(
                q("INSERT INTO shop_revisions (id, org_id, number, state, content, created_by, created_at, updated_at)
                   VALUES ($1, $2, (SELECT COALESCE(MAX(number), 0) + 1 FROM shop_revisions WHERE org_id = $2), 'draft', $3, $4, $5, $5)")
                .bind(id.as_str())
                .bind(org.as_str())
                .bind(json(content)?)
                .bind(by)
                .bind(now),
            )
            .await?;
            Ok(Some(get_revision(c, &id).await?))
        }
    }
}

pub async fn submit(c: &mut impl Conn, now: DateTime<Utc>, id: &ShopRevisionId, due: DateTime<Utc>) -> Result<bool, StoreError> {
    Ok(c.execute(
        q("UPDATE shop_revisions SET state = 'submitted', submitted_at = $1, sla_due_at = $2, updated_at = $1
               WHERE id = $3 AND state = 'draft'")
        .bind(now)
        .bind(due)
        .bind(id.as_str()),
    )
    .await?
        == 1)
}

pub async fn withdraw(c: &mut impl Conn, now: DateTime<Utc>, id: &ShopRevisionId) -> Result<bool, StoreError> {
    Ok(c
        .execute(
            q("UPDATE shop_revisions SET state = 'withdrawn', updated_at = $1 WHERE id = $2 AND state IN ('draft', 'submitted', 'in_review')")
                .bind(now)
                .bind(id.as_str()),
        )
        .await?
        == 1)
}

/// Records a decision; approval publishes the revision. False if already decided.
pub async fn decide(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    id: &ShopRevisionId,
    org: &OrgId,
    to: RevisionState,
    by: &str,
    reasons: &[(String, String)],
) -> Result<bool, StoreError> {
    let reasons = if reasons.is_empty() { None } else { Some(json(&reasons)?) };
    let n = c
        .execute(
            q("UPDATE shop_revisions SET state = $1, decided_by = $2, decided_at = $3, reasons = $4, updated_at = $3
               WHERE id = $5 AND state IN ('submitted', 'in_review')")
            .bind(to.as_str())
            .bind(by)
            .bind(now)
            .bind(reasons)
            .bind(id.as_str()),
        )
        .await?;
    if n == 1 && to == RevisionState::Approved {
        c.execute(
            q("INSERT INTO shops (org_id, live_revision_id, updated_at) VALUES ($1, $2, $3)
               ON CONFLICT (org_id) DO UPDATE SET live_revision_id = $2, updated_at = $3")
            .bind(org.as_str())
            .bind(id.as_str())
            .bind(now),
        )
        .await?;
    }
    Ok(n == 1)
}

/// Shop submissions waiting for review, by deadline.
pub async fn queue(c: &mut impl Conn) -> Result<Vec<(ShopRevision, String)>, StoreError> {
    let rows = c
        .fetch_all(q("SELECT r.*, o.name AS org_name FROM shop_revisions r JOIN orgs o ON o.id = r.org_id
                      WHERE r.state IN ('submitted', 'in_review') ORDER BY r.sla_due_at, r.id"))
        .await?;
    rows.iter().map(|r| Ok((revision(r)?, r.get("org_name")?))).collect()
}

/// Shop submissions whose "SLA at risk" event has not been sent yet.
pub async fn unwarned_pending(c: &mut impl Conn) -> Result<Vec<ShopRevision>, StoreError> {
    c.fetch_all(q("SELECT * FROM shop_revisions WHERE state IN ('submitted', 'in_review') AND sla_warned_at IS NULL AND sla_due_at IS NOT NULL"))
        .await?
        .iter()
        .map(revision)
        .collect()
}

/// Claims the right to send the "SLA at risk" event: true for exactly one caller.
pub async fn mark_sla_warned(c: &mut impl Conn, now: DateTime<Utc>, id: &ShopRevisionId) -> Result<bool, StoreError> {
    Ok(c.execute(
        q("UPDATE shop_revisions SET sla_warned_at = $1 WHERE id = $2 AND sla_warned_at IS NULL").bind(now).bind(id.as_str()),
    )
    .await?
        == 1)
}
