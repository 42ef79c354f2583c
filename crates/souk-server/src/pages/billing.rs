//! The buyer's money pages beyond checkout: paying into the wallet (through the sandbox
//! provider's checkout), orders, monthly bills, and the trial center.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use souk_core::money::{Currency, Money};

use super::{PageCtx, render};
use super::{field, money};
use crate::AppState;
use crate::error::Error;
use crate::extract::RequestId;

/// "Top up" on the wallet page: starts a top-up and sends the buyer to the provider's checkout.
pub async fn start_top_up(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let (caller, account) = match ctx.require_account() {
        Ok((c, a)) => (c.clone(), a.clone()),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let currency = account.site.currency();
    let amount = match Money::parse_major(field(&f, "amount"), currency) {
        Ok(m) => m,
        Err(_) => return ctx.fail(Error::field("amount", "an amount like 100 or 99.50")),
    };
    match crate::wallet::start_top_up(&state, &caller, &account.personal_org_id, currency.code(), amount.minor, rid.as_deref())
        .await
    {
        Ok((_, url)) => Redirect::to(&url).into_response(),
        Err(e) => ctx.fail(e),
    }
}

#[derive(Template)]
#[template(path = "sandbox_pay.html")]
struct SandboxPage<'a> {
    ctx: &'a PageCtx,
    id: String,
    amount: String,
    state: String,
}

/// The sandbox provider's checkout page: what a real provider's hosted page would be.
pub async fn sandbox_page(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> Response {
    let account = match ctx.require_account() {
        Ok((_, a)) => a.clone(),
        Err(r) => return r,
    };
    match souk_store::payments::get(&mut state.db.clone(), &id).await {
        Ok(t) if t.org_id == account.personal_org_id.as_str() => {
            render(&SandboxPage { ctx: &ctx, amount: money(t.amount_minor, &t.currency), id: t.id, state: t.state })
        }
        Ok(_) => ctx.fail(Error::not_found()),
        Err(e) => ctx.fail(e.into()),
    }
}

pub async fn sandbox_pay(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let (caller, account) = match ctx.require_account() {
        Ok((c, a)) => (c.clone(), a.clone()),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let pay = field(&f, "action") == "pay";
    match crate::wallet::sandbox_checkout(&state, &caller, &account.personal_org_id, &id, pay).await {
        Ok(_) => Redirect::to("/wallet").into_response(),
        Err(e) => ctx.fail(e),
    }
}

pub struct OrderRow {
    pub id: String,
    pub at: String,
    pub product_id: String,
    pub plan: String,
    pub kind: String,
    pub state: String,
    pub total: String,
}

#[derive(Template)]
#[template(path = "orders.html")]
struct OrdersPage<'a> {
    ctx: &'a PageCtx,
    title_key: &'static str,
    rows: Vec<OrderRow>,
    states: &'static [&'static str],
    state: String,
    action: String,
}

pub const ORDER_STATES: &[&str] = &["paid", "completed", "fulfillment_failed", "cancelled", "refunded"];

pub fn order_rows(orders: Vec<souk_store::orders::Order>) -> Vec<OrderRow> {
    orders
        .into_iter()
        .map(|o| OrderRow {
            at: o.created_at.format("%Y-%m-%d %H:%M").to_string(),
            plan: o.plan_snapshot.get("name").and_then(|n| n.as_str()).unwrap_or_default().to_owned(),
            total: money(o.total_minor, &o.currency),
            id: o.id,
            product_id: o.product_id,
            kind: o.kind,
            state: o.state,
        })
        .collect()
}

/// An order list (the buyer's, or a seller's sales), filtered by state.
pub async fn orders_page(
    state: &AppState,
    ctx: &PageCtx,
    side: souk_store::orders::Side,
    org: &souk_core::id::OrgId,
    q: &HashMap<String, String>,
    action: String,
) -> Result<Response, Error> {
    let wanted = field(q, "state");
    let filter = souk_store::orders::OrderFilter {
        state: ORDER_STATES.iter().find(|s| **s == wanted).map(|s| (*s).to_owned()),
        limit: 200,
        ..Default::default()
    };
    let orders = souk_store::orders::list_filtered(&mut state.db.clone(), side, org, &filter).await?;
    let title_key = if side == souk_store::orders::Side::Buyer { "orders.title" } else { "sales.title" };
    Ok(render(&OrdersPage { ctx, title_key, rows: order_rows(orders), states: ORDER_STATES, state: wanted.to_owned(), action }))
}

pub async fn orders(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<HashMap<String, String>>) -> Response {
    let account = match ctx.require_account() {
        Ok((_, a)) => a.clone(),
        Err(r) => return r,
    };
    orders_page(&state, &ctx, souk_store::orders::Side::Buyer, &account.personal_org_id, &q, "/orders".into())
        .await
        .unwrap_or_else(|e| ctx.fail(e))
}

pub struct BillView {
    pub currency: String,
    pub opening: String,
    pub top_ups: String,
    pub charges: String,
    pub refunds: String,
    pub closing: String,
    pub csv_url: String,
    /// (time, kind, reference, plan, amount, balance after)
    pub lines: Vec<(String, String, String, String, String, String)>,
}

#[derive(Template)]
#[template(path = "bills.html")]
struct BillsPage<'a> {
    ctx: &'a PageCtx,
    month: String,
    previous: String,
    next: String,
    bills: Vec<BillView>,
}

pub async fn bills(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<HashMap<String, String>>) -> Response {
    let (caller, account) = match ctx.require_account() {
        Ok((c, a)) => (c.clone(), a.clone()),
        Err(r) => return r,
    };
    let site = account.site;
    let month = match field(&q, "month") {
        "" => souk_core::billing::BillMonth::containing(state.clock.now(), site),
        m => match crate::billing::parse_month(m) {
            Ok(m) => m,
            Err(e) => return ctx.fail(e),
        },
    };
    let org = account.personal_org_id;
    let result = crate::billing::bills(&state, &caller, &org, month).await.map(|bills| {
        let tz = souk_core::billing::offset(site);
        let views = bills
            .into_iter()
            .map(|b| {
                let c = b.currency.code();
                BillView {
                    currency: c.to_owned(),
                    opening: money(b.totals.opening_minor, c),
                    top_ups: money(b.totals.top_ups_minor, c),
                    charges: money(b.totals.charges_minor, c),
                    refunds: money(b.totals.refunds_minor, c),
                    closing: money(b.totals.closing_minor, c),
                    csv_url: format!("/api/v1/orgs/{org}/bills/{}/{c}.csv", b.month),
                    lines: b
                        .lines
                        .into_iter()
                        .map(|l| {
                            (
                                l.at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
                                l.kind.as_str().to_owned(),
                                l.reference.unwrap_or_default(),
                                l.plan_name.unwrap_or_default(),
                                money(l.delta_minor, c),
                                money(l.balance_after, c),
                            )
                        })
                        .collect(),
                }
            })
            .collect();
        render(&BillsPage {
            ctx: &ctx,
            month: month.to_string(),
            previous: month.previous().to_string(),
            next: month.next().to_string(),
            bills: views,
        })
    });
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub struct TrialOffer {
    pub product_id: String,
    pub product: String,
    pub plan_id: String,
    pub plan: String,
    pub days: u32,
    pub enterprise_only: bool,
}

#[derive(Template)]
#[template(path = "trials.html")]
struct TrialsPage<'a> {
    ctx: &'a PageCtx,
    offers: Vec<TrialOffer>,
    /// Products this organization has already tried.
    tried: Vec<String>,
}

/// The trial center: every listed product on the visitor's site with a free trial plan.
pub async fn trials(State(state): State<AppState>, ctx: PageCtx) -> Response {
    let result: Result<Response, Error> = async {
        let mut db = state.db.clone();
        let search = souk_store::storefront::Search { has_trial: true, sort: "newest".into(), limit: 60, ..Default::default() };
        let (hits, _) = souk_store::storefront::search(&mut db, &search, ctx.site()).await?;
        let mut offers = Vec::new();
        for h in hits {
            let pid: souk_core::id::ProductId = h.product_id.parse().map_err(|_| Error::not_found())?;
            for p in souk_store::products::plans(&mut db, &pid, false).await? {
                if let Some(t) = &p.spec.trial {
                    offers.push(TrialOffer {
                        product_id: h.product_id.clone(),
                        product: h.name.clone(),
                        plan_id: p.id.to_string(),
                        plan: p.spec.name.clone(),
                        days: t.days,
                        enterprise_only: t.enterprise_only,
                    });
                }
            }
        }
        let tried = match &ctx.account {
            Some(a) => souk_store::orders::tried_products(&mut db, &a.personal_org_id).await?,
            None => Vec::new(),
        };
        Ok(render(&TrialsPage { ctx: &ctx, offers, tried }))
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub async fn start_trial(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let (caller, account) = match ctx.require_account() {
        Ok((c, a)) => (c.clone(), a.clone()),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    match crate::subscriptions::start_trial(
        &state,
        &caller,
        &account.personal_org_id,
        field(&f, "product_id"),
        field(&f, "plan_id"),
        rid.as_deref(),
    )
    .await
    {
        Ok(_) => Redirect::to("/subscriptions").into_response(),
        Err(e) => ctx.fail(e),
    }
}

/// A seller's sales, filtered by state.
pub async fn sales(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path(org_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    let result: Result<Response, Error> = async {
        let org: souk_core::id::OrgId = crate::extract::path_id(&org_id)?;
        caller.role_in(&state, &org).await?;
        orders_page(&state, &ctx, souk_store::orders::Side::Seller, &org, &q, format!("/orgs/{org}/sales")).await
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub struct CouponRow {
    pub code: String,
    pub value: String,
    pub scope: String,
    pub valid_until: String,
}

fn coupon_rows(coupons: Vec<souk_store::coupons::Coupon>) -> Vec<CouponRow> {
    coupons
        .into_iter()
        .map(|c| CouponRow {
            value: match (c.rule.value, c.rule.currency) {
                (souk_core::pricing::CouponValue::Fixed { amount_minor }, Some(cur)) => Money::new(amount_minor, cur).to_string(),
                (souk_core::pricing::CouponValue::Fixed { amount_minor }, None) => amount_minor.to_string(),
                (souk_core::pricing::CouponValue::Percent { bp }, _) => format!("{}.{:02}%", bp / 100, bp % 100),
            },
            scope: match &c.rule.scope {
                souk_core::pricing::CouponScope::Any => "any".into(),
                souk_core::pricing::CouponScope::Seller(id) => format!("seller {id}"),
                souk_core::pricing::CouponScope::Product(id) => format!("product {id}"),
                souk_core::pricing::CouponScope::Plan(id) => format!("plan {id}"),
            },
            valid_until: c.rule.valid_until.format("%Y-%m-%d").to_string(),
            code: c.code,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "coupons.html")]
struct CouponsPage<'a> {
    ctx: &'a PageCtx,
    /// The form posts here.
    action: String,
    /// Operators issue any coupon; a seller issues test coupons for its products.
    operator: bool,
    rows: Vec<CouponRow>,
    /// A seller's products: (id, name).
    products: Vec<(String, String)>,
    remaining: String,
    message: Option<String>,
}

/// A seller's test coupons (seed §19) and the form to issue one.
pub async fn test_coupons(State(state): State<AppState>, ctx: PageCtx, Path(org_id): Path<String>) -> Response {
    test_coupons_page(&state, &ctx, &org_id, None).await
}

async fn test_coupons_page(state: &AppState, ctx: &PageCtx, org_id: &str, message: Option<String>) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    let result: Result<Response, Error> = async {
        let org: souk_core::id::OrgId = crate::extract::path_id(org_id)?;
        let (coupons, _, remaining) = crate::commerce::test_coupons(state, &caller, &org).await?;
        let mut db = state.db.clone();
        let mut products = Vec::new();
        for p in souk_store::products::list_for_seller(&mut db, &org).await? {
            if let Some(rev) = &p.live_revision_id {
                products.push((p.id.to_string(), souk_store::products::get_revision(&mut db, rev).await?.content.name));
            }
        }
        Ok(render(&CouponsPage {
            ctx,
            action: format!("/orgs/{org}/test-coupons"),
            operator: false,
            rows: coupon_rows(coupons),
            products,
            remaining: remaining.to_string(),
            message,
        }))
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub async fn issue_test_coupon(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Path(org_id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let (caller, account) = match ctx.require_account() {
        Ok((c, a)) => (c.clone(), a.clone()),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let Ok(org) = crate::extract::path_id::<souk_core::id::OrgId>(&org_id) else { return ctx.fail(Error::not_found()) };
    let currency = match souk_store::orgs::get(&mut state.db.clone(), &org).await {
        Ok(o) => o.site.currency(),
        Err(_) => account.site.currency(),
    };
    let result = match Money::parse_major(field(&f, "amount"), currency) {
        Ok(m) => crate::commerce::issue_test_coupon(&state, &caller, &org, field(&f, "product_id"), m.minor, rid.as_deref())
            .await
            .map(|c| c.code),
        Err(_) => Err(Error::field("amount", "an amount like 100 or 99.50")),
    };
    let message = match result {
        Ok(code) => code,
        Err(e) if e.status().is_client_error() => e.summary(),
        Err(e) => return ctx.fail(e),
    };
    test_coupons_page(&state, &ctx, &org_id, Some(message)).await
}

/// "12.5" (percent) → 1250 basis points; at most two decimals. Integers only, like money.
fn percent_to_bp(raw: &str) -> Option<u32> {
    let (int, frac) = raw.split_once('.').unwrap_or((raw, ""));
    if frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac: u32 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().ok()? };
    int.parse::<u32>().ok()?.checked_mul(100)?.checked_add(frac)
}

fn operator(ctx: &PageCtx) -> Result<crate::auth::Caller, Response> {
    let (caller, _) = ctx.require_account()?;
    caller.staff(souk_core::identity::StaffRole::Operator).map_err(|e| ctx.fail(e))?;
    Ok(caller.clone())
}

/// Operators: coupons and the form to issue one.
pub async fn admin_coupons(State(state): State<AppState>, ctx: PageCtx) -> Response {
    admin_coupons_page(&state, &ctx, None).await
}

async fn admin_coupons_page(state: &AppState, ctx: &PageCtx, message: Option<String>) -> Response {
    if let Err(r) = operator(ctx) {
        return r;
    }
    match souk_store::coupons::list(&mut state.db.clone()).await {
        Ok(list) => render(&CouponsPage {
            ctx,
            action: "/admin/coupons".into(),
            operator: true,
            rows: coupon_rows(list),
            products: Vec::new(),
            remaining: String::new(),
            message,
        }),
        Err(e) => ctx.fail(e.into()),
    }
}

pub async fn admin_create_coupon(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let caller = match operator(&ctx) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let days: i64 = field(&f, "days").parse().unwrap_or(30).clamp(1, 3650);
    let percent = field(&f, "percent").trim();
    let amount = field(&f, "amount").trim();
    let currency = field(&f, "currency");
    let (percent_bp, amount_minor) = if !percent.is_empty() {
        (percent_to_bp(percent), None)
    } else {
        let minor = Currency::parse(currency).ok().and_then(|c| Money::parse_major(amount, c).ok()).map(|m| m.minor);
        (None, minor.or(Some(0)))
    };
    let scope_id = Some(field(&f, "scope_id").trim()).filter(|s| !s.is_empty());
    let input = crate::commerce::NewCoupon {
        code: field(&f, "code"),
        percent_bp,
        amount_minor,
        currency: Some(currency).filter(|c| !c.is_empty() && percent.is_empty()),
        scope: field(&f, "scope"),
        scope_id,
        valid_from: None,
        valid_until: state.clock.now() + chrono::Duration::days(days),
        per_buyer_limit: field(&f, "per_buyer_limit").parse().unwrap_or(1),
    };
    let message = match crate::commerce::create_coupon(&state, &caller, input, rid.as_deref()).await {
        Ok(c) => c.code,
        Err(e) if e.status().is_client_error() => e.summary(),
        Err(e) => return ctx.fail(e),
    };
    admin_coupons_page(&state, &ctx, Some(message)).await
}

#[derive(Template)]
#[template(path = "admin_top_up.html")]
struct AdminTopUpPage<'a> {
    ctx: &'a PageCtx,
    message: Option<String>,
}

/// Operators: credit an organization's wallet (with a reason, audited).
pub async fn admin_top_up_page(ctx: PageCtx) -> Response {
    if let Err(r) = operator(&ctx) {
        return r;
    }
    render(&AdminTopUpPage { ctx: &ctx, message: None })
}

pub async fn admin_top_up(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let caller = match operator(&ctx) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let result = async {
        let org: souk_core::id::OrgId =
            field(&f, "org_id").trim().parse().map_err(|_| Error::field("org_id", "an organization id like org_…"))?;
        let currency = Currency::parse(field(&f, "currency")).map_err(|_| Error::field("currency", "CNY, USD, EUR or JPY"))?;
        let amount =
            Money::parse_major(field(&f, "amount"), currency).map_err(|_| Error::field("amount", "an amount like 100"))?;
        crate::wallet::top_up(&state, &caller, &org, currency.code(), amount.minor, field(&f, "reason"), rid.as_deref()).await
    }
    .await;
    let message = match result {
        Ok(balance) => format!("{}: {balance}", field(&f, "org_id").trim()),
        Err(e) if e.status().is_client_error() => e.summary(),
        Err(e) => return ctx.fail(e),
    };
    render(&AdminTopUpPage { ctx: &ctx, message: Some(message) })
}
