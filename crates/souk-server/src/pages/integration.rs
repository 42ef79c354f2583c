//! The seller's integration pages: where a product's deliveries go, its signing secret and
//! rotation, "test my endpoint" (the conformance kit), and the delivery log with redelivery.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use souk_core::id::OrgId;

use super::field;
use super::{PageCtx, render};
use crate::AppState;
use crate::error::Error;
use crate::extract::path_id;

#[derive(Template)]
#[template(path = "integration.html")]
struct IntegrationPage<'a> {
    ctx: &'a PageCtx,
    org_id: String,
    product_id: String,
    endpoint: String,
    protocol: String,
    sync_url: String,
    change_check: bool,
    rotating: bool,
    configured: bool,
    /// A secret just created: shown this once.
    secret: Option<String>,
    checks: Vec<crate::conformance::Check>,
    message: Option<String>,
}

async fn show(
    state: &AppState,
    ctx: &PageCtx,
    org_id: &str,
    product_id: &str,
    secret: Option<String>,
    checks: Vec<crate::conformance::Check>,
    message: Option<String>,
) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    let result: Result<Response, Error> = async {
        let org: OrgId = path_id(org_id)?;
        let settings = match crate::fulfillment::settings(state, &caller, &org, product_id).await {
            Ok(i) => Some(i),
            Err(e) if e.status() == axum::http::StatusCode::NOT_FOUND => {
                // No integration yet; still check the product is this seller's.
                caller.admin_of(state, &org).await?;
                None
            }
            Err(e) => return Err(e),
        };
        Ok(render(&IntegrationPage {
            ctx,
            org_id: org.to_string(),
            product_id: product_id.to_owned(),
            endpoint: settings.as_ref().map(|i| i.endpoint.clone()).unwrap_or_default(),
            protocol: settings.as_ref().map_or_else(|| "native".to_owned(), |i| i.protocol.clone()),
            sync_url: settings.as_ref().and_then(|i| i.sync_url.clone()).unwrap_or_default(),
            change_check: settings.as_ref().is_some_and(|i| i.change_check),
            rotating: settings.as_ref().is_some_and(|i| i.previous_sealed.is_some()),
            configured: settings.is_some(),
            secret,
            checks,
            message,
        }))
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub async fn page(State(state): State<AppState>, ctx: PageCtx, Path((org_id, product_id)): Path<(String, String)>) -> Response {
    show(&state, &ctx, &org_id, &product_id, None, Vec::new(), None).await
}

pub async fn action(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path((org_id, product_id)): Path<(String, String)>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let Ok(org) = path_id::<OrgId>(&org_id) else { return ctx.fail(Error::not_found()) };
    let (mut secret, mut checks, mut message) = (None, Vec::new(), None);
    let outcome: Result<(), Error> = async {
        match field(&f, "action") {
            "save" => {
                let koogallery = field(&f, "protocol") == "koogallery";
                let optional = |k: &str| Some(field(&f, k)).filter(|v| koogallery && !v.trim().is_empty());
                let input = crate::fulfillment::IntegrationInput {
                    endpoint: field(&f, "endpoint"),
                    protocol: if koogallery { "koogallery" } else { "native" },
                    access_key: optional("access_key"),
                    sync_url: optional("sync_url"),
                    sync_access_key: optional("sync_access_key"),
                    change_check: koogallery && field(&f, "change_check") == "on",
                };
                let s = crate::fulfillment::configure(&state, &caller, &org, &product_id, input).await?;
                secret = s.new_secret;
                message = Some(ctx.t.get("integration.saved").to_owned());
            }
            "rotate" => secret = Some(crate::fulfillment::rotate(&state, &caller, &org, &product_id).await?),
            "finish" => {
                crate::fulfillment::finish_rotation(&state, &caller, &org, &product_id).await?;
            }
            "test" => {
                let i = crate::fulfillment::settings(&state, &caller, &org, &product_id).await?;
                let url = url::Url::parse(&i.endpoint).map_err(|_| Error::field("endpoint", "an http(s) URL"))?;
                crate::fulfillment::check_destination(&url, &state.config.outbound_allow)
                    .await
                    .map_err(|why| Error::field("endpoint", why))?;
                let secret = crate::fulfillment::current_secret(&state, &product_id)
                    .await?
                    .ok_or_else(|| Error::conflict("no_secret", "save the endpoint first"))?;
                checks = if i.protocol == "koogallery" {
                    crate::conformance::run_koogallery(
                        &i.endpoint,
                        &String::from_utf8_lossy(secret.bytes()),
                        Some(&state.config.outbound_allow),
                    )
                    .await
                } else {
                    crate::conformance::run(&i.endpoint, &secret, Some(&state.config.outbound_allow)).await
                };
            }
            _ => return Err(Error::bad_request("unknown_action", "unknown action")),
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        if !e.status().is_client_error() {
            return ctx.fail(e);
        }
        message = Some(e.summary());
    }
    show(&state, &ctx, &org_id, &product_id, secret, checks, message).await
}

pub struct DeliveryRow {
    pub at: String,
    pub event_id: String,
    pub topic: String,
    pub subscription_id: String,
    pub attempt: i64,
    pub status: String,
    pub ok: bool,
    pub latency_ms: i64,
    pub error: String,
    pub excerpt: String,
}

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeliveriesPage<'a> {
    ctx: &'a PageCtx,
    org_id: String,
    rows: Vec<DeliveryRow>,
}

pub async fn deliveries(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(org_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    let result: Result<Response, Error> = async {
        let org: OrgId = path_id(&org_id)?;
        caller.role_in(&state, &org).await?;
        let filter = souk_store::fulfillment::DeliveryFilter {
            ok: match field(&q, "ok") {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            subscription_id: Some(field(&q, "subscription_id").to_owned()).filter(|s| !s.is_empty()),
            limit: 200,
            ..Default::default()
        };
        let rows = souk_store::fulfillment::log(&mut state.db.clone(), &org, &filter)
            .await?
            .into_iter()
            .map(|d| DeliveryRow {
                at: d.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                ok: d.status.is_some_and(|s| (200..300).contains(&s)),
                status: d.status.map(|s| s.to_string()).unwrap_or_else(|| "—".into()),
                event_id: d.event_id,
                topic: d.topic,
                subscription_id: d.subscription_id,
                attempt: d.attempt,
                latency_ms: d.latency_ms,
                error: d.error.unwrap_or_default(),
                excerpt: d.response_excerpt.unwrap_or_default().chars().take(200).collect(),
            })
            .collect();
        Ok(render(&DeliveriesPage { ctx: &ctx, org_id: org.to_string(), rows }))
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub async fn redeliver(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path((org_id, event_id)): Path<(String, String)>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let Ok(org) = path_id::<OrgId>(&org_id) else { return ctx.fail(Error::not_found()) };
    match crate::fulfillment::redeliver(&state, &caller, &org, &event_id).await {
        Ok(()) => Redirect::to(&format!("/orgs/{org}/deliveries")).into_response(),
        Err(e) => ctx.fail(e),
    }
}

#[derive(Template)]
#[template(path = "license_pool.html")]
struct PoolPage<'a> {
    ctx: &'a PageCtx,
    org_id: String,
    product_id: String,
    available: i64,
    assigned: i64,
    imports: Vec<souk_store::licenses::Import>,
    /// The import whose report is shown: the one asked for, else the latest.
    shown: Option<souk_store::licenses::Import>,
    /// Some import is still going into the pool: the page refreshes itself.
    importing: bool,
    message: Option<String>,
}

async fn pool_page(
    state: &AppState,
    ctx: &PageCtx,
    org_id: &str,
    product_id: &str,
    shown_id: Option<&str>,
    message: Option<String>,
) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    let result: Result<Response, Error> = async {
        let org: OrgId = path_id(org_id)?;
        let (available, assigned) = crate::licenses::pool(state, &caller, &org, product_id).await?;
        let imports: Vec<souk_store::licenses::Import> =
            crate::licenses::recent_imports(state, &caller, &org, product_id).await?;
        let importing = imports.iter().any(|i| i.status == "pending");
        let shown = match shown_id {
            Some(id) => Some(crate::licenses::get_import(state, &caller, &org, product_id, id).await?),
            None => imports.first().cloned(),
        };
        Ok(render(&PoolPage {
            ctx,
            org_id: org.to_string(),
            product_id: product_id.to_owned(),
            available,
            assigned,
            imports,
            shown,
            importing,
            message,
        }))
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub async fn license_pool(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path((org_id, product_id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    pool_page(&state, &ctx, &org_id, &product_id, q.get("import").map(String::as_str), None).await
}

/// The upload form is multipart: a CSV file, or codes pasted into the text area.
pub async fn upload_pool(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path((org_id, product_id)): Path<(String, String)>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    let Ok(mut multipart) = multipart else {
        return ctx.fail(Error::bad_request("invalid_multipart", "the form must be sent as multipart/form-data"));
    };
    let mut f: HashMap<String, String> = HashMap::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(part)) => {
                let name = part.name().unwrap_or("").to_owned();
                match part.bytes().await {
                    Ok(bytes) => {
                        f.insert(name, String::from_utf8_lossy(&bytes).into_owned());
                    }
                    Err(e) => return ctx.fail(crate::api::multipart_error(&e)),
                }
            }
            Ok(None) => break,
            Err(e) => return ctx.fail(crate::api::multipart_error(&e)),
        }
    }
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let Ok(org) = path_id::<OrgId>(&org_id) else { return ctx.fail(Error::not_found()) };
    let text = if field(&f, "file").trim().is_empty() { field(&f, "csv") } else { field(&f, "file") };
    match crate::licenses::start_import(&state, &caller, &org, &product_id, text).await {
        Ok(import) => {
            Redirect::to(&format!("/orgs/{org_id}/products/{product_id}/license-pool?import={}", import.id)).into_response()
        }
        Err(e) if e.status().is_client_error() && e.status() != axum::http::StatusCode::NOT_FOUND => {
            pool_page(&state, &ctx, &org_id, &product_id, None, Some(e.summary())).await
        }
        Err(e) => ctx.fail(e),
    }
}

#[derive(Template)]
#[template(path = "admin_failing.html")]
struct FailingPage<'a> {
    ctx: &'a PageCtx,
    rows: Vec<souk_store::fulfillment::Integration>,
}

/// Operators: seller endpoints that have failed every delivery for hours.
pub async fn failing(State(state): State<AppState>, ctx: PageCtx) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    match crate::fulfillment::failing_endpoints(&state, &caller).await {
        Ok(rows) => render(&FailingPage { ctx: &ctx, rows }),
        Err(e) => ctx.fail(e),
    }
}
