//! Uploaded files (verification documents now; logos and screenshots later), stored in the
//! database so that every node sees them and a backup holds everything.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use souk_core::id::{OrgId, UploadId};

use crate::{Conn, Row, StoreError, parse_stored, q};

#[derive(Debug, Clone, Serialize)]
pub struct Upload {
    pub id: UploadId,
    pub org_id: OrgId,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

fn from_row(r: &Row) -> Result<Upload, StoreError> {
    Ok(Upload {
        id: parse_stored(UploadId::parse(&r.get::<String>("id")?))?,
        org_id: parse_stored(OrgId::parse(&r.get::<String>("org_id")?))?,
        filename: r.get("filename")?,
        content_type: r.get("content_type")?,
        size: r.get("size")?,
        sha256: r.get("sha256")?,
        created_at: r.get("created_at")?,
    })
}

pub async fn create(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    org: &OrgId,
    uploaded_by: &str,
    filename: &str,
    content_type: &str,
    content: &[u8],
) -> Result<Upload, StoreError> {
    let id = UploadId::generate(now);
    let sha = hex::encode(Sha256::digest(content));
    c.execute(
        q("INSERT INTO uploads (id, org_id, uploaded_by, filename, content_type, size, sha256, content, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(id.as_str())
        .bind(org.as_str())
        .bind(uploaded_by)
        .bind(filename)
        .bind(content_type)
        .bind(i64::try_from(content.len()).unwrap_or(i64::MAX))
        .bind(sha)
        .bind(content)
        .bind(now),
    )
    .await?;
    get(c, org, &id).await
}

/// An upload of `org`; another organization's upload is simply not found.
pub async fn get(c: &mut impl Conn, org: &OrgId, id: &UploadId) -> Result<Upload, StoreError> {
    from_row(
        &c.fetch_one(
            q("SELECT id, org_id, filename, content_type, size, sha256, created_at FROM uploads WHERE id = $1 AND org_id = $2")
                .bind(id.as_str())
                .bind(org.as_str()),
        )
        .await?,
    )
}

/// The upload and its bytes, without an org check: callers have already authorized the
/// read (an operator reviewing a verification, a member of the owning org).
pub async fn content(c: &mut impl Conn, id: &UploadId) -> Result<(Upload, Vec<u8>), StoreError> {
    let r = c.fetch_one(q("SELECT * FROM uploads WHERE id = $1").bind(id.as_str())).await?;
    Ok((from_row(&r)?, r.get("content")?))
}

/// Ids of the organization's uploaded images (PNG and JPEG), for logos and screenshots.
pub async fn image_ids(c: &mut impl Conn, org: &OrgId) -> Result<Vec<String>, StoreError> {
    c.fetch_all(
        q("SELECT id FROM uploads WHERE org_id = $1 AND content_type IN ('image/png', 'image/jpeg') ORDER BY id")
            .bind(org.as_str()),
    )
    .await?
    .iter()
    .map(|r| r.get("id"))
    .collect()
}
