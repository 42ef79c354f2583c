//! Servers deployed for machine-image purchases, and the deployment's own keys.

use chrono::{DateTime, Utc};
use serde::Serialize;
use souk_core::compute::{DeploySpec, ServerState};
use souk_core::id::OrgId;

use crate::{Conn, Row, StoreError, parse_stored, q, stored_enum};

#[derive(Debug, Clone, Serialize)]
pub struct Server {
    pub id: String,
    pub subscription_id: String,
    pub order_id: String,
    pub buyer_org_id: String,
    pub name: String,
    pub spec: serde_json::Value,
    pub state: ServerState,
    pub provider_ref: Option<String>,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub failure: Option<String>,
    #[serde(skip)]
    pub sealed_password: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn server(r: &Row) -> Result<Server, StoreError> {
    let state: String = r.get("state")?;
    let spec: String = r.get("spec")?;
    Ok(Server {
        id: r.get("id")?,
        subscription_id: r.get("subscription_id")?,
        order_id: r.get("order_id")?,
        buyer_org_id: r.get("buyer_org_id")?,
        name: r.get("name")?,
        spec: parse_stored(serde_json::from_str(&spec))?,
        state: stored_enum(ServerState::parse(&state), &state)?,
        provider_ref: r.get("provider_ref")?,
        private_ip: r.get("private_ip")?,
        public_ip: r.get("public_ip")?,
        failure: r.get("failure")?,
        sealed_password: r.get("sealed_password")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

/// Records a server to deploy, with its password sealed.
#[allow(clippy::too_many_arguments)]
pub async fn create(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    subscription_id: &str,
    order_id: &str,
    buyer: &OrgId,
    name: &str,
    spec: &DeploySpec,
    sealed_password: &[u8],
) -> Result<Server, StoreError> {
    let id = format!("srv_{}", souk_core::id::new_body(now));
    let spec = serde_json::to_string(spec).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    c.execute(
        q("INSERT INTO servers (id, subscription_id, order_id, buyer_org_id, name, spec, state, sealed_password, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, 'requested', $7, $8, $8)")
        .bind(&id)
        .bind(subscription_id)
        .bind(order_id)
        .bind(buyer.as_str())
        .bind(name)
        .bind(spec)
        .bind(sealed_password)
        .bind(now),
    )
    .await?;
    server(&c.fetch_one(q("SELECT * FROM servers WHERE id = $1").bind(&id)).await?)
}

pub async fn of_subscription(c: &mut impl Conn, subscription_id: &str) -> Result<Vec<Server>, StoreError> {
    c.fetch_all(q("SELECT * FROM servers WHERE subscription_id = $1 ORDER BY id").bind(subscription_id))
        .await?
        .iter()
        .map(server)
        .collect()
}

/// A page of a buyer organization's servers, newest first: those older than `before`, if given.
pub async fn list_for_buyer(
    c: &mut impl Conn,
    buyer: &OrgId,
    before: Option<&str>,
    limit: u32,
) -> Result<Vec<Server>, StoreError> {
    c.fetch_all(
        q("SELECT * FROM servers WHERE buyer_org_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3")
            .bind(buyer.as_str())
            .bind(before)
            .bind(i64::from(limit.clamp(1, 500))),
    )
    .await?
    .iter()
    .map(server)
    .collect()
}

/// The provider accepted the server: its reference is kept and the sealed password erased.
/// Conditional on the state, so a second worker's late answer changes nothing.
pub async fn accepted(c: &mut impl Conn, now: DateTime<Utc>, id: &str, provider_ref: &str) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE servers SET state = 'creating', provider_ref = $1, sealed_password = NULL, updated_at = $2
               WHERE id = $3 AND state = 'requested'")
            .bind(provider_ref)
            .bind(now)
            .bind(id),
        )
        .await?;
    Ok(n == 1)
}

pub async fn running(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    id: &str,
    private_ip: &str,
    public_ip: Option<&str>,
) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE servers SET state = 'running', private_ip = $1, public_ip = $2, updated_at = $3 WHERE id = $4 AND state = 'creating'")
                .bind(private_ip)
                .bind(public_ip)
                .bind(now)
                .bind(id),
        )
        .await?;
    Ok(n == 1)
}

/// Marks a server failed (from requested or creating); the password is erased too.
pub async fn failed(c: &mut impl Conn, now: DateTime<Utc>, id: &str, why: &str) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE servers SET state = 'failed', failure = $1, sealed_password = NULL, updated_at = $2
               WHERE id = $3 AND state IN ('requested', 'creating')")
            .bind(why)
            .bind(now)
            .bind(id),
        )
        .await?;
    Ok(n == 1)
}

pub async fn released(c: &mut impl Conn, now: DateTime<Utc>, id: &str) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE servers SET state = 'released', sealed_password = NULL, updated_at = $1 WHERE id = $2 AND state <> 'released'")
                .bind(now)
                .bind(id),
        )
        .await?;
    Ok(n == 1)
}

/// The named key, generated by `generate` and stored on first use. Every node reads the
/// same key: the first insert wins and the others read it back.
pub async fn key(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    name: &str,
    generate: impl FnOnce() -> Vec<u8>,
) -> Result<Vec<u8>, StoreError> {
    c.execute(
        q("INSERT INTO server_keys (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(generate())
            .bind(now),
    )
    .await?;
    c.fetch_one(q("SELECT value FROM server_keys WHERE name = $1").bind(name)).await?.get("value")
}
