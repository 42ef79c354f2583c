//! Organizations, members, API keys and the organization's verification page.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use souk_core::id::{AccountId, ApiKeyId, OrgId};
use souk_core::verification::RawDetails;
use souk_store::api_keys::{self, ApiKey};
use souk_store::orgs;
use souk_store::verifications::{self, Verification};

use super::field;
use super::{FormState, OrgView, PageCtx, form_status, render, role_key};
use crate::AppState;
use crate::error::Error;
use crate::extract::{RequestId, path_id};
use crate::{identity, verification};

type Fields = Form<HashMap<String, String>>;

const ROLES: [&str; 3] = ["owner", "admin", "member"];

#[derive(Template)]
#[template(path = "orgs.html")]
struct OrgsPage<'a> {
    ctx: &'a PageCtx,
    orgs: Vec<OrgView>,
    form: FormState,
}

async fn orgs_page(state: &AppState, ctx: &PageCtx, form: FormState, status: StatusCode) -> Response {
    let Some(a) = &ctx.account else { return Redirect::to("/signin?next=/orgs").into_response() };
    match orgs::list_for_account(&mut state.db.clone(), &a.id).await {
        Ok(list) => {
            let orgs = list.iter().map(|(o, r)| OrgView::new(o, Some(*r))).collect();
            (status, render(&OrgsPage { ctx, orgs, form })).into_response()
        }
        Err(e) => ctx.fail(e.into()),
    }
}

pub async fn list(State(state): State<AppState>, ctx: PageCtx) -> Response {
    orgs_page(&state, &ctx, FormState::default(), StatusCode::OK).await
}

pub async fn create(State(state): State<AppState>, ctx: PageCtx, rid: RequestId, Form(f): Fields) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    match identity::create_org(&state, &caller, field(&f, "name"), rid.as_deref()).await {
        Ok(org) => Redirect::to(&format!("/orgs/{}", org.id)).into_response(),
        Err(e) => orgs_page(&state, &ctx, FormState::from_error(f.clone(), &e), form_status(&e)).await,
    }
}

pub struct MemberView {
    pub account_id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub role_key: &'static str,
}

#[derive(Template)]
#[template(path = "org.html")]
struct OrgPage<'a> {
    ctx: &'a PageCtx,
    org: OrgView,
    members: Vec<MemberView>,
    can_admin: bool,
    roles: [&'static str; 3],
    form: FormState,
}

async fn org_page(state: &AppState, ctx: &PageCtx, org_id: &str, form: FormState, status: StatusCode) -> Response {
    let (caller, _) = match ctx.require_account() {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result: Result<Response, Error> = async {
        let org_id: OrgId = path_id(org_id)?;
        let role = caller.role_in(state, &org_id).await?;
        let mut db = state.db.clone();
        let org = orgs::get(&mut db, &org_id).await?;
        let members = orgs::members(&mut db, &org_id)
            .await?
            .into_iter()
            .map(|m| MemberView {
                account_id: m.account_id.to_string(),
                name: m.name,
                email: m.email,
                role: m.role.as_str().to_owned(),
                role_key: role_key(m.role.as_str()),
            })
            .collect();
        let page =
            OrgPage { ctx, org: OrgView::new(&org, Some(role)), members, can_admin: role.can_administer(), roles: ROLES, form };
        Ok((status, render(&page)).into_response())
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub async fn show(State(state): State<AppState>, ctx: PageCtx, Path(org_id): Path<String>) -> Response {
    org_page(&state, &ctx, &org_id, FormState::default(), StatusCode::OK).await
}

pub async fn add_member(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Path(org_id): Path<String>,
    Form(f): Fields,
) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let Ok(id) = path_id::<OrgId>(&org_id) else { return ctx.fail(Error::not_found()) };
    match identity::add_member(&state, &caller, &id, field(&f, "email"), field(&f, "role"), rid.as_deref()).await {
        Ok(_) => Redirect::to(&format!("/orgs/{org_id}")).into_response(),
        Err(e) if e.status() == StatusCode::NOT_FOUND => ctx.fail(e),
        Err(e) => org_page(&state, &ctx, &org_id, FormState::from_error(f.clone(), &e), form_status(&e)).await,
    }
}

pub async fn change_member(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Path((org_id, account_id)): Path<(String, String)>,
    Form(f): Fields,
) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let (Ok(id), Ok(member)) = (path_id::<OrgId>(&org_id), path_id::<AccountId>(&account_id)) else {
        return ctx.fail(Error::not_found());
    };
    let role = if field(&f, "action") == "remove" {
        None
    } else {
        match identity::parse_role("role", field(&f, "role")) {
            Ok(r) => Some(r),
            Err(e) => return org_page(&state, &ctx, &org_id, FormState::from_error(HashMap::new(), &e), form_status(&e)).await,
        }
    };
    match identity::change_member(&state, &caller, &id, &member, role, rid.as_deref()).await {
        Ok(()) => Redirect::to(&format!("/orgs/{org_id}")).into_response(),
        Err(e) if e.status() == StatusCode::NOT_FOUND => ctx.fail(e),
        Err(e) => org_page(&state, &ctx, &org_id, FormState::from_error(HashMap::new(), &e), form_status(&e)).await,
    }
}

#[derive(Template)]
#[template(path = "api_keys.html")]
struct KeysPage<'a> {
    ctx: &'a PageCtx,
    org: OrgView,
    keys: Vec<ApiKey>,
    new_token: Option<String>,
    form: FormState,
}

async fn keys_page(
    state: &AppState,
    ctx: &PageCtx,
    org_id: &str,
    new_token: Option<String>,
    form: FormState,
    status: StatusCode,
) -> Response {
    let (caller, _) = match ctx.require_account() {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result: Result<Response, Error> = async {
        let org_id: OrgId = path_id(org_id)?;
        let role = caller.admin_of(state, &org_id).await?;
        let mut db = state.db.clone();
        let org = orgs::get(&mut db, &org_id).await?;
        let keys = api_keys::list(&mut db, &org_id).await?;
        Ok((status, render(&KeysPage { ctx, org: OrgView::new(&org, Some(role)), keys, new_token, form })).into_response())
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub async fn api_keys(State(state): State<AppState>, ctx: PageCtx, Path(org_id): Path<String>) -> Response {
    keys_page(&state, &ctx, &org_id, None, FormState::default(), StatusCode::OK).await
}

pub async fn create_api_key(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Path(org_id): Path<String>,
    Form(f): Fields,
) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let Ok(id) = path_id::<OrgId>(&org_id) else { return ctx.fail(Error::not_found()) };
    match identity::create_api_key(&state, &caller, &id, field(&f, "name"), field(&f, "role"), rid.as_deref()).await {
        // The page answers the POST directly (no redirect), since the key is shown only once.
        Ok((_, token)) => keys_page(&state, &ctx, &org_id, Some(token), FormState::default(), StatusCode::CREATED).await,
        Err(e) if e.status() == StatusCode::NOT_FOUND => ctx.fail(e),
        Err(e) => keys_page(&state, &ctx, &org_id, None, FormState::from_error(f.clone(), &e), form_status(&e)).await,
    }
}

pub async fn revoke_api_key(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Path((org_id, key_id)): Path<(String, String)>,
    Form(f): Fields,
) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let (Ok(id), Ok(key)) = (path_id::<OrgId>(&org_id), path_id::<ApiKeyId>(&key_id)) else {
        return ctx.fail(Error::not_found());
    };
    match identity::revoke_api_key(&state, &caller, &id, &key, rid.as_deref()).await {
        Ok(()) => Redirect::to(&format!("/orgs/{org_id}/api-keys")).into_response(),
        Err(e) => ctx.fail(e),
    }
}

#[derive(Template)]
#[template(path = "verification.html")]
struct VerificationPage<'a> {
    ctx: &'a PageCtx,
    org: OrgView,
    can_admin: bool,
    history: Vec<Verification>,
    form: FormState,
}

async fn verification_page(state: &AppState, ctx: &PageCtx, org_id: &str, form: FormState, status: StatusCode) -> Response {
    let (caller, _) = match ctx.require_account() {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result: Result<Response, Error> = async {
        let org_id: OrgId = path_id(org_id)?;
        let role = caller.role_in(state, &org_id).await?;
        let mut db = state.db.clone();
        let org = orgs::get(&mut db, &org_id).await?;
        let history = verifications::list_for_org(&mut db, &org_id).await?;
        let page = VerificationPage { ctx, org: OrgView::new(&org, Some(role)), can_admin: role.can_administer(), history, form };
        Ok((status, render(&page)).into_response())
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub async fn verification(State(state): State<AppState>, ctx: PageCtx, Path(org_id): Path<String>) -> Response {
    verification_page(&state, &ctx, &org_id, FormState::default(), StatusCode::OK).await
}

/// The verification form is multipart: text fields plus any number of `documents` files.
/// Files are stored first, then the submission refers to them.
pub async fn submit_verification(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Path(org_id): Path<String>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    let Ok(id) = path_id::<OrgId>(&org_id) else { return ctx.fail(Error::not_found()) };
    let Ok(mut multipart) = multipart else {
        return ctx.fail(Error::bad_request("invalid_multipart", "the form must be sent as multipart/form-data"));
    };
    let mut values = HashMap::new();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_owned();
                let filename = field.file_name().map(str::to_owned);
                match field.bytes().await {
                    Ok(bytes) if name == "documents" => {
                        if let Some(fname) = filename.filter(|_| !bytes.is_empty()) {
                            files.push((fname, bytes.to_vec()));
                        }
                    }
                    Ok(bytes) => {
                        values.insert(name, String::from_utf8_lossy(&bytes).into_owned());
                    }
                    Err(e) => return ctx.fail(crate::api::multipart_error(&e)),
                }
            }
            Ok(None) => break,
            Err(e) => return ctx.fail(crate::api::multipart_error(&e)),
        }
    }
    if let Err(r) = ctx.check_csrf(values.get("_csrf").map(String::as_str).unwrap_or("")) {
        return r;
    }
    let result: Result<(), Error> = async {
        let mut document_ids = Vec::new();
        for (name, bytes) in &files {
            let up = verification::upload(&state, &caller, &id, name, bytes, rid.as_deref()).await.map_err(|e| {
                if e.field_errors().is_empty() && e.status().is_client_error() && e.status() != StatusCode::NOT_FOUND {
                    Error::field("file", format!("{name}: {}", e.message()))
                } else {
                    e
                }
            })?;
            document_ids.push(up.id.to_string());
        }
        let get = |k: &str| values.get(k).cloned().filter(|v| !v.trim().is_empty());
        let raw = RawDetails {
            real_name: get("real_name"),
            id_number: get("id_number"),
            company_name: get("company_name"),
            registration_number: get("registration_number"),
            contact_name: get("contact_name"),
            contact_phone: get("contact_phone"),
            contact_email: get("contact_email"),
        };
        verification::submit(&state, &caller, &id, &raw, &document_ids, rid.as_deref()).await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to(&format!("/orgs/{org_id}/verification")).into_response(),
        Err(e) if e.status() == StatusCode::NOT_FOUND => ctx.fail(e),
        Err(e) => verification_page(&state, &ctx, &org_id, FormState::from_error(values.clone(), &e), form_status(&e)).await,
    }
}
