//! The buyer's pages: checkout (quote, then pay from the wallet), subscriptions (renew,
//! unsubscribe with the refund shown first) and the wallet.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use souk_core::id::OrgId;

use super::{PageCtx, render};
use super::{field, money};
use crate::AppState;
use crate::auth::random_token;
use crate::commerce::{self, QuoteRequest};
use crate::error::Error;
use crate::extract::RequestId;

#[derive(Template)]
#[template(path = "checkout.html")]
struct CheckoutPage<'a> {
    ctx: &'a PageCtx,
    product_id: String,
    plan_id: String,
    plan_name: String,
    periods: u32,
    quantity: u32,
    coupon: String,
    list: String,
    discount: String,
    total: String,
    tax: String,
    /// Makes a double-clicked "Pay" buy once.
    key: String,
    error: Option<String>,
    /// A machine image: the deployment wizard's choices.
    image: Option<souk_core::catalog::ImageSpec>,
    /// The wizard's answers so far (never the password).
    form: HashMap<String, String>,
}

impl CheckoutPage<'_> {
    fn val(&self, k: &str) -> &str {
        self.form.get(k).map(String::as_str).unwrap_or("")
    }
}

/// The deployment wizard's answers from the checkout form, when the product is an image.
fn deployment(f: &HashMap<String, String>) -> Option<souk_core::compute::DeployInput> {
    if field(f, "region").is_empty() {
        return None;
    }
    let num = |k: &str| field(f, k).trim().parse::<u32>().ok();
    Some(souk_core::compute::DeployInput {
        region: field(f, "region").to_owned(),
        flavor: field(f, "flavor").to_owned(),
        disk_gb: num("disk_gb"),
        vpc: field(f, "vpc").trim().to_owned(),
        subnet: field(f, "subnet").trim().to_owned(),
        security_group: field(f, "security_group").trim().to_owned(),
        public_ip_mbps: num("public_ip_mbps").filter(|m| *m > 0),
        server_name: field(f, "server_name").trim().to_owned(),
        admin_password: field(f, "admin_password").to_owned(),
        accept_agreement: field(f, "accept_agreement") == "1",
    })
}

async fn checkout_page(state: &AppState, ctx: &PageCtx, f: &HashMap<String, String>, error: Option<String>) -> Response {
    let Some(account) = &ctx.account else { return Redirect::to("/signin").into_response() };
    let periods: u32 = field(f, "periods").parse().unwrap_or(1);
    let quantity: u32 = field(f, "quantity").parse().unwrap_or(1);
    let coupon = field(f, "coupon_code").to_owned();
    let req = QuoteRequest {
        product_id: field(f, "product_id"),
        plan_id: field(f, "plan_id"),
        periods,
        quantity,
        coupon_code: Some(coupon.as_str()).filter(|c| !c.is_empty()),
    };
    let quoted = match souk_store::orgs::get(&mut state.db.clone(), &account.personal_org_id).await {
        Ok(org) => commerce::quote(state, &org, &req).await,
        Err(e) => Err(e.into()),
    };
    match quoted {
        Ok(q) => {
            let c = q.quote.currency.code();
            let page = CheckoutPage {
                ctx,
                product_id: req.product_id.to_owned(),
                plan_id: req.plan_id.to_owned(),
                plan_name: q.plan_name.clone(),
                periods,
                quantity,
                coupon: q.coupon_code.clone().unwrap_or_default(),
                list: money(q.quote.list_minor, c),
                discount: money(q.quote.coupon_discount_minor, c),
                total: money(q.quote.total_minor, c),
                tax: money(q.quote.tax_included_minor, c),
                key: random_token(16),
                error,
                image: q.image.clone(),
                form: f
                    .iter()
                    .filter(|(k, _)| k.as_str() != "admin_password" && k.as_str() != "_csrf")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            };
            render(&page)
        }
        Err(e) if e.status() == StatusCode::UNPROCESSABLE_ENTITY => {
            ctx.error_page(StatusCode::UNPROCESSABLE_ENTITY, "checkout.cannot_quote", Some(e.summary()))
        }
        Err(e) => ctx.fail(e),
    }
}

pub async fn checkout(State(state): State<AppState>, ctx: PageCtx, Query(f): Query<HashMap<String, String>>) -> Response {
    if let Err(r) = ctx.require_account() {
        return r;
    }
    checkout_page(&state, &ctx, &f, None).await
}

pub async fn pay(
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
    let periods: u32 = field(&f, "periods").parse().unwrap_or(1);
    let quantity: u32 = field(&f, "quantity").parse().unwrap_or(1);
    let coupon = field(&f, "coupon_code");
    let req = QuoteRequest {
        product_id: field(&f, "product_id"),
        plan_id: field(&f, "plan_id"),
        periods,
        quantity,
        coupon_code: Some(coupon).filter(|c| !c.is_empty()),
    };
    let key = Some(field(&f, "key")).filter(|k| !k.is_empty());
    let deploy = deployment(&f);
    let placed = async {
        let role = caller.role_in(&state, &account.personal_org_id).await?;
        let org = souk_store::orgs::get(&mut state.db.clone(), &account.personal_org_id).await?;
        commerce::place_order(&state, &caller, role, &org, &req, deploy.as_ref(), key, rid.as_deref()).await
    }
    .await;
    match placed {
        Ok(_) => Redirect::to("/subscriptions").into_response(),
        Err(e) if e.status().is_client_error() && e.status() != StatusCode::NOT_FOUND => {
            checkout_page(&state, &ctx, &f, Some(e.summary())).await
        }
        Err(e) => ctx.fail(e),
    }
}

pub struct SubRow {
    pub id: String,
    pub product_id: String,
    pub name: String,
    pub state: String,
    pub term_end: String,
    pub refund: Option<String>,
    pub can_renew: bool,
    pub trial: bool,
    pub auto_renew: bool,
    /// The plans it can change to: (id, name), and the one waiting for the renewal.
    pub plans: Vec<(String, String)>,
    pub plan_id: String,
    pub next_plan: Option<String>,
    /// Servers of a machine image: (name, state, public IP).
    pub servers: Vec<(String, String, String)>,
    /// How to reach the seller's instance: (url, admin url, username, password).
    pub access: Option<(String, String, String, String)>,
    pub license_codes: Vec<String>,
}

#[derive(Template)]
#[template(path = "subscriptions.html")]
struct SubscriptionsPage<'a> {
    ctx: &'a PageCtx,
    rows: Vec<SubRow>,
    /// The last subscription shown, when older ones remain.
    before: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct SubscriptionsQuery {
    before: Option<String>,
}

pub async fn subscriptions(State(state): State<AppState>, ctx: PageCtx, Query(q): Query<SubscriptionsQuery>) -> Response {
    let Some(account) = ctx.account.clone() else { return Redirect::to("/signin?next=/subscriptions").into_response() };
    // Each row reads its product, plans, servers and refund: a page bounds what one view costs.
    const PAGE: u32 = 20;
    let result: Result<Response, Error> = async {
        let org = account.personal_org_id;
        let mut db = state.db.clone();
        let mut rows = Vec::new();
        let filter = souk_store::orders::SubscriptionFilter { before: q.before, limit: PAGE, ..Default::default() };
        let page = souk_store::orders::subscriptions_page(&mut db, &org, &filter).await?;
        let before = if page.len() == PAGE as usize { page.last().map(|(s, _)| s.id.clone()) } else { None };
        // A buyer often holds several subscriptions of one product: read each product once.
        let mut products: HashMap<String, (String, Vec<(String, String)>)> = HashMap::new();
        for (s, license_codes) in page {
            let (name, plans) = match products.get(&s.product_id) {
                Some(known) => known.clone(),
                None => {
                    let pid: souk_core::id::ProductId = s.product_id.parse().map_err(|_| Error::not_found())?;
                    let product = souk_store::products::get(&mut db, &pid).await?;
                    let name = match &product.live_revision_id {
                        Some(r) => souk_store::products::get_revision(&mut db, r).await?.content.name,
                        None => String::new(),
                    };
                    let plans: Vec<(String, String)> = souk_store::products::plans(&mut db, &pid, false)
                        .await?
                        .into_iter()
                        .filter(|p| matches!(p.spec.billing, souk_core::catalog::Billing::Periodic { .. }))
                        .map(|p| (p.id.to_string(), p.spec.name))
                        .collect();
                    products.insert(s.product_id.clone(), (name.clone(), plans.clone()));
                    (name, plans)
                }
            };
            let live = matches!(s.state.as_str(), "pending_fulfillment" | "active" | "expired");
            let next_plan =
                s.next_plan_id.as_ref().and_then(|n| plans.iter().find(|(id, _)| id == n)).map(|(_, name)| name.clone());
            let access = match s.access.clone() {
                Some(a) => {
                    let a = crate::fulfillment::access_for_buyer(&state, &s.product_id, a).await?;
                    let t = |k: &str| a.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                    Some((t("url"), t("admin_url"), t("username"), t("password")))
                }
                None => None,
            };
            let servers = souk_store::servers::of_subscription(&mut db, &s.id)
                .await?
                .into_iter()
                .map(|v| (v.name, v.state.as_str().to_owned(), v.public_ip.unwrap_or_default()))
                .collect();
            let refund = if live {
                let r = crate::subscriptions::preview(&state, &org, &s.id).await?;
                Some(r.amount.to_string())
            } else {
                None
            };
            rows.push(SubRow {
                can_renew: matches!(s.state.as_str(), "active" | "expired") && s.term_end.is_some(),
                trial: s.trial,
                auto_renew: s.auto_renew,
                plans: if s.state == "active" && !s.trial { plans } else { Vec::new() },
                plan_id: s.plan_id.clone(),
                next_plan,
                servers,
                access,
                license_codes,
                id: s.id,
                product_id: s.product_id,
                name,
                state: s.state,
                term_end: s.term_end.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default(),
                refund,
            });
        }
        Ok(render(&SubscriptionsPage { ctx: &ctx, rows, before }))
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub async fn subscription_action(
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
    let org: OrgId = account.personal_org_id;
    let id = field(&f, "subscription_id");
    let result = match field(&f, "action") {
        "unsubscribe" => crate::subscriptions::unsubscribe(&state, &caller, &org, id, rid.as_deref()).await.map(|_| ()),
        "renew" => crate::subscriptions::renew(&state, &caller, &org, id, 1, rid.as_deref()).await.map(|_| ()),
        "auto_renew_on" | "auto_renew_off" => {
            let on = field(&f, "action") == "auto_renew_on";
            crate::subscriptions::set_auto_renew(&state, &caller, &org, id, on, rid.as_deref()).await.map(|_| ())
        }
        "change_plan" => {
            crate::subscriptions::change_plan(&state, &caller, &org, id, field(&f, "plan_id"), rid.as_deref()).await.map(|_| ())
        }
        _ => Err(Error::bad_request("unknown_action", "unknown action")),
    };
    match result {
        Ok(()) => Redirect::to("/subscriptions").into_response(),
        Err(e) => ctx.fail(e),
    }
}

pub struct LedgerRow {
    pub at: String,
    pub delta: String,
    pub balance: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "wallet.html")]
struct WalletPage<'a> {
    ctx: &'a PageCtx,
    balances: Vec<String>,
    ledger: Vec<LedgerRow>,
}

pub async fn wallet(State(state): State<AppState>, ctx: PageCtx) -> Response {
    let Some(account) = ctx.account.clone() else { return Redirect::to("/signin?next=/wallet").into_response() };
    let result: Result<Response, Error> = async {
        let mut db = state.db.clone();
        let balances =
            souk_store::wallets::balances(&mut db, &account.personal_org_id).await?.into_iter().map(|m| m.to_string()).collect();
        let ledger = souk_store::wallets::ledger(&mut db, &account.personal_org_id, None, 100)
            .await?
            .into_iter()
            .map(|e| LedgerRow {
                at: e.at.format("%Y-%m-%d %H:%M").to_string(),
                delta: money(e.delta_minor, &e.currency),
                balance: money(e.balance_after, &e.currency),
                reason: e.reason,
            })
            .collect();
        Ok(render(&WalletPage { ctx: &ctx, balances, ledger }))
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}
