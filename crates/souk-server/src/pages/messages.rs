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
