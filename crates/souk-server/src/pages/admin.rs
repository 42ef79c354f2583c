//! The operators' pages: the verification queue, one submission's review, the audit log.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use souk_core::id::VerificationId;
use souk_core::identity::StaffRole;
use souk_core::verification::{Details, VerificationStatus};
use souk_store::audit::{self, Entry};
use souk_store::uploads::{self, Upload};
use souk_store::verifications::{self, Verification};

use super::{FormState, PageCtx, form_status, render};
use crate::AppState;
use crate::error::Error;
use crate::extract::{RequestId, path_id};
use crate::verification;

fn operator(ctx: &PageCtx) -> Result<crate::auth::Caller, Response> {
    let (caller, _) = ctx.require_account()?;
    caller.staff(StaffRole::Operator).map_err(|e| ctx.fail(e))?;
    Ok(caller.clone())
}

#[derive(Template)]
#[template(path = "admin_verifications.html")]
struct QueuePage<'a> {
    ctx: &'a PageCtx,
    items: Vec<Verification>,
}

#[derive(serde::Deserialize)]
pub struct QueueQuery {
    status: Option<String>,
}

pub async fn queue(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<QueueQuery>) -> Response {
    if let Err(r) = operator(&ctx) {
        return r;
    }
    let status = q.status.as_deref().and_then(VerificationStatus::parse).unwrap_or(VerificationStatus::Pending);
    match verifications::queue(&mut state.db.clone(), status, None, 100).await {
        Ok(items) => render(&QueuePage { ctx: &ctx, items }),
        Err(e) => ctx.fail(e.into()),
    }
}

#[derive(Template)]
#[template(path = "admin_verification.html")]
struct ReviewPage<'a> {
    ctx: &'a PageCtx,
    v: Verification,
    details: Vec<(&'static str, String)>,
    documents: Vec<Upload>,
    form: FormState,
}

fn detail_rows(d: &Details) -> Vec<(&'static str, String)> {
    match d {
        Details::Individual(i) => vec![("field.real_name", i.real_name.as_str().to_owned()), ("field.id_number", i.id_number.clone())],
        Details::Enterprise(e) => vec![
            ("field.company_name", e.company_name.as_str().to_owned()),
            ("field.registration_number", e.registration_number.clone()),
            ("field.contact_name", e.contact_name.as_str().to_owned()),
            ("field.contact_phone", e.contact_phone.as_str().to_owned()),
            ("field.contact_email", e.contact_email.as_str().to_owned()),
        ],
    }
}

async fn review_page(state: &AppState, ctx: &PageCtx, id: &str, form: FormState, status: StatusCode) -> Response {
    let result: Result<Response, Error> = async {
        let id: VerificationId = path_id(id)?;
        let mut db = state.db.clone();
        let v = verifications::get(&mut db, &id).await?;
        let mut documents = Vec::new();
        for doc in &v.document_ids {
            documents.push(uploads::get(&mut db, &v.org_id, doc).await?);
        }
        let details = detail_rows(&v.details);
        Ok((status, render(&ReviewPage { ctx, v, details, documents, form })).into_response())
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub async fn review(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> Response {
    if let Err(r) = operator(&ctx) {
        return r;
    }
    review_page(&state, &ctx, &id, FormState::default(), StatusCode::OK).await
}

pub async fn decide(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let caller = match operator(&ctx) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(f.get("_csrf").map(String::as_str).unwrap_or("")) {
        return r;
    }
    let Ok(vid) = path_id::<VerificationId>(&id) else { return ctx.fail(Error::not_found()) };
    let approve = f.get("decision").map(String::as_str) == Some("approve");
    let reason = f.get("reason").map(String::as_str);
    match verification::decide(&state, &caller, &vid, approve, reason, rid.as_deref()).await {
        Ok(_) => Redirect::to(&format!("/admin/verifications/{id}")).into_response(),
        Err(e) if e.status() == StatusCode::NOT_FOUND => ctx.fail(e),
        Err(e) => review_page(&state, &ctx, &id, FormState::from_error(f.clone(), &e), form_status(&e)).await,
    }
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage<'a> {
    ctx: &'a PageCtx,
    entries: Vec<Entry>,
    before: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct AuditQuery {
    target: Option<String>,
    before: Option<String>,
}

pub async fn audit(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<AuditQuery>) -> Response {
    if let Err(r) = operator(&ctx) {
        return r;
    }
    const PAGE: u32 = 100;
    match audit::list(&mut state.db.clone(), q.target.as_deref(), q.before.as_deref(), PAGE).await {
        Ok(entries) => {
            let before = if entries.len() == PAGE as usize { entries.last().map(|e| e.id.clone()) } else { None };
            render(&AuditPage { ctx: &ctx, entries, before })
        }
        Err(e) => ctx.fail(e.into()),
    }
}
