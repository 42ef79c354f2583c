use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use souk_store::coupons::{self, Coupon};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Operator, OrgScope};
use crate::commerce::{self, NewCoupon, QuoteRequest};
use crate::error::{Problem, Result};
use crate::extract::{ApiJson, ApiQuery, RequestId};
use crate::subscriptions::PlanChange;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteIn {
    pub product_id: String,
    pub plan_id: String,
    /// Months or years for periodic plans; 1 for one-time plans.
    #[serde(default = "one")]
    pub periods: u32,
    /// Seats for per-seat plans; otherwise 1.
    #[serde(default = "one")]
    pub quantity: u32,
    pub coupon_code: Option<String>,
    /// Machine-image orders only: the deployment wizard's answers (ignored by quotes).
    pub deployment: Option<DeploymentIn>,
}

fn one() -> u32 {
    1
}

/// Where and how to deploy a machine image: one server per unit of `quantity`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentIn {
    /// One of the image's regions.
    pub region: String,
    /// One of the image's flavors.
    pub flavor: String,
    /// System disk in GB; the image's minimum when absent.
    pub disk_gb: Option<u32>,
    pub vpc: String,
    pub subnet: String,
    pub security_group: String,
    /// Bandwidth of a public IP in Mbit/s (1 to 300); no public IP when absent.
    pub public_ip_mbps: Option<u32>,
    /// The server's name; several servers are named `name-1`, `name-2`, ...
    pub server_name: String,
    /// 8 to 26 characters, three of upper, lower, digit, special; not the user name.
    /// Handed to the compute provider, never stored in clear and never shown again.
    pub admin_password: String,
    /// The image's license and the terms of purchase are accepted.
    pub accept_agreement: bool,
}

impl std::fmt::Debug for DeploymentIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeploymentIn")
            .field("region", &self.region)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl From<&DeploymentIn> for souk_core::compute::DeployInput {
    fn from(d: &DeploymentIn) -> Self {
        Self {
            region: d.region.clone(),
            flavor: d.flavor.clone(),
            disk_gb: d.disk_gb,
            vpc: d.vpc.clone(),
            subnet: d.subnet.clone(),
            security_group: d.security_group.clone(),
            public_ip_mbps: d.public_ip_mbps,
            server_name: d.server_name.clone(),
            admin_password: d.admin_password.clone(),
            accept_agreement: d.accept_agreement,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuoteOut {
    pub currency: String,
    pub plan_name: String,
    pub unit_price_minor: i64,
    pub periods: u32,
    pub quantity: u32,
    /// unit price × periods × quantity.
    pub list_minor: i64,
    pub coupon_code: Option<String>,
    pub coupon_discount_minor: i64,
    /// What the buyer pays.
    pub total_minor: i64,
    /// The tax included in the total.
    pub tax_included_minor: i64,
    /// The total, formatted.
    pub total_display: String,
}

/// Price a purchase for the organization: list price, coupon, total and included tax.
#[utoipa::path(post, path = "/orgs/{org_id}/quotes", tag = "billing", request_body = QuoteIn,
    responses((status = 200, body = QuoteOut), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn quote(State(state): State<AppState>, scope: OrgScope, ApiJson(input): ApiJson<QuoteIn>) -> Result<Json<QuoteOut>> {
    let q = commerce::quote(
        &state,
        &scope.org(&state).await?,
        &QuoteRequest {
            product_id: &input.product_id,
            plan_id: &input.plan_id,
            periods: input.periods,
            quantity: input.quantity,
            coupon_code: input.coupon_code.as_deref(),
        },
    )
    .await?;
    Ok(Json(QuoteOut {
        currency: q.quote.currency.code().to_owned(),
        total_display: q.quote.total().to_string(),
        plan_name: q.plan_name,
        unit_price_minor: q.unit_price_minor,
        periods: q.periods,
        quantity: q.quantity,
        list_minor: q.quote.list_minor,
        coupon_code: q.coupon_code,
        coupon_discount_minor: q.quote.coupon_discount_minor,
        total_minor: q.quote.total_minor,
        tax_included_minor: q.quote.tax_included_minor,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponIn {
    /// 3 to 32 letters, digits or dashes; matched without regard to case.
    pub code: String,
    /// A percentage off, in basis points (1500 = 15%)…
    pub percent_bp: Option<u32>,
    /// …or a fixed amount off, in minor units, with its currency.
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    /// `any`, `seller`, `product` or `plan`.
    pub scope: String,
    /// The seller org, product or plan id for a narrower scope.
    pub scope_id: Option<String>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: DateTime<Utc>,
    /// Uses per buyer organization (default 1).
    pub per_buyer_limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CouponOut {
    pub id: String,
    pub code: String,
    #[schema(value_type = Object)]
    pub rule: souk_core::pricing::CouponRule,
    pub created_at: DateTime<Utc>,
}

impl From<&Coupon> for CouponOut {
    fn from(c: &Coupon) -> Self {
        Self { id: c.id.clone(), code: c.code.clone(), rule: c.rule.clone(), created_at: c.created_at }
    }
}

/// Issue a coupon (operators).
#[utoipa::path(post, path = "/admin/coupons", tag = "admin", request_body = CouponIn,
    responses((status = 201, body = CouponOut), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_coupon(
    State(state): State<AppState>,
    Operator(caller): Operator,
    rid: RequestId,
    ApiJson(input): ApiJson<CouponIn>,
) -> Result<Response> {
    let c = commerce::create_coupon(
        &state,
        &caller,
        NewCoupon {
            code: &input.code,
            percent_bp: input.percent_bp,
            amount_minor: input.amount_minor,
            currency: input.currency.as_deref(),
            scope: &input.scope,
            scope_id: input.scope_id.as_deref(),
            valid_from: input.valid_from,
            valid_until: input.valid_until,
            per_buyer_limit: input.per_buyer_limit.unwrap_or(1),
        },
        rid.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(CouponOut::from(&c))).into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CouponList {
    pub items: Vec<CouponOut>,
}

/// All coupons, newest first (operators).
#[utoipa::path(get, path = "/admin/coupons", tag = "admin", responses((status = 200, body = CouponList), (status = 403, body = Problem)))]
pub async fn list_coupons(State(state): State<AppState>, Operator(_caller): Operator) -> Result<Json<CouponList>> {
    let items = coupons::list(&mut state.db.clone()).await?.iter().map(CouponOut::from).collect();
    Ok(Json(CouponList { items }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderOut {
    pub id: String,
    pub state: String,
    pub kind: String,
    pub product_id: String,
    pub plan_id: String,
    pub subscription_id: String,
    pub currency: String,
    pub periods: i64,
    pub quantity: i64,
    pub list_minor: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
    pub tax_minor: i64,
    pub coupon_code: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&souk_store::orders::Order> for OrderOut {
    fn from(o: &souk_store::orders::Order) -> Self {
        Self {
            id: o.id.clone(),
            state: o.state.clone(),
            kind: o.kind.clone(),
            product_id: o.product_id.clone(),
            plan_id: o.plan_id.clone(),
            subscription_id: o.subscription_id.clone(),
            currency: o.currency.clone(),
            periods: o.periods,
            quantity: o.quantity,
            list_minor: o.list_minor,
            discount_minor: o.discount_minor,
            total_minor: o.total_minor,
            tax_minor: o.tax_minor,
            coupon_code: o.coupon_code.clone(),
            created_at: o.created_at,
        }
    }
}

/// Buy: the quote's price is taken from the wallet and the order, its subscription and the
/// seller's provisioning event are created together. Send an `Idempotency-Key`: a retry
/// returns the first order (200, `Idempotency-Replayed: true`), a retry sent while the first
/// is still being placed waits for it, and the same key for another purchase is a 422.
#[utoipa::path(post, path = "/orgs/{org_id}/orders", tag = "billing", request_body = QuoteIn,
    responses((status = 201, body = OrderOut), (status = 200, body = OrderOut, description = "an earlier order with this Idempotency-Key"),
              (status = 400, body = Problem), (status = 402, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn place_order(
    State(state): State<AppState>,
    scope: OrgScope,
    rid: RequestId,
    headers: axum::http::HeaderMap,
    ApiJson(input): ApiJson<QuoteIn>,
) -> Result<Response> {
    let key = crate::idempotency::key_of(&headers)?;
    let deployment = input.deployment.as_ref().map(souk_core::compute::DeployInput::from);
    let (order, created) = commerce::place_order(
        &state,
        &scope.caller,
        scope.role,
        &scope.org(&state).await?,
        &QuoteRequest {
            product_id: &input.product_id,
            plan_id: &input.plan_id,
            periods: input.periods,
            quantity: input.quantity,
            coupon_code: input.coupon_code.as_deref(),
        },
        deployment.as_ref(),
        key,
        rid.as_deref(),
    )
    .await?;
    let mut res = (if created { StatusCode::CREATED } else { StatusCode::OK }, Json(OrderOut::from(&order))).into_response();
    if !created {
        res.headers_mut().insert("idempotency-replayed", axum::http::HeaderValue::from_static("true"));
    }
    Ok(res)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderList {
    pub items: Vec<OrderOut>,
    pub next_cursor: Option<String>,
}

/// Filters of order lists; all optional.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OrderQuery {
    /// `pending_payment`, `paid`, `fulfilling`, `completed`, `fulfillment_failed`, `cancelled` or `refunded`.
    pub state: Option<String>,
    pub product_id: Option<String>,
    /// `new`, `renewal` or `upgrade`.
    pub kind: Option<String>,
    /// Placed at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Placed before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 100 (default 50).
    pub limit: Option<u32>,
}

const ORDER_STATES: &[&str] =
    &["pending_payment", "paid", "fulfilling", "completed", "fulfillment_failed", "cancelled", "refunded"];

impl OrderQuery {
    fn filter(self) -> Result<souk_store::orders::OrderFilter> {
        let page = super::PageQuery { cursor: self.cursor, limit: self.limit };
        if self.state.as_deref().is_some_and(|s| !ORDER_STATES.contains(&s)) {
            return Err(crate::error::Error::bad_request(
                "invalid_query",
                format!("state must be one of {}", ORDER_STATES.join(", ")),
            ));
        }
        if self.kind.as_deref().is_some_and(|k| !["new", "renewal", "upgrade"].contains(&k)) {
            return Err(crate::error::Error::bad_request("invalid_query", "kind must be new, renewal or upgrade"));
        }
        Ok(souk_store::orders::OrderFilter {
            state: self.state,
            product_id: self.product_id,
            kind: self.kind,
            from: self.from,
            to: self.to,
            before: page.after()?,
            limit: page.limit()?,
        })
    }
}

async fn order_list(
    state: &AppState,
    side: souk_store::orders::Side,
    org: &souk_core::id::OrgId,
    q: OrderQuery,
) -> Result<Json<OrderList>> {
    let filter = q.filter()?;
    let orders = souk_store::orders::list_filtered(&mut state.db.clone(), side, org, &filter).await?;
    let next_cursor = super::next_cursor(orders.last().map(|o| o.id.as_str()), orders.len(), filter.limit);
    Ok(Json(OrderList { items: orders.iter().map(OrderOut::from).collect(), next_cursor }))
}

/// The organization's orders, newest first.
#[utoipa::path(get, path = "/orgs/{org_id}/orders", tag = "billing", params(OrderQuery),
    responses((status = 200, body = OrderList), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn list_orders(
    State(state): State<AppState>,
    OrgScope { org_id, .. }: OrgScope,
    ApiQuery(q): ApiQuery<OrderQuery>,
) -> Result<Json<OrderList>> {
    order_list(&state, souk_store::orders::Side::Buyer, &org_id, q).await
}

/// A seller's sales: orders of its products, newest first, with filters.
#[utoipa::path(get, path = "/orgs/{org_id}/sales", tag = "billing", params(OrderQuery),
    responses((status = 200, body = OrderList), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn list_sales(
    State(state): State<AppState>,
    OrgScope { org_id, .. }: OrgScope,
    ApiQuery(q): ApiQuery<OrderQuery>,
) -> Result<Json<OrderList>> {
    order_list(&state, souk_store::orders::Side::Seller, &org_id, q).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionOut {
    pub id: String,
    pub product_id: String,
    pub plan_id: String,
    /// `pending_fulfillment`, `active`, `expired` (in grace), `released` or `cancelled`.
    pub state: String,
    pub quantity: i64,
    pub term_start: DateTime<Utc>,
    pub term_end: Option<DateTime<Utc>>,
    /// Pay the next period from the wallet 3 days before the term ends (for a trial: convert
    /// it to paid when it ends).
    pub auto_renew: bool,
    /// A free trial not yet paid for; renewing it converts it to paid.
    pub trial: bool,
    /// A cheaper plan taking effect at the next renewal.
    pub next_plan_id: Option<String>,
    /// Days of grace after expiry before release, as sold.
    pub grace_days: i64,
    /// Days after purchase in which unsubscribing refunds in full, as sold.
    pub no_reason_days: i64,
    /// When an expired subscription will be released.
    pub release_at: Option<DateTime<Utc>>,
    /// The seller's instance, once provisioned.
    pub instance_id: Option<String>,
    /// How to reach it, as the seller answered (the password decrypted for the buyer).
    #[schema(value_type = Option<Object>)]
    pub access: Option<serde_json::Value>,
    /// License-code products: one code per unit bought.
    pub license_codes: Vec<String>,
}

impl From<&souk_store::orders::Subscription> for SubscriptionOut {
    fn from(s: &souk_store::orders::Subscription) -> Self {
        Self {
            id: s.id.clone(),
            product_id: s.product_id.clone(),
            plan_id: s.plan_id.clone(),
            state: s.state.clone(),
            quantity: s.quantity,
            term_start: s.term_start,
            term_end: s.term_end,
            auto_renew: s.auto_renew,
            trial: s.trial,
            next_plan_id: s.next_plan_id.clone(),
            grace_days: s.grace_days,
            no_reason_days: s.no_reason_days,
            release_at: s.release_at,
            instance_id: None,
            access: None,
            license_codes: Vec::new(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionList {
    pub items: Vec<SubscriptionOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Filters of the subscription list; all optional.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionQuery {
    /// `pending_fulfillment`, `active`, `expired`, `released` or `cancelled`.
    pub state: Option<String>,
    pub product_id: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 100 (default 50).
    pub limit: Option<u32>,
}

impl SubscriptionQuery {
    fn filter(self) -> Result<souk_store::orders::SubscriptionFilter> {
        use souk_core::subscription::SubscriptionState;
        let page = super::PageQuery { cursor: self.cursor, limit: self.limit };
        let state = match self.state.as_deref() {
            None => None,
            Some(s) => Some(SubscriptionState::parse(s).ok_or_else(|| {
                let all: Vec<&str> = SubscriptionState::ALL.iter().map(|s| s.as_str()).collect();
                crate::error::Error::bad_request("invalid_query", format!("state must be one of {}", all.join(", ")))
            })?),
        };
        Ok(souk_store::orders::SubscriptionFilter {
            state: state.map(|s| s.as_str().to_owned()),
            product_id: self.product_id,
            before: page.after()?,
            limit: page.limit()?,
        })
    }
}

/// The organization's subscriptions, newest first, a page at a time.
#[utoipa::path(get, path = "/orgs/{org_id}/subscriptions", tag = "billing", params(SubscriptionQuery),
    responses((status = 200, body = SubscriptionList), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn list_subscriptions(
    State(state): State<AppState>,
    OrgScope { org_id, .. }: OrgScope,
    ApiQuery(q): ApiQuery<SubscriptionQuery>,
) -> Result<Json<SubscriptionList>> {
    let filter = q.filter()?;
    let page = souk_store::orders::subscriptions_page(&mut state.db.clone(), &org_id, &filter).await?;
    let next_cursor = super::next_cursor(page.last().map(|(s, _)| s.id.as_str()), page.len(), filter.limit);
    let mut items = Vec::with_capacity(page.len());
    for (s, codes) in page {
        items.push(subscription_out(&state, &s, codes).await?);
    }
    Ok(Json(SubscriptionList { items, next_cursor }))
}

/// A subscription as its buyer sees it: with the seller's instance, access and codes.
async fn subscription_out(
    state: &AppState,
    s: &souk_store::orders::Subscription,
    license_codes: Vec<String>,
) -> Result<SubscriptionOut> {
    let mut out = SubscriptionOut::from(s);
    out.instance_id = s.instance_id.clone();
    out.license_codes = license_codes;
    out.access = match s.access.clone() {
        Some(a) => Some(crate::fulfillment::access_for_buyer(state, &s.product_id, a).await?),
        None => None,
    };
    Ok(out)
}

/// One of the organization's subscriptions: `instance_id` is set once the seller provisioned it.
///
/// A buyer waiting for its seller need not poll: with the `ETag` of what it has in
/// `If-None-Match` and `Prefer: wait=N` (seconds, at most 30), the answer is held until the
/// subscription is another (200, `Preference-Applied: wait=N`) or N seconds passed (304). A
/// change this server commits answers at once; one another node commits, within a second.
#[utoipa::path(get, path = "/orgs/{org_id}/subscriptions/{subscription_id}", tag = "billing",
    params(
        ("If-None-Match" = Option<String>, Header, description = "ETags the client has: 304 if the subscription is still one of them"),
        ("Prefer" = Option<String>, Header, description = "`wait=N`: with If-None-Match, hold the answer up to N seconds (at most 30) until the subscription changes"),
    ),
    responses(
        (status = 200, body = SubscriptionOut, headers(("ETag" = String, description = "Tags this representation"))),
        (status = 304, description = "Unchanged (after the wait, if one was asked for)", headers(("ETag" = String))),
        (status = 404, body = Problem)))]
pub async fn get_subscription(
    State(state): State<AppState>,
    OrgScope { org_id, .. }: OrgScope,
    Path((_org, id)): Path<(String, String)>,
    conditional: crate::extract::Conditional,
) -> Result<axum::response::Response> {
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::IntoResponse;
    use sha2::Digest;
    let wait = conditional.wait();
    // Watch before reading, so that a change committed between the read and the wait wakes it.
    let watch = wait.map(|_| state.db.watch(&id));
    let deadline = tokio::time::Instant::now() + wait.unwrap_or_default();
    let mut stopping = state.stopping.subscribe();
    loop {
        // The subscription and its codes in one read: a waiting buyer reads again at every change.
        let (s, codes) = souk_store::orders::buyers_subscription_with_codes(&mut state.db.clone(), &org_id, &id)
            .await?
            .ok_or_else(crate::error::Error::not_found)?;
        let body = serde_json::to_vec(&subscription_out(&state, &s, codes).await?)
            .map_err(|e| crate::error::Error::Internal(e.into()))?;
        let etag = hex::encode(&sha2::Sha256::digest(&body)[..12]);
        let unchanged = conditional.has(&etag);
        let now = tokio::time::Instant::now();
        let waiting = unchanged && now < deadline && !*stopping.borrow();
        if let (true, Some(watch)) = (waiting, &watch) {
            // Changes another node commits wake nobody here: look again every second.
            let recheck = (deadline - now).min(std::time::Duration::from_secs(1));
            tokio::select! {
                _ = watch.changed() => {}
                _ = tokio::time::sleep(recheck) => {}
                _ = stopping.wait_for(|stop| *stop) => {}
            }
            continue;
        }
        let tag = HeaderValue::from_str(&format!("\"{etag}\"")).map_err(|e| crate::error::Error::Internal(e.into()))?;
        let mut res = if unchanged {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
        };
        res.headers_mut().insert(header::ETAG, tag);
        if let Some(w) = wait {
            let applied =
                HeaderValue::from_str(&format!("wait={}", w.as_secs())).map_err(|e| crate::error::Error::Internal(e.into()))?;
            res.headers_mut().insert("preference-applied", applied);
        }
        return Ok(res);
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewIn {
    #[serde(default = "one")]
    pub periods: u32,
}

/// Renew for more periods, paid from the wallet.
#[utoipa::path(post, path = "/orgs/{org_id}/subscriptions/{subscription_id}/renew", tag = "billing", request_body = RenewIn,
    responses((status = 200, body = SubscriptionOut), (status = 402, body = Problem), (status = 409, body = Problem)))]
pub async fn renew(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    axum::extract::Path((_org, id)): axum::extract::Path<(String, String)>,
    ApiJson(input): ApiJson<RenewIn>,
) -> Result<Json<SubscriptionOut>> {
    let s = crate::subscriptions::renew(&state, &caller, &org_id, &id, input.periods, rid.as_deref()).await?;
    Ok(Json(SubscriptionOut::from(&s)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePlanIn {
    pub plan_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangePlanOut {
    pub subscription: SubscriptionOut,
    /// `upgraded` (in effect now) or `scheduled` (from the next renewal).
    pub outcome: String,
    /// Charged now for the rest of the term (0 when scheduled).
    pub charged_minor: i64,
    /// When a scheduled change takes effect (absent when a scheduled change was cancelled).
    pub effective_at: Option<DateTime<Utc>>,
}

/// Change plan: a dearer plan takes effect now and the rest of the term is charged pro rata;
/// a cheaper plan takes effect at the next renewal; the current plan cancels a scheduled change.
#[utoipa::path(post, path = "/orgs/{org_id}/subscriptions/{subscription_id}/change-plan", tag = "billing", request_body = ChangePlanIn,
    responses((status = 200, body = ChangePlanOut), (status = 402, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn change_plan(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    axum::extract::Path((_org, id)): axum::extract::Path<(String, String)>,
    ApiJson(input): ApiJson<ChangePlanIn>,
) -> Result<Json<ChangePlanOut>> {
    let (s, change) = crate::subscriptions::change_plan(&state, &caller, &org_id, &id, &input.plan_id, rid.as_deref()).await?;
    let subscription = SubscriptionOut::from(&s);
    Ok(Json(match change {
        PlanChange::Upgraded { charged } => {
            ChangePlanOut { subscription, outcome: "upgraded".into(), charged_minor: charged.minor, effective_at: None }
        }
        PlanChange::Scheduled { at } => {
            ChangePlanOut { subscription, outcome: "scheduled".into(), charged_minor: 0, effective_at: at }
        }
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundOut {
    /// `no_reason`, `unused_periods` or `none`.
    pub kind: String,
    pub amount_minor: i64,
    pub currency: String,
}

impl From<&souk_core::pricing::Refund> for RefundOut {
    fn from(r: &souk_core::pricing::Refund) -> Self {
        Self {
            kind: serde_json::to_value(r.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
            amount_minor: r.amount.minor,
            currency: r.amount.currency.code().to_owned(),
        }
    }
}

/// What unsubscribing now would refund.
#[utoipa::path(get, path = "/orgs/{org_id}/subscriptions/{subscription_id}/refund-preview", tag = "billing",
    responses((status = 200, body = RefundOut), (status = 404, body = Problem)))]
pub async fn refund_preview(
    State(state): State<AppState>,
    OrgScope { org_id, .. }: OrgScope,
    axum::extract::Path((_org, id)): axum::extract::Path<(String, String)>,
) -> Result<Json<RefundOut>> {
    Ok(Json(RefundOut::from(&crate::subscriptions::preview(&state, &org_id, &id).await?)))
}

/// Unsubscribe now; the refund the rules allow goes back to the wallet.
#[utoipa::path(post, path = "/orgs/{org_id}/subscriptions/{subscription_id}/unsubscribe", tag = "billing",
    responses((status = 200, body = RefundOut), (status = 409, body = Problem)))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    axum::extract::Path((_org, id)): axum::extract::Path<(String, String)>,
) -> Result<Json<RefundOut>> {
    Ok(Json(RefundOut::from(&crate::subscriptions::unsubscribe(&state, &caller, &org_id, &id, rid.as_deref()).await?)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FulfilledIn {
    /// The seller's instance.
    pub instance_id: Option<String>,
    /// How the buyer reaches it; `password_encrypted` as docs/PROTOCOL.md describes.
    #[schema(value_type = Option<Object>)]
    pub access: Option<souk_isv::answer::Access>,
}

/// The seller reports an instance provisioned: after answering `instance.create` with 202, or
/// for a product without an integration. Same body as the answer to `instance.create`.
#[utoipa::path(post, path = "/orgs/{org_id}/sales/subscriptions/{subscription_id}/fulfilled", tag = "billing", request_body = FulfilledIn,
    responses((status = 200, body = SubscriptionOut), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn fulfilled(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    axum::extract::Path((_org, id)): axum::extract::Path<(String, String)>,
    ApiJson(input): ApiJson<FulfilledIn>,
) -> Result<Json<SubscriptionOut>> {
    let answer = souk_isv::answer::Answer { instance_id: input.instance_id, access: input.access };
    Ok(Json(SubscriptionOut::from(
        &crate::subscriptions::fulfilled(&state, &caller, &org_id, &id, &answer, rid.as_deref()).await?,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrialIn {
    pub product_id: String,
    /// A plan with a free trial.
    pub plan_id: String,
}

/// Start a plan's free trial (once per organization and product).
#[utoipa::path(post, path = "/orgs/{org_id}/trials", tag = "billing", request_body = TrialIn,
    responses((status = 201, body = SubscriptionOut), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn start_trial(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    ApiJson(input): ApiJson<TrialIn>,
) -> Result<Response> {
    let s =
        crate::subscriptions::start_trial(&state, &caller, &org_id, &input.product_id, &input.plan_id, rid.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(SubscriptionOut::from(&s))).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoRenewIn {
    pub enabled: bool,
}

/// Turn auto-renewal on or off: with it, the next period is paid from the wallet 3 days
/// before the term ends (reminders are sent 7, 3 and 1 days ahead either way).
#[utoipa::path(post, path = "/orgs/{org_id}/subscriptions/{subscription_id}/auto-renew", tag = "billing", request_body = AutoRenewIn,
    responses((status = 200, body = SubscriptionOut), (status = 404, body = Problem)))]
pub async fn auto_renew(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    axum::extract::Path((_org, id)): axum::extract::Path<(String, String)>,
    ApiJson(input): ApiJson<AutoRenewIn>,
) -> Result<Json<SubscriptionOut>> {
    Ok(Json(SubscriptionOut::from(
        &crate::subscriptions::set_auto_renew(&state, &caller, &org_id, &id, input.enabled, rid.as_deref()).await?,
    )))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServerOut {
    pub id: String,
    pub subscription_id: String,
    pub order_id: String,
    pub name: String,
    /// `requested`, `creating`, `running`, `failed` or `released`.
    pub state: String,
    /// Region, flavor, image, disk, network, security group, public bandwidth.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    /// Why it failed.
    pub failure: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&souk_store::servers::Server> for ServerOut {
    fn from(s: &souk_store::servers::Server) -> Self {
        Self {
            id: s.id.clone(),
            subscription_id: s.subscription_id.clone(),
            order_id: s.order_id.clone(),
            name: s.name.clone(),
            state: s.state.as_str().to_owned(),
            spec: s.spec.clone(),
            private_ip: s.private_ip.clone(),
            public_ip: s.public_ip.clone(),
            failure: s.failure.clone(),
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServerList {
    pub items: Vec<ServerOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The servers deployed for the organization's machine-image purchases, newest first.
#[utoipa::path(get, path = "/orgs/{org_id}/servers", tag = "billing", params(super::PageQuery),
    responses((status = 200, body = ServerList), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn list_servers(
    State(state): State<AppState>,
    OrgScope { org_id, .. }: OrgScope,
    ApiQuery(page): ApiQuery<super::PageQuery>,
) -> Result<Json<ServerList>> {
    let limit = page.limit()?;
    let servers = crate::compute::list(&state, &org_id, page.after()?.as_deref(), limit).await?;
    let next_cursor = super::next_cursor(servers.last().map(|s| s.id.as_str()), servers.len(), limit);
    Ok(Json(ServerList { items: servers.iter().map(ServerOut::from).collect(), next_cursor }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCouponIn {
    /// One of the seller's own products.
    pub product_id: String,
    /// Off the price, in the seller's site currency (minor units).
    pub amount_minor: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestCouponList {
    pub items: Vec<CouponOut>,
    /// This year's allowance, and what is left of it.
    pub quota: PriceOutRef,
    pub remaining: PriceOutRef,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PriceOutRef {
    pub currency: String,
    pub amount_minor: i64,
}

impl From<souk_core::money::Money> for PriceOutRef {
    fn from(m: souk_core::money::Money) -> Self {
        Self { currency: m.currency.code().to_owned(), amount_minor: m.minor }
    }
}

/// Issue a test coupon for one of the seller's own products (seed §19): usable once, only by
/// the seller's organization, within 30 days; the purchase reaches the seller's system marked
/// as a test. Amounts come out of a yearly allowance (¥1,000 on the China site).
#[utoipa::path(post, path = "/orgs/{org_id}/test-coupons", tag = "catalog", request_body = TestCouponIn,
    responses((status = 201, body = CouponOut), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn issue_test_coupon(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    ApiJson(input): ApiJson<TestCouponIn>,
) -> Result<Response> {
    let c = commerce::issue_test_coupon(&state, &caller, &org_id, &input.product_id, input.amount_minor, rid.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(CouponOut::from(&c))).into_response())
}

/// The seller's test coupons and what is left of this year's allowance.
#[utoipa::path(get, path = "/orgs/{org_id}/test-coupons", tag = "catalog",
    responses((status = 200, body = TestCouponList), (status = 404, body = Problem)))]
pub async fn list_test_coupons(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
) -> Result<Json<TestCouponList>> {
    let (items, quota, remaining) = commerce::test_coupons(&state, &caller, &org_id).await?;
    Ok(Json(TestCouponList {
        items: items.iter().map(CouponOut::from).collect(),
        quota: quota.into(),
        remaining: remaining.into(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BillQuery {
    /// `2026-03`; the current month (on the site's clock) when absent.
    pub month: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BillLineOut {
    pub at: DateTime<Utc>,
    /// `top_up`, `purchase`, `renewal`, `upgrade`, `refund` or `other`.
    pub kind: String,
    /// The order or top-up the line concerns.
    pub reference: Option<String>,
    pub product_id: Option<String>,
    pub plan_name: Option<String>,
    /// Money in (positive) or out (negative), minor units.
    pub amount_minor: i64,
    pub balance_after: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BillOut {
    pub month: String,
    pub currency: String,
    /// The month's bounds on the site's clock (Beijing time on the China site).
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub opening_minor: i64,
    pub top_ups_minor: i64,
    /// Spent on purchases, renewals and upgrades (a positive amount).
    pub charges_minor: i64,
    pub refunds_minor: i64,
    pub closing_minor: i64,
    pub lines: Vec<BillLineOut>,
    /// The same bill as CSV.
    pub csv_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BillList {
    pub items: Vec<BillOut>,
}

async fn month_of(state: &AppState, org: &souk_core::id::OrgId, raw: Option<&str>) -> Result<souk_core::billing::BillMonth> {
    match raw {
        Some(m) => crate::billing::parse_month(m),
        None => {
            let site = souk_store::orgs::get(&mut state.db.clone(), org).await?.site;
            Ok(souk_core::billing::BillMonth::containing(state.clock.now(), site))
        }
    }
}

/// The organization's bill for a month: one per currency, with every wallet movement and the
/// order behind it; opening balance plus the lines is the closing balance.
#[utoipa::path(get, path = "/orgs/{org_id}/bills", tag = "billing", params(BillQuery),
    responses((status = 200, body = BillList), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn bills(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    ApiQuery(q): ApiQuery<BillQuery>,
) -> Result<Json<BillList>> {
    let month = month_of(&state, &org_id, q.month.as_deref()).await?;
    let items = crate::billing::bills(&state, &caller, &org_id, month)
        .await?
        .into_iter()
        .map(|b| BillOut {
            csv_url: format!("/api/v1/orgs/{org_id}/bills/{}/{}.csv", b.month, b.currency.code()),
            month: b.month,
            currency: b.currency.code().to_owned(),
            from: b.from,
            to: b.to,
            opening_minor: b.totals.opening_minor,
            top_ups_minor: b.totals.top_ups_minor,
            charges_minor: b.totals.charges_minor,
            refunds_minor: b.totals.refunds_minor,
            closing_minor: b.totals.closing_minor,
            lines: b
                .lines
                .into_iter()
                .map(|l| BillLineOut {
                    at: l.at,
                    kind: l.kind.as_str().to_owned(),
                    reference: l.reference,
                    product_id: l.product_id,
                    plan_name: l.plan_name,
                    amount_minor: l.delta_minor,
                    balance_after: l.balance_after,
                })
                .collect(),
        })
        .collect();
    Ok(Json(BillList { items }))
}

/// A month's bill in one currency as CSV (`text/csv`), for spreadsheets and accounting.
#[utoipa::path(get, path = "/orgs/{org_id}/bills/{month}/{file}", tag = "billing",
    params(("file" = String, Path, description = "the currency and `.csv`, like `CNY.csv`")),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn bill_csv(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    axum::extract::Path((_org, month, file)): axum::extract::Path<(String, String, String)>,
) -> Result<Response> {
    let month = crate::billing::parse_month(&month)?;
    let currency = file
        .strip_suffix(".csv")
        .and_then(|c| souk_core::money::Currency::parse(c).ok())
        .ok_or_else(crate::error::Error::not_found)?;
    let site = souk_store::orgs::get(&mut state.db.clone(), &org_id).await?.site;
    let bills = crate::billing::bills(&state, &caller, &org_id, month).await?;
    let bill = bills.iter().find(|b| b.currency == currency).ok_or_else(crate::error::Error::not_found)?;
    let body = crate::billing::csv(bill, site)?;
    let name = format!("souk-bill-{}-{}.csv", bill.month, currency.code());
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response())
}
