//! The buyer's side of commerce. So far: coupons and quotes (the price breakdown a buyer
//! sees before ordering); orders, subscriptions and bills build on these.

use chrono::{DateTime, Utc};
use souk_core::catalog::{Billing, Period};
use souk_core::id::{OrgId, ProductId};
use souk_core::identity::{FieldError, StaffRole};
use souk_core::money::Currency;
use souk_core::pricing::{self, CouponRule, CouponScope, CouponUse, CouponValue, Quote, QuoteInput};
use souk_store::coupons::{self, Coupon};
use souk_store::{StoreError, audit, orgs, products, storefront};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{Error, Result};

/// A request for a price.
pub struct QuoteRequest<'a> {
    pub product_id: &'a str,
    pub plan_id: &'a str,
    pub periods: u32,
    pub quantity: u32,
    pub coupon_code: Option<&'a str>,
}

/// A quote with what it was computed from.
pub struct PricedQuote {
    pub quote: Quote,
    pub plan_name: String,
    pub unit_price_minor: i64,
    pub periods: u32,
    pub quantity: u32,
    pub coupon_code: Option<String>,
}

/// The most periods one order may buy.
pub const MAX_MONTHS: u32 = 36;
pub const MAX_YEARS: u32 = 5;

pub async fn quote(state: &AppState, buyer: &OrgId, req: &QuoteRequest<'_>) -> Result<PricedQuote> {
    let mut db = state.db.clone();
    let site = orgs::get(&mut db, buyer).await?.site;
    let product_id: ProductId = req.product_id.parse().map_err(|_| Error::field("product_id", "no such product on this site"))?;
    if !storefront::is_listed(&mut db, &product_id, site).await? {
        return Err(Error::field("product_id", "no such product on this site"));
    }
    let product = products::get(&mut db, &product_id).await?;
    let plan = products::plans(&mut db, &product_id, false)
        .await?
        .into_iter()
        .find(|p| p.id.as_str() == req.plan_id)
        .ok_or_else(|| Error::field("plan_id", "no such plan of this product"))?;
    let mut errors = Vec::new();
    match &plan.spec.billing {
        Billing::PayPerUse { .. } => return Err(Error::field("plan_id", "a pay-per-use plan is billed for what is used; nothing is paid up front")),
        Billing::Periodic { period, seats } => {
            let max = if *period == Period::Month { MAX_MONTHS } else { MAX_YEARS };
            if !(1..=max).contains(&req.periods) {
                errors.push(FieldError::new("periods", format!("between 1 and {max}")));
            }
            match seats {
                Some(s) if !(s.min..=s.max).contains(&req.quantity) => errors.push(FieldError::new("quantity", format!("between {} and {} seats", s.min, s.max))),
                None if req.quantity != 1 => errors.push(FieldError::new("quantity", "this plan is not sold per seat; quantity is 1")),
                _ => {}
            }
        }
        Billing::OneTime => {
            if req.periods != 1 {
                errors.push(FieldError::new("periods", "a one-time plan is bought once; periods is 1"));
            }
            if !(1..=100).contains(&req.quantity) {
                errors.push(FieldError::new("quantity", "between 1 and 100"));
            }
        }
    }
    let price = plan.spec.prices.iter().find(|p| p.site == site).ok_or_else(|| Error::field("plan_id", "this plan has no price on your site"))?;
    let coupon = match req.coupon_code.map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(code) => {
            let code = code.to_uppercase();
            match coupons::by_code(&mut db, &code).await? {
                None => {
                    errors.push(FieldError::new("coupon_code", "no such coupon"));
                    None
                }
                Some(c) => {
                    let used = coupons::used_by(&mut db, &c.id, buyer).await?;
                    let applied = c.rule.apply(&CouponUse {
                        now: state.clock.now(),
                        seller: product.seller_org_id.as_str(),
                        product: product_id.as_str(),
                        plan: plan.id.as_str(),
                        currency: site.currency(),
                        used_by_buyer: used,
                    });
                    match applied {
                        Ok(v) => Some((code, v)),
                        Err(refused) => {
                            errors.push(FieldError::new("coupon_code", refused.to_string()));
                            None
                        }
                    }
                }
            }
        }
    };
    if !errors.is_empty() {
        return Err(Error::validation(errors));
    }
    let q = pricing::quote(&QuoteInput {
        unit_price: price.money(),
        periods: req.periods,
        quantity: req.quantity,
        coupon: coupon.as_ref().map(|(_, v)| *v),
        tax_rate: site.tax_rate(),
    })
    .map_err(|e| Error::field("quantity", e.to_string()))?;
    Ok(PricedQuote { quote: q, plan_name: plan.spec.name.clone(), unit_price_minor: price.amount_minor, periods: req.periods, quantity: req.quantity, coupon_code: coupon.map(|(c, _)| c) })
}

/// Untrusted coupon input.
pub struct NewCoupon<'a> {
    pub code: &'a str,
    pub percent_bp: Option<u32>,
    pub amount_minor: Option<i64>,
    pub currency: Option<&'a str>,
    pub scope: &'a str,
    pub scope_id: Option<&'a str>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: DateTime<Utc>,
    pub per_buyer_limit: u32,
}

pub async fn create_coupon(state: &AppState, caller: &Caller, input: NewCoupon<'_>, request_id: Option<&str>) -> Result<Coupon> {
    let operator = caller.staff(StaffRole::Operator)?;
    let now = state.clock.now();
    let mut errors = Vec::new();
    let code = input.code.trim().to_uppercase();
    if !(3..=32).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        errors.push(FieldError::new("code", "3 to 32 letters, digits or dashes"));
    }
    let currency = match input.currency {
        Some(c) => match Currency::parse(c) {
            Ok(c) => Some(c),
            Err(_) => {
                errors.push(FieldError::new("currency", "must be CNY, USD, EUR or JPY"));
                None
            }
        },
        None => None,
    };
    let value = match (input.percent_bp, input.amount_minor) {
        (Some(bp), None) if (1..=10_000).contains(&bp) => Some(CouponValue::Percent { bp }),
        (None, Some(a)) if a > 0 && currency.is_some() => Some(CouponValue::Fixed { amount_minor: a }),
        (None, Some(_)) => {
            errors.push(FieldError::new("amount_minor", "a positive amount, with its currency"));
            None
        }
        _ => {
            errors.push(FieldError::new("percent_bp", "give either percent_bp (1 to 10000) or amount_minor with a currency"));
            None
        }
    };
    let id = input.scope_id.map(str::to_owned);
    let scope = match (input.scope, id) {
        ("any", _) => Some(CouponScope::Any),
        ("seller", Some(id)) => Some(CouponScope::Seller(id)),
        ("product", Some(id)) => Some(CouponScope::Product(id)),
        ("plan", Some(id)) => Some(CouponScope::Plan(id)),
        _ => {
            errors.push(FieldError::new("scope", "any, or seller/product/plan with scope_id"));
            None
        }
    };
    let valid_from = input.valid_from.unwrap_or(now);
    if input.valid_until <= valid_from {
        errors.push(FieldError::new("valid_until", "must be after valid_from"));
    }
    if input.per_buyer_limit == 0 {
        errors.push(FieldError::new("per_buyer_limit", "at least 1"));
    }
    let (Some(value), Some(scope)) = (value, scope) else { return Err(Error::validation(errors)) };
    if !errors.is_empty() {
        return Err(Error::validation(errors));
    }
    let rule = CouponRule { value, currency, scope, valid_from, valid_until: input.valid_until, per_buyer_limit: input.per_buyer_limit };
    let mut tx = state.db.begin().await?;
    let coupon = coupons::create(&mut tx, now, &code, &rule, operator.id.as_str()).await.map_err(|e| match e {
        StoreError::Conflict(_) => Error::field("code", "is already used by another coupon"),
        other => other.into(),
    })?;
    audit::record(
        &mut tx,
        now,
        audit::NewEntry { actor: operator.id.as_str(), actor_org: None, action: "coupon.created", target: &coupon.id, summary: format!("coupon {code} created"), request_id },
    )
    .await?;
    tx.commit().await?;
    Ok(coupon)
}
