//! Home, sign-up, sign-in, sign-out, the account page and the language switch.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use souk_core::site::Lang;

use super::field;
use super::{FormState, LANG_COOKIE, PageCtx, form_status, render};
use crate::AppState;
use crate::auth::{SESSION_COOKIE, cookie, set_cookie};
use crate::extract::RequestId;
use crate::identity::{self, SESSION_TTL, SignUp};

type Fields = Form<HashMap<String, String>>;

#[derive(Template)]
#[template(path = "signup.html")]
struct SignUpPage<'a> {
    ctx: &'a PageCtx,
    form: FormState,
}

pub async fn signup_page(ctx: PageCtx) -> Response {
    let mut form = FormState::default();
    form.values.insert("site".into(), if ctx.t.lang == Lang::ZhCn { "cn".into() } else { "intl".into() });
    render(&SignUpPage { ctx: &ctx, form })
}

pub async fn signup(State(state): State<AppState>, ctx: PageCtx, rid: RequestId, Form(f): Fields) -> Response {
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let input = SignUp {
        email: field(&f, "email"),
        name: field(&f, "name"),
        password: field(&f, "password"),
        site: field(&f, "site"),
        lang: Some(ctx.t.lang.code()),
    };
    let result = identity::sign_up(&state, input, rid.as_deref()).await;
    match result {
        Ok(_) => match identity::sign_in(&state, field(&f, "email"), field(&f, "password")).await {
            Ok((_, token)) => with_session(Redirect::to("/").into_response(), &state, &token),
            Err(e) => ctx.fail(e),
        },
        Err(e) => {
            let status = form_status(&e);
            let mut values = f.clone();
            values.remove("password");
            (status, render(&SignUpPage { ctx: &ctx, form: FormState::from_error(values, &e) })).into_response()
        }
    }
}

fn with_session(mut res: Response, state: &AppState, token: &str) -> Response {
    let c = set_cookie(SESSION_COOKIE, token, SESSION_TTL.num_seconds(), state.config.secure_cookies, "Lax");
    if let Ok(v) = HeaderValue::from_str(&c) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage<'a> {
    ctx: &'a PageCtx,
    form: FormState,
    next: String,
}

#[derive(serde::Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only local paths are followed after sign-in, never another site.
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') { next.to_owned() } else { "/".to_owned() }
}

pub async fn signin_page(ctx: PageCtx, Query(q): Query<NextQuery>) -> Response {
    let next = safe_next(q.next.as_deref().unwrap_or("/"));
    render(&SignInPage { ctx: &ctx, form: FormState::default(), next })
}

pub async fn signin(State(state): State<AppState>, ctx: PageCtx, Form(f): Fields) -> Response {
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let next = safe_next(field(&f, "next"));
    match identity::sign_in(&state, field(&f, "email"), field(&f, "password")).await {
        Ok((_, token)) => with_session(Redirect::to(&next).into_response(), &state, &token),
        Err(e) => {
            let mut values = f.clone();
            values.remove("password");
            (form_status(&e), render(&SignInPage { ctx: &ctx, form: FormState::from_error(values, &e), next })).into_response()
        }
    }
}

pub async fn signout(State(state): State<AppState>, ctx: PageCtx, headers: HeaderMap, Form(f): Fields) -> Response {
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = identity::sign_out(&state, token).await
    {
        return ctx.fail(e);
    }
    let mut res = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&set_cookie(SESSION_COOKIE, "", 0, state.config.secure_cookies, "Lax")) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    ctx: &'a PageCtx,
    password_form: FormState,
    phone: crate::messages::PhoneState,
    phone_form: FormState,
}

async fn account_view(state: &AppState, ctx: &PageCtx, form: FormState, phone_form: FormState) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    match crate::messages::phone_state(state, &caller).await {
        Ok(phone) => render(&AccountPage { ctx, password_form: form, phone, phone_form }),
        Err(e) => ctx.fail(e),
    }
}

pub async fn account_page(State(state): State<AppState>, ctx: PageCtx) -> Response {
    account_view(&state, &ctx, FormState::default(), FormState::default()).await
}

/// The phone form: send a code to a number, confirm it, or remove the bound one.
pub async fn phone(State(state): State<AppState>, ctx: PageCtx, Form(f): Fields) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let (result, done) = match field(&f, "action") {
        "confirm" => {
            (crate::messages::confirm_phone(&state, &caller, field(&f, "code")).await.map(|_| ()), "account.phone_bound")
        }
        "remove" => (crate::messages::remove_phone(&state, &caller).await, "account.phone_removed"),
        _ => (crate::messages::start_phone(&state, &caller, field(&f, "phone")).await.map(|_| ()), "account.phone_code_sent"),
    };
    match result {
        Ok(()) => account_view(&state, &ctx, FormState::default(), FormState::notice(ctx.t.get(done))).await,
        Err(e) => {
            let status = form_status(&e);
            let mut values = f.clone();
            values.remove("code");
            (status, account_view(&state, &ctx, FormState::default(), FormState::from_error(values, &e)).await).into_response()
        }
    }
}

pub async fn change_password(State(state): State<AppState>, ctx: PageCtx, rid: RequestId, Form(f): Fields) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    match identity::change_password(&state, &caller, field(&f, "current_password"), field(&f, "new_password"), rid.as_deref())
        .await
    {
        Ok(()) => {
            account_view(&state, &ctx, FormState::notice(ctx.t.get("account.password_changed")), FormState::default()).await
        }
        Err(e) => {
            let form = FormState::from_error(HashMap::new(), &e);
            (form_status(&e), account_view(&state, &ctx, form, FormState::default()).await).into_response()
        }
    }
}

/// Remembers the chosen language in a cookie (and on the account) and goes back.
pub async fn switch_lang(State(state): State<AppState>, ctx: PageCtx, Path(code): Path<String>, headers: HeaderMap) -> Response {
    let lang = Lang::parse(&code).unwrap_or(Lang::En);
    if let Some(a) = &ctx.account
        && let Err(e) = souk_store::accounts::set_lang(&mut state.db.clone(), state.clock.now(), &a.id, lang).await
    {
        return ctx.fail(e.into());
    }
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.find("://").map(|i| &r[i + 3..]))
        .and_then(|rest| rest.find('/').map(|i| rest[i..].to_owned()))
        .map(|p| safe_next(&p))
        .unwrap_or_else(|| "/".into());
    let mut res = Redirect::to(&back).into_response();
    if let Ok(v) = HeaderValue::from_str(&set_cookie(LANG_COOKIE, lang.code(), 60 * 60 * 24 * 365, false, "Lax")) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}
