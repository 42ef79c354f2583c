//! Seller center and operator review over the JSON API.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use souk_core::catalog::{ProductContent, ProductKind};
use souk_core::id::{OrgId, ProductId, RevisionId};
use souk_core::site::Site;
use souk_store::calendars;
use souk_store::products::{self, Product, Revision, StoredPlan};
use souk_store::sellers::{self, Agreement, Seller};
use utoipa::ToSchema;

use super::ApiQueryStatus;
use crate::AppState;
use crate::auth::{Caller, Operator, OrgScope};
use crate::catalog::{self, Enforcement};
use crate::error::{Error, Problem, Result};
use crate::extract::{ApiJson, ApiQuery, RequestId, path_id};

#[derive(Debug, Serialize, ToSchema)]
pub struct AgreementOut {
    pub id: String,
    pub kind: String,
    pub version: i64,
    pub title: String,
    pub body: String,
    pub effective_at: DateTime<Utc>,
    pub published_at: DateTime<Utc>,
}

impl From<&Agreement> for AgreementOut {
    fn from(a: &Agreement) -> Self {
        Self {
            id: a.id.clone(),
            kind: a.kind.clone(),
            version: a.version,
            title: a.title.clone(),
            body: a.body.clone(),
            effective_at: a.effective_at,
            published_at: a.published_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgreementList {
    pub items: Vec<AgreementOut>,
}

/// The platform agreements in force now.
#[utoipa::path(get, path = "/agreements", tag = "catalog", responses((status = 200, body = AgreementList)))]
pub async fn current_agreements(State(state): State<AppState>) -> Result<Json<AgreementList>> {
    let list = sellers::current_agreements(&mut state.db.clone(), state.clock.now()).await?;
    Ok(Json(AgreementList { items: list.iter().map(AgreementOut::from).collect() }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishAgreementIn {
    /// e.g. `seller-agreement`; publishing again makes the next version.
    pub kind: String,
    pub title: String,
    pub body: String,
    /// Default: now.
    pub effective_at: Option<DateTime<Utc>>,
}

/// Publish a new version of a platform agreement (operators). Sellers must accept it
/// before submitting anything once it is in force.
#[utoipa::path(post, path = "/admin/agreements", tag = "admin", request_body = PublishAgreementIn,
    responses((status = 201, body = AgreementOut), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn publish_agreement(
    State(state): State<AppState>,
    Operator(caller): Operator,
    rid: RequestId,
    ApiJson(input): ApiJson<PublishAgreementIn>,
) -> Result<Response> {
    let a =
        catalog::publish_agreement(&state, &caller, &input.kind, &input.title, &input.body, input.effective_at, rid.as_deref())
            .await?;
    Ok((StatusCode::CREATED, Json(AgreementOut::from(&a))).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SellerOut {
    pub org_id: String,
    pub org_name: String,
    /// `applied`, `approved`, `rejected` or `suspended`.
    pub status: String,
    pub applied_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

impl From<&Seller> for SellerOut {
    fn from(s: &Seller) -> Self {
        Self {
            org_id: s.org_id.clone(),
            org_name: s.org_name.clone(),
            status: s.status.clone(),
            applied_at: s.applied_at,
            decided_at: s.decided_at,
            reason: s.reason.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgreementStatus {
    pub agreement: AgreementOut,
    pub accepted: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SellerStandingOut {
    /// Null until the organization applies to sell.
    pub seller: Option<SellerOut>,
    pub agreements: Vec<AgreementStatus>,
}

/// The organization's standing as a seller and the agreements it must accept.
#[utoipa::path(get, path = "/orgs/{org_id}/seller", tag = "catalog", responses((status = 200, body = SellerStandingOut), (status = 404, body = Problem)))]
pub async fn seller_standing(
    State(state): State<AppState>,
    OrgScope { org_id, .. }: OrgScope,
) -> Result<Json<SellerStandingOut>> {
    let s = catalog::standing(&state, &org_id).await?;
    let missing: Vec<&str> = s.missing_agreements.iter().map(|a| a.id.as_str()).collect();
    Ok(Json(SellerStandingOut {
        seller: s.seller.as_ref().map(SellerOut::from),
        agreements: s
            .current_agreements
            .iter()
            .map(|a| AgreementStatus { agreement: a.into(), accepted: !missing.contains(&a.id.as_str()) })
            .collect(),
    }))
}

/// Accept a platform agreement for the organization (owner or admin).
#[utoipa::path(post, path = "/orgs/{org_id}/seller/agreements/{agreement_id}/accept", tag = "catalog",
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn accept_agreement(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    Path((_org, agreement_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    catalog::accept_agreement(&state, &caller, &org_id, &agreement_id, rid.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Apply to sell (owner or admin of a verified enterprise that accepted the agreements).
#[utoipa::path(post, path = "/orgs/{org_id}/seller/apply", tag = "catalog",
    responses((status = 201, body = SellerOut), (status = 409, body = Problem)))]
pub async fn apply_to_sell(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
) -> Result<Response> {
    let s = catalog::apply_to_sell(&state, &caller, &org_id, rid.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(SellerOut::from(&s))).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SellerList {
    pub items: Vec<SellerOut>,
}

/// Sellers by status, oldest application first (operators). Default status: `applied`.
#[utoipa::path(get, path = "/admin/sellers", tag = "admin", params(ApiQueryStatus),
    responses((status = 200, body = SellerList), (status = 403, body = Problem)))]
pub async fn list_sellers(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ApiQueryStatus>,
) -> Result<Json<SellerList>> {
    caller.staff(souk_core::identity::StaffRole::Operator)?;
    let status = query.status.as_deref().unwrap_or("applied");
    if !["applied", "approved", "rejected", "suspended"].contains(&status) {
        return Err(Error::bad_request("invalid_query", "status must be applied, approved, rejected or suspended"));
    }
    let list = sellers::list(&mut state.db.clone(), status).await?;
    Ok(Json(SellerList { items: list.iter().map(SellerOut::from).collect() }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SellerDecisionIn {
    pub approve: bool,
    pub reason: Option<String>,
}

/// Approve or reject an application to sell (operators).
#[utoipa::path(post, path = "/admin/sellers/{org_id}/decision", tag = "admin", request_body = SellerDecisionIn,
    responses((status = 200, body = SellerOut), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn decide_seller(
    State(state): State<AppState>,
    Operator(caller): Operator,
    rid: RequestId,
    Path(org_id): Path<String>,
    ApiJson(input): ApiJson<SellerDecisionIn>,
) -> Result<Json<SellerOut>> {
    let org_id: OrgId = path_id(&org_id)?;
    let s = catalog::decide_seller(&state, &caller, &org_id, input.approve, input.reason.as_deref(), rid.as_deref()).await?;
    Ok(Json(SellerOut::from(&s)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnforcementIn {
    /// `warn`, `suspend`, `reinstate`, `delist` or `relist`.
    pub action: String,
    pub reason: String,
    /// For `delist` and `relist`.
    pub product_id: Option<String>,
}

/// Act on a violation (operators): warn or suspend a seller, delist a product; audited
/// and announced to the seller.
#[utoipa::path(post, path = "/admin/sellers/{org_id}/enforcement", tag = "admin", request_body = EnforcementIn,
    responses((status = 204), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn enforce(
    State(state): State<AppState>,
    Operator(caller): Operator,
    rid: RequestId,
    Path(org_id): Path<String>,
    ApiJson(input): ApiJson<EnforcementIn>,
) -> Result<StatusCode> {
    let org_id: OrgId = path_id(&org_id)?;
    let action = Enforcement::parse(&input.action)
        .ok_or_else(|| Error::field("action", "must be warn, suspend, reinstate, delist or relist"))?;
    let product = match input.product_id.as_deref() {
        Some(p) => Some(ProductId::parse(p).map_err(|_| Error::field("product_id", "is not a product id"))?),
        None => None,
    };
    catalog::enforce(&state, &caller, &org_id, action, product.as_ref(), &input.reason, rid.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarDayIn {
    /// false: a holiday; true: a working day (a weekend made up); null: the ordinary week.
    pub working: Option<bool>,
}

/// Mark a date on a site's working-day calendar (operators).
#[utoipa::path(put, path = "/admin/calendars/{site}/{date}", tag = "admin", request_body = CalendarDayIn,
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn set_calendar_day(
    State(state): State<AppState>,
    Operator(caller): Operator,
    rid: RequestId,
    Path((site, date)): Path<(String, String)>,
    ApiJson(input): ApiJson<CalendarDayIn>,
) -> Result<StatusCode> {
    let operator = caller.account()?;
    let site = Site::parse(&site).map_err(|_| Error::not_found())?;
    let day =
        NaiveDate::parse_from_str(&date, "%Y-%m-%d").map_err(|_| Error::bad_request("invalid_date", "dates are YYYY-MM-DD"))?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    calendars::set_day(&mut tx, site, day, input.working).await?;
    souk_store::audit::record(
        &mut tx,
        now,
        souk_store::audit::NewEntry {
            actor: operator.id.as_str(),
            actor_org: None,
            action: "calendar.changed",
            target: &format!("{}:{date}", site.as_str()),
            summary: format!(
                "{date} on {} is {}",
                site.as_str(),
                match input.working {
                    Some(true) => "a working day",
                    Some(false) => "a holiday",
                    None => "an ordinary day",
                }
            ),
            request_id: rid.as_deref(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReasonOut {
    /// The field the reason is about; empty for a general reason.
    pub field: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevisionOut {
    pub id: String,
    pub product_id: String,
    pub number: i64,
    /// `draft`, `submitted`, `in_review`, `approved`, `rejected` or `withdrawn`.
    pub state: String,
    #[schema(value_type = Object)]
    pub content: ProductContent,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    /// The review deadline: 3 working days after submission.
    pub sla_due_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    pub reasons: Vec<ReasonOut>,
}

impl From<&Revision> for RevisionOut {
    fn from(r: &Revision) -> Self {
        Self {
            id: r.id.to_string(),
            product_id: r.product_id.to_string(),
            number: r.number,
            state: r.state.as_str().to_owned(),
            content: r.content.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            submitted_at: r.submitted_at,
            sla_due_at: r.sla_due_at,
            decided_at: r.decided_at,
            reasons: r.reasons.iter().map(|(f, r)| ReasonOut { field: f.clone(), reason: r.clone() }).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanOut {
    pub id: String,
    pub code: String,
    #[schema(value_type = Object)]
    pub spec: souk_core::catalog::Plan,
    pub retired_at: Option<DateTime<Utc>>,
}

impl From<&StoredPlan> for PlanOut {
    fn from(p: &StoredPlan) -> Self {
        Self { id: p.id.to_string(), code: p.code.clone(), spec: p.spec.clone(), retired_at: p.retired_at }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductOut {
    pub id: String,
    pub seller_org_id: String,
    /// `saas`, `image`, `license` or `service`.
    pub kind: String,
    /// The seller wants it listed.
    pub listed: bool,
    /// Set when an operator delisted it.
    pub delisted_reason: Option<String>,
    /// The approved revision buyers see.
    pub live: Option<RevisionOut>,
    /// The draft or submission in progress.
    pub open: Option<RevisionOut>,
    /// Sellable plans, including retired ones.
    pub plans: Vec<PlanOut>,
}

async fn product_out(state: &AppState, p: &Product) -> Result<ProductOut> {
    let mut db = state.db.clone();
    let live = match &p.live_revision_id {
        Some(id) => Some(products::get_revision(&mut db, id).await?),
        None => None,
    };
    let open = products::open_revision(&mut db, &p.id).await?;
    let plans = products::plans(&mut db, &p.id, true).await?;
    Ok(ProductOut::new(p, live.as_ref(), open.as_ref(), &plans))
}

impl ProductOut {
    fn new(p: &Product, live: Option<&Revision>, open: Option<&Revision>, plans: &[StoredPlan]) -> Self {
        Self {
            id: p.id.to_string(),
            seller_org_id: p.seller_org_id.to_string(),
            kind: p.kind.as_str().to_owned(),
            listed: p.listed,
            delisted_reason: p.delisted_reason.clone(),
            live: live.map(RevisionOut::from),
            open: open.map(RevisionOut::from),
            plans: plans.iter().map(PlanOut::from).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductList {
    pub items: Vec<ProductOut>,
}

/// The seller's products.
#[utoipa::path(get, path = "/orgs/{org_id}/products", tag = "catalog", responses((status = 200, body = ProductList), (status = 404, body = Problem)))]
pub async fn list_products(State(state): State<AppState>, OrgScope { org_id, .. }: OrgScope) -> Result<Json<ProductList>> {
    let items = products::list_for_seller_in_full(&mut state.db.clone(), &org_id)
        .await?
        .iter()
        .map(|p| ProductOut::new(&p.product, p.live.as_ref(), p.open.as_ref(), &p.plans))
        .collect();
    Ok(Json(ProductList { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProductIn {
    /// `saas`, `image`, `license` or `service`; fixed once created.
    pub kind: String,
    /// The draft: name, summary, description (Markdown), category, tags, support contacts,
    /// sites, image details (image products) and plans. Incomplete drafts may be saved.
    #[schema(value_type = Object)]
    #[serde(default)]
    #[serde(deserialize_with = "crate::extract::object")]
    pub content: ProductContent,
}

/// Create a product as a draft (approved sellers).
#[utoipa::path(post, path = "/orgs/{org_id}/products", tag = "catalog", request_body = CreateProductIn,
    responses((status = 201, body = ProductOut), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_product(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    ApiJson(input): ApiJson<CreateProductIn>,
) -> Result<Response> {
    let kind = ProductKind::parse(&input.kind).ok_or_else(|| Error::field("kind", "must be saas, image, license or service"))?;
    let (p, _) = catalog::create_product(&state, &caller, &org_id, kind, input.content, rid.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(product_out(&state, &p).await?)).into_response())
}

async fn seller_product(state: &AppState, org: &OrgId, raw: &str) -> Result<Product> {
    let id: ProductId = path_id(raw)?;
    Ok(products::get_for_seller(&mut state.db.clone(), org, &id).await?)
}

/// One of the seller's products, with its live and open revisions.
#[utoipa::path(get, path = "/orgs/{org_id}/products/{product_id}", tag = "catalog", responses((status = 200, body = ProductOut), (status = 404, body = Problem)))]
pub async fn get_product(
    State(state): State<AppState>,
    OrgScope { org_id, .. }: OrgScope,
    Path((_org, product_id)): Path<(String, String)>,
) -> Result<Json<ProductOut>> {
    let p = seller_product(&state, &org_id, &product_id).await?;
    Ok(Json(product_out(&state, &p).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftIn {
    #[schema(value_type = Object)]
    #[serde(deserialize_with = "crate::extract::object")]
    pub content: ProductContent,
}

/// Save the draft (opens a new revision when editing a listed product).
#[utoipa::path(put, path = "/orgs/{org_id}/products/{product_id}/draft", tag = "catalog", request_body = DraftIn,
    responses((status = 200, body = RevisionOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn save_draft(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    Path((_org, product_id)): Path<(String, String)>,
    ApiJson(input): ApiJson<DraftIn>,
) -> Result<Json<RevisionOut>> {
    let p = seller_product(&state, &org_id, &product_id).await?;
    let r = catalog::save_draft(&state, &caller, &org_id, &p.id, input.content, rid.as_deref()).await?;
    Ok(Json(RevisionOut::from(&r)))
}

/// Submit the draft for review (due in 3 working days).
#[utoipa::path(post, path = "/orgs/{org_id}/products/{product_id}/submit", tag = "catalog",
    responses((status = 200, body = RevisionOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn submit(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    Path((_org, product_id)): Path<(String, String)>,
) -> Result<Json<RevisionOut>> {
    let p = seller_product(&state, &org_id, &product_id).await?;
    Ok(Json(RevisionOut::from(&catalog::submit(&state, &caller, &org_id, &p.id, rid.as_deref()).await?)))
}

/// Withdraw the draft or the undecided submission.
#[utoipa::path(post, path = "/orgs/{org_id}/products/{product_id}/withdraw", tag = "catalog",
    responses((status = 200, body = RevisionOut), (status = 409, body = Problem)))]
pub async fn withdraw(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    Path((_org, product_id)): Path<(String, String)>,
) -> Result<Json<RevisionOut>> {
    let p = seller_product(&state, &org_id, &product_id).await?;
    Ok(Json(RevisionOut::from(&catalog::withdraw(&state, &caller, &org_id, &p.id, rid.as_deref()).await?)))
}

/// List an approved product in the storefront.
#[utoipa::path(post, path = "/orgs/{org_id}/products/{product_id}/list", tag = "catalog",
    responses((status = 200, body = ProductOut), (status = 409, body = Problem)))]
pub async fn list_product(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    Path((_org, product_id)): Path<(String, String)>,
) -> Result<Json<ProductOut>> {
    let p = seller_product(&state, &org_id, &product_id).await?;
    let p = catalog::set_listed(&state, &caller, &org_id, &p.id, true, rid.as_deref()).await?;
    Ok(Json(product_out(&state, &p).await?))
}

/// Take a product off the storefront (running subscriptions continue).
#[utoipa::path(post, path = "/orgs/{org_id}/products/{product_id}/delist", tag = "catalog",
    responses((status = 200, body = ProductOut), (status = 404, body = Problem)))]
pub async fn delist_product(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    Path((_org, product_id)): Path<(String, String)>,
) -> Result<Json<ProductOut>> {
    let p = seller_product(&state, &org_id, &product_id).await?;
    let p = catalog::set_listed(&state, &caller, &org_id, &p.id, false, rid.as_deref()).await?;
    Ok(Json(product_out(&state, &p).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationList {
    pub items: Vec<RevisionOut>,
}

/// "My applications": every revision with its review state and reasons.
#[utoipa::path(get, path = "/orgs/{org_id}/applications", tag = "catalog", responses((status = 200, body = ApplicationList), (status = 404, body = Problem)))]
pub async fn applications(State(state): State<AppState>, OrgScope { org_id, .. }: OrgScope) -> Result<Json<ApplicationList>> {
    let list = products::applications(&mut state.db.clone(), &org_id).await?;
    Ok(Json(ApplicationList { items: list.iter().map(RevisionOut::from).collect() }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueEntryOut {
    pub revision: RevisionOut,
    pub kind: String,
    pub seller_org_id: String,
    pub seller_name: String,
    /// An edit of a product already live.
    pub is_update: bool,
    /// `on_track`, `at_risk` (less than a working day left) or `breached`.
    pub sla_status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewQueue {
    pub items: Vec<QueueEntryOut>,
}

/// Product submissions by SLA deadline, soonest first (operators).
#[utoipa::path(get, path = "/admin/reviews/products", tag = "admin", responses((status = 200, body = ReviewQueue), (status = 403, body = Problem)))]
pub async fn review_queue(State(state): State<AppState>, caller: Caller) -> Result<Json<ReviewQueue>> {
    let items = catalog::review_queue(&state, &caller)
        .await?
        .into_iter()
        .map(|e| QueueEntryOut {
            revision: RevisionOut::from(&e.item.revision),
            kind: e.item.kind.as_str().to_owned(),
            seller_org_id: e.item.seller_org_id,
            seller_name: e.item.seller_name,
            is_update: e.item.is_update,
            sla_status: serde_json::to_value(e.sla).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        })
        .collect();
    Ok(Json(ReviewQueue { items }))
}

/// Take a submission into review (operators).
#[utoipa::path(post, path = "/admin/reviews/products/{revision_id}/start", tag = "admin",
    responses((status = 200, body = RevisionOut), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn start_review(
    State(state): State<AppState>,
    Operator(caller): Operator,
    rid: RequestId,
    Path(revision_id): Path<String>,
) -> Result<Json<RevisionOut>> {
    let id: RevisionId = path_id(&revision_id)?;
    Ok(Json(RevisionOut::from(&catalog::start_review(&state, &caller, &id, rid.as_deref()).await?)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonIn {
    /// The field, as in `plans[0].prices`; empty for a general reason.
    #[serde(default)]
    pub field: String,
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewDecisionIn {
    pub approve: bool,
    /// Required when rejecting: at least one reason.
    #[serde(default)]
    pub reasons: Vec<ReasonIn>,
}

/// Approve (the revision goes live) or reject with reasons per field (operators).
#[utoipa::path(post, path = "/admin/reviews/products/{revision_id}/decision", tag = "admin", request_body = ReviewDecisionIn,
    responses((status = 200, body = RevisionOut), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn decide(
    State(state): State<AppState>,
    Operator(caller): Operator,
    rid: RequestId,
    Path(revision_id): Path<String>,
    ApiJson(input): ApiJson<ReviewDecisionIn>,
) -> Result<Json<RevisionOut>> {
    let id: RevisionId = path_id(&revision_id)?;
    let reasons = input.reasons.into_iter().map(|r| (r.field, r.reason)).collect();
    Ok(Json(RevisionOut::from(&catalog::decide(&state, &caller, &id, input.approve, reasons, rid.as_deref()).await?)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShopRevisionOut {
    pub id: String,
    pub org_id: String,
    pub number: i64,
    pub state: String,
    /// banner, introduction (Markdown), featured (product ids), contact_email, contact_phone.
    #[schema(value_type = Object)]
    pub content: souk_core::catalog::ShopContent,
    pub submitted_at: Option<DateTime<Utc>>,
    pub sla_due_at: Option<DateTime<Utc>>,
    pub decided_at: Option<DateTime<Utc>>,
    pub reasons: Vec<ReasonOut>,
}

impl From<&souk_store::shops::ShopRevision> for ShopRevisionOut {
    fn from(r: &souk_store::shops::ShopRevision) -> Self {
        Self {
            id: r.id.to_string(),
            org_id: r.org_id.to_string(),
            number: r.number,
            state: r.state.as_str().to_owned(),
            content: r.content.clone(),
            submitted_at: r.submitted_at,
            sla_due_at: r.sla_due_at,
            decided_at: r.decided_at,
            reasons: r.reasons.iter().map(|(f, r)| ReasonOut { field: f.clone(), reason: r.clone() }).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShopOut {
    /// What buyers see now.
    pub live: Option<ShopRevisionOut>,
    /// The draft or submission in progress.
    pub open: Option<ShopRevisionOut>,
}

/// The organization's shop page: published and in progress.
#[utoipa::path(get, path = "/orgs/{org_id}/shop", tag = "catalog", responses((status = 200, body = ShopOut), (status = 404, body = Problem)))]
pub async fn get_shop(State(state): State<AppState>, OrgScope { org_id, .. }: OrgScope) -> Result<Json<ShopOut>> {
    let mut db = state.db.clone();
    let live = souk_store::shops::live(&mut db, &org_id).await?;
    let open = souk_store::shops::open(&mut db, &org_id).await?;
    Ok(Json(ShopOut { live: live.as_ref().map(ShopRevisionOut::from), open: open.as_ref().map(ShopRevisionOut::from) }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShopDraftIn {
    #[schema(value_type = Object)]
    #[serde(deserialize_with = "crate::extract::object")]
    pub content: souk_core::catalog::ShopContent,
}

/// Save the shop page draft (approved sellers).
#[utoipa::path(put, path = "/orgs/{org_id}/shop/draft", tag = "catalog", request_body = ShopDraftIn,
    responses((status = 200, body = ShopRevisionOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn save_shop_draft(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    ApiJson(input): ApiJson<ShopDraftIn>,
) -> Result<Json<ShopRevisionOut>> {
    let r = catalog::save_shop_draft(&state, &caller, &org_id, input.content, rid.as_deref()).await?;
    Ok(Json(ShopRevisionOut::from(&r)))
}

/// Submit the shop page for review (3 working days).
#[utoipa::path(post, path = "/orgs/{org_id}/shop/submit", tag = "catalog",
    responses((status = 200, body = ShopRevisionOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn submit_shop(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
) -> Result<Json<ShopRevisionOut>> {
    Ok(Json(ShopRevisionOut::from(&catalog::submit_shop(&state, &caller, &org_id, rid.as_deref()).await?)))
}

/// Withdraw the shop page draft or submission.
#[utoipa::path(post, path = "/orgs/{org_id}/shop/withdraw", tag = "catalog", responses((status = 204), (status = 409, body = Problem)))]
pub async fn withdraw_shop(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
) -> Result<StatusCode> {
    catalog::withdraw_shop(&state, &caller, &org_id, rid.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShopQueueEntry {
    pub revision: ShopRevisionOut,
    pub org_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShopQueue {
    pub items: Vec<ShopQueueEntry>,
}

/// Shop pages waiting for review, by deadline (operators).
#[utoipa::path(get, path = "/admin/reviews/shops", tag = "admin", responses((status = 200, body = ShopQueue), (status = 403, body = Problem)))]
pub async fn shop_queue(State(state): State<AppState>, Operator(_caller): Operator) -> Result<Json<ShopQueue>> {
    let items = souk_store::shops::queue(&mut state.db.clone())
        .await?
        .iter()
        .map(|(r, name)| ShopQueueEntry { revision: r.into(), org_name: name.clone() })
        .collect();
    Ok(Json(ShopQueue { items }))
}

/// Approve (publish) or reject a shop page (operators).
#[utoipa::path(post, path = "/admin/reviews/shops/{revision_id}/decision", tag = "admin", request_body = ReviewDecisionIn,
    responses((status = 200, body = ShopRevisionOut), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn decide_shop(
    State(state): State<AppState>,
    Operator(caller): Operator,
    rid: RequestId,
    Path(revision_id): Path<String>,
    ApiJson(input): ApiJson<ReviewDecisionIn>,
) -> Result<Json<ShopRevisionOut>> {
    let id: souk_core::id::ShopRevisionId = path_id(&revision_id)?;
    let reasons = input.reasons.into_iter().map(|r| (r.field, r.reason)).collect();
    Ok(Json(ShopRevisionOut::from(&catalog::decide_shop(&state, &caller, &id, input.approve, reasons, rid.as_deref()).await?)))
}
