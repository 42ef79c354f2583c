//! The buyer's side of commerce. So far: coupons and quotes (the price breakdown a buyer
//! sees before ordering); orders, subscriptions and bills build on these.

use chrono::{DateTime, Utc};
use souk_core::catalog::{Billing, Period, ProductKind};
use souk_core::id::{OrgId, ProductId};
use souk_core::identity::{FieldError, OrgRole, StaffRole};
use souk_core::money::{Currency, Money};
use souk_core::pricing::{self, CouponRule, CouponScope, CouponUse, CouponValue, Quote, QuoteInput};
use souk_core::site::Site;
use souk_store::coupons::{self, Coupon};
use souk_store::orgs::{self, Org};
use souk_store::{StoreError, audit, products};

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
    pub seller_org_id: String,
    pub product_id: String,
    pub plan_id: String,
    pub plan: souk_core::catalog::Plan,
    pub coupon_id: Option<String>,
    pub plan_name: String,
    /// The product's live name, if it was ever published (for the order's messages).
    pub product_name: Option<String>,
    pub unit_price_minor: i64,
    pub periods: u32,
    pub quantity: u32,
    pub coupon_code: Option<String>,
    /// The product's subscription terms: grace days, no-reason refund days.
    pub terms: (u32, u32),
    /// Bought with a seller's test coupon: the seller's system is told it is a test.
    pub test: bool,
    pub kind: ProductKind,
    /// What a machine-image product deploys.
    pub image: Option<souk_core::catalog::ImageSpec>,
    /// Where a license-code product's codes come from.
    pub license_source: souk_core::catalog::LicenseSource,
}

/// The most periods one order may buy.
pub const MAX_MONTHS: u32 = 36;
pub const MAX_YEARS: u32 = 5;

/// Prices a purchase for `buyer`, on its site.
pub async fn quote(state: &AppState, buyer: &Org, req: &QuoteRequest<'_>) -> Result<PricedQuote> {
    quote_on(state, &buyer.id, buyer.site, req).await
}

async fn quote_on(state: &AppState, buyer: &OrgId, site: Site, req: &QuoteRequest<'_>) -> Result<PricedQuote> {
    let mut db = state.db.clone();
    let product_id: ProductId = req.product_id.parse().map_err(|_| Error::field("product_id", "no such product on this site"))?;
    // The product, its storefront listing and its live content in one read (a purchase prices
    // twice: its quote, then its order).
    let Some((product, live)) = products::for_sale(&mut db, &product_id, site).await? else {
        return Err(Error::field("product_id", "no such product on this site"));
    };
    let plan = products::plans(&mut db, &product_id, false)
        .await?
        .into_iter()
        .find(|p| p.id.as_str() == req.plan_id)
        .ok_or_else(|| Error::field("plan_id", "no such plan of this product"))?;
    let mut errors = Vec::new();
    match &plan.spec.billing {
        Billing::PayPerUse { .. } => {
            return Err(Error::field("plan_id", "a pay-per-use plan is billed for what is used; nothing is paid up front"));
        }
        Billing::Periodic { period, seats } => {
            let max = if *period == Period::Month { MAX_MONTHS } else { MAX_YEARS };
            if !(1..=max).contains(&req.periods) {
                errors.push(FieldError::new("periods", format!("between 1 and {max}")));
            }
            match seats {
                Some(s) if !(s.min..=s.max).contains(&req.quantity) => {
                    errors.push(FieldError::new("quantity", format!("between {} and {} seats", s.min, s.max)))
                }
                // A machine image is priced per server.
                None if product.kind == ProductKind::Image && !(1..=souk_core::compute::MAX_SERVERS).contains(&req.quantity) => {
                    errors.push(FieldError::new("quantity", format!("1 to {} servers", souk_core::compute::MAX_SERVERS)));
                }
                None if product.kind == ProductKind::Image => {}
                None if req.quantity != 1 => {
                    errors.push(FieldError::new("quantity", "this plan is not sold per seat; quantity is 1"))
                }
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
    let price = plan
        .spec
        .prices
        .iter()
        .find(|p| p.site == site)
        .ok_or_else(|| Error::field("plan_id", "this plan has no price on your site"))?;
    let mut coupon_test = false;
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
                        buyer: buyer.as_str(),
                    });
                    match applied {
                        Ok(v) => {
                            coupon_test = c.rule.is_test();
                            Some((code, v, c.id.clone()))
                        }
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
        coupon: coupon.as_ref().map(|(_, v, _)| *v),
        tax_rate: site.tax_rate(),
    })
    .map_err(|e| Error::field("quantity", e.to_string()))?;
    let terms = crate::subscriptions::terms_of(live.as_ref());
    let image = live.as_ref().and_then(|c| c.image.clone()).filter(|_| product.kind == ProductKind::Image);
    let license_source = live.as_ref().map(|c| c.license_source()).unwrap_or(souk_core::catalog::LicenseSource::Souk);
    Ok(PricedQuote {
        test: coupon_test,
        terms,
        kind: product.kind,
        image,
        license_source,
        quote: q,
        seller_org_id: product.seller_org_id.to_string(),
        product_id: product_id.to_string(),
        plan_id: plan.id.to_string(),
        plan_name: plan.spec.name.clone(),
        product_name: live.as_ref().map(|c| c.name.clone()),
        unit_price_minor: price.amount_minor,
        periods: req.periods,
        quantity: req.quantity,
        coupon_id: coupon.as_ref().map(|(_, _, id)| id.clone()),
        coupon_code: coupon.map(|(c, _, _)| c),
        plan: plan.spec,
    })
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
    let rule = CouponRule {
        value,
        currency,
        scope,
        valid_from,
        valid_until: input.valid_until,
        per_buyer_limit: input.per_buyer_limit,
        only_buyer: None,
    };
    let mut tx = state.db.begin().await?;
    let coupon = coupons::create(&mut tx, now, &code, &rule, operator.id.as_str()).await.map_err(|e| match e {
        StoreError::Conflict(_) => Error::field("code", "is already used by another coupon"),
        other => other.into(),
    })?;
    audit::record(
        &mut tx,
        now,
        audit::NewEntry {
            actor: operator.id.as_str(),
            actor_org: None,
            action: "coupon.created",
            target: &coupon.id,
            summary: format!("coupon {code} created"),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(coupon)
}

/// The earlier order placed with a retry's key, if the retry asks for the same purchase; the
/// same key for another purchase is refused, as the generic `Idempotency-Key` layer refuses
/// another body (orders keep their key themselves, in their own transaction: see
/// `idempotency::keeps_its_own_key`).
fn replayed(existing: souk_store::orders::Order, req: &QuoteRequest<'_>) -> Result<(souk_store::orders::Order, bool)> {
    let coupon = req.coupon_code.map(str::trim).filter(|c| !c.is_empty()).map(str::to_uppercase);
    let same = existing.product_id == req.product_id
        && existing.plan_id == req.plan_id
        && existing.periods == i64::from(req.periods)
        && existing.quantity == i64::from(req.quantity)
        && existing.coupon_code == coupon;
    if same {
        Ok((existing, false))
    } else {
        Err(Error::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was already used for another purchase",
        ))
    }
}

/// Places an order: prices it, takes the money from the wallet, and creates the order
/// (paid) and its subscription (waiting for the seller to provision) in one transaction,
/// with the `instance.create` event for the seller. With an idempotency key, a retry returns
/// the first order instead of buying twice. A machine image needs the wizard's `deployment`
/// answers: its servers are recorded and deployed through the compute provider instead.
#[allow(clippy::too_many_arguments)]
pub async fn place_order(
    state: &AppState,
    caller: &Caller,
    role: OrgRole,
    org: &Org,
    req: &QuoteRequest<'_>,
    deployment: Option<&souk_core::compute::DeployInput>,
    idempotency_key: Option<&str>,
    request_id: Option<&str>,
) -> Result<(souk_store::orders::Order, bool)> {
    if !role.can_administer() {
        return Err(Error::forbidden("this needs the owner or admin role in the organization"));
    }
    let buyer = &org.id;
    let placed = place_new_order(state, caller, org, req, deployment, idempotency_key, request_id).await;
    match (placed, idempotency_key) {
        // A retry whose purchase could not be made now (the product delisted since, say) is
        // still answered with the first order. The key is looked up only when placing failed:
        // a new key, the common case, costs no read (a retry that could be placed again meets
        // the order's unique key before paying, see `place_new_order`).
        (Err(e), Some(key)) => match souk_store::orders::by_idempotency_key(&mut state.db.clone(), buyer, key).await {
            Ok(Some(existing)) => replayed(existing, req),
            _ => Err(e),
        },
        (placed, _) => placed,
    }
}

/// [`place_order`] without the replay of an earlier order that failed it.
async fn place_new_order(
    state: &AppState,
    caller: &Caller,
    org: &Org,
    req: &QuoteRequest<'_>,
    deployment: Option<&souk_core::compute::DeployInput>,
    idempotency_key: Option<&str>,
    request_id: Option<&str>,
) -> Result<(souk_store::orders::Order, bool)> {
    let mut db = state.db.clone();
    let buyer = &org.id;
    if org.verification_status != "verified" {
        return Err(Error::forbidden("complete real-name verification before buying"));
    }
    let priced = quote_on(state, buyer, org.site, req).await?;
    let deploy = match (priced.kind, deployment) {
        (ProductKind::Image, Some(input)) => {
            Some(crate::compute::prepare(state, priced.image.as_ref(), input, priced.quantity).await?)
        }
        (ProductKind::Image, None) => {
            return Err(Error::field(
                "deployment",
                "a machine image needs the deployment details: region, flavor, network, password",
            ));
        }
        (_, Some(_)) => return Err(Error::field("deployment", "only machine-image products are deployed")),
        (_, None) => None,
    };
    let now = state.clock.now();
    let term_end = match &priced.plan.billing {
        Billing::Periodic { period, .. } => souk_core::subscription::term_end(now, *period, priced.periods),
        _ => None,
    };
    let total = priced.quote.total();
    let mut tx = state.db.begin().await?;
    let sub = souk_store::orders::create_subscription(
        &mut tx,
        now,
        souk_store::orders::NewSubscription {
            buyer: buyer.as_str(),
            seller: &priced.seller_org_id,
            product: &priced.product_id,
            plan: &priced.plan_id,
            quantity: i64::from(priced.quantity),
            term_start: now,
            term_end,
            trial: false,
            grace_days: priced.terms.0,
            no_reason_days: priced.terms.1,
        },
    )
    .await?;
    let snapshot = serde_json::to_value(&priced.plan).map_err(|e| Error::Internal(e.into()))?;
    let created = souk_store::orders::create_order(
        &mut tx,
        now,
        souk_store::orders::NewOrder {
            buyer: buyer.as_str(),
            seller: &priced.seller_org_id,
            product: &priced.product_id,
            plan: &priced.plan_id,
            subscription: &sub.id,
            kind: "new",
            state: "paid",
            currency: total.currency.code(),
            unit_price_minor: priced.unit_price_minor,
            periods: i64::from(priced.periods),
            quantity: i64::from(priced.quantity),
            list_minor: priced.quote.list_minor,
            discount_minor: priced.quote.coupon_discount_minor,
            total_minor: priced.quote.total_minor,
            tax_minor: priced.quote.tax_included_minor,
            coupon_code: priced.coupon_code.as_deref(),
            plan_snapshot: &snapshot,
            idempotency_key,
            created_by: &caller.actor(),
        },
    )
    .await;
    let order = match created {
        Ok(o) => o,
        Err(StoreError::Conflict(_)) => {
            // The same key raced us and won: answer with its order.
            drop(tx);
            let key = idempotency_key.unwrap_or_default();
            let existing = souk_store::orders::by_idempotency_key(&mut db, buyer, key).await?.ok_or_else(Error::not_found)?;
            return replayed(existing, req);
        }
        Err(e) => return Err(e.into()),
    };
    if let Err(short) = souk_store::wallets::debit(&mut tx, now, buyer, total, "order", Some(&order.id), &caller.actor()).await? {
        return Err(Error::new(
            axum::http::StatusCode::PAYMENT_REQUIRED,
            "insufficient_funds",
            format!("the wallet holds {}, the order costs {total}", short.balance),
        ));
    }
    if let Some(coupon_id) = &priced.coupon_id {
        souk_store::orders::redeem_coupon(&mut tx, now, coupon_id, buyer.as_str(), &order.id).await?;
    }
    let license_codes = if priced.kind == ProductKind::License {
        crate::licenses::assign(&mut tx, now, &priced.product_id, priced.license_source, &sub.id, &order.id, priced.quantity)
            .await?
    } else {
        Vec::new()
    };
    if let Some((spec, sealed)) = &deploy {
        crate::compute::record(&mut tx, now, &sub.id, &order.id, buyer, spec, sealed, priced.quantity).await?;
    } else {
        souk_store::outbox::enqueue(
        &mut tx,
        now,
        "instance.create",
        &sub.id,
        &serde_json::json!({
            "order_id": order.id, "subscription_id": sub.id, "product_id": priced.product_id, "plan_id": priced.plan_id, "plan_code": priced.plan.code,
            "buyer_org_id": buyer, "quantity": priced.quantity, "periods": priced.periods, "expires_at": term_end, "trial": false, "test": priced.test, "license_codes": license_codes,
        }),
    )
    .await?;
    }
    if priced.kind == ProductKind::License && priced.license_source == souk_core::catalog::LicenseSource::Seller {
        crate::licenses::ask_seller(&mut tx, now, &sub.id, &order.id, priced.quantity).await?;
    }
    // The buyer's "order paid" message and email, in the order's own commit.
    crate::messages::announce(
        &mut tx,
        now,
        "order.paid",
        &serde_json::json!({
            "order_id": order.id, "buyer_org_id": buyer, "product_id": priced.product_id,
            "product_name": priced.product_name, "total_minor": total.minor, "currency": total.currency.code(),
        }),
    )
    .await?;
    audit::record(
        &mut tx,
        now,
        audit::NewEntry {
            actor: &caller.actor(),
            actor_org: Some(buyer),
            action: "order.placed",
            target: &order.id,
            summary: format!("{} bought for {total}", priced.plan_name),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((order, true))
}

/// A seller's yearly test-coupon allowance (seed §19: ¥1,000 a year), per currency. Partner
/// tiers will raise it later.
pub fn test_coupon_quota(currency: Currency) -> i64 {
    match currency {
        Currency::Cny => 100_000,
        Currency::Usd => 15_000,
        Currency::Eur => 14_000,
        Currency::Jpy => 20_000,
    }
}

/// Days a test coupon stays valid.
pub const TEST_COUPON_DAYS: i64 = 30;

/// A seller issues itself a coupon for buying its own product to test it end to end. The
/// amount comes out of the seller's yearly quota (in its site's currency, by UTC calendar
/// year); only the seller's organization can use the coupon, once, and the purchase reaches
/// the seller's system marked as a test.
pub async fn issue_test_coupon(
    state: &AppState,
    caller: &Caller,
    seller: &OrgId,
    product_id: &str,
    amount_minor: i64,
    request_id: Option<&str>,
) -> Result<Coupon> {
    caller.admin_of(state, seller).await?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let org = orgs::get(&mut tx, seller).await?;
    let pid: ProductId = product_id.parse().map_err(|_| Error::field("product_id", "not one of your products"))?;
    match products::get(&mut tx, &pid).await {
        Ok(p) if p.seller_org_id == *seller => {}
        Ok(_) | Err(StoreError::NotFound) => return Err(Error::field("product_id", "not one of your products")),
        Err(e) => return Err(e.into()),
    }
    let currency = org.site.currency();
    let quota = test_coupon_quota(currency);
    if !(1..=quota).contains(&amount_minor) {
        return Err(Error::field(
            "amount_minor",
            format!("between 1 and {} (your yearly allowance)", Money::new(quota, currency)),
        ));
    }
    let year = chrono::Datelike::year(&now);
    if !coupons::take_test_quota(&mut tx, seller, year, currency.code(), amount_minor, quota).await? {
        let used = coupons::test_quota_used(&mut tx, seller, year, currency.code()).await?;
        return Err(Error::conflict(
            "test_coupon_quota_exceeded",
            format!(
                "{} of this year's {} test-coupon allowance is left",
                Money::new(quota - used, currency),
                Money::new(quota, currency)
            ),
        ));
    }
    let code = format!("TEST-{}", hex::encode(rand::random::<[u8; 5]>()).to_uppercase());
    let rule = CouponRule {
        value: CouponValue::Fixed { amount_minor },
        currency: Some(currency),
        scope: CouponScope::Product(pid.to_string()),
        valid_from: now,
        valid_until: now + chrono::Duration::days(TEST_COUPON_DAYS),
        per_buyer_limit: 1,
        only_buyer: Some(seller.to_string()),
    };
    let coupon = coupons::create(&mut tx, now, &code, &rule, seller.as_str()).await?;
    audit::record(
        &mut tx,
        now,
        audit::NewEntry {
            actor: &caller.actor(),
            actor_org: Some(seller),
            action: "coupon.test_issued",
            target: &coupon.id,
            summary: format!("test coupon {code} for {} on {pid}", Money::new(amount_minor, currency)),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(coupon)
}

/// A seller's test coupons and what is left of this year's allowance.
pub async fn test_coupons(state: &AppState, caller: &Caller, seller: &OrgId) -> Result<(Vec<Coupon>, Money, Money)> {
    caller.role_in(state, seller).await?;
    let mut db = state.db.clone();
    let currency = orgs::get(&mut db, seller).await?.site.currency();
    let year = chrono::Datelike::year(&state.clock.now());
    let used = coupons::test_quota_used(&mut db, seller, year, currency.code()).await?;
    let quota = test_coupon_quota(currency);
    Ok((coupons::issued_by_org(&mut db, seller).await?, Money::new(quota, currency), Money::new(quota - used, currency)))
}
