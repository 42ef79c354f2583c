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
#[into_params(parameter_in = Query)]
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

/// A recipient of a category's emails or SMS.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientIo {
    /// A member of the organization (their bound email or phone)…
    pub account_id: Option<String>,
    /// …or a confirmed extra contact.
    pub contact_id: Option<String>,
}

impl From<&souk_store::messages::Target> for RecipientIo {
    fn from(t: &souk_store::messages::Target) -> Self {
        match t {
            souk_store::messages::Target::Member(a) => Self { account_id: Some(a.clone()), contact_id: None },
            souk_store::messages::Target::Contact(c) => Self { account_id: None, contact_id: Some(c.clone()) },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategorySettingsOut {
    pub category: String,
    /// What the category is called, in the caller's language.
    pub title: String,
    /// Security and billing messages cannot be muted.
    pub mutable: bool,
    pub inbox_muted: bool,
    pub email_muted: bool,
    pub sms_muted: bool,
    /// Who receives its emails; empty: the organization's own contact (its owners).
    pub email: Vec<RecipientIo>,
    pub sms: Vec<RecipientIo>,
}

fn settings_out(s: &crate::messages::CategorySettings, lang: souk_core::site::Lang) -> CategorySettingsOut {
    CategorySettingsOut {
        category: s.category.as_str().to_owned(),
        title: s.category.title(lang).to_owned(),
        mutable: s.mutable,
        inbox_muted: s.inbox_muted,
        email_muted: s.email_muted,
        sms_muted: s.sms_muted,
        email: s.email.iter().map(Into::into).collect(),
        sms: s.sms.iter().map(Into::into).collect(),
    }
}

fn lang_of(caller: &Caller) -> souk_core::site::Lang {
    caller.account().map(|a| a.lang).unwrap_or(souk_core::site::Lang::En)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsList {
    pub items: Vec<CategorySettingsOut>,
}

/// Per category: muted channels and who receives emails and SMS (admins).
#[utoipa::path(get, path = "/orgs/{org_id}/message-settings", tag = "messages",
    responses((status = 200, body = SettingsList), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_settings(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
) -> Result<Json<SettingsList>> {
    let lang = lang_of(&caller);
    let items = crate::messages::settings(&state, &caller, &org_id).await?;
    Ok(Json(SettingsList { items: items.iter().map(|s| settings_out(s, lang)).collect() }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategorySettingsIn {
    #[serde(default)]
    pub inbox_muted: bool,
    #[serde(default)]
    pub email_muted: bool,
    #[serde(default)]
    pub sms_muted: bool,
    /// Empty: the organization's own contact.
    #[serde(default)]
    pub email: Vec<RecipientIo>,
    #[serde(default)]
    pub sms: Vec<RecipientIo>,
}

fn targets(list: &[RecipientIo]) -> Result<Vec<souk_store::messages::Target>> {
    list.iter()
        .map(|r| match (&r.account_id, &r.contact_id) {
            (Some(a), None) => Ok(souk_store::messages::Target::Member(a.clone())),
            (None, Some(c)) => Ok(souk_store::messages::Target::Contact(c.clone())),
            _ => Err(crate::error::Error::field("recipients", "each recipient is an account_id or a contact_id")),
        })
        .collect()
}

/// Set a category's muted channels and recipients (admins).
#[utoipa::path(put, path = "/orgs/{org_id}/message-settings/{category}", tag = "messages", request_body = CategorySettingsIn,
    responses((status = 200, body = CategorySettingsOut), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_settings(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    Path((_org, category)): Path<(String, String)>,
    ApiJson(input): ApiJson<CategorySettingsIn>,
) -> Result<Json<CategorySettingsOut>> {
    let parsed = crate::messages::CategoryInput {
        inbox_muted: input.inbox_muted,
        email_muted: input.email_muted,
        sms_muted: input.sms_muted,
        email: targets(&input.email)?,
        sms: targets(&input.sms)?,
    };
    let s = crate::messages::set_category(&state, &caller, &org_id, &category, &parsed).await?;
    Ok(Json(settings_out(&s, lang_of(&caller))))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactOut {
    pub id: String,
    /// `email` or `sms`.
    pub channel: String,
    pub address: String,
    /// Only confirmed contacts receive messages.
    pub confirmed: bool,
    pub created_at: DateTime<Utc>,
}

impl From<souk_store::messages::Contact> for ContactOut {
    fn from(c: souk_store::messages::Contact) -> Self {
        Self { id: c.id, channel: c.channel, address: c.address, confirmed: c.confirmed_at.is_some(), created_at: c.created_at }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactList {
    pub items: Vec<ContactOut>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactIn {
    /// `email` or `sms`.
    pub channel: String,
    pub address: String,
}

/// The organization's extra email addresses and phone numbers (admins).
#[utoipa::path(get, path = "/orgs/{org_id}/message-contacts", tag = "messages",
    responses((status = 200, body = ContactList), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list_contacts(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
) -> Result<Json<ContactList>> {
    let items = crate::messages::contacts(&state, &caller, &org_id).await?;
    Ok(Json(ContactList { items: items.into_iter().map(Into::into).collect() }))
}

/// Add an email address or phone number: a code is sent to it, to confirm with.
#[utoipa::path(post, path = "/orgs/{org_id}/message-contacts", tag = "messages", request_body = ContactIn,
    responses((status = 201, body = ContactOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn add_contact(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    ApiJson(input): ApiJson<ContactIn>,
) -> Result<(axum::http::StatusCode, Json<ContactOut>)> {
    let c = crate::messages::add_contact(&state, &caller, &org_id, &input.channel, &input.address).await?;
    Ok((axum::http::StatusCode::CREATED, Json(c.into())))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmIn {
    pub code: String,
}

/// Confirm a contact with the code sent to it.
#[utoipa::path(post, path = "/orgs/{org_id}/message-contacts/{contact_id}/confirm", tag = "messages", request_body = ConfirmIn,
    responses((status = 200, body = ContactOut), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn confirm_contact(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    Path((_org, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<ConfirmIn>,
) -> Result<Json<ContactOut>> {
    Ok(Json(crate::messages::confirm_contact(&state, &caller, &org_id, &id, &input.code).await?.into()))
}

/// Remove a contact (and every category's use of it).
#[utoipa::path(delete, path = "/orgs/{org_id}/message-contacts/{contact_id}", tag = "messages",
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn remove_contact(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    Path((_org, id)): Path<(String, String)>,
) -> Result<axum::http::StatusCode> {
    crate::messages::remove_contact(&state, &caller, &org_id, &id).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneOut {
    /// The account's bound phone: where its organizations' SMS go when no recipients are set.
    pub phone: Option<String>,
    /// A number waiting for the code sent to it.
    pub pending: Option<String>,
    pub pending_expires: Option<DateTime<Utc>>,
}

impl From<crate::messages::PhoneState> for PhoneOut {
    fn from(p: crate::messages::PhoneState) -> Self {
        Self { phone: p.phone, pending: p.pending, pending_expires: p.pending_expires }
    }
}

/// Your bound phone number, and one waiting for its code.
#[utoipa::path(get, path = "/me/phone", tag = "messages",
    responses((status = 200, body = PhoneOut), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn get_phone(State(state): State<AppState>, caller: Caller) -> Result<Json<PhoneOut>> {
    Ok(Json(crate::messages::phone_state(&state, &caller).await?.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneIn {
    /// In international form, `+8613800000000`.
    pub phone: String,
}

/// Bind a phone number: a six-digit code is sent to it by SMS, valid for 30 minutes.
#[utoipa::path(put, path = "/me/phone", tag = "messages", request_body = PhoneIn,
    responses((status = 202, body = PhoneOut), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn put_phone(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<PhoneIn>,
) -> Result<(axum::http::StatusCode, Json<PhoneOut>)> {
    let p = crate::messages::start_phone(&state, &caller, &input.phone).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(p.into())))
}

/// Stop using your phone number for messages.
#[utoipa::path(delete, path = "/me/phone", tag = "messages", responses((status = 204), (status = 401, body = Problem)))]
pub async fn delete_phone(State(state): State<AppState>, caller: Caller) -> Result<axum::http::StatusCode> {
    crate::messages::remove_phone(&state, &caller).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneCodeIn {
    pub code: String,
}

/// Confirm the pending phone number with the code sent to it; five tries.
#[utoipa::path(post, path = "/me/phone/confirm", tag = "messages", request_body = PhoneCodeIn,
    responses((status = 200, body = PhoneOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn confirm_phone(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<PhoneCodeIn>,
) -> Result<Json<PhoneOut>> {
    Ok(Json(crate::messages::confirm_phone(&state, &caller, &input.code).await?.into()))
}
