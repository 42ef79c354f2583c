use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use souk_core::id::OrgId;
use souk_store::wallets;
use utoipa::ToSchema;

use super::storefront::PriceOut;
use super::{PageQuery, next_cursor};
use crate::AppState;
use crate::auth::{Operator, OrgScope};
use crate::error::{Problem, Result};
use crate::extract::{ApiJson, ApiQuery, RequestId, path_id};

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntryOut {
    pub id: String,
    pub currency: String,
    /// Positive for money in, negative for money out.
    pub delta_minor: i64,
    pub balance_after: i64,
    pub reason: String,
    pub reference: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WalletOut {
    pub balances: Vec<PriceOut>,
    /// Newest first.
    pub ledger: Vec<LedgerEntryOut>,
    pub next_cursor: Option<String>,
}

/// The organization's wallet balances and ledger.
#[utoipa::path(get, path = "/orgs/{org_id}/wallet", tag = "billing", params(PageQuery),
    responses((status = 200, body = WalletOut), (status = 404, body = Problem)))]
pub async fn get_wallet(
    State(state): State<AppState>,
    OrgScope { org_id, .. }: OrgScope,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<WalletOut>> {
    let limit = page.limit()?;
    let mut db = state.db.clone();
    let balances = wallets::balances(&mut db, &org_id).await?.into_iter().map(PriceOut::from).collect();
    let entries = wallets::ledger(&mut db, &org_id, page.after()?.as_deref(), limit).await?;
    let next = next_cursor(entries.last().map(|e| e.id.as_str()), entries.len(), limit);
    let ledger = entries
        .into_iter()
        .map(|e| LedgerEntryOut {
            id: e.id,
            currency: e.currency,
            delta_minor: e.delta_minor,
            balance_after: e.balance_after,
            reason: e.reason,
            reference: e.reference,
            at: e.at,
        })
        .collect();
    Ok(Json(WalletOut { balances, ledger, next_cursor: next }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpIn {
    /// CNY, USD, EUR or JPY.
    pub currency: String,
    /// In minor units (fen, cents).
    pub amount_minor: i64,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopUpOut {
    pub balance: PriceOut,
}

/// Add money to an organization's wallet (operators); recorded in the ledger and audited.
#[utoipa::path(post, path = "/admin/wallets/{org_id}/top-ups", tag = "admin", request_body = TopUpIn,
    responses((status = 201, body = TopUpOut), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn top_up(
    State(state): State<AppState>,
    Operator(caller): Operator,
    rid: RequestId,
    Path(org_id): Path<String>,
    ApiJson(input): ApiJson<TopUpIn>,
) -> Result<Response> {
    let org_id: OrgId = path_id(&org_id)?;
    let balance =
        crate::wallet::top_up(&state, &caller, &org_id, &input.currency, input.amount_minor, &input.reason, rid.as_deref())
            .await?;
    Ok((StatusCode::CREATED, Json(TopUpOut { balance: balance.into() })).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaidTopUpIn {
    /// CNY, USD, EUR or JPY.
    pub currency: String,
    /// In minor units (fen, cents).
    pub amount_minor: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaidTopUpOut {
    pub id: String,
    pub currency: String,
    pub amount_minor: i64,
    /// The payment provider (`sandbox` built in).
    pub provider: String,
    /// `pending` until the provider reports; then `succeeded`, `failed`; `expired` after a day unpaid.
    pub state: String,
    /// Where the buyer pays (pending top-ups only).
    pub pay_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl PaidTopUpOut {
    fn new(t: &souk_store::payments::TopUp, pay_url: Option<String>) -> Self {
        Self {
            id: t.id.clone(),
            currency: t.currency.clone(),
            amount_minor: t.amount_minor,
            provider: t.provider.clone(),
            state: t.state.clone(),
            pay_url: if t.state == "pending" { pay_url } else { None },
            created_at: t.created_at,
            completed_at: t.completed_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaidTopUpList {
    pub items: Vec<PaidTopUpOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Pay money into the wallet: starts a top-up and answers with the provider's checkout URL.
/// The wallet is credited when the provider reports the payment.
#[utoipa::path(post, path = "/orgs/{org_id}/wallet/top-ups", tag = "billing", request_body = PaidTopUpIn,
    responses((status = 201, body = PaidTopUpOut), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn start_top_up(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    ApiJson(input): ApiJson<PaidTopUpIn>,
) -> Result<Response> {
    let (t, url) =
        crate::wallet::start_top_up(&state, &caller, &org_id, &input.currency, input.amount_minor, rid.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(PaidTopUpOut::new(&t, Some(url)))).into_response())
}

/// The organization's top-ups, newest first.
#[utoipa::path(get, path = "/orgs/{org_id}/wallet/top-ups", tag = "billing",
    params(PageQuery), responses((status = 200, body = PaidTopUpList), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn list_top_ups(
    State(state): State<AppState>,
    OrgScope { org_id, .. }: OrgScope,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<PaidTopUpList>> {
    let limit = page.limit()?;
    let top_ups = souk_store::payments::list(&mut state.db.clone(), &org_id, page.after()?.as_deref(), limit).await?;
    let next_cursor = next_cursor(top_ups.last().map(|t| t.id.as_str()), top_ups.len(), limit);
    let items = top_ups.iter().map(|t| PaidTopUpOut::new(t, Some(state.payments.checkout_url(t)))).collect();
    Ok(Json(PaidTopUpList { items, next_cursor }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxPayIn {
    /// Pay (true) or decline (false), as the buyer would on a provider's checkout.
    pub pay: bool,
}

/// The sandbox provider's checkout, for scripts and tests: pay or decline a pending top-up.
#[utoipa::path(post, path = "/orgs/{org_id}/wallet/top-ups/{top_up_id}/sandbox", tag = "billing", request_body = SandboxPayIn,
    responses((status = 200, body = PaidTopUpOut), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn sandbox_pay(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    Path((_org, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<SandboxPayIn>,
) -> Result<Json<PaidTopUpOut>> {
    let t = crate::wallet::sandbox_checkout(&state, &caller, &org_id, &id, input.pay).await?;
    Ok(Json(PaidTopUpOut::new(&t, None)))
}
