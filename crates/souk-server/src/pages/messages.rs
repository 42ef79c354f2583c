//! The inbox page: the signed-in person's messages, by category, marked read one by one or
//! all at once.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use souk_core::messages::Category;

use super::{PageCtx, field, render};
use crate::AppState;
use crate::error::Error;

pub struct Row {
    pub id: String,
    pub category: String,
    pub subject: String,
    pub body: String,
    pub at: String,
    pub unread: bool,
}

#[derive(Template)]
#[template(path = "messages.html")]
struct InboxPage<'a> {
    ctx: &'a PageCtx,
    rows: Vec<Row>,
    /// (value, title, selected) for the category filter.
    categories: Vec<(String, String, bool)>,
    unread_only: bool,
}

pub async fn inbox(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<HashMap<String, String>>) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    let category = Some(field(&q, "category")).filter(|c| Category::parse(c).is_some());
    let unread_only = field(&q, "unread") == "1";
    let filter = souk_store::messages::InboxFilter { category, unread_only, before: None, limit: 100 };
    let result: Result<Response, Error> = async {
        let (items, _) = crate::messages::inbox(&state, &caller, &filter).await?;
        let rows = items
            .into_iter()
            .map(|m| Row {
                category: Category::parse(&m.category).map_or_else(|| m.category.clone(), |c| c.title(ctx.t.lang).to_owned()),
                id: m.id,
                subject: m.subject,
                body: m.body,
                at: m.created_at.format("%Y-%m-%d %H:%M").to_string(),
                unread: m.read_at.is_none(),
            })
            .collect();
        let categories = Category::ALL
            .iter()
            .map(|c| (c.as_str().to_owned(), c.title(ctx.t.lang).to_owned(), category == Some(c.as_str())))
            .collect();
        Ok(render(&InboxPage { ctx: &ctx, rows, categories, unread_only }))
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

/// `read` (one message, `id`) or `read_all`.
pub async fn action(State(state): State<AppState>, ctx: PageCtx, Form(f): Form<HashMap<String, String>>) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let result = match field(&f, "action") {
        "read" => crate::messages::mark_read(&state, &caller, Some(field(&f, "id"))).await,
        "read_all" => crate::messages::mark_read(&state, &caller, None).await,
        _ => Err(Error::bad_request("unknown_action", "unknown action")),
    };
    match result {
        Ok(_) => Redirect::to("/messages").into_response(),
        Err(e) => ctx.fail(e),
    }
}

/// A choosable recipient on the settings page: (value, label, chosen).
pub type Choice = (String, String, bool);

pub struct SettingsRow {
    pub category: String,
    pub title: String,
    pub mutable: bool,
    pub inbox_muted: bool,
    pub email_muted: bool,
    pub sms_muted: bool,
    pub email: Vec<Choice>,
    pub sms: Vec<Choice>,
}

pub struct ContactRow {
    pub id: String,
    pub channel: String,
    pub address: String,
    pub confirmed: bool,
}

#[derive(Template)]
#[template(path = "message_settings.html")]
struct SettingsPage<'a> {
    ctx: &'a PageCtx,
    org_id: String,
    rows: Vec<SettingsRow>,
    contacts: Vec<ContactRow>,
    /// The latest emails and SMS: the delivery log.
    sends: Vec<souk_store::messages::Send>,
    message: Option<String>,
}

fn target_value(t: &souk_store::messages::Target) -> String {
    match t {
        souk_store::messages::Target::Member(a) => format!("member:{a}"),
        souk_store::messages::Target::Contact(c) => format!("contact:{c}"),
    }
}

async fn settings_page(state: &AppState, ctx: &PageCtx, org_id: &str, message: Option<String>) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    let result: Result<Response, Error> = async {
        let org: souk_core::id::OrgId = crate::extract::path_id(org_id)?;
        let settings = crate::messages::settings(state, &caller, &org).await?;
        let contacts = crate::messages::contacts(state, &caller, &org).await?;
        let members = souk_store::orgs::members(&mut state.db.clone(), &org).await?;
        let choices = |channel: &str, chosen: &[souk_store::messages::Target]| {
            let chosen: Vec<String> = chosen.iter().map(target_value).collect();
            let mut out: Vec<Choice> = members
                .iter()
                .map(|m| {
                    let v = format!("member:{}", m.account_id);
                    let on = chosen.contains(&v);
                    (v, format!("{} <{}>", m.name, m.email), on)
                })
                .collect();
            for c in contacts.iter().filter(|c| c.channel == channel && c.confirmed_at.is_some()) {
                let v = format!("contact:{}", c.id);
                let on = chosen.contains(&v);
                out.push((v, c.address.clone(), on));
            }
            out
        };
        let rows = settings
            .iter()
            .map(|s| SettingsRow {
                category: s.category.as_str().to_owned(),
                title: s.category.title(ctx.t.lang).to_owned(),
                mutable: s.mutable,
                inbox_muted: s.inbox_muted,
                email_muted: s.email_muted,
                sms_muted: s.sms_muted,
                email: choices("email", &s.email),
                sms: choices("sms", &s.sms),
            })
            .collect();
        let contacts = contacts
            .into_iter()
            .map(|c| ContactRow { confirmed: c.confirmed_at.is_some(), id: c.id, channel: c.channel, address: c.address })
            .collect();
        let sends = crate::messages::sends(state, &caller, &org).await?;
        Ok(render(&SettingsPage { ctx, org_id: org.to_string(), rows, contacts, sends, message }))
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub async fn settings(
    State(state): State<AppState>,
    ctx: PageCtx,
    axum::extract::Path(org_id): axum::extract::Path<String>,
) -> Response {
    settings_page(&state, &ctx, &org_id, None).await
}

/// `save` a category, or `add`, `confirm` and `remove` a contact. Checkboxes repeat a name, so
/// the form is read as pairs.
pub async fn settings_action(
    State(state): State<AppState>,
    ctx: PageCtx,
    axum::extract::Path(org_id): axum::extract::Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    let one = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("");
    if let Err(r) = ctx.check_csrf(one("_csrf")) {
        return r;
    }
    let Ok(org) = crate::extract::path_id::<souk_core::id::OrgId>(&org_id) else { return ctx.fail(Error::not_found()) };
    let targets = |k: &str| -> Vec<souk_store::messages::Target> {
        pairs
            .iter()
            .filter(|(n, _)| n == k)
            .filter_map(|(_, v)| match v.split_once(':') {
                Some(("member", a)) => Some(souk_store::messages::Target::Member(a.to_owned())),
                Some(("contact", c)) => Some(souk_store::messages::Target::Contact(c.to_owned())),
                _ => None,
            })
            .collect()
    };
    let outcome: Result<(), Error> = async {
        match one("action") {
            "save" => {
                let input = crate::messages::CategoryInput {
                    inbox_muted: one("inbox_muted") == "on",
                    email_muted: one("email_muted") == "on",
                    sms_muted: one("sms_muted") == "on",
                    email: targets("email"),
                    sms: targets("sms"),
                };
                crate::messages::set_category(&state, &caller, &org, one("category"), &input).await.map(|_| ())
            }
            "add" => crate::messages::add_contact(&state, &caller, &org, one("channel"), one("address")).await.map(|_| ()),
            "confirm" => crate::messages::confirm_contact(&state, &caller, &org, one("id"), one("code")).await.map(|_| ()),
            "remove" => crate::messages::remove_contact(&state, &caller, &org, one("id")).await,
            _ => Err(Error::bad_request("unknown_action", "unknown action")),
        }
    }
    .await;
    match outcome {
        Ok(()) => Redirect::to(&format!("/orgs/{org_id}/message-settings")).into_response(),
        Err(e) if e.status().is_client_error() && e.status() != axum::http::StatusCode::NOT_FOUND => {
            settings_page(&state, &ctx, &org_id, Some(e.summary())).await
        }
        Err(e) => ctx.fail(e),
    }
}
