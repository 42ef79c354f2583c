//! The message center: a person's inbox, and an organization's email and SMS log.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::next_cursor;
use crate::AppState;
use crate::auth::{Caller, OrgScope};
use crate::error::{Problem, Result};
use crate::extract::{ApiJson, ApiQuery};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// Only this category (`product_review`, `refund`, …).
    pub category: Option<String>,
    /// Only unread messages.
    #[serde(default)]
    pub unread: bool,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    pub id: String,
    /// The organization the message is about.
    pub org_id: String,
    pub category: String,
    pub subject: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

impl From<souk_store::messages::Message> for MessageOut {
    fn from(m: souk_store::messages::Message) -> Self {
        Self {
            id: m.id,
            org_id: m.org_id,
            category: m.category,
            subject: m.subject,
            body: m.body,
            created_at: m.created_at,
            read_at: m.read_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InboxOut {
    pub items: Vec<MessageOut>,
    pub unread_count: i64,
    pub next_cursor: Option<String>,
}

/// Your inbox: the messages of every organization you belong to, newest first.
#[utoipa::path(get, path = "/me/messages", tag = "messages", params(InboxQuery),
    responses((status = 200, body = InboxOut), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn inbox(State(state): State<AppState>, caller: Caller, ApiQuery(q): ApiQuery<InboxQuery>) -> Result<Json<InboxOut>> {
    let page = super::PageQuery { cursor: q.cursor.clone(), limit: q.limit };
    let limit = page.limit()?;
    let before = page.after()?;
    let filter = souk_store::messages::InboxFilter {
        category: q.category.as_deref(),
        unread_only: q.unread,
        before: before.as_deref(),
        limit,
    };
    let (items, unread_count) = crate::messages::inbox(&state, &caller, &filter).await?;
    let next = next_cursor(items.last().map(|m| m.id.as_str()), items.len(), limit);
    Ok(Json(InboxOut { items: items.into_iter().map(Into::into).collect(), unread_count, next_cursor: next }))
}

/// Mark a message read.
#[utoipa::path(post, path = "/me/messages/{message_id}/read", tag = "messages",
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn read(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<axum::http::StatusCode> {
    crate::messages::mark_read(&state, &caller, Some(&id)).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadAllIn {}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadAllOut {
    /// How many messages were unread.
    pub marked: u64,
}

/// Mark every message read.
#[utoipa::path(post, path = "/me/messages/read-all", tag = "messages", request_body = ReadAllIn,
    responses((status = 200, body = ReadAllOut), (status = 401, body = Problem)))]
pub async fn read_all(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(_input): ApiJson<ReadAllIn>,
) -> Result<Json<ReadAllOut>> {
    Ok(Json(ReadAllOut { marked: crate::messages::mark_read(&state, &caller, None).await? }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SendOut {
    pub id: String,
    pub category: String,
    /// `email` or `sms`.
    pub channel: String,
    pub address: String,
    pub subject: String,
    /// `pending` (being tried), `sent`, or `failed` (given up).
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SendList {
    pub items: Vec<SendOut>,
}

/// The organization's emails and SMS, newest first: the message delivery log (admins).
#[utoipa::path(get, path = "/orgs/{org_id}/message-sends", tag = "messages",
    responses((status = 200, body = SendList), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn sends(State(state): State<AppState>, OrgScope { caller, org_id, .. }: OrgScope) -> Result<Json<SendList>> {
    let items = crate::messages::sends(&state, &caller, &org_id).await?;
    Ok(Json(SendList {
        items: items
            .into_iter()
            .map(|s| SendOut {
                id: s.id,
                category: s.category,
                channel: s.channel,
                address: s.address,
                subject: s.subject,
                status: s.status,
                attempts: s.attempts,
                last_error: s.last_error,
                created_at: s.created_at,
                sent_at: s.sent_at,
            })
            .collect(),
    }))
}
