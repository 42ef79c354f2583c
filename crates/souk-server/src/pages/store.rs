//! The storefront pages: home with categories and new products, search with filters,
//! product pages, and each seller's shop.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use souk_core::catalog::Billing;
use souk_core::id::{OrgId, ProductId};
use souk_core::money::Money;
use souk_core::site::Site;
use souk_store::products::{self, Category};
use souk_store::storefront::{self, Hit};
use souk_store::{orgs, sellers};

use super::{PageCtx, render};
use crate::AppState;
use crate::api::storefront::{SearchQuery, parse_search, storefront_product};
use crate::error::Error;
use crate::extract::path_id;

/// A listing as the pages show it.
pub struct Card {
    pub id: String,
    pub name: String,
    pub summary: String,
    pub kind_key: &'static str,
    pub from_price: Option<String>,
    pub has_trial: bool,
}

fn card(h: Hit, site: Site) -> Card {
    Card {
        kind_key: kind_key(&h.kind),
        from_price: h.min_price.map(|m| Money::new(m, site.currency()).to_string()),
        id: h.product_id,
        name: h.name,
        summary: h.summary,
        has_trial: h.has_trial,
    }
}

pub fn kind_key(kind: &str) -> &'static str {
    match kind {
        "saas" => "kind.saas",
        "image" => "kind.image",
        "license" => "kind.license",
        _ => "kind.service",
    }
}

pub struct CategoryView {
    pub slug: String,
    pub name: String,
}

fn category_views(cats: Vec<Category>, site: Site) -> Vec<CategoryView> {
    cats.into_iter().map(|c| CategoryView { name: if site == Site::Cn { c.name_zh } else { c.name_en }, slug: c.slug }).collect()
}

#[derive(Template)]
#[template(path = "store_home.html")]
struct HomePage<'a> {
    ctx: &'a PageCtx,
    categories: Vec<CategoryView>,
    newest: Vec<Card>,
    trials: Vec<Card>,
}

pub async fn home(State(state): State<AppState>, ctx: PageCtx) -> Response {
    let site = ctx.site();
    let result: Result<Response, Error> = async {
        let mut db = state.db.clone();
        let categories = category_views(products::categories(&mut db).await?, site);
        let newest_q = SearchQuery {
            q: None,
            category: None,
            kind: None,
            min_price: None,
            max_price: None,
            has_trial: None,
            seller: None,
            sort: Some("newest".into()),
            page: None,
            per_page: Some(8),
        };
        let (search, _, _) = parse_search(&newest_q)?;
        let (newest, _) = storefront::search(&mut db, &search, site).await?;
        let trial_q = SearchQuery { has_trial: Some(true), ..newest_q };
        let (search, _, _) = parse_search(&trial_q)?;
        let (trials, _) = storefront::search(&mut db, &search, site).await?;
        let page = HomePage {
            ctx: &ctx,
            categories,
            newest: newest.into_iter().map(|h| card(h, site)).collect(),
            trials: trials.into_iter().take(4).map(|h| card(h, site)).collect(),
        };
        Ok(render(&page))
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

/// The search form's fields, as typed (prices in major units).
#[derive(Debug, Default, Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub has_trial: String,
    #[serde(default)]
    pub min_price: String,
    #[serde(default)]
    pub max_price: String,
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub page: Option<u32>,
    /// A seller's shop.
    #[serde(default)]
    pub seller: String,
}

#[derive(Template)]
#[template(path = "store_search.html")]
struct SearchPage<'a> {
    ctx: &'a PageCtx,
    form: SearchForm,
    categories: Vec<CategoryView>,
    results: Vec<Card>,
    total: i64,
    page: u32,
    pages: u32,
    error: Option<String>,
    prev_link: Option<String>,
    next_link: Option<String>,
    kinds: [&'static str; 4],
    currency: &'static str,
}

fn price(raw: &str, site: Site) -> Result<Option<i64>, Error> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    Money::parse_major(raw, site.currency())
        .map(|m| Some(m.minor))
        .map_err(|_| Error::bad_request("invalid_query", "prices are amounts like 99 or 99.50"))
}

fn link(form: &SearchForm, page: u32) -> String {
    let mut parts = vec![format!("page={page}")];
    for (k, v) in [
        ("q", &form.q),
        ("category", &form.category),
        ("kind", &form.kind),
        ("has_trial", &form.has_trial),
        ("min_price", &form.min_price),
        ("max_price", &form.max_price),
        ("sort", &form.sort),
        ("seller", &form.seller),
    ] {
        if !v.is_empty() {
            parts.push(format!("{k}={}", urlencoding::encode(v)));
        }
    }
    format!("/products?{}", parts.join("&"))
}

pub async fn search(
    State(state): State<AppState>,
    ctx: PageCtx,
    form: Result<Query<SearchForm>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let site = ctx.site();
    let form = form.map(|Query(f)| f).unwrap_or_default();
    let mut db = state.db.clone();
    let categories = match products::categories(&mut db).await {
        Ok(c) => category_views(c, site),
        Err(e) => return ctx.fail(e.into()),
    };
    let outcome: Result<(Vec<Hit>, i64, u32, u32), Error> = async {
        let query = SearchQuery {
            q: Some(form.q.clone()),
            category: Some(form.category.clone()),
            kind: Some(form.kind.clone()).filter(|k| !k.is_empty()),
            min_price: price(&form.min_price, site)?,
            max_price: price(&form.max_price, site)?,
            has_trial: Some(!form.has_trial.is_empty()),
            seller: Some(form.seller.clone()),
            sort: Some(form.sort.clone()),
            page: form.page,
            per_page: Some(24),
        };
        let (search, page, per_page) = parse_search(&query)?;
        let (hits, total) = storefront::search(&mut db, &search, site).await?;
        Ok((hits, total, page, per_page))
    }
    .await;
    let (results, total, page, per_page, error, status) = match outcome {
        Ok((hits, total, page, per_page)) => (hits, total, page, per_page, None, StatusCode::OK),
        Err(e) if e.status().is_client_error() => (Vec::new(), 0, 1, 24, Some(e.message()), e.status()),
        Err(e) => return ctx.fail(e),
    };
    let pages = u32::try_from((total + i64::from(per_page) - 1) / i64::from(per_page)).unwrap_or(1).max(1);
    let page_view = SearchPage {
        ctx: &ctx,
        prev_link: (page > 1).then(|| link(&form, page - 1)),
        next_link: (page < pages).then(|| link(&form, page + 1)),
        form,
        categories,
        results: results.into_iter().map(|h| card(h, site)).collect(),
        total,
        page,
        pages,
        error,
        kinds: ["saas", "image", "license", "service"],
        currency: site.currency().symbol(),
    };
    (status, render(&page_view)).into_response()
}

pub struct PlanRow {
    pub name: String,
    pub billing_key: &'static str,
    pub price: String,
    pub trial_days: Option<u32>,
    pub enterprise_only: bool,
}

#[derive(Template)]
#[template(path = "store_product.html")]
struct ProductPage<'a> {
    ctx: &'a PageCtx,
    p: crate::api::storefront::StorefrontProduct,
    kind_key: &'static str,
    plans: Vec<PlanRow>,
}

pub async fn product(State(state): State<AppState>, ctx: PageCtx, Path(id): Path<String>) -> Response {
    let site = ctx.site();
    let result: Result<Response, Error> = async {
        let id: ProductId = path_id(&id)?;
        let p = storefront_product(&state, site, &id).await?;
        let plans = p
            .plans
            .iter()
            .zip(&p.prices)
            .map(|(plan, price)| {
                let (billing_key, price) = match &plan.spec.billing {
                    Billing::Periodic { period: souk_core::catalog::Period::Month, .. } => {
                        ("billing.month", price.as_ref().map(|p| p.display.clone()).unwrap_or_default())
                    }
                    Billing::Periodic { .. } => ("billing.year", price.as_ref().map(|p| p.display.clone()).unwrap_or_default()),
                    Billing::OneTime => ("billing.one_time", price.as_ref().map(|p| p.display.clone()).unwrap_or_default()),
                    Billing::PayPerUse { dimensions } => (
                        "billing.pay_per_use",
                        dimensions
                            .iter()
                            .filter_map(|d| {
                                d.prices.iter().find(|sp| sp.site == site).map(|sp| format!("{} / {}", sp.money(), d.unit))
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                };
                PlanRow {
                    name: plan.spec.name.clone(),
                    billing_key,
                    price,
                    trial_days: plan.spec.trial.as_ref().map(|t| t.days),
                    enterprise_only: plan.spec.trial.as_ref().is_some_and(|t| t.enterprise_only),
                }
            })
            .collect();
        let kind_key = kind_key(&p.kind);
        Ok(render(&ProductPage { ctx: &ctx, p, kind_key, plans }))
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

#[derive(Template)]
#[template(path = "store_shop.html")]
pub struct ShopPage<'a> {
    pub ctx: &'a PageCtx,
    pub org_id: String,
    pub name: String,
    pub shop: Option<souk_core::catalog::ShopContent>,
    pub intro_html: String,
    pub featured: Vec<Card>,
    pub results: Vec<Card>,
    /// Shown to the seller or a reviewer before publication.
    pub preview: bool,
}

/// Builds a shop page from the seller's listings and a shop content (live or draft).
pub async fn shop_page<'a>(
    state: &AppState,
    ctx: &'a PageCtx,
    org_id: &OrgId,
    shop: Option<souk_core::catalog::ShopContent>,
    preview: bool,
) -> Result<ShopPage<'a>, Error> {
    let site = ctx.site();
    let mut db = state.db.clone();
    let o = orgs::get(&mut db, org_id).await?;
    let q = SearchQuery {
        q: None,
        category: None,
        kind: None,
        min_price: None,
        max_price: None,
        has_trial: None,
        seller: Some(org_id.to_string()),
        sort: Some("newest".into()),
        page: None,
        per_page: Some(100),
    };
    let (search, _, _) = parse_search(&q)?;
    let (hits, _) = storefront::search(&mut db, &search, site).await?;
    let mut cards: Vec<Card> = hits.into_iter().map(|h| card(h, site)).collect();
    let mut featured = Vec::new();
    if let Some(s) = &shop {
        for id in &s.featured {
            if let Some(i) = cards.iter().position(|c| &c.id == id) {
                featured.push(cards.remove(i));
            }
        }
    }
    let intro_html = shop.as_ref().map(|s| crate::markdown::to_safe_html(&s.introduction)).unwrap_or_default();
    Ok(ShopPage {
        ctx,
        org_id: org_id.to_string(),
        name: o.verified_name.unwrap_or(o.name),
        shop,
        intro_html,
        featured,
        results: cards,
        preview,
    })
}

pub async fn shop(State(state): State<AppState>, ctx: PageCtx, Path(org): Path<String>) -> Response {
    let result: Result<Response, Error> = async {
        let org_id: OrgId = path_id(&org)?;
        let mut db = state.db.clone();
        if !sellers::is_active(&mut db, &org_id).await? {
            return Err(Error::not_found());
        }
        // Only the approved revision is public; drafts are seen through the preview.
        let live = souk_store::shops::live(&mut db, &org_id).await?.map(|r| r.content);
        Ok(render(&shop_page(&state, &ctx, &org_id, live, false).await?))
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}

pub fn sort_key(sort: &str) -> &'static str {
    match sort {
        "relevance" => "sort.relevance",
        "price" => "sort.price",
        "price_desc" => "sort.price_desc",
        _ => "sort.newest",
    }
}

/// A listed product's logo or screenshot. Only images its live revision shows are served,
/// so uploads in drafts stay private.
pub async fn media(
    State(state): State<AppState>,
    ctx: PageCtx,
    Path((product_id, upload_id)): Path<(String, String)>,
) -> Response {
    let result: Result<Response, Error> = async {
        let pid: ProductId = path_id(&product_id)?;
        let uid: souk_core::id::UploadId = path_id(&upload_id)?;
        let mut db = state.db.clone();
        if !storefront::is_listed(&mut db, &pid, Site::Cn).await? && !storefront::is_listed(&mut db, &pid, Site::Intl).await? {
            return Err(Error::not_found());
        }
        let p = products::get(&mut db, &pid).await?;
        let live = products::get_revision(&mut db, p.live_revision_id.as_ref().ok_or_else(Error::not_found)?).await?.content;
        let id = uid.to_string();
        if live.logo.as_deref() != Some(id.as_str()) && !live.screenshots.contains(&id) {
            return Err(Error::not_found());
        }
        let (up, bytes) = souk_store::uploads::content(&mut db, &uid).await?;
        let mut res = bytes.into_response();
        let h = res.headers_mut();
        if let Ok(v) = axum::http::HeaderValue::from_str(&up.content_type) {
            h.insert(axum::http::header::CONTENT_TYPE, v);
        }
        h.insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("public, max-age=86400"));
        h.insert("x-content-type-options", axum::http::HeaderValue::from_static("nosniff"));
        Ok(res)
    }
    .await;
    result.unwrap_or_else(|e| ctx.fail(e))
}
