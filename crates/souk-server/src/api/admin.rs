use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use souk_core::id::{UploadId, VerificationId};
use souk_core::identity::StaffRole;
use souk_core::verification::VerificationStatus;
use souk_store::{audit, uploads, verifications};
use utoipa::ToSchema;

use super::verification::{VerificationOut, file_response};
use super::{AccountOut, PageQuery, next_cursor};
use crate::AppState;
use crate::auth::{Caller, Operator};
use crate::error::{Error, Problem, Result};
use crate::extract::{ApiJson, ApiQuery, RequestId, path_id};
use crate::verification;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// `pending` (default), `approved` or `rejected`.
    pub status: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationPage {
    pub items: Vec<VerificationOut>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The operators' verification queue, oldest submission first.
#[utoipa::path(get, path = "/admin/verifications", tag = "admin", params(QueueQuery),
    responses((status = 200, body = VerificationPage), (status = 403, body = Problem)))]
pub async fn verification_queue(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<QueueQuery>,
) -> Result<Json<VerificationPage>> {
    caller.staff(StaffRole::Operator)?;
    let status = match query.status.as_deref() {
        None => VerificationStatus::Pending,
        Some(s) => VerificationStatus::parse(s)
            .ok_or_else(|| Error::bad_request("invalid_query", "status must be pending, approved or rejected"))?,
    };
    let page = PageQuery { cursor: query.cursor, limit: query.limit };
    let limit = page.limit()?;
    let items = verifications::queue(&mut state.db.clone(), status, page.after()?.as_deref(), limit).await?;
    let next = next_cursor(items.last().map(|v| v.id.as_str()), items.len(), limit);
    Ok(Json(VerificationPage { items: items.iter().map(|v| VerificationOut::new(v, true)).collect(), next_cursor: next }))
}

/// One submission with its full details (operators).
#[utoipa::path(get, path = "/admin/verifications/{verification_id}", tag = "admin",
    responses((status = 200, body = VerificationOut), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_verification(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<VerificationOut>> {
    caller.staff(StaffRole::Operator)?;
    let id: VerificationId = path_id(&id)?;
    Ok(Json(VerificationOut::new(&verifications::get(&mut state.db.clone(), &id).await?, true)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionIn {
    pub approve: bool,
    /// Required when rejecting: what the submitter should correct.
    pub reason: Option<String>,
}

/// Approve or reject a pending submission (operators).
#[utoipa::path(post, path = "/admin/verifications/{verification_id}/decision", tag = "admin", request_body = DecisionIn,
    responses((status = 200, body = VerificationOut), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn decide(
    State(state): State<AppState>,
    Operator(caller): Operator,
    rid: RequestId,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<DecisionIn>,
) -> Result<Json<VerificationOut>> {
    let id: VerificationId = path_id(&id)?;
    let v = verification::decide(&state, &caller, &id, input.approve, input.reason.as_deref(), rid.as_deref()).await?;
    Ok(Json(VerificationOut::new(&v, true)))
}

/// Download a document attached to a submission (operators).
#[utoipa::path(get, path = "/admin/verifications/{verification_id}/documents/{upload_id}", tag = "admin",
    responses((status = 200, description = "the file"), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn document(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, upload_id)): Path<(String, String)>,
) -> Result<Response> {
    caller.staff(StaffRole::Operator)?;
    let id: VerificationId = path_id(&id)?;
    let upload_id: UploadId = path_id(&upload_id)?;
    let mut db = state.db.clone();
    let v = verifications::get(&mut db, &id).await?;
    if !v.document_ids.contains(&upload_id) {
        return Err(Error::not_found());
    }
    let (up, bytes) = uploads::content(&mut db, &upload_id).await?;
    Ok(file_response(&up, bytes))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries about this id.
    pub target: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditOut {
    pub id: String,
    pub at: DateTime<Utc>,
    /// Account id, API key id or `system`.
    pub actor: String,
    pub actor_org_id: Option<String>,
    pub action: String,
    pub target: String,
    pub summary: String,
    pub request_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditOut>,
    pub next_cursor: Option<String>,
}

/// The audit log of every state change, newest first (operators).
#[utoipa::path(get, path = "/admin/audit", tag = "admin", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 403, body = Problem)))]
pub async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>> {
    caller.staff(StaffRole::Operator)?;
    let page = PageQuery { cursor: query.cursor, limit: query.limit };
    let limit = page.limit()?;
    let entries = audit::list(&mut state.db.clone(), query.target.as_deref(), page.after()?.as_deref(), limit).await?;
    let next = next_cursor(entries.last().map(|e| e.id.as_str()), entries.len(), limit);
    let items = entries
        .into_iter()
        .map(|e| AuditOut {
            id: e.id,
            at: e.at,
            actor: e.actor,
            actor_org_id: e.actor_org_id,
            action: e.action,
            target: e.target,
            summary: e.summary,
            request_id: e.request_id,
        })
        .collect();
    Ok(Json(AuditPage { items, next_cursor: next }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffRoleIn {
    pub email: String,
    /// `operator`, `supervisor`, or null to remove the staff role.
    pub role: Option<String>,
}

/// Grant or remove a platform staff role (operators).
#[utoipa::path(post, path = "/admin/staff", tag = "admin", request_body = StaffRoleIn,
    responses((status = 200, body = AccountOut), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn set_staff_role(
    State(state): State<AppState>,
    Operator(caller): Operator,
    rid: RequestId,
    ApiJson(input): ApiJson<StaffRoleIn>,
) -> Result<Json<AccountOut>> {
    let role = match input.role.as_deref() {
        None => None,
        Some(r) => Some(StaffRole::parse(r).ok_or_else(|| Error::field("role", "must be operator, supervisor or null"))?),
    };
    let account = crate::identity::set_staff_role(&state, &caller, &input.email, role, rid.as_deref()).await?;
    Ok(Json(AccountOut::from(&account)))
}
