//! The seller center: onboarding (agreements, application), products with their drafts,
//! and "my applications".

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use souk_core::catalog::{Billing, ImageSpec, Period, Plan, ProductContent, ProductKind, SitePrice, Trial};
use souk_core::id::{OrgId, ProductId};
use souk_core::identity::FieldError;
use souk_core::money::Money;
use souk_core::site::Site;
use souk_store::orgs;
use souk_store::products::{self, Category, Product, Revision};
use souk_store::sellers::{Agreement, Seller};

use super::field;
use super::{FormState, OrgView, PageCtx, render};
use crate::AppState;
use crate::auth::Caller;
use crate::catalog;
use crate::error::Error;
use crate::extract::{RequestId, path_id};

type Fields = Form<HashMap<String, String>>;

/// Runs a seller-center POST: checks sign-in and CSRF, then the action; on success goes to
/// `back`, on failure shows the error page.
async fn act<F, Fut>(ctx: &PageCtx, f: &HashMap<String, String>, back: String, action: F) -> Response
where
    F: FnOnce(Caller) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(f, "_csrf")) {
        return r;
    }
    match action(caller).await {
        Ok(()) => Redirect::to(&back).into_response(),
        Err(e) => ctx.fail(e),
    }
}

#[derive(Template)]
#[template(path = "seller_home.html")]
struct SellerHome<'a> {
    ctx: &'a PageCtx,
    org: OrgView,
    seller: Option<Seller>,
    agreements: Vec<(Agreement, bool)>,
    can_admin: bool,
}

pub async fn home(State(state): State<AppState>, ctx: PageCtx, Path(org_id): Path<String>) -> Response {
    let (caller, _) = match ctx.require_account() {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result: Result<Response, Error> = async {
        let org_id: OrgId = path_id(&org_id)?;
        let role = caller.role_in(&state, &org_id).await?;
        let org = orgs::get(&mut state.db.clone(), &org_id).await?;
        let standing = catalog::standing(&state, &org_id).await?;
        let missing: Vec<String> = standing.missing_agreements.iter().map(|a| a.id.clone()).collect();
        let agreements = standing
            .current_agreements
            .into_iter()
            .map(|a| {
                let ok = !missing.contains(&a.id);
                (a, ok)
            })
            .collect();
        Ok(render(&SellerHome {
            ctx: &ctx,
            org: OrgView::new(&org, Some(role)),
            seller: standing.seller,
            agreements,
            can_admin: role.can_administer(),
        }))
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub async fn accept(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Path((org_id, agreement)): Path<(String, String)>,
    Form(f): Fields,
) -> Response {
    let back = format!("/orgs/{org_id}/seller");
    act(&ctx, &f, back, |caller| async move {
        let org: OrgId = path_id(&org_id)?;
        catalog::accept_agreement(&state, &caller, &org, &agreement, rid.as_deref()).await
    })
    .await
}

pub async fn apply(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Path(org_id): Path<String>,
    Form(f): Fields,
) -> Response {
    let back = format!("/orgs/{org_id}/seller");
    act(&ctx, &f, back, |caller| async move {
        let org: OrgId = path_id(&org_id)?;
        catalog::apply_to_sell(&state, &caller, &org, rid.as_deref()).await.map(|_| ())
    })
    .await
}

pub struct ProductRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub live: bool,
    pub listed: bool,
    pub delisted_reason: Option<String>,
    pub open_state: Option<String>,
}

#[derive(Template)]
#[template(path = "seller_products.html")]
struct ProductsPage<'a> {
    ctx: &'a PageCtx,
    org: OrgView,
    rows: Vec<ProductRow>,
    form: FormState,
    kinds: [&'static str; 4],
}

async fn product_rows(state: &AppState, org: &OrgId) -> Result<Vec<ProductRow>, Error> {
    let mut db = state.db.clone();
    let mut rows = Vec::new();
    for products::SellerProduct { product: p, live, open, .. } in products::list_for_seller_in_full(&mut db, org).await? {
        let name = match (&open, live) {
            (_, Some(live)) => live.content.name,
            (Some(o), None) => o.content.name.clone(),
            // Never published and nothing open (its last revision was rejected): rare enough to
            // read on its own.
            (None, None) => {
                products::revisions(&mut db, &p.id).await?.first().map(|r| r.content.name.clone()).unwrap_or_default()
            }
        };
        rows.push(ProductRow {
            id: p.id.to_string(),
            name: if name.is_empty() { "—".into() } else { name },
            kind: p.kind.as_str().to_owned(),
            live: p.live_revision_id.is_some(),
            listed: p.listed,
            delisted_reason: p.delisted_reason,
            open_state: open.map(|o| o.state.as_str().to_owned()),
        });
    }
    Ok(rows)
}

async fn products_page(state: &AppState, ctx: &PageCtx, org_id: &str, form: FormState, status: StatusCode) -> Response {
    let (caller, _) = match ctx.require_account() {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result: Result<Response, Error> = async {
        let org_id: OrgId = path_id(org_id)?;
        let role = caller.role_in(state, &org_id).await?;
        let org = orgs::get(&mut state.db.clone(), &org_id).await?;
        let rows = product_rows(state, &org_id).await?;
        Ok((
            status,
            render(&ProductsPage {
                ctx,
                org: OrgView::new(&org, Some(role)),
                rows,
                form,
                kinds: ["saas", "image", "license", "service"],
            }),
        )
            .into_response())
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub async fn products(State(state): State<AppState>, ctx: PageCtx, Path(org_id): Path<String>) -> Response {
    products_page(&state, &ctx, &org_id, FormState::default(), StatusCode::OK).await
}

pub async fn create(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Path(org_id): Path<String>,
    Form(f): Fields,
) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let result: Result<Product, Error> = async {
        let org: OrgId = path_id(&org_id)?;
        caller.role_in(&state, &org).await?;
        let kind = ProductKind::parse(field(&f, "kind")).ok_or_else(|| Error::field("kind", "choose a product type"))?;
        let content = ProductContent { name: field(&f, "name").to_owned(), ..Default::default() };
        Ok(catalog::create_product(&state, &caller, &org, kind, content, rid.as_deref()).await?.0)
    }
    .await;
    match result {
        Ok(p) => Redirect::to(&format!("/orgs/{org_id}/products/{}", p.id)).into_response(),
        Err(e) if e.status() == StatusCode::NOT_FOUND => ctx.fail(e),
        Err(e) => products_page(&state, &ctx, &org_id, FormState::from_error(f.clone(), &e), e.status()).await,
    }
}

/// One plan row of the edit form.
pub struct PlanForm {
    pub idx: usize,
    pub id: String,
    pub code: String,
    pub name: String,
    /// `month`, `year`, `one_time`, or `keep` for a pay-per-use plan edited through the API.
    pub billing: String,
    pub price_cn: String,
    pub price_intl: String,
    pub trial_days: String,
    pub trial_enterprise: bool,
    pub json: String,
}

pub const PLAN_ROWS: usize = 4;

fn plan_forms(content: &ProductContent) -> Vec<PlanForm> {
    let price = |prices: &[SitePrice], site: Site| {
        prices
            .iter()
            .find(|p| p.site == site)
            .map(|p| Money::new(p.amount_minor, site.currency()).major_string())
            .unwrap_or_default()
    };
    let mut rows: Vec<PlanForm> = content
        .plans
        .iter()
        .enumerate()
        .map(|(idx, p)| PlanForm {
            idx,
            id: p.id.clone().unwrap_or_default(),
            code: p.code.clone(),
            name: p.name.clone(),
            billing: match &p.billing {
                Billing::Periodic { period: Period::Month, .. } => "month",
                Billing::Periodic { .. } => "year",
                Billing::OneTime => "one_time",
                Billing::PayPerUse { .. } => "keep",
            }
            .to_owned(),
            price_cn: price(&p.prices, Site::Cn),
            price_intl: price(&p.prices, Site::Intl),
            trial_days: p.trial.as_ref().map(|t| t.days.to_string()).unwrap_or_default(),
            trial_enterprise: p.trial.as_ref().is_some_and(|t| t.enterprise_only),
            json: if matches!(p.billing, Billing::PayPerUse { .. }) {
                serde_json::to_string(p).unwrap_or_default()
            } else {
                String::new()
            },
        })
        .collect();
    while rows.len() < PLAN_ROWS.max(content.plans.len() + 1) {
        rows.push(PlanForm {
            idx: rows.len(),
            id: String::new(),
            code: String::new(),
            name: String::new(),
            billing: "month".into(),
            price_cn: String::new(),
            price_intl: String::new(),
            trial_days: String::new(),
            trial_enterprise: false,
            json: String::new(),
        });
    }
    rows
}

fn split_list(raw: &str) -> Vec<String> {
    raw.split([',', '，']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Reads the edit form back into product content. Amounts that are not amounts are field errors.
fn content_from_form(f: &HashMap<String, String>, kind: ProductKind) -> Result<ProductContent, Error> {
    let opt = |k: &str| Some(field(f, k).trim().to_owned()).filter(|s| !s.is_empty());
    let mut errors = Vec::new();
    let mut sites = Vec::new();
    if !field(f, "site_cn").is_empty() {
        sites.push(Site::Cn);
    }
    if !field(f, "site_intl").is_empty() {
        sites.push(Site::Intl);
    }
    let mut plans = Vec::new();
    for i in 0..64 {
        let key = |k: &str| format!("plan{i}_{k}");
        if !f.contains_key(&key("code")) {
            break;
        }
        let code = field(f, &key("code")).trim();
        let name = field(f, &key("name")).trim();
        if code.is_empty() && name.is_empty() {
            continue;
        }
        let billing = field(f, &key("billing"));
        if billing == "keep" {
            match serde_json::from_str::<Plan>(field(f, &key("json"))) {
                Ok(mut p) => {
                    p.code = code.to_owned();
                    p.name = name.to_owned();
                    plans.push(p);
                }
                Err(_) => errors
                    .push(FieldError::new(format!("plans[{}]", plans.len()), "this plan can only be edited through the API")),
            }
            continue;
        }
        let at = plans.len();
        let mut prices = Vec::new();
        for (site, k) in [(Site::Cn, "price_cn"), (Site::Intl, "price_intl")] {
            let raw = field(f, &key(k));
            if raw.trim().is_empty() {
                continue;
            }
            match Money::parse_major(raw, site.currency()) {
                Ok(m) => prices.push(SitePrice { site, amount_minor: m.minor }),
                Err(_) => errors
                    .push(FieldError::new(format!("plans[{at}].prices"), format!("{raw:?} is not an amount like 99 or 99.50"))),
            }
        }
        let trial = match field(f, &key("trial_days")).trim() {
            "" => None,
            d => match d.parse::<u32>() {
                Ok(days) => Some(Trial { days, enterprise_only: !field(f, &key("trial_enterprise")).is_empty() }),
                Err(_) => {
                    errors.push(FieldError::new(format!("plans[{at}].trial.days"), "a whole number of days"));
                    None
                }
            },
        };
        plans.push(Plan {
            id: opt(&key("id")),
            code: code.to_owned(),
            name: name.to_owned(),
            billing: match billing {
                "year" => Billing::Periodic { period: Period::Year, seats: None },
                "one_time" => Billing::OneTime,
                _ => Billing::Periodic { period: Period::Month, seats: None },
            },
            prices,
            trial,
        });
    }
    let image = if kind == ProductKind::Image {
        let disk = field(f, "min_disk_gb").trim();
        Some(ImageSpec {
            image_ref: field(f, "image_ref").trim().to_owned(),
            flavors: split_list(field(f, "flavors")),
            regions: split_list(field(f, "regions")),
            min_disk_gb: if disk.is_empty() {
                0
            } else {
                disk.parse().unwrap_or_else(|_| {
                    errors.push(FieldError::new("image.min_disk_gb", "a whole number of GB"));
                    0
                })
            },
        })
    } else {
        None
    };
    let mut days = |name: &'static str| match field(f, name).trim() {
        "" => None,
        d => d.parse::<u32>().map(Some).unwrap_or_else(|_| {
            errors.push(FieldError::new(name, "a whole number of days"));
            None
        }),
    };
    let (grace_days, no_reason_days) = (days("grace_days"), days("no_reason_days"));
    if !errors.is_empty() {
        return Err(Error::validation(errors));
    }
    let license_source = match (kind, field(f, "license_source")) {
        (ProductKind::License, "pool") => Some(souk_core::catalog::LicenseSource::Pool),
        (ProductKind::License, "seller") => Some(souk_core::catalog::LicenseSource::Seller),
        (ProductKind::License, _) => Some(souk_core::catalog::LicenseSource::Souk),
        _ => None,
    };
    Ok(ProductContent {
        license_source,
        grace_days,
        no_reason_days,
        name: field(f, "name").to_owned(),
        summary: field(f, "summary").to_owned(),
        description: field(f, "description").to_owned(),
        category: field(f, "category").to_owned(),
        tags: split_list(field(f, "tags")),
        support_email: opt("support_email"),
        support_phone: opt("support_phone"),
        support_url: opt("support_url"),
        sites,
        image,
        plans,
        logo: opt("logo"),
        screenshots: split_list(field(f, "screenshots")),
    })
}

fn form_values(c: &ProductContent) -> HashMap<String, String> {
    let mut v = HashMap::new();
    v.insert("name".into(), c.name.clone());
    v.insert("summary".into(), c.summary.clone());
    v.insert("description".into(), c.description.clone());
    v.insert("category".into(), c.category.clone());
    v.insert("tags".into(), c.tags.join(", "));
    v.insert("support_email".into(), c.support_email.clone().unwrap_or_default());
    v.insert("support_phone".into(), c.support_phone.clone().unwrap_or_default());
    v.insert("support_url".into(), c.support_url.clone().unwrap_or_default());
    v.insert("license_source".into(), c.license_source.map(|l| l.as_str().to_owned()).unwrap_or_default());
    v.insert("grace_days".into(), c.grace_days.map(|d| d.to_string()).unwrap_or_default());
    v.insert("no_reason_days".into(), c.no_reason_days.map(|d| d.to_string()).unwrap_or_default());
    if c.sites.contains(&Site::Cn) {
        v.insert("site_cn".into(), "1".into());
    }
    if c.sites.contains(&Site::Intl) {
        v.insert("site_intl".into(), "1".into());
    }
    v.insert("logo".into(), c.logo.clone().unwrap_or_default());
    v.insert("screenshots".into(), c.screenshots.join(","));
    if let Some(img) = &c.image {
        v.insert("image_ref".into(), img.image_ref.clone());
        v.insert("flavors".into(), img.flavors.join(", "));
        v.insert("regions".into(), img.regions.join(", "));
        v.insert("min_disk_gb".into(), if img.min_disk_gb == 0 { String::new() } else { img.min_disk_gb.to_string() });
    }
    v
}

#[derive(Template)]
#[template(path = "seller_product.html")]
struct EditPage<'a> {
    ctx: &'a PageCtx,
    org: OrgView,
    product: Product,
    /// What the form shows: the open draft, or the live content to start an edit from.
    editable: bool,
    open: Option<Revision>,
    live: Option<Revision>,
    last_rejected: Option<Revision>,
    plans: Vec<PlanForm>,
    categories: Vec<Category>,
    form: FormState,
}

impl EditPage<'_> {
    pub fn reasons_for(&self, prefix: &str) -> Vec<String> {
        match &self.last_rejected {
            Some(r) if self.open.as_ref().is_none_or(|o| o.state.is_editable()) => r
                .reasons
                .iter()
                .filter(|(f, _)| {
                    if prefix.is_empty() {
                        f.is_empty()
                    } else {
                        f == prefix || f.starts_with(&format!("{prefix}[")) || f.starts_with(&format!("{prefix}."))
                    }
                })
                .map(|(f, r)| if f.is_empty() || f == prefix { r.clone() } else { format!("{f}: {r}") })
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn plan_error(&self, idx: &usize) -> Option<String> {
        let prefix = format!("plans[{idx}]");
        let errs: Vec<String> = self
            .form
            .errors
            .iter()
            .filter(|e| e.field.starts_with(&prefix))
            .map(|e| format!("{}: {}", &e.field[prefix.len()..].trim_start_matches('.'), e.message))
            .collect();
        if errs.is_empty() { None } else { Some(errs.join("; ")) }
    }
}

async fn edit_page(
    state: &AppState,
    ctx: &PageCtx,
    org_id: &str,
    product_id: &str,
    form: Option<FormState>,
    status: StatusCode,
) -> Response {
    let (caller, _) = match ctx.require_account() {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result: Result<Response, Error> = async {
        let org_id: OrgId = path_id(org_id)?;
        let role = caller.role_in(state, &org_id).await?;
        let pid: ProductId = path_id(product_id)?;
        let mut db = state.db.clone();
        let product = products::get_for_seller(&mut db, &org_id, &pid).await?;
        let org = orgs::get(&mut db, &org_id).await?;
        let open = products::open_revision(&mut db, &pid).await?;
        let live = match &product.live_revision_id {
            Some(id) => Some(products::get_revision(&mut db, id).await?),
            None => None,
        };
        let last_rejected = products::revisions(&mut db, &pid)
            .await?
            .into_iter()
            .find(|r| r.state == souk_core::catalog::RevisionState::Rejected);
        let shown = open
            .as_ref()
            .map(|o| o.content.clone())
            .or_else(|| live.as_ref().map(|l| l.content.clone()))
            .or_else(|| last_rejected.as_ref().map(|r| r.content.clone()))
            .unwrap_or_default();
        let editable = open.as_ref().is_none_or(|o| o.state.is_editable());
        let form = form.unwrap_or_else(|| FormState { values: form_values(&shown), ..Default::default() });
        let plans =
            if form.values.contains_key("plan0_code") { plan_forms_from_values(&form.values) } else { plan_forms(&shown) };
        let categories = products::categories(&mut db).await?;
        let page = EditPage {
            ctx,
            org: OrgView::new(&org, Some(role)),
            product,
            editable,
            open,
            live,
            last_rejected,
            plans,
            categories,
            form,
        };
        Ok((status, render(&page)).into_response())
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

/// Plan rows as the seller typed them, for showing a failed form again.
fn plan_forms_from_values(v: &HashMap<String, String>) -> Vec<PlanForm> {
    (0..64)
        .take_while(|i| v.contains_key(&format!("plan{i}_code")))
        .map(|i| {
            let g = |k: &str| v.get(&format!("plan{i}_{k}")).cloned().unwrap_or_default();
            PlanForm {
                idx: i,
                id: g("id"),
                code: g("code"),
                name: g("name"),
                billing: g("billing"),
                price_cn: g("price_cn"),
                price_intl: g("price_intl"),
                trial_days: g("trial_days"),
                trial_enterprise: !g("trial_enterprise").is_empty(),
                json: g("json"),
            }
        })
        .collect()
}

pub async fn edit(State(state): State<AppState>, ctx: PageCtx, Path((org_id, product_id)): Path<(String, String)>) -> Response {
    edit_page(&state, &ctx, &org_id, &product_id, None, StatusCode::OK).await
}

/// Saves the draft; with `action=submit`, submits it too.
pub async fn save(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Path((org_id, product_id)): Path<(String, String)>,
    Form(f): Fields,
) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let result: Result<(), Error> = async {
        let org: OrgId = path_id(&org_id)?;
        caller.role_in(&state, &org).await?;
        let pid: ProductId = path_id(&product_id)?;
        let product = products::get_for_seller(&mut state.db.clone(), &org, &pid).await?;
        let content = content_from_form(&f, product.kind)?;
        catalog::save_draft(&state, &caller, &org, &pid, content, rid.as_deref()).await?;
        if field(&f, "action") == "submit" {
            catalog::submit(&state, &caller, &org, &pid, rid.as_deref()).await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to(&format!("/orgs/{org_id}/products/{product_id}")).into_response(),
        Err(e) if e.status() == StatusCode::NOT_FOUND || e.status() == StatusCode::FORBIDDEN => ctx.fail(e),
        Err(e) => edit_page(&state, &ctx, &org_id, &product_id, Some(FormState::from_error(f.clone(), &e)), e.status()).await,
    }
}

/// Withdraw, list or delist, by `action`.
pub async fn lifecycle(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Path((org_id, product_id)): Path<(String, String)>,
    Form(f): Fields,
) -> Response {
    let back = format!("/orgs/{org_id}/products/{product_id}");
    let action = field(&f, "action").to_owned();
    act(&ctx, &f, back, |caller| async move {
        let org: OrgId = path_id(&org_id)?;
        let pid: ProductId = path_id(&product_id)?;
        caller.role_in(&state, &org).await?;
        match action.as_str() {
            "withdraw" => catalog::withdraw(&state, &caller, &org, &pid, rid.as_deref()).await.map(|_| ()),
            "list" => catalog::set_listed(&state, &caller, &org, &pid, true, rid.as_deref()).await.map(|_| ()),
            "delist" => catalog::set_listed(&state, &caller, &org, &pid, false, rid.as_deref()).await.map(|_| ()),
            _ => Err(Error::bad_request("unknown_action", "unknown action")),
        }
    })
    .await
}

pub struct ApplicationRow {
    pub product_id: String,
    pub number: i64,
    pub name: String,
    pub state: String,
    pub submitted_at: Option<String>,
    pub sla_due_at: Option<String>,
    pub reasons: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "seller_applications.html")]
struct ApplicationsPage<'a> {
    ctx: &'a PageCtx,
    org: OrgView,
    rows: Vec<ApplicationRow>,
}

pub async fn applications(State(state): State<AppState>, ctx: PageCtx, Path(org_id): Path<String>) -> Response {
    let (caller, _) = match ctx.require_account() {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result: Result<Response, Error> = async {
        let org_id: OrgId = path_id(&org_id)?;
        let role = caller.role_in(&state, &org_id).await?;
        let mut db = state.db.clone();
        let org = orgs::get(&mut db, &org_id).await?;
        let rows = products::applications(&mut db, &org_id)
            .await?
            .into_iter()
            .map(|r| ApplicationRow {
                product_id: r.product_id.to_string(),
                number: r.number,
                name: r.content.name,
                state: r.state.as_str().to_owned(),
                submitted_at: r.submitted_at.map(|t| t.format("%Y-%m-%d %H:%M").to_string()),
                sla_due_at: r.sla_due_at.map(|t| t.format("%Y-%m-%d %H:%M").to_string()),
                reasons: r.reasons,
            })
            .collect();
        Ok(render(&ApplicationsPage { ctx: &ctx, org: OrgView::new(&org, Some(role)), rows }))
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub fn billing_key(b: &str) -> &'static str {
    match b {
        "year" => "billing.year",
        "one_time" => "billing.one_time",
        _ => "billing.month",
    }
}

// ----- shop decoration -----

pub struct FeatureOption {
    pub id: String,
    pub name: String,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "seller_shop.html")]
struct ShopEditPage<'a> {
    ctx: &'a PageCtx,
    org: OrgView,
    live: Option<souk_store::shops::ShopRevision>,
    open: Option<souk_store::shops::ShopRevision>,
    last_rejected: Option<souk_store::shops::ShopRevision>,
    options: Vec<FeatureOption>,
    form: FormState,
    /// No revision is waiting for review.
    editable: bool,
}

async fn shop_edit_page(state: &AppState, ctx: &PageCtx, org_id: &str, form: Option<FormState>, status: StatusCode) -> Response {
    let (caller, _) = match ctx.require_account() {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result: Result<Response, Error> = async {
        let org_id: OrgId = path_id(org_id)?;
        let role = caller.role_in(state, &org_id).await?;
        let mut db = state.db.clone();
        let org = orgs::get(&mut db, &org_id).await?;
        let live = souk_store::shops::live(&mut db, &org_id).await?;
        let open = souk_store::shops::open(&mut db, &org_id).await?;
        let last_rejected = souk_store::shops::history(&mut db, &org_id)
            .await?
            .into_iter()
            .find(|r| r.state == souk_core::catalog::RevisionState::Rejected);
        let shown = open.as_ref().or(live.as_ref()).map(|r| r.content.clone()).unwrap_or_default();
        let form = form.unwrap_or_else(|| {
            let mut v = HashMap::new();
            v.insert("banner".to_owned(), shown.banner.clone());
            v.insert("introduction".to_owned(), shown.introduction.clone());
            v.insert("contact_email".to_owned(), shown.contact_email.clone().unwrap_or_default());
            v.insert("contact_phone".to_owned(), shown.contact_phone.clone().unwrap_or_default());
            v.insert("featured".to_owned(), shown.featured.join(","));
            FormState { values: v, ..Default::default() }
        });
        let featured: Vec<String> = form.val("featured").split(',').map(str::to_owned).collect();
        let options = product_rows(state, &org_id)
            .await?
            .into_iter()
            .filter(|r| r.live)
            .map(|r| FeatureOption { checked: featured.contains(&r.id), id: r.id, name: r.name })
            .collect();
        let editable = open.as_ref().is_none_or(|o| o.state.is_editable());
        Ok((
            status,
            render(&ShopEditPage {
                ctx,
                org: OrgView::new(&org, Some(role)),
                live,
                open,
                last_rejected,
                options,
                form,
                editable,
            }),
        )
            .into_response())
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub async fn shop_edit(State(state): State<AppState>, ctx: PageCtx, Path(org_id): Path<String>) -> Response {
    shop_edit_page(&state, &ctx, &org_id, None, StatusCode::OK).await
}

/// The shop form posts `featured` once per ticked product.
pub async fn shop_save(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Path(org_id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    let mut f: HashMap<String, String> = HashMap::new();
    let mut featured = Vec::new();
    for (k, v) in pairs {
        if k == "featured" {
            featured.push(v);
        } else {
            f.insert(k, v);
        }
    }
    f.insert("featured".into(), featured.join(","));
    if let Err(r) = ctx.check_csrf(field(&f, "_csrf")) {
        return r;
    }
    let action = field(&f, "action").to_owned();
    let result: Result<(), Error> = async {
        let org: OrgId = path_id(&org_id)?;
        caller.role_in(&state, &org).await?;
        if action == "withdraw" {
            return catalog::withdraw_shop(&state, &caller, &org, rid.as_deref()).await;
        }
        let opt = |k: &str| Some(field(&f, k).trim().to_owned()).filter(|s| !s.is_empty());
        let content = souk_core::catalog::ShopContent {
            banner: field(&f, "banner").to_owned(),
            introduction: field(&f, "introduction").to_owned(),
            featured: featured.clone(),
            contact_email: opt("contact_email"),
            contact_phone: opt("contact_phone"),
        };
        catalog::save_shop_draft(&state, &caller, &org, content, rid.as_deref()).await?;
        if action == "submit" {
            catalog::submit_shop(&state, &caller, &org, rid.as_deref()).await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) if action == "preview" => Redirect::to(&format!("/orgs/{org_id}/shop/preview")).into_response(),
        Ok(()) => Redirect::to(&format!("/orgs/{org_id}/shop")).into_response(),
        Err(e) if e.status() == StatusCode::NOT_FOUND || e.status() == StatusCode::FORBIDDEN => ctx.fail(e),
        Err(e) => shop_edit_page(&state, &ctx, &org_id, Some(FormState::from_error(f.clone(), &e)), e.status()).await,
    }
}

/// The draft shown exactly as the public shop page will show it.
pub async fn shop_preview(State(state): State<AppState>, ctx: PageCtx, Path(org_id): Path<String>) -> Response {
    let (caller, _) = match ctx.require_account() {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result: Result<Response, Error> = async {
        let org: OrgId = path_id(&org_id)?;
        caller.role_in(&state, &org).await?;
        let mut db = state.db.clone();
        let content = match souk_store::shops::open(&mut db, &org).await? {
            Some(r) => Some(r.content),
            None => souk_store::shops::live(&mut db, &org).await?.map(|r| r.content),
        };
        Ok(render(&crate::pages::store::shop_page(&state, &ctx, &org, content, true).await?))
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

/// Uploads a logo or a screenshot from the product page and puts it in the draft.
pub async fn upload_media(
    State(state): State<AppState>,
    ctx: PageCtx,
    rid: RequestId,
    Path((org_id, product_id)): Path<(String, String)>,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let caller = match ctx.require_account() {
        Ok((c, _)) => c.clone(),
        Err(r) => return r,
    };
    let Ok(mut multipart) = multipart else {
        return ctx.fail(Error::bad_request("invalid_multipart", "send the form as multipart/form-data"));
    };
    let mut values = HashMap::new();
    let mut file: Option<(String, Vec<u8>)> = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(f)) => {
                let name = f.name().unwrap_or("").to_owned();
                let filename = f.file_name().unwrap_or("image").to_owned();
                match f.bytes().await {
                    Ok(b) if name == "file" => file = Some((filename, b.to_vec())),
                    Ok(b) => {
                        values.insert(name, String::from_utf8_lossy(&b).into_owned());
                    }
                    Err(e) => return ctx.fail(crate::api::multipart_error(&e)),
                }
            }
            Ok(None) => break,
            Err(e) => return ctx.fail(crate::api::multipart_error(&e)),
        }
    }
    if let Err(r) = ctx.check_csrf(values.get("_csrf").map(String::as_str).unwrap_or("")) {
        return r;
    }
    let result: Result<(), Error> = async {
        let org: OrgId = path_id(&org_id)?;
        caller.role_in(&state, &org).await?;
        let pid: ProductId = path_id(&product_id)?;
        let mut db = state.db.clone();
        products::get_for_seller(&mut db, &org, &pid).await?;
        let (name, bytes) = file.filter(|(_, b)| !b.is_empty()).ok_or_else(|| Error::field("file", "choose an image"))?;
        if !matches!(souk_core::verification::documents::sniff(&bytes), Some("image/png" | "image/jpeg")) {
            return Err(Error::field("file", "logos and screenshots are PNG or JPEG images"));
        }
        let up = crate::verification::upload(&state, &caller, &org, &name, &bytes, rid.as_deref()).await?;
        let open = products::open_revision(&mut db, &pid).await?;
        let live = match products::get(&mut db, &pid).await?.live_revision_id {
            Some(l) => Some(products::get_revision(&mut db, &l).await?.content),
            None => None,
        };
        let mut content = open.map(|o| o.content).or(live).unwrap_or_default();
        if values.get("role").map(String::as_str) == Some("logo") {
            content.logo = Some(up.id.to_string());
        } else {
            content.screenshots.push(up.id.to_string());
        }
        catalog::save_draft(&state, &caller, &org, &pid, content, rid.as_deref()).await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to(&format!("/orgs/{org_id}/products/{product_id}")).into_response(),
        Err(e) if e.status() == StatusCode::NOT_FOUND || e.status() == StatusCode::FORBIDDEN => ctx.fail(e),
        Err(e) => {
            edit_page(&state, &ctx, &org_id, &product_id, Some(FormState::from_error(HashMap::new(), &e)), e.status()).await
        }
    }
}
