//! Sellers' integration settings, delivery log and redelivery.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{PageQuery, next_cursor};
use crate::AppState;
use crate::auth::OrgScope;
use crate::error::{Problem, Result};
use crate::extract::{ApiJson, ApiQuery};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationIn {
    /// Where deliveries are POSTed: an http(s) URL of your system.
    pub endpoint: String,
    /// `native` (docs/PROTOCOL.md) or `koogallery` (KooGallery SaaS V2.0 calls).
    #[serde(default = "native")]
    pub protocol: String,
    /// `koogallery` only: keep your existing KooGallery access key (one is made otherwise).
    pub access_key: Option<String>,
    /// `koogallery` only: the base URL of your joint-operation sync APIs; enterprise user
    /// authorization is POSTed to `…/produceAPI/v2/authSync`.
    pub sync_url: Option<String>,
    /// `koogallery` only: the sync APIs' own access key (without one the basic key signs).
    pub sync_access_key: Option<String>,
    /// `koogallery` only: ask your system (`changeInstanceCheck`) before every plan change.
    #[serde(default)]
    pub change_check: bool,
}

fn native() -> String {
    "native".into()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationOut {
    pub product_id: String,
    pub endpoint: String,
    pub protocol: String,
    /// A rotation is under way: deliveries carry the new and the previous signature.
    pub rotating: bool,
    /// KooGallery: where enterprise user authorization goes.
    pub sync_url: Option<String>,
    /// KooGallery: the sync APIs have their own access key.
    pub sync_key_set: bool,
    /// KooGallery: plan changes are checked with the seller first.
    pub change_check: bool,
    pub rotated_at: Option<DateTime<Utc>>,
    /// The signing secret (`whsec_…`, or the KooGallery access key), only in the answer that
    /// created it: keep it now.
    pub secret: Option<String>,
}

impl IntegrationOut {
    fn new(i: &souk_store::fulfillment::Integration, secret: Option<String>) -> Self {
        Self {
            product_id: i.product_id.clone(),
            endpoint: i.endpoint.clone(),
            protocol: i.protocol.clone(),
            rotating: i.previous_sealed.is_some(),
            sync_url: i.sync_url.clone(),
            sync_key_set: i.sync_key_sealed.is_some(),
            change_check: i.change_check,
            rotated_at: i.rotated_at,
            secret,
        }
    }
}

/// Set where a product's deliveries go. The first time, the answer holds the signing secret.
#[utoipa::path(put, path = "/orgs/{org_id}/products/{product_id}/integration", tag = "fulfillment", request_body = IntegrationIn,
    responses((status = 200, body = IntegrationOut), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn configure(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    Path((_org, product_id)): Path<(String, String)>,
    ApiJson(input): ApiJson<IntegrationIn>,
) -> Result<Json<IntegrationOut>> {
    let s = crate::fulfillment::configure(
        &state,
        &caller,
        &org_id,
        &product_id,
        crate::fulfillment::IntegrationInput {
            endpoint: &input.endpoint,
            protocol: &input.protocol,
            access_key: input.access_key.as_deref(),
            sync_url: input.sync_url.as_deref(),
            sync_access_key: input.sync_access_key.as_deref(),
            change_check: input.change_check,
        },
    )
    .await?;
    Ok(Json(IntegrationOut::new(&s.integration, s.new_secret)))
}

/// A product's integration settings (never its secrets).
#[utoipa::path(get, path = "/orgs/{org_id}/products/{product_id}/integration", tag = "fulfillment",
    responses((status = 200, body = IntegrationOut), (status = 404, body = Problem)))]
pub async fn get_integration(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    Path((_org, product_id)): Path<(String, String)>,
) -> Result<Json<IntegrationOut>> {
    let i = crate::fulfillment::settings(&state, &caller, &org_id, &product_id).await?;
    Ok(Json(IntegrationOut::new(&i, None)))
}

/// Start rotating the signing secret: the answer holds the new one; deliveries carry both
/// signatures until the rotation is finished.
#[utoipa::path(post, path = "/orgs/{org_id}/products/{product_id}/integration/rotate", tag = "fulfillment",
    responses((status = 200, body = IntegrationOut), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn rotate(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    Path((_org, product_id)): Path<(String, String)>,
) -> Result<Json<IntegrationOut>> {
    let secret = crate::fulfillment::rotate(&state, &caller, &org_id, &product_id).await?;
    let i = crate::fulfillment::settings(&state, &caller, &org_id, &product_id).await?;
    Ok(Json(IntegrationOut::new(&i, Some(secret))))
}

/// Finish a rotation: only the new secret signs from now on.
#[utoipa::path(post, path = "/orgs/{org_id}/products/{product_id}/integration/finish-rotation", tag = "fulfillment",
    responses((status = 200, body = IntegrationOut), (status = 404, body = Problem)))]
pub async fn finish_rotation(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    Path((_org, product_id)): Path<(String, String)>,
) -> Result<Json<IntegrationOut>> {
    let i = crate::fulfillment::finish_rotation(&state, &caller, &org_id, &product_id).await?;
    Ok(Json(IntegrationOut::new(&i, None)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    pub subscription_id: Option<String>,
    pub event_id: Option<String>,
    /// `true`: successful attempts only; `false`: failed ones only.
    pub ok: Option<bool>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    pub id: String,
    pub event_id: String,
    /// `instance.create`, …
    pub topic: String,
    pub subscription_id: String,
    pub attempt: i64,
    pub url: String,
    /// Exactly what was sent.
    pub request_body: String,
    /// The seller's HTTP status; absent when no answer came (refused, timeout, connection).
    pub status: Option<i64>,
    /// The start of the seller's answer.
    pub response_excerpt: Option<String>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
    /// When the event is tried next, if it is waiting for a retry.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// The event: `pending`, `done` or `dead`.
    pub event_status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub items: Vec<DeliveryOut>,
    pub next_cursor: Option<String>,
}

/// The seller's delivery log: every attempt, newest first.
#[utoipa::path(get, path = "/orgs/{org_id}/deliveries", tag = "fulfillment", params(DeliveryQuery),
    responses((status = 200, body = DeliveryList), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn log(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> Result<Json<DeliveryList>> {
    caller.role_in(&state, &org_id).await?;
    let page = PageQuery { cursor: q.cursor, limit: q.limit };
    let filter = souk_store::fulfillment::DeliveryFilter {
        subscription_id: q.subscription_id,
        event_id: q.event_id,
        ok: q.ok,
        before: page.after()?,
        limit: page.limit()?,
    };
    let mut db = state.db.clone();
    let rows = souk_store::fulfillment::log(&mut db, &org_id, &filter).await?;
    let next = next_cursor(rows.last().map(|d| d.id.as_str()), rows.len(), filter.limit);
    let mut items = Vec::with_capacity(rows.len());
    for d in rows {
        let event = match souk_core::id::EventId::parse(&d.event_id) {
            Ok(id) => souk_store::outbox::get(&mut db, &id).await.ok(),
            Err(_) => None,
        };
        let (event_status, next_retry_at) = match &event {
            Some(e) if e.status == "pending" => (e.status.clone(), Some(e.due_at)),
            Some(e) => (e.status.clone(), None),
            None => (String::new(), None),
        };
        items.push(DeliveryOut {
            id: d.id,
            event_id: d.event_id,
            topic: d.topic,
            subscription_id: d.subscription_id,
            attempt: d.attempt,
            url: d.url,
            request_body: d.request_body,
            status: d.status,
            response_excerpt: d.response_excerpt,
            latency_ms: d.latency_ms,
            error: d.error,
            at: d.at,
            next_retry_at,
            event_status,
        });
    }
    Ok(Json(DeliveryList { items, next_cursor: next }))
}

/// Send an event again now (after fixing your endpoint, say).
#[utoipa::path(post, path = "/orgs/{org_id}/deliveries/{event_id}/redeliver", tag = "fulfillment",
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn redeliver(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    Path((_org, event_id)): Path<(String, String)>,
) -> Result<axum::http::StatusCode> {
    crate::fulfillment::redeliver(&state, &caller, &org_id, &event_id).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolIn {
    /// One code per line, or CSV whose first column is the code (a `code` header is skipped).
    pub csv: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolRowError {
    pub line: usize,
    pub error: String,
}

/// An upload of codes, imported in the background.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportOut {
    pub id: String,
    /// `pending` while codes are going into the pool, then `done`.
    pub status: String,
    /// Distinct valid codes in the file.
    pub total: i64,
    /// Of those, how many have gone through the pool so far (the progress).
    pub processed: i64,
    /// Of those, how many were new to the pool.
    pub added: i64,
    /// Repeated in the file, or (once done) already in the pool.
    pub duplicates: i64,
    /// Rows refused, with why.
    pub errors: Vec<PoolRowError>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<souk_store::licenses::Import> for ImportOut {
    fn from(i: souk_store::licenses::Import) -> Self {
        Self {
            duplicates: i.duplicates_total(),
            id: i.id,
            status: i.status,
            total: i.total,
            processed: i.processed,
            added: i.added,
            errors: i.errors.into_iter().map(|(line, error)| PoolRowError { line, error }).collect(),
            created_at: i.created_at,
            finished_at: i.finished_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PoolOut {
    pub available: i64,
    pub assigned: i64,
    /// Fewer available codes than this warns you.
    pub low_stock_threshold: i64,
    /// The latest uploads, newest first.
    pub imports: Vec<ImportOut>,
}

/// Upload license codes into a product's pool (license-code products whose source is `pool`).
/// The file is checked at once (rows refused are in the answer); its codes are imported in the
/// background: follow the import's progress at `…/license-pool/imports/{import_id}`.
#[utoipa::path(post, path = "/orgs/{org_id}/products/{product_id}/license-pool", tag = "fulfillment", request_body = PoolIn,
    responses((status = 202, body = ImportOut), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn upload_pool(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    Path((_org, product_id)): Path<(String, String)>,
    ApiJson(input): ApiJson<PoolIn>,
) -> Result<(axum::http::StatusCode, Json<ImportOut>)> {
    let i = crate::licenses::start_import(&state, &caller, &org_id, &product_id, &input.csv).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(i.into())))
}

/// One upload's progress and report.
#[utoipa::path(get, path = "/orgs/{org_id}/products/{product_id}/license-pool/imports/{import_id}", tag = "fulfillment",
    responses((status = 200, body = ImportOut), (status = 404, body = Problem)))]
pub async fn get_import(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    Path((_org, product_id, import_id)): Path<(String, String, String)>,
) -> Result<Json<ImportOut>> {
    Ok(Json(crate::licenses::get_import(&state, &caller, &org_id, &product_id, &import_id).await?.into()))
}

/// A product's pool: codes available and assigned, and the latest uploads.
#[utoipa::path(get, path = "/orgs/{org_id}/products/{product_id}/license-pool", tag = "fulfillment",
    responses((status = 200, body = PoolOut), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn get_pool(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    Path((_org, product_id)): Path<(String, String)>,
) -> Result<Json<PoolOut>> {
    let (available, assigned) = crate::licenses::pool(&state, &caller, &org_id, &product_id).await?;
    let imports = crate::licenses::recent_imports(&state, &caller, &org_id, &product_id).await?;
    Ok(Json(PoolOut {
        available,
        assigned,
        low_stock_threshold: souk_core::license::LOW_STOCK,
        imports: imports.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LicenseIn {
    pub license: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LicenseOut {
    pub license: String,
    /// `alive`, `expired` (in the grace period) or `released`.
    pub status: String,
    pub product_id: String,
    pub plan_id: String,
    pub subscription_id: String,
    pub buyer_org_id: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    pub activations: i64,
}

impl From<crate::licenses::LicenseView> for LicenseOut {
    fn from(v: crate::licenses::LicenseView) -> Self {
        Self {
            license: v.license,
            status: v.status.as_str().to_owned(),
            product_id: v.product_id,
            plan_id: v.plan_id,
            subscription_id: v.subscription_id,
            buyer_org_id: v.buyer_org_id,
            expires_at: v.expires_at,
            activated_at: v.activated_at,
            activations: v.activations,
        }
    }
}

/// For the seller's software (with its organization's API key): what a license code of one of
/// your products is worth now.
#[utoipa::path(post, path = "/orgs/{org_id}/licenses/check", tag = "fulfillment", request_body = LicenseIn,
    responses((status = 200, body = LicenseOut), (status = 404, body = Problem)))]
pub async fn check_license(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    ApiJson(input): ApiJson<LicenseIn>,
) -> Result<Json<LicenseOut>> {
    Ok(Json(crate::licenses::check(&state, &caller, &org_id, &input.license, false).await?.into()))
}

/// For the seller's software: activate a code (refused unless it is alive).
#[utoipa::path(post, path = "/orgs/{org_id}/licenses/activate", tag = "fulfillment", request_body = LicenseIn,
    responses((status = 200, body = LicenseOut), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn activate_license(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    ApiJson(input): ApiJson<LicenseIn>,
) -> Result<Json<LicenseOut>> {
    Ok(Json(crate::licenses::check(&state, &caller, &org_id, &input.license, true).await?.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppUserOut {
    pub account_id: String,
    pub email: String,
    pub name: String,
    /// `admin` or `user`.
    pub role: String,
    /// Delivery of the last change to the seller's system: `pending`, `done` or `dead`.
    pub sync_status: Option<String>,
    pub sync_event_id: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl From<souk_store::app_users::AppUser> for AppUserOut {
    fn from(u: souk_store::app_users::AppUser) -> Self {
        Self {
            account_id: u.account_id,
            email: u.email,
            name: u.name,
            role: u.role,
            sync_status: u.sync_status,
            sync_event_id: u.sync_event_id,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppUserList {
    pub items: Vec<AppUserOut>,
}

/// The enterprise members authorized to use an application the enterprise bought.
#[utoipa::path(get, path = "/orgs/{org_id}/subscriptions/{subscription_id}/users", tag = "fulfillment",
    responses((status = 200, body = AppUserList), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn list_app_users(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    Path((_org, subscription_id)): Path<(String, String)>,
) -> Result<Json<AppUserList>> {
    let items = crate::authorizations::list(&state, &caller, &org_id, &subscription_id)
        .await?
        .into_iter()
        .map(AppUserOut::from)
        .collect();
    Ok(Json(AppUserList { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppUserIn {
    /// `admin` or `user`.
    pub role: String,
}

/// Let a member use the application, or change their role; the seller's system is told.
#[utoipa::path(put, path = "/orgs/{org_id}/subscriptions/{subscription_id}/users/{account_id}", tag = "fulfillment", request_body = AppUserIn,
    responses((status = 200, body = AppUserOut), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn grant_app_user(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    Path((_org, subscription_id, account_id)): Path<(String, String, String)>,
    ApiJson(input): ApiJson<AppUserIn>,
) -> Result<Json<AppUserOut>> {
    Ok(Json(crate::authorizations::grant(&state, &caller, &org_id, &subscription_id, &account_id, &input.role).await?.into()))
}

/// Take a member's access away; the seller's system is told.
#[utoipa::path(delete, path = "/orgs/{org_id}/subscriptions/{subscription_id}/users/{account_id}", tag = "fulfillment",
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn revoke_app_user(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    Path((_org, subscription_id, account_id)): Path<(String, String, String)>,
) -> Result<axum::http::StatusCode> {
    crate::authorizations::revoke(&state, &caller, &org_id, &subscription_id, &account_id).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FailingEndpointOut {
    pub product_id: String,
    pub seller_org_id: String,
    pub endpoint: String,
    /// Every delivery since then failed.
    pub failing_since: Option<DateTime<Utc>>,
    /// When operators were told.
    pub flagged_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FailingEndpointList {
    pub items: Vec<FailingEndpointOut>,
}

/// Seller endpoints that have failed every delivery for 6 hours or more (operators).
#[utoipa::path(get, path = "/admin/integrations/failing", tag = "admin",
    responses((status = 200, body = FailingEndpointList), (status = 403, body = Problem)))]
pub async fn failing_endpoints(
    State(state): State<AppState>,
    crate::auth::Operator(caller): crate::auth::Operator,
) -> Result<Json<FailingEndpointList>> {
    let items = crate::fulfillment::failing_endpoints(&state, &caller)
        .await?
        .into_iter()
        .map(|i| FailingEndpointOut {
            product_id: i.product_id,
            seller_org_id: i.seller_org_id,
            endpoint: i.endpoint,
            failing_since: i.failing_since,
            flagged_at: i.flagged_at,
        })
        .collect();
    Ok(Json(FailingEndpointList { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayKeyIn {
    /// What the pair is for (1 to 100 characters).
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GatewayKeyOut {
    /// The AK: the `Access=` of an `SDK-HMAC-SHA256` Authorization header.
    pub access_key: String,
    pub name: String,
    /// The SK, only in the answer that created it: keep it now.
    pub secret_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl GatewayKeyOut {
    fn new(k: &souk_store::gateway_keys::GatewayKey, secret_key: Option<String>) -> Self {
        Self {
            access_key: k.access_key.clone(),
            name: k.name.clone(),
            secret_key,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GatewayKeyList {
    pub items: Vec<GatewayKeyOut>,
}

/// Create an access key pair (AK/SK) for the KooGallery open APIs, signed as Huawei's API
/// gateway signs (`SDK-HMAC-SHA256`). The secret key is shown once.
#[utoipa::path(post, path = "/orgs/{org_id}/gateway-keys", tag = "fulfillment", request_body = GatewayKeyIn,
    responses((status = 201, body = GatewayKeyOut), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn create_gateway_key(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    ApiJson(input): ApiJson<GatewayKeyIn>,
) -> Result<(axum::http::StatusCode, Json<GatewayKeyOut>)> {
    let (key, secret) = crate::gateway::create(&state, &caller, &org_id, &input.name).await?;
    Ok((axum::http::StatusCode::CREATED, Json(GatewayKeyOut::new(&key, Some(secret)))))
}

/// The organization's access key pairs (never their secret keys).
#[utoipa::path(get, path = "/orgs/{org_id}/gateway-keys", tag = "fulfillment",
    responses((status = 200, body = GatewayKeyList), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list_gateway_keys(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
) -> Result<Json<GatewayKeyList>> {
    let keys = crate::gateway::list(&state, &caller, &org_id).await?;
    Ok(Json(GatewayKeyList { items: keys.iter().map(|k| GatewayKeyOut::new(k, None)).collect() }))
}

/// Revoke an access key pair.
#[utoipa::path(delete, path = "/orgs/{org_id}/gateway-keys/{access_key}", tag = "fulfillment",
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn revoke_gateway_key(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    Path((_org, access_key)): Path<(String, String)>,
) -> Result<axum::http::StatusCode> {
    crate::gateway::revoke(&state, &caller, &org_id, &access_key).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
