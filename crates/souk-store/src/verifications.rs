//! Real-name verification submissions and the operators' decisions.

use chrono::{DateTime, Utc};
use serde::Serialize;
use souk_core::id::{OrgId, UploadId, VerificationId};
use souk_core::verification::{Details, VerificationKind, VerificationStatus};

use crate::{Conn, Row, StoreError, parse_stored, q, stored_enum};

#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub id: VerificationId,
    pub org_id: OrgId,
    pub kind: VerificationKind,
    pub status: VerificationStatus,
    pub display_name: String,
    pub details: Details,
    pub submitted_by: String,
    pub submitted_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub document_ids: Vec<UploadId>,
}

fn from_row(r: &Row, document_ids: Vec<UploadId>) -> Result<Verification, StoreError> {
    let kind: String = r.get("kind")?;
    let status: String = r.get("status")?;
    let details: String = r.get("details")?;
    Ok(Verification {
        id: parse_stored(VerificationId::parse(&r.get::<String>("id")?))?,
        org_id: parse_stored(OrgId::parse(&r.get::<String>("org_id")?))?,
        kind: stored_enum(VerificationKind::parse(&kind), &kind)?,
        status: stored_enum(VerificationStatus::parse(&status), &status)?,
        display_name: r.get("display_name")?,
        details: parse_stored(serde_json::from_str(&details))?,
        submitted_by: r.get("submitted_by")?,
        submitted_at: r.get("submitted_at")?,
        decided_by: r.get("decided_by")?,
        decided_at: r.get("decided_at")?,
        reason: r.get("reason")?,
        document_ids,
    })
}

async fn documents(c: &mut impl Conn, id: &str) -> Result<Vec<UploadId>, StoreError> {
    let rows = c
        .fetch_all(q("SELECT upload_id FROM verification_documents WHERE verification_id = $1 ORDER BY upload_id").bind(id))
        .await?;
    rows.iter().map(|r| parse_stored(UploadId::parse(&r.get::<String>("upload_id")?))).collect()
}

async fn hydrate(c: &mut impl Conn, rows: Vec<Row>) -> Result<Vec<Verification>, StoreError> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: String = r.get("id")?;
        let docs = documents(c, &id).await?;
        out.push(from_row(&r, docs)?);
    }
    Ok(out)
}

/// Stores a new pending submission. A second pending one for the same org gives
/// [`StoreError::Conflict`] (a unique index enforces it even under concurrent requests).
pub async fn create(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    org: &OrgId,
    details: &Details,
    submitted_by: &str,
    document_ids: &[UploadId],
) -> Result<Verification, StoreError> {
    let id = VerificationId::generate(now);
    let json = serde_json::to_string(details).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    c.execute(
        q("INSERT INTO verifications (id, org_id, kind, status, display_name, details, submitted_by, submitted_at)
           VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7)")
        .bind(id.as_str())
        .bind(org.as_str())
        .bind(details.kind().as_str())
        .bind(details.display_name())
        .bind(json)
        .bind(submitted_by)
        .bind(now),
    )
    .await?;
    for doc in document_ids {
        c.execute(
            q("INSERT INTO verification_documents (verification_id, upload_id) VALUES ($1, $2)")
                .bind(id.as_str())
                .bind(doc.as_str()),
        )
        .await?;
    }
    get(c, &id).await
}

pub async fn get(c: &mut impl Conn, id: &VerificationId) -> Result<Verification, StoreError> {
    let rows = c.fetch_all(q("SELECT * FROM verifications WHERE id = $1").bind(id.as_str())).await?;
    hydrate(c, rows).await?.pop().ok_or(StoreError::NotFound)
}

/// The organization's submissions, newest first.
pub async fn list_for_org(c: &mut impl Conn, org: &OrgId) -> Result<Vec<Verification>, StoreError> {
    let rows = c.fetch_all(q("SELECT * FROM verifications WHERE org_id = $1 ORDER BY id DESC").bind(org.as_str())).await?;
    hydrate(c, rows).await
}

/// The operators' queue: submissions in `status`, oldest first (first come, first served),
/// after the id `after` when paging.
pub async fn queue(
    c: &mut impl Conn,
    status: VerificationStatus,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<Verification>, StoreError> {
    let rows = c
        .fetch_all(
            q("SELECT * FROM verifications WHERE status = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3")
                .bind(status.as_str())
                .bind(after)
                .bind(i64::from(limit)),
        )
        .await?;
    hydrate(c, rows).await
}

/// Records a decision on a pending submission. Returns false if it was no longer pending
/// (another operator decided first), so two decisions can never both apply.
pub async fn decide(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    id: &VerificationId,
    status: VerificationStatus,
    decided_by: &str,
    reason: Option<&str>,
) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE verifications SET status = $1, decided_by = $2, decided_at = $3, reason = $4
               WHERE id = $5 AND status = 'pending'")
            .bind(status.as_str())
            .bind(decided_by)
            .bind(now)
            .bind(reason)
            .bind(id.as_str()),
        )
        .await?;
    Ok(n == 1)
}
