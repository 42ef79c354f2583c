use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use souk_core::id::{AccountId, ApiKeyId};
use souk_store::{api_keys, orgs};
use utoipa::ToSchema;

use super::OrgOut;
use crate::AppState;
use crate::auth::{Caller, OrgScope};
use crate::error::{Problem, Result};
use crate::extract::{ApiJson, RequestId, path_id};
use crate::identity;

#[derive(Debug, Serialize, ToSchema)]
pub struct OrgList {
    pub items: Vec<OrgOut>,
}

/// The organizations the caller belongs to.
#[utoipa::path(get, path = "/orgs", tag = "orgs", responses((status = 200, body = OrgList), (status = 401, body = Problem)))]
pub async fn list_orgs(State(state): State<AppState>, caller: Caller) -> Result<Json<OrgList>> {
    let mut db = state.db.clone();
    let items = match &caller.0 {
        crate::auth::Principal::Account { account, .. } => {
            orgs::list_for_account(&mut db, &account.id).await?.iter().map(|(o, r)| OrgOut::new(o, Some(*r))).collect()
        }
        crate::auth::Principal::ApiKey { key } => vec![OrgOut::new(&orgs::get(&mut db, &key.org_id).await?, Some(key.role))],
    };
    Ok(Json(OrgList { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrgIn {
    pub name: String,
}

/// Create an enterprise organization; the caller becomes its owner.
#[utoipa::path(post, path = "/orgs", tag = "orgs", request_body = CreateOrgIn,
    responses((status = 201, body = OrgOut), (status = 422, body = Problem)))]
pub async fn create_org(
    State(state): State<AppState>,
    caller: Caller,
    rid: RequestId,
    ApiJson(input): ApiJson<CreateOrgIn>,
) -> Result<Response> {
    let org = identity::create_org(&state, &caller, &input.name, rid.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(OrgOut::new(&org, Some(souk_core::identity::OrgRole::Owner)))).into_response())
}

/// One organization the caller belongs to.
#[utoipa::path(get, path = "/orgs/{org_id}", tag = "orgs", responses((status = 200, body = OrgOut), (status = 404, body = Problem)))]
pub async fn get_org(State(state): State<AppState>, OrgScope { caller, org_id, .. }: OrgScope) -> Result<Json<OrgOut>> {
    let role = caller.role_in(&state, &org_id).await?;
    Ok(Json(OrgOut::new(&orgs::get(&mut state.db.clone(), &org_id).await?, Some(role))))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberOut {
    pub account_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

impl From<&orgs::Member> for MemberOut {
    fn from(m: &orgs::Member) -> Self {
        Self {
            account_id: m.account_id.to_string(),
            email: m.email.clone(),
            name: m.name.clone(),
            role: m.role.as_str().to_owned(),
            joined_at: m.joined_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    pub items: Vec<MemberOut>,
}

/// The organization's members.
#[utoipa::path(get, path = "/orgs/{org_id}/members", tag = "orgs", responses((status = 200, body = MemberList), (status = 404, body = Problem)))]
pub async fn list_members(State(state): State<AppState>, OrgScope { caller, org_id, .. }: OrgScope) -> Result<Json<MemberList>> {
    caller.role_in(&state, &org_id).await?;
    let items = orgs::members(&mut state.db.clone(), &org_id).await?.iter().map(MemberOut::from).collect();
    Ok(Json(MemberList { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberIn {
    /// The email of an existing account on the same site.
    pub email: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
}

/// Add an existing account to an enterprise organization (owner or admin).
#[utoipa::path(post, path = "/orgs/{org_id}/members", tag = "orgs", request_body = AddMemberIn,
    responses((status = 201, body = MemberOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn add_member(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    ApiJson(input): ApiJson<AddMemberIn>,
) -> Result<Response> {
    let m = identity::add_member(&state, &caller, &org_id, &input.email, &input.role, rid.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(MemberOut::from(&m))).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeMemberIn {
    pub role: String,
}

/// Change a member's role (owner or admin; the last owner stays an owner).
#[utoipa::path(patch, path = "/orgs/{org_id}/members/{account_id}", tag = "orgs", request_body = ChangeMemberIn,
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn change_member(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    Path((_org, account_id)): Path<(String, String)>,
    ApiJson(input): ApiJson<ChangeMemberIn>,
) -> Result<StatusCode> {
    let account_id: AccountId = path_id(&account_id)?;
    let role = identity::parse_role("role", &input.role)?;
    identity::change_member(&state, &caller, &org_id, &account_id, Some(role), rid.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member (owner or admin; the last owner cannot be removed).
#[utoipa::path(delete, path = "/orgs/{org_id}/members/{account_id}", tag = "orgs",
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn remove_member(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    Path((_org, account_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let account_id: AccountId = path_id(&account_id)?;
    identity::change_member(&state, &caller, &org_id, &account_id, None, rid.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyOut {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub role: String,
    /// The first characters of the key, to recognise it.
    pub token_prefix: String,
    /// The whole key: present only in the response that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKeyOut {
    fn new(k: &api_keys::ApiKey, token: Option<String>) -> Self {
        Self {
            id: k.id.to_string(),
            org_id: k.org_id.to_string(),
            name: k.name.clone(),
            role: k.role.as_str().to_owned(),
            token_prefix: k.token_prefix.clone(),
            token,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyOut>,
}

/// The organization's API keys (owner or admin).
#[utoipa::path(get, path = "/orgs/{org_id}/api-keys", tag = "orgs", responses((status = 200, body = ApiKeyList), (status = 404, body = Problem)))]
pub async fn list_api_keys(State(state): State<AppState>, OrgScope { caller, org_id, .. }: OrgScope) -> Result<Json<ApiKeyList>> {
    caller.admin_of(&state, &org_id).await?;
    let items = api_keys::list(&mut state.db.clone(), &org_id).await?.iter().map(|k| ApiKeyOut::new(k, None)).collect();
    Ok(Json(ApiKeyList { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyIn {
    pub name: String,
    /// `admin` or `member` (default `member`).
    pub role: Option<String>,
}

/// Create an API key (signed-in owner or admin). The key is shown once.
#[utoipa::path(post, path = "/orgs/{org_id}/api-keys", tag = "orgs", request_body = CreateApiKeyIn,
    responses((status = 201, body = ApiKeyOut), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_api_key(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    ApiJson(input): ApiJson<CreateApiKeyIn>,
) -> Result<Response> {
    let role = input.role.as_deref().unwrap_or("member");
    let (key, token) = identity::create_api_key(&state, &caller, &org_id, &input.name, role, rid.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(ApiKeyOut::new(&key, Some(token)))).into_response())
}

/// Revoke an API key (owner or admin).
#[utoipa::path(delete, path = "/orgs/{org_id}/api-keys/{key_id}", tag = "orgs", responses((status = 204), (status = 404, body = Problem)))]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    Path((_org, key_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let key_id: ApiKeyId = path_id(&key_id)?;
    identity::revoke_api_key(&state, &caller, &org_id, &key_id, rid.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}
