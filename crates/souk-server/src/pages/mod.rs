//! Server-rendered pages (askama templates compiled into the binary), in English and
//! Simplified Chinese. Forms are CSRF-protected with a double-submit token: a random value
//! in an HttpOnly, SameSite=Strict cookie that every form repeats in a hidden field.

// Page handlers answer with a ready response on every path; boxing it gains nothing.
#![allow(clippy::result_large_err)]

mod account;
pub(crate) mod admin;
mod billing;
mod buyer;
mod integration;
mod messages;
mod orgs;
pub(crate) mod seller;
pub(crate) mod store;

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use souk_core::identity::StaffRole;
use souk_core::site::{Lang, Site};
use souk_store::accounts::Account;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::auth::{Caller, MaybeCaller, Principal, cookie, random_token, set_cookie};
use crate::error::{Error, ProblemField};
use crate::i18n::Tr;

pub const CSRF_COOKIE: &str = "souk_csrf";
pub const LANG_COOKIE: &str = "souk_lang";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(store::home))
        .route("/products", get(store::search))
        .route("/products/{id}", get(store::product))
        .route("/checkout", get(buyer::checkout).post(buyer::pay))
        .route("/subscriptions", get(buyer::subscriptions).post(buyer::subscription_action))
        .route("/wallet", get(buyer::wallet))
        .route("/messages", get(messages::inbox).post(messages::action))
        .route("/orgs/{org_id}/message-settings", get(messages::settings).post(messages::settings_action))
        .route("/wallet/top-up", post(billing::start_top_up))
        .route("/sandbox/pay/{id}", get(billing::sandbox_page).post(billing::sandbox_pay))
        .route("/orders", get(billing::orders))
        .route("/bills", get(billing::bills))
        .route("/trials", get(billing::trials).post(billing::start_trial))
        .route("/orgs/{org_id}/sales", get(billing::sales))
        .route("/orgs/{org_id}/products/{product_id}/integration", get(integration::page).post(integration::action))
        .route("/orgs/{org_id}/deliveries", get(integration::deliveries))
        .route("/admin/integrations", get(integration::failing))
        .route("/orgs/{org_id}/products/{product_id}/license-pool", get(integration::license_pool).post(integration::upload_pool))
        .route("/orgs/{org_id}/deliveries/{event_id}/redeliver", post(integration::redeliver))
        .route("/orgs/{org_id}/test-coupons", get(billing::test_coupons).post(billing::issue_test_coupon))
        .route("/admin/coupons", get(billing::admin_coupons).post(billing::admin_create_coupon))
        .route("/admin/top-ups", get(billing::admin_top_up_page).post(billing::admin_top_up))
        .route("/shops/{org_id}", get(store::shop))
        .route("/signup", get(account::signup_page).post(account::signup))
        .route("/signin", get(account::signin_page).post(account::signin))
        .route("/signout", post(account::signout))
        .route("/account", get(account::account_page))
        .route("/account/password", post(account::change_password))
        .route("/account/phone", post(account::phone))
        .route("/lang/{code}", get(account::switch_lang))
        .route("/orgs", get(orgs::list).post(orgs::create))
        .route("/orgs/{org_id}", get(orgs::show))
        .route("/orgs/{org_id}/members", post(orgs::add_member))
        .route("/orgs/{org_id}/members/{account_id}", post(orgs::change_member))
        .route("/orgs/{org_id}/api-keys", get(orgs::api_keys).post(orgs::create_api_key))
        .route("/orgs/{org_id}/api-keys/{key_id}/revoke", post(orgs::revoke_api_key))
        .route("/orgs/{org_id}/verification", get(orgs::verification).post(orgs::submit_verification))
        .route("/admin/verifications", get(admin::queue))
        .route("/admin/verifications/{id}", get(admin::review))
        .route("/admin/verifications/{id}/decision", post(admin::decide))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/reviews", get(admin::reviews))
        .route("/admin/reviews/{id}", get(admin::review_product))
        .route("/admin/reviews/{id}/decision", post(admin::decide_product))
        .route("/admin/sellers", get(admin::sellers))
        .route("/admin/sellers/{org_id}", post(admin::seller_action))
        .route("/orgs/{org_id}/seller", get(seller::home))
        .route("/orgs/{org_id}/seller/agreements/{agreement_id}/accept", post(seller::accept))
        .route("/orgs/{org_id}/seller/apply", post(seller::apply))
        .route("/orgs/{org_id}/products", get(seller::products).post(seller::create))
        .route("/orgs/{org_id}/products/{product_id}", get(seller::edit))
        .route("/orgs/{org_id}/products/{product_id}/draft", post(seller::save))
        .route("/orgs/{org_id}/products/{product_id}/lifecycle", post(seller::lifecycle))
        .route("/orgs/{org_id}/products/{product_id}/media", post(seller::upload_media))
        .route("/media/products/{product_id}/{upload_id}", get(store::media))
        .route("/orgs/{org_id}/applications", get(seller::applications))
        .route("/orgs/{org_id}/shop", get(seller::shop_edit).post(seller::shop_save))
        .route("/orgs/{org_id}/shop/preview", get(seller::shop_preview))
        .route("/admin/reviews/shops/{id}", get(admin::review_shop))
        .route("/admin/reviews/shops/{id}/decision", post(admin::decide_shop))
        .layer(middleware::from_fn(csrf_cookie))
}

#[derive(Clone)]
struct CsrfToken(String);

/// Gives every visitor a CSRF token cookie, so the page being rendered can embed it.
async fn csrf_cookie(mut req: Request, next: Next) -> Response {
    let existing = cookie(req.headers(), CSRF_COOKIE).filter(|t| t.len() >= 32).map(str::to_owned);
    let token = existing.clone().unwrap_or_else(|| random_token(32));
    req.extensions_mut().insert(CsrfToken(token.clone()));
    let mut res = next.run(req).await;
    if existing.is_none() {
        // Secure is left off here: the same cookie must work on http://127.0.0.1 for a newcomer.
        if let Ok(v) = HeaderValue::from_str(&set_cookie(CSRF_COOKIE, &token, 60 * 60 * 24 * 30, false, "Strict")) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

/// What every page template needs: the words, the visitor, the CSRF token.
pub struct PageCtx {
    pub t: Tr,
    pub caller: Option<Caller>,
    pub account: Option<Account>,
    pub csrf: String,
    pub path: String,
    /// The signed-in person's unread messages (the layout's badge).
    pub unread: i64,
}

impl PageCtx {
    pub fn is_operator(&self) -> bool {
        self.account.as_ref().is_some_and(|a| a.staff_role == Some(StaffRole::Operator))
    }

    /// The storefront the visitor sees: a signed-in account's own site, otherwise the one
    /// that matches the page language.
    pub fn site(&self) -> Site {
        match &self.account {
            Some(a) => a.site,
            None if self.t.lang == Lang::ZhCn => Site::Cn,
            None => Site::Intl,
        }
    }

    pub fn other_lang(&self) -> &'static str {
        match self.t.lang {
            Lang::En => "zh-CN",
            Lang::ZhCn => "en",
        }
    }

    /// The signed-in person, or a redirect to the sign-in page that comes back here.
    pub fn require_account(&self) -> Result<(&Caller, &Account), Response> {
        match (&self.caller, &self.account) {
            (Some(c), Some(a)) => Ok((c, a)),
            _ => Err(Redirect::to(&format!("/signin?next={}", urlencoding::encode(&self.path))).into_response()),
        }
    }

    /// Checks the token a form sent back.
    pub fn check_csrf(&self, sent: &str) -> Result<(), Response> {
        if !sent.is_empty() && bool::from(sent.as_bytes().ct_eq(self.csrf.as_bytes())) {
            Ok(())
        } else {
            Err(self.error_page(
                StatusCode::FORBIDDEN,
                "error.forbidden",
                Some("the form expired; reload the page and try again".into()),
            ))
        }
    }

    pub fn error_page(&self, status: StatusCode, title_key: &'static str, detail: Option<String>) -> Response {
        let page = ErrorPage { ctx: self, title_key, detail };
        (status, render(&page)).into_response()
    }

    /// Turns a domain error on a GET into a page: sign-in for 401, the error page otherwise.
    pub fn fail(&self, e: Error) -> Response {
        match e.status() {
            StatusCode::UNAUTHORIZED => Redirect::to("/signin").into_response(),
            StatusCode::NOT_FOUND => self.error_page(StatusCode::NOT_FOUND, "error.not_found", None),
            StatusCode::FORBIDDEN => self.error_page(StatusCode::FORBIDDEN, "error.forbidden", Some(e.message())),
            s => {
                if s.is_server_error() {
                    tracing::error!(error = ?e, "page failed");
                }
                self.error_page(s, "error.not_found", Some(e.message()))
            }
        }
    }
}

impl FromRequestParts<AppState> for PageCtx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let MaybeCaller(caller) = MaybeCaller::from_request_parts(parts, state).await.unwrap_or(MaybeCaller(None));
        let account = match &caller {
            Some(Caller(Principal::Account { account, .. })) => Some(account.clone()),
            _ => None,
        };
        // Pages are for people; an API key sent to a page does not sign anyone in.
        let caller = if account.is_some() { caller } else { None };
        let lang = cookie(&parts.headers, LANG_COOKIE)
            .and_then(Lang::parse)
            .or(account.as_ref().map(|a| a.lang))
            .or_else(|| {
                let accept = parts.headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
                accept.trim_start().to_ascii_lowercase().starts_with("zh").then_some(Lang::ZhCn)
            })
            .unwrap_or(Lang::En);
        let csrf = parts.extensions.get::<CsrfToken>().map(|t| t.0.clone()).unwrap_or_default();
        let path = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
        let unread = match &account {
            Some(a) => crate::messages::unread(state, a.id.as_str()).await.unwrap_or(0),
            None => 0,
        };
        Ok(PageCtx { t: Tr { lang }, caller, account, csrf, path, unread })
    }
}

/// A submitted form field, empty when absent.
pub(crate) fn field<'a>(f: &'a HashMap<String, String>, k: &str) -> &'a str {
    f.get(k).map(String::as_str).unwrap_or("")
}

/// An amount in minor units as pages show it (`¥70.00`).
pub(crate) fn money(minor: i64, currency: &str) -> String {
    souk_core::money::Currency::parse(currency)
        .map(|c| souk_core::money::Money::new(minor, c).to_string())
        .unwrap_or_else(|_| minor.to_string())
}

/// Submitted values and their errors, to show a form again with messages beside its fields.
#[derive(Default)]
pub struct FormState {
    pub values: HashMap<String, String>,
    pub errors: Vec<ProblemField>,
    pub message: Option<String>,
    pub notice: Option<String>,
}

impl FormState {
    pub fn from_error(values: HashMap<String, String>, e: &Error) -> Self {
        let errors = e.field_errors().to_vec();
        let message = if errors.is_empty() { Some(e.message()) } else { None };
        if e.status().is_server_error() {
            tracing::error!(error = ?e, "form submission failed");
        }
        Self { values, errors, message, notice: None }
    }

    pub fn notice(text: &str) -> Self {
        Self { notice: Some(text.to_owned()), ..Default::default() }
    }

    pub fn err(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }

    pub fn val(&self, field: &str) -> &str {
        self.values.get(field).map(String::as_str).unwrap_or("")
    }
}

/// The status a form re-rendered after `e` is answered with.
pub fn form_status(e: &Error) -> StatusCode {
    e.status()
}

pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    ctx: &'a PageCtx,
    title_key: &'static str,
    detail: Option<String>,
}

/// The HTML 404 for unknown page paths.
pub async fn not_found(state: &AppState, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let Ok(ctx) = PageCtx::from_request_parts(&mut parts, state).await;
    ctx.error_page(StatusCode::NOT_FOUND, "error.not_found", None)
}

/// An organization as the pages show it.
pub struct OrgView {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub verification_status: String,
    pub verified_name: Option<String>,
    pub role: Option<String>,
}

impl OrgView {
    pub fn new(o: &souk_store::orgs::Org, role: Option<souk_core::identity::OrgRole>) -> Self {
        Self {
            id: o.id.to_string(),
            name: o.name.clone(),
            kind: o.kind.as_str().to_owned(),
            verification_status: o.verification_status.clone(),
            verified_name: o.verified_name.clone(),
            role: role.map(|r| r.as_str().to_owned()),
        }
    }

    pub fn kind_key(&self) -> &'static str {
        if self.kind == "personal" { "kind.personal" } else { "kind.enterprise" }
    }

    pub fn status_key(&self) -> &'static str {
        match self.verification_status.as_str() {
            "pending" => "status.pending",
            "verified" => "status.verified",
            "rejected" => "status.rejected",
            _ => "status.unverified",
        }
    }

    pub fn role_key(&self) -> &'static str {
        role_key(self.role.as_deref().unwrap_or("member"))
    }
}

pub fn role_key(role: &str) -> &'static str {
    match role {
        "owner" => "role.owner",
        "admin" => "role.admin",
        _ => "role.member",
    }
}
