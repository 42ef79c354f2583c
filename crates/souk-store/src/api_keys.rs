//! API keys for scripts. A key belongs to one organization and acts in it with its role;
//! only its hash and a short display prefix are stored.

use chrono::{DateTime, Utc};
use serde::Serialize;
use souk_core::id::{AccountId, ApiKeyId, OrgId};
use souk_core::identity::OrgRole;

use crate::{Conn, Row, StoreError, parse_stored, q, stored_enum};

#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub org_id: OrgId,
    pub name: String,
    pub role: OrgRole,
    pub token_prefix: String,
    pub created_by: AccountId,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub struct NewKey<'a> {
    pub org: &'a OrgId,
    pub name: &'a str,
    pub role: OrgRole,
    pub token_hash: &'a str,
    pub token_prefix: &'a str,
    pub created_by: &'a AccountId,
}

fn from_row(r: &Row) -> Result<ApiKey, StoreError> {
    let role: String = r.get("role")?;
    Ok(ApiKey {
        id: parse_stored(ApiKeyId::parse(&r.get::<String>("id")?))?,
        org_id: parse_stored(OrgId::parse(&r.get::<String>("org_id")?))?,
        name: r.get("name")?,
        role: stored_enum(OrgRole::parse(&role), &role)?,
        token_prefix: r.get("token_prefix")?,
        created_by: parse_stored(AccountId::parse(&r.get::<String>("created_by")?))?,
        created_at: r.get("created_at")?,
        last_used_at: r.get("last_used_at")?,
        revoked_at: r.get("revoked_at")?,
    })
}

pub async fn create(c: &mut impl Conn, now: DateTime<Utc>, new: NewKey<'_>) -> Result<ApiKey, StoreError> {
    let id = ApiKeyId::generate(now);
    c.execute(
        q("INSERT INTO api_keys (id, org_id, name, role, token_hash, token_prefix, created_by, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(id.as_str())
        .bind(new.org.as_str())
        .bind(new.name)
        .bind(new.role.as_str())
        .bind(new.token_hash)
        .bind(new.token_prefix)
        .bind(new.created_by.as_str())
        .bind(now),
    )
    .await?;
    from_row(&c.fetch_one(q("SELECT * FROM api_keys WHERE id = $1").bind(id.as_str())).await?)
}

/// The key a token names, unless it was revoked.
pub async fn find_active(c: &mut impl Conn, token_hash: &str) -> Result<Option<ApiKey>, StoreError> {
    let row = c.fetch_optional(q("SELECT * FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL").bind(token_hash)).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(c: &mut impl Conn, org: &OrgId) -> Result<Vec<ApiKey>, StoreError> {
    let rows = c.fetch_all(q("SELECT * FROM api_keys WHERE org_id = $1 ORDER BY id DESC").bind(org.as_str())).await?;
    rows.iter().map(from_row).collect()
}

/// Revokes a key of `org`. Returns false if there is no such live key in that org.
pub async fn revoke(c: &mut impl Conn, now: DateTime<Utc>, org: &OrgId, id: &ApiKeyId) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND org_id = $3 AND revoked_at IS NULL")
                .bind(now)
                .bind(id.as_str())
                .bind(org.as_str()),
        )
        .await?;
    Ok(n == 1)
}

pub async fn touch(c: &mut impl Conn, now: DateTime<Utc>, id: &ApiKeyId) -> Result<(), StoreError> {
    c.execute(q("UPDATE api_keys SET last_used_at = $1 WHERE id = $2").bind(now).bind(id.as_str())).await?;
    Ok(())
}
