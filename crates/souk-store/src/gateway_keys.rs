//! Access key pairs (AK/SK) for the Huawei API-gateway signature KooGallery sellers' systems
//! use on the open APIs. Unlike an API key, the secret key must be read back to check an
//! HMAC, so it is stored sealed by the server (never in clear, never hashed).

use chrono::{DateTime, Utc};
use serde::Serialize;
use souk_core::id::OrgId;

use crate::{Conn, Row, StoreError, parse_stored, q};

#[derive(Debug, Clone, Serialize)]
pub struct GatewayKey {
    pub access_key: String,
    pub org_id: OrgId,
    /// What the pair is for, as its creator named it.
    pub name: String,
    #[serde(skip)]
    pub secret_sealed: Vec<u8>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

fn from_row(r: &Row) -> Result<GatewayKey, StoreError> {
    Ok(GatewayKey {
        access_key: r.get("access_key")?,
        org_id: parse_stored(OrgId::parse(&r.get::<String>("org_id")?))?,
        name: r.get("name")?,
        secret_sealed: r.get("secret_sealed")?,
        created_by: r.get("created_by")?,
        created_at: r.get("created_at")?,
        revoked_at: r.get("revoked_at")?,
    })
}

pub async fn create(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    org: &OrgId,
    name: &str,
    access_key: &str,
    secret_sealed: &[u8],
    created_by: &str,
) -> Result<GatewayKey, StoreError> {
    c.execute(
        q("INSERT INTO gateway_keys (access_key, org_id, name, secret_sealed, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(access_key)
            .bind(org.as_str())
            .bind(name)
            .bind(secret_sealed)
            .bind(created_by)
            .bind(now),
    )
    .await?;
    from_row(&c.fetch_one(q("SELECT * FROM gateway_keys WHERE access_key = $1").bind(access_key)).await?)
}

/// The live key pair an access key names.
pub async fn find_active(c: &mut impl Conn, access_key: &str) -> Result<Option<GatewayKey>, StoreError> {
    let row =
        c.fetch_optional(q("SELECT * FROM gateway_keys WHERE access_key = $1 AND revoked_at IS NULL").bind(access_key)).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(c: &mut impl Conn, org: &OrgId) -> Result<Vec<GatewayKey>, StoreError> {
    let rows = c.fetch_all(q("SELECT * FROM gateway_keys WHERE org_id = $1 ORDER BY created_at DESC").bind(org.as_str())).await?;
    rows.iter().map(from_row).collect()
}

/// Revokes a key pair of `org`; false if `org` has no such live pair.
pub async fn revoke(c: &mut impl Conn, now: DateTime<Utc>, org: &OrgId, access_key: &str) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE gateway_keys SET revoked_at = $1 WHERE access_key = $2 AND org_id = $3 AND revoked_at IS NULL")
                .bind(now)
                .bind(access_key)
                .bind(org.as_str()),
        )
        .await?;
    Ok(n == 1)
}
