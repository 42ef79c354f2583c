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
