use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use souk_store::orgs;
use utoipa::ToSchema;

use super::{AccountOut, OrgOut};
use crate::AppState;
use crate::auth::{Caller, SESSION_COOKIE, cookie, set_cookie};
use crate::error::{Problem, Result};
use crate::extract::{ApiJson, RequestId};
use crate::identity::{self, SESSION_TTL, SignUp};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpIn {
    pub email: String,
    pub name: String,
    /// At least 10 characters.
    pub password: String,
    /// `cn` or `intl`; the account belongs to this site for good.
    pub site: String,
    /// `en` or `zh-CN`; defaults to the site's language.
    pub lang: Option<String>,
}

/// Create an account (and its personal organization).
#[utoipa::path(post, path = "/auth/signup", tag = "identity", request_body = SignUpIn,
    responses((status = 201, body = AccountOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn sign_up(State(state): State<AppState>, rid: RequestId, ApiJson(input): ApiJson<SignUpIn>) -> Result<Response> {
    let account = identity::sign_up(
        &state,
        SignUp {
            email: &input.email,
            name: &input.name,
            password: &input.password,
            site: &input.site,
            lang: input.lang.as_deref(),
        },
        rid.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(AccountOut::from(&account))).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SignInIn {
    pub email: String,
    pub password: String,
}

/// Sign in; sets the session cookie.
#[utoipa::path(post, path = "/auth/signin", tag = "identity", request_body = SignInIn,
    responses((status = 200, body = AccountOut), (status = 401, body = Problem)))]
pub async fn sign_in(State(state): State<AppState>, ApiJson(input): ApiJson<SignInIn>) -> Result<Response> {
    let (account, token) = identity::sign_in(&state, &input.email, &input.password).await?;
    let mut res = Json(AccountOut::from(&account)).into_response();
    let c = set_cookie(SESSION_COOKIE, &token, SESSION_TTL.num_seconds(), state.config.secure_cookies, "Lax");
    res.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&c).map_err(anyhow::Error::from)?);
    Ok(res)
}

/// Sign out; ends the session.
#[utoipa::path(post, path = "/auth/signout", tag = "identity", responses((status = 204)))]
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        identity::sign_out(&state, token).await?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    let c = set_cookie(SESSION_COOKIE, "", 0, state.config.secure_cookies, "Lax");
    res.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&c).map_err(anyhow::Error::from)?);
    Ok(res)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeOut {
    /// The signed-in person; null when calling with an API key.
    pub account: Option<AccountOut>,
    /// The organization an API key acts for; null for a person.
    pub api_key_org_id: Option<String>,
    pub orgs: Vec<OrgOut>,
}

/// Who am I: the account and its organizations, or the API key's organization.
#[utoipa::path(get, path = "/me", tag = "identity", responses((status = 200, body = MeOut), (status = 401, body = Problem)),
    security(("session" = []), ("api_key" = [])))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<MeOut>> {
    let mut db = state.db.clone();
    Ok(Json(match &caller.0 {
        crate::auth::Principal::Account { account, .. } => MeOut {
            account: Some(AccountOut::from(account)),
            api_key_org_id: None,
            orgs: orgs::list_for_account(&mut db, &account.id).await?.iter().map(|(o, r)| OrgOut::new(o, Some(*r))).collect(),
        },
        crate::auth::Principal::ApiKey { key } => {
            let org = orgs::get(&mut db, &key.org_id).await?;
            MeOut { account: None, api_key_org_id: Some(key.org_id.to_string()), orgs: vec![OrgOut::new(&org, Some(key.role))] }
        }
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordIn {
    pub current_password: String,
    pub new_password: String,
}

/// Change the password; other sessions are signed out.
#[utoipa::path(post, path = "/me/password", tag = "identity", request_body = ChangePasswordIn,
    responses((status = 204), (status = 422, body = Problem)), security(("session" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    rid: RequestId,
    ApiJson(input): ApiJson<ChangePasswordIn>,
) -> Result<StatusCode> {
    identity::change_password(&state, &caller, &input.current_password, &input.new_password, rid.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}
