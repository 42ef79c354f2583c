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
        Details::Individual(i) => {
            vec![("field.real_name", i.real_name.as_str().to_owned()), ("field.id_number", i.id_number.clone())]
        }
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

// ----- product review -----

pub struct ReviewRow {
    pub revision_id: String,
    pub name: String,
    pub seller: String,
    pub kind: String,
    pub state: String,
    pub is_update: bool,
    pub due: String,
    pub sla: String,
}

#[derive(Template)]
#[template(path = "admin_reviews.html")]
struct ReviewsPage<'a> {
    ctx: &'a PageCtx,
    rows: Vec<ReviewRow>,
    shops: Vec<(souk_store::shops::ShopRevision, String)>,
}

pub async fn reviews(State(state): State<AppState>, ctx: PageCtx) -> Response {
    let caller = match operator(&ctx) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match crate::catalog::review_queue(&state, &caller).await {
        Ok(entries) => {
            let rows = entries
                .into_iter()
                .map(|e| ReviewRow {
                    revision_id: e.item.revision.id.to_string(),
                    name: e.item.revision.content.name.clone(),
                    seller: e.item.seller_name,
                    kind: e.item.kind.as_str().to_owned(),
                    state: e.item.revision.state.as_str().to_owned(),
                    is_update: e.item.is_update,
                    due: e.item.revision.sla_due_at.map(|d| d.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default(),
                    sla: serde_json::to_value(e.sla).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
                })
                .collect();
            match souk_store::shops::queue(&mut state.db.clone()).await {
                Ok(shops) => render(&ReviewsPage { ctx: &ctx, rows, shops }),
                Err(e) => ctx.fail(e.into()),
            }
        }
        Err(e) => ctx.fail(e),
    }
}

#[derive(Template)]
#[template(path = "admin_review.html")]
struct ReviewProductPage<'a> {
    ctx: &'a PageCtx,
    rev: souk_store::products::Revision,
    seller: String,
    description_html: String,
    live_name: Option<String>,
    form: FormState,
}

async fn review_product_page(state: &AppState, ctx: &PageCtx, id: &str, form: FormState, status: StatusCode) -> Response {
    let result: Result<Response, Error> = async {
        let id: souk_core::id::RevisionId = path_id(id)?;
        let mut db = state.db.clone();
        let rev = souk_store::products::get_revision(&mut db, &id).await?;
        let product = souk_store::products::get(&mut db, &rev.product_id).await?;
        let seller = souk_store::orgs::get(&mut db, &product.seller_org_id).await?.name;
        let live_name = match &product.live_revision_id {
            Some(l) if *l != rev.id => Some(souk_store::products::get_revision(&mut db, l).await?.content.name),
            _ => None,
        };
        let description_html = crate::markdown::to_safe_html(&rev.content.description);
        Ok((status, render(&ReviewProductPage { ctx, rev, seller, description_html, live_name, form })).into_response())
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub async fn review_product(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> Response {
    if let Err(r) = operator(&ctx) {
        return r;
    }
    review_product_page(&state, &ctx, &id, FormState::default(), StatusCode::OK).await
}

/// The reason fields of the review form: `reason_<field>` for each field reviewed.
pub const REVIEW_FIELDS: [(&str, &str); 7] = [
    ("", "review.general"),
    ("name", "field.name"),
    ("summary", "product.summary"),
    ("description", "product.description"),
    ("category", "store.category"),
    ("plans", "store.plans"),
    ("support_email", "product.support_email"),
];

pub async fn decide_product(
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
    let Ok(rev) = path_id::<souk_core::id::RevisionId>(&id) else { return ctx.fail(Error::not_found()) };
    let result = match f.get("decision").map(String::as_str) {
        Some("start") => crate::catalog::start_review(&state, &caller, &rev, rid.as_deref()).await.map(|_| ()),
        Some(d) => {
            let reasons = REVIEW_FIELDS
                .iter()
                .filter_map(|(field, _)| f.get(&format!("reason_{field}")).map(|r| ((*field).to_owned(), r.clone())))
                .collect();
            crate::catalog::decide(&state, &caller, &rev, d == "approve", reasons, rid.as_deref()).await.map(|_| ())
        }
        None => Err(Error::bad_request("unknown_action", "approve or reject")),
    };
    match result {
        Ok(()) => Redirect::to(&format!("/admin/reviews/{id}")).into_response(),
        Err(e) if e.status() == StatusCode::NOT_FOUND => ctx.fail(e),
        Err(e) => review_product_page(&state, &ctx, &id, FormState::from_error(f.clone(), &e), e.status()).await,
    }
}

#[derive(Template)]
#[template(path = "admin_sellers.html")]
struct SellersPage<'a> {
    ctx: &'a PageCtx,
    status: String,
    sellers: Vec<souk_store::sellers::Seller>,
    form: FormState,
}

#[derive(serde::Deserialize)]
pub struct SellersQuery {
    status: Option<String>,
}

async fn sellers_page(state: &AppState, ctx: &PageCtx, status: &str, form: FormState, code: StatusCode) -> Response {
    let status = if ["applied", "approved", "rejected", "suspended"].contains(&status) { status } else { "applied" };
    match souk_store::sellers::list(&mut state.db.clone(), status).await {
        Ok(sellers) => (code, render(&SellersPage { ctx, status: status.to_owned(), sellers, form })).into_response(),
        Err(e) => ctx.fail(e.into()),
    }
}

pub async fn sellers(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<SellersQuery>) -> Response {
    if let Err(r) = operator(&ctx) {
        return r;
    }
    sellers_page(&state, &ctx, q.status.as_deref().unwrap_or("applied"), FormState::default(), StatusCode::OK).await
}

pub async fn seller_action(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Path(org): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let caller = match operator(&ctx) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(f.get("_csrf").map(String::as_str).unwrap_or("")) {
        return r;
    }
    let Ok(org_id) = path_id::<souk_core::id::OrgId>(&org) else { return ctx.fail(Error::not_found()) };
    let reason = f.get("reason").map(String::as_str).unwrap_or("");
    let back = f.get("back").cloned().unwrap_or_else(|| "applied".into());
    let result = match f.get("action").map(String::as_str) {
        Some("approve") => crate::catalog::decide_seller(&state, &caller, &org_id, true, None, rid.as_deref()).await.map(|_| ()),
        Some("reject") => {
            crate::catalog::decide_seller(&state, &caller, &org_id, false, Some(reason), rid.as_deref()).await.map(|_| ())
        }
        Some(a) => match crate::catalog::Enforcement::parse(a) {
            Some(action) => crate::catalog::enforce(&state, &caller, &org_id, action, None, reason, rid.as_deref()).await,
            None => Err(Error::bad_request("unknown_action", "unknown action")),
        },
        None => Err(Error::bad_request("unknown_action", "unknown action")),
    };
    match result {
        Ok(()) => Redirect::to(&format!("/admin/sellers?status={back}")).into_response(),
        Err(e) if e.status() == StatusCode::NOT_FOUND => ctx.fail(e),
        Err(e) => sellers_page(&state, &ctx, &back, FormState::from_error(HashMap::new(), &e), e.status()).await,
    }
}

pub fn sla_key(sla: &str) -> &'static str {
    match sla {
        "at_risk" => "sla.at_risk",
        "breached" => "sla.breached",
        _ => "sla.on_track",
    }
}

// ----- shop review -----

#[derive(Template)]
#[template(path = "admin_shop_review.html")]
struct ShopReviewPage<'a> {
    ctx: &'a PageCtx,
    rev: souk_store::shops::ShopRevision,
    preview: crate::pages::store::ShopPage<'a>,
    form: FormState,
}

async fn shop_review_page(state: &AppState, ctx: &PageCtx, id: &str, form: FormState, status: StatusCode) -> Response {
    let result: Result<Response, Error> = async {
        let id: souk_core::id::ShopRevisionId = path_id(id)?;
        let rev = souk_store::shops::get_revision(&mut state.db.clone(), &id).await?;
        let preview = crate::pages::store::shop_page(state, ctx, &rev.org_id, Some(rev.content.clone()), true).await?;
        Ok((status, render(&ShopReviewPage { ctx, rev, preview, form })).into_response())
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub async fn review_shop(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> Response {
    if let Err(r) = operator(&ctx) {
        return r;
    }
    shop_review_page(&state, &ctx, &id, FormState::default(), StatusCode::OK).await
}

pub async fn decide_shop(
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
    let Ok(rev) = path_id::<souk_core::id::ShopRevisionId>(&id) else { return ctx.fail(Error::not_found()) };
    let approve = f.get("decision").map(String::as_str) == Some("approve");
    let reasons = ["", "banner", "introduction", "featured"]
        .iter()
        .filter_map(|field| f.get(&format!("reason_{field}")).map(|r| ((*field).to_owned(), r.clone())))
        .collect();
    match crate::catalog::decide_shop(&state, &caller, &rev, approve, reasons, rid.as_deref()).await {
        Ok(_) => Redirect::to(&format!("/admin/reviews/shops/{id}")).into_response(),
        Err(e) if e.status() == StatusCode::NOT_FOUND => ctx.fail(e),
        Err(e) => shop_review_page(&state, &ctx, &id, FormState::from_error(f.clone(), &e), e.status()).await,
    }
}
