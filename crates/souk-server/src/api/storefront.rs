//! The storefront over the JSON API: what anyone may browse, per site.

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use souk_core::id::ProductId;
use souk_core::money::Money;
use souk_core::site::Site;
use souk_store::storefront::{self, Hit, Search};
use souk_store::{orgs, products};
use utoipa::ToSchema;

use super::catalog::PlanOut;
use crate::AppState;
use crate::error::{Error, Problem, Result};
use crate::extract::{ApiQuery, path_id};

fn site(raw: &str) -> Result<Site> {
    Site::parse(raw).map_err(|_| Error::not_found())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryOut {
    pub slug: String,
    /// In the site's language.
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryList {
    pub items: Vec<CategoryOut>,
}

/// The marketplace's categories, named in the site's language.
#[utoipa::path(get, path = "/storefront/{site}/categories", tag = "storefront", responses((status = 200, body = CategoryList), (status = 404, body = Problem)))]
pub async fn categories(State(state): State<AppState>, Path(raw_site): Path<String>) -> Result<Json<CategoryList>> {
    let site = site(&raw_site)?;
    let items = products::categories(&mut state.db.clone())
        .await?
        .into_iter()
        .map(|c| CategoryOut { name: if site == Site::Cn { c.name_zh } else { c.name_en }, slug: c.slug })
        .collect();
    Ok(Json(CategoryList { items }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Full-text query over names, summaries, tags and descriptions (Chinese or English).
    pub q: Option<String>,
    pub category: Option<String>,
    /// `saas`, `image`, `license` or `service`.
    pub kind: Option<String>,
    /// Lowest "from" price, in minor units of the site's currency.
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    /// Only products with a free trial.
    pub has_trial: Option<bool>,
    /// Only this seller's products (its shop).
    pub seller: Option<String>,
    /// `relevance` (default with `q`), `newest` (default without), `price`, `price_desc`.
    pub sort: Option<String>,
    /// 1-based.
    pub page: Option<u32>,
    /// 1 to 100, default 24.
    pub per_page: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PriceOut {
    pub amount_minor: i64,
    pub currency: String,
    /// Formatted for display, e.g. `¥99.00`.
    pub display: String,
}

impl From<Money> for PriceOut {
    fn from(m: Money) -> Self {
        Self { amount_minor: m.minor, currency: m.currency.code().to_owned(), display: m.to_string() }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListingOut {
    pub product_id: String,
    pub seller_org_id: String,
    pub kind: String,
    pub category: String,
    pub name: String,
    pub summary: String,
    /// The lowest price among the plans.
    pub from_price: Option<PriceOut>,
    pub has_trial: bool,
    pub listed_at: DateTime<Utc>,
}

fn listing(h: Hit, site: Site) -> ListingOut {
    ListingOut {
        product_id: h.product_id,
        seller_org_id: h.seller_org_id,
        kind: h.kind,
        category: h.category,
        name: h.name,
        summary: h.summary,
        from_price: h.min_price.map(|m| Money::new(m, site.currency()).into()),
        has_trial: h.has_trial,
        listed_at: h.listed_at,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    pub items: Vec<ListingOut>,
    /// Matches, counted up to 10000.
    pub total: i64,
    /// The total reached the cap: there are at least `total` matches.
    pub total_capped: bool,
    pub page: u32,
    pub per_page: u32,
}

/// Search and browse the listed products of a site.
#[utoipa::path(get, path = "/storefront/{site}/products", tag = "storefront", params(SearchQuery),
    responses((status = 200, body = SearchResult), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn search(
    State(state): State<AppState>,
    Path(raw_site): Path<String>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<SearchResult>> {
    let site = site(&raw_site)?;
    let (search, page, per_page) = parse_search(&q)?;
    let (hits, total) = storefront::search(&mut state.db.clone(), &search, site).await?;
    Ok(Json(SearchResult {
        items: hits.into_iter().map(|h| listing(h, site)).collect(),
        total,
        total_capped: total >= storefront::COUNT_CAP,
        page,
        per_page,
    }))
}

/// Checks the query parameters; used by the storefront pages too.
pub fn parse_search(q: &SearchQuery) -> Result<(Search, u32, u32)> {
    let query = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    if query.as_ref().is_some_and(|s| s.chars().count() > 200) {
        return Err(Error::bad_request("invalid_query", "q is at most 200 characters"));
    }
    let sort = match q.sort.as_deref() {
        None | Some("") => {
            if query.is_some() {
                "relevance"
            } else {
                "newest"
            }
        }
        Some(s @ ("relevance" | "newest" | "price" | "price_desc")) => s,
        Some(_) => return Err(Error::bad_request("invalid_query", "sort is relevance, newest, price or price_desc")),
    };
    if let Some(k) = q.kind.as_deref()
        && souk_core::catalog::ProductKind::parse(k).is_none()
    {
        return Err(Error::bad_request("invalid_query", "kind is saas, image, license or service"));
    }
    if q.min_price.is_some_and(|p| p < 0) || q.max_price.is_some_and(|p| p < 0) {
        return Err(Error::bad_request("invalid_query", "prices are not negative"));
    }
    let page = q.page.unwrap_or(1).max(1);
    let per_page = match q.per_page {
        None => 24,
        Some(n @ 1..=100) => n,
        Some(_) => return Err(Error::bad_request("invalid_query", "per_page is 1 to 100")),
    };
    if page > 10_000 {
        return Err(Error::bad_request("invalid_query", "page is at most 10000"));
    }
    Ok((
        Search {
            query,
            category: q.category.clone().filter(|c| !c.is_empty()),
            kind: q.kind.clone().filter(|c| !c.is_empty()),
            min_price: q.min_price,
            max_price: q.max_price,
            has_trial: q.has_trial.unwrap_or(false),
            seller: q.seller.clone().filter(|c| !c.is_empty()),
            sort: sort.to_owned(),
            limit: per_page,
            offset: (page - 1) * per_page,
        },
        page,
        per_page,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StorefrontProduct {
    pub id: String,
    pub kind: String,
    pub seller_org_id: String,
    pub seller_name: String,
    pub name: String,
    pub summary: String,
    /// The description as sanitized HTML.
    pub description_html: String,
    pub category: String,
    pub tags: Vec<String>,
    pub support_email: Option<String>,
    pub support_phone: Option<String>,
    pub support_url: Option<String>,
    pub plans: Vec<PlanOut>,
    /// URL of the logo, if any.
    pub logo_url: Option<String>,
    /// URLs of the screenshots, in order.
    pub screenshot_urls: Vec<String>,
    /// Each plan's price on this site, in plan order.
    pub prices: Vec<Option<PriceOut>>,
}

/// A listed product's page: its live content and sellable plans, priced for the site.
#[utoipa::path(get, path = "/storefront/{site}/products/{product_id}", tag = "storefront",
    responses((status = 200, body = StorefrontProduct), (status = 404, body = Problem)))]
pub async fn product(
    State(state): State<AppState>,
    Path((raw_site, product_id)): Path<(String, String)>,
) -> Result<Json<StorefrontProduct>> {
    let site = site(&raw_site)?;
    let id: ProductId = path_id(&product_id)?;
    Ok(Json(storefront_product(&state, site, &id).await?))
}

pub async fn storefront_product(state: &AppState, site: Site, id: &ProductId) -> Result<StorefrontProduct> {
    let mut db = state.db.clone();
    if !storefront::is_listed(&mut db, id, site).await? {
        return Err(Error::not_found());
    }
    let p = products::get(&mut db, id).await?;
    let live = products::get_revision(&mut db, p.live_revision_id.as_ref().ok_or_else(Error::not_found)?).await?;
    let seller = orgs::get(&mut db, &p.seller_org_id).await?;
    let plans: Vec<_> = products::plans(&mut db, id, false).await?;
    let prices =
        plans.iter().map(|pl| pl.spec.prices.iter().find(|sp| sp.site == site).map(|sp| PriceOut::from(sp.money()))).collect();
    let c = live.content;
    let media = |u: &String| format!("/media/products/{}/{u}", p.id);
    Ok(StorefrontProduct {
        logo_url: c.logo.as_ref().map(media),
        screenshot_urls: c.screenshots.iter().map(media).collect(),
        id: p.id.to_string(),
        kind: p.kind.as_str().to_owned(),
        seller_org_id: p.seller_org_id.to_string(),
        seller_name: seller.verified_name.unwrap_or(seller.name),
        description_html: crate::markdown::to_safe_html(&c.description),
        name: c.name,
        summary: c.summary,
        category: c.category,
        tags: c.tags,
        support_email: c.support_email,
        support_phone: c.support_phone,
        support_url: c.support_url,
        plans: plans.iter().map(PlanOut::from).collect(),
        prices,
    })
}
