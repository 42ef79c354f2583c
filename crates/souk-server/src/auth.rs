//! Who is calling: browser sessions (cookie) and API keys (bearer token), and what they may
//! do in an organization.
//!
//! Secrets (session tokens, API keys) are random, shown once, and stored only as SHA-256
//! hashes. Passwords are hashed with argon2id on the blocking pool, so a burst of sign-ins
//! does not stall the async workers.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use souk_core::id::{OrgId, SessionId};
use souk_core::identity::{OrgRole, StaffRole};
use souk_store::accounts::{self, Account};
use souk_store::api_keys::{self, ApiKey};
use souk_store::orgs::{self, Org};

use crate::AppState;
use crate::error::{Error, Result};

pub const SESSION_COOKIE: &str = "souk_session";
pub const API_KEY_PREFIX: &str = "souk_sk_";

/// A fresh random secret, URL-safe.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
    })
    .await
    .map_err(|e| anyhow::anyhow!(e))?
    .map_err(Error::Internal)
}

pub async fn verify_password(password: String, hash: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
        Ok::<bool, anyhow::Error>(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .map_err(|e| anyhow::anyhow!(e))?
    .map_err(Error::Internal)
}

/// Reads one cookie from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Builds a `Set-Cookie` value: HttpOnly always, `Secure` when served over HTTPS.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool, same_site: &str) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age_secs}{secure}")
}

#[derive(Debug, Clone)]
pub enum Principal {
    /// A person signed in through the browser.
    Account { account: Account, session: SessionId },
    /// A script holding an organization's API key.
    ApiKey { key: ApiKey },
}

/// The authenticated caller. Extracting it from a request without credentials gives 401.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// The caller, if any: for pages that greet visitors and members alike.
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<Caller>);

impl Caller {
    /// The id written to the audit log as the actor.
    pub fn actor(&self) -> String {
        match &self.0 {
            Principal::Account { account, .. } => account.id.to_string(),
            Principal::ApiKey { key } => key.id.to_string(),
        }
    }

    /// The signed-in person; API keys act for an organization, not a person.
    pub fn account(&self) -> Result<&Account> {
        match &self.0 {
            Principal::Account { account, .. } => Ok(account),
            Principal::ApiKey { .. } => Err(Error::forbidden("this needs a signed-in person, not an API key")),
        }
    }

    pub fn session(&self) -> Option<&SessionId> {
        match &self.0 {
            Principal::Account { session, .. } => Some(session),
            Principal::ApiKey { .. } => None,
        }
    }

    /// The caller's role in `org`. Not being a member is answered as "not found", so that
    /// the existence of other organizations' resources is never revealed.
    pub async fn role_in(&self, state: &AppState, org: &OrgId) -> Result<OrgRole> {
        match &self.0 {
            Principal::Account { account, .. } => {
                orgs::role_of(&mut state.db.clone(), org, &account.id).await?.ok_or_else(Error::not_found)
            }
            Principal::ApiKey { key } if &key.org_id == org => Ok(key.role),
            Principal::ApiKey { .. } => Err(Error::not_found()),
        }
    }

    /// Like [`Caller::role_in`], and the role must be owner or admin.
    pub async fn admin_of(&self, state: &AppState, org: &OrgId) -> Result<OrgRole> {
        let role = self.role_in(state, org).await?;
        if role.can_administer() {
            Ok(role)
        } else {
            Err(Error::forbidden("this needs the owner or admin role in the organization"))
        }
    }

    /// The signed-in staff member holding `role`.
    pub fn staff(&self, role: StaffRole) -> Result<&Account> {
        let account = self.account()?;
        if account.staff_role == Some(role) {
            Ok(account)
        } else {
            Err(Error::forbidden(format!("this needs the platform {role} role")))
        }
    }

    pub fn is_staff(&self, role: StaffRole) -> bool {
        self.staff(role).is_ok()
    }
}

pub(crate) async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Option<Caller>> {
    Ok(authenticate_in(state, headers, None).await?.map(|(caller, _)| caller))
}

/// [`authenticate`], and with `org` the caller's role there (`None`: not a member), read with
/// the session in one statement with the organization itself: every request to an
/// organization's resources asks who calls and what they may do, and most also ask for whom.
/// (An API key's organization is not read here.)
async fn authenticate_in(
    state: &AppState,
    headers: &HeaderMap,
    org: Option<&OrgId>,
) -> Result<Option<(Caller, Option<(OrgRole, Option<Org>)>)>> {
    let now = state.clock.now();
    let mut db = state.db.clone();
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let token = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| t.starts_with(API_KEY_PREFIX))
            .ok_or_else(|| {
                Error::new(
                    axum::http::StatusCode::UNAUTHORIZED,
                    "invalid_credentials",
                    "the Authorization header must be `Bearer souk_sk_…`",
                )
            })?;
        let key = api_keys::find_active(&mut db, &hash_token(token)).await?.ok_or_else(|| {
            Error::new(axum::http::StatusCode::UNAUTHORIZED, "invalid_credentials", "unknown or revoked API key")
        })?;
        // Record use at most once a minute: a write per request would cost more than the request.
        if key.last_used_at.is_none_or(|t| now - t > chrono::Duration::minutes(1)) {
            api_keys::touch(&mut db, now, &key.id).await?;
        }
        let membership = org.filter(|o| **o == key.org_id).map(|_| (key.role, None));
        return Ok(Some((Caller(Principal::ApiKey { key }), membership)));
    }
    let Some(token) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    let hash = hash_token(token);
    let found = match org {
        Some(org) => accounts::by_active_session_in(&mut db, &hash, now, org)
            .await?
            .map(|(s, a, membership)| (s, a, membership.map(|(role, org)| (role, Some(org))))),
        None => accounts::by_active_session(&mut db, &hash, now).await?.map(|(s, a)| (s, a, None)),
    };
    Ok(found.map(|(session, account, membership)| (Caller(Principal::Account { account, session }), membership)))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        let caller = authenticate(state, &parts.headers).await?.ok_or_else(Error::unauthorized)?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(MaybeCaller(Some(c.clone())));
        }
        // A bad or expired session on a page is simply "signed out".
        let caller = authenticate(state, &parts.headers).await.ok().flatten();
        if let Some(c) = &caller {
            parts.extensions.insert(c.clone());
        }
        Ok(MaybeCaller(caller))
    }
}

/// The caller's access to the organization named by the `{org_id}` path segment. It is
/// extracted before any body, so a stranger to the organization gets 404 whatever they send.
#[derive(Debug, Clone)]
pub struct OrgScope {
    pub caller: Caller,
    pub org_id: OrgId,
    pub role: OrgRole,
    /// The organization, when it was read with the caller's session (see [`OrgScope::org`]).
    org: Option<Org>,
}

impl OrgScope {
    /// The organization: as read with the caller's session, or read now (an API key's).
    pub async fn org(&self, state: &AppState) -> Result<Org> {
        match &self.org {
            Some(org) => Ok(org.clone()),
            None => Ok(orgs::get(&mut state.db.clone(), &self.org_id).await?),
        }
    }
}

impl FromRequestParts<AppState> for OrgScope {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let org_id: Option<OrgId> = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .ok()
            .and_then(|params| params.iter().find(|(k, _)| *k == "org_id").and_then(|(_, v)| v.parse().ok()));
        // Without credentials it is 401 whatever the path; with them, a malformed or foreign
        // organization is 404.
        let Some(org_id) = org_id else {
            Caller::from_request_parts(parts, state).await?;
            return Err(Error::not_found());
        };
        if let Some(caller) = parts.extensions.get::<Caller>().cloned() {
            let role = caller.role_in(state, &org_id).await?;
            return Ok(OrgScope { caller, org_id, role, org: None });
        }
        let (caller, membership) =
            authenticate_in(state, &parts.headers, Some(&org_id)).await?.ok_or_else(Error::unauthorized)?;
        parts.extensions.insert(caller.clone());
        let (role, org) = membership.ok_or_else(Error::not_found)?;
        Ok(OrgScope { caller, org_id, role, org })
    }
}

/// A signed-in platform operator. Extracted before any body, so a non-operator gets 403
/// whatever they send.
#[derive(Debug, Clone)]
pub struct Operator(pub Caller);

impl FromRequestParts<AppState> for Operator {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.staff(StaffRole::Operator)?;
        Ok(Operator(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; souk_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[tokio::test]
    async fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery".into(), hash.clone()).await.unwrap());
        assert!(!verify_password("wrong horse battery".into(), hash).await.unwrap());
    }
}
