//! Access key pairs (AK/SK) for the Huawei API-gateway signature, so a KooGallery seller's
//! system calls Souk's KooGallery open APIs with the signing it already does
//! (`souk_isv::apig`). A pair belongs to one organization and acts only on its own orders and
//! codes, as an API key does; the secret key is shown once and kept sealed.

use axum::http::HeaderMap;
use souk_core::id::OrgId;
use souk_isv::apig::{self, Authorization};
use souk_store::gateway_keys::{self, GatewayKey};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{Error, Result};

fn access_key() -> String {
    use rand::Rng;
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::thread_rng();
    (0..20).map(|_| char::from(UPPER[rng.gen_range(0..UPPER.len())])).collect()
}

/// Creates a key pair; the secret key is returned this once.
pub async fn create(state: &AppState, caller: &Caller, org: &OrgId, name: &str) -> Result<(GatewayKey, String)> {
    caller.admin_of(state, org).await?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::field("name", "1 to 100 characters"));
    }
    let now = state.clock.now();
    let secret = crate::auth::random_token(30);
    let sealed = crate::compute::sealer(state).await?.seal(secret.as_bytes())?;
    let mut tx = state.db.begin().await?;
    let key = gateway_keys::create(&mut tx, now, org, name, &access_key(), &sealed, &caller.actor()).await?;
    let summary = format!("access key pair \"{name}\" for the KooGallery open APIs");
    crate::fulfillment::audit(&mut tx, now, caller, org, "gateway_key.created", &key.access_key, summary).await?;
    tx.commit().await?;
    Ok((key, secret))
}

pub async fn list(state: &AppState, caller: &Caller, org: &OrgId) -> Result<Vec<GatewayKey>> {
    caller.admin_of(state, org).await?;
    Ok(gateway_keys::list(&mut state.db.clone(), org).await?)
}

pub async fn revoke(state: &AppState, caller: &Caller, org: &OrgId, access_key: &str) -> Result<()> {
    caller.admin_of(state, org).await?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    if !gateway_keys::revoke(&mut tx, now, org, access_key).await? {
        return Err(Error::not_found());
    }
    crate::fulfillment::audit(&mut tx, now, caller, org, "gateway_key.revoked", access_key, "access key pair revoked".into())
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Why a gateway-signed request was refused.
#[derive(Debug)]
pub enum Refused {
    /// The signature, its date or its key is wrong: the caller's fault.
    Credentials(String),
    Internal(Error),
}

/// The organization a request signed as `SDK-HMAC-SHA256` acts for, or `None` when it is not
/// signed that way (another scheme may authenticate it).
pub async fn authenticate(
    state: &AppState,
    method: &str,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> std::result::Result<Option<OrgId>, Refused> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    if !value.trim_start().starts_with(apig::ALGORITHM) {
        return Ok(None);
    }
    let auth = Authorization::parse(value).map_err(|e| Refused::Credentials(e.to_string()))?;
    let key = gateway_keys::find_active(&mut state.db.clone(), &auth.access)
        .await
        .map_err(|e| Refused::Internal(e.into()))?
        .ok_or_else(|| Refused::Credentials("unknown or revoked access key".into()))?;
    let secret = crate::compute::sealer(state).await.and_then(|s| s.open(&key.secret_sealed)).map_err(Refused::Internal)?;
    let pairs: Vec<(String, String)> =
        headers.iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned()))).collect();
    let request = apig::Request { method, path: uri.path(), query: uri.query().unwrap_or(""), headers: &pairs, body };
    // The signature's date is the caller's wall clock, checked against ours, not the
    // marketplace's (possibly travelled) business clock.
    apig::verify(&auth, &String::from_utf8_lossy(&secret), &request, chrono::Utc::now())
        .map_err(|e| Refused::Credentials(e.to_string()))?;
    Ok(Some(key.org_id))
}
