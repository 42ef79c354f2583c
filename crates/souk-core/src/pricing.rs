//! Prices, discounts, taxes, pro-rata charges and refunds, in integer minor units.
//!
//! Rounding rules (every division of money in Souk follows one of these):
//! - A percentage of an amount (coupon, tax) is rounded **half up** to the minor unit:
//!   10% of ¥0.05 is ¥0.01, 10% of ¥0.04 is ¥0.00.
//! - A discount never exceeds what it discounts, and a total is never negative.
//! - Tax is **included** in prices (the China site's practice for consumers); the quote shows
//!   the included part: `total × rate / (1 + rate)`, rounded half up.
//! - A pro-rata charge or credit is the price difference per period times the remaining
//!   seconds over the period's seconds, rounded half up.
//! - Splits of one amount into parts use [`Money::allocate`], which always adds up.

use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money, MoneyError};

/// Basis points: 1/100 of a percent. 1,000 bp = 10%.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bp(pub u32);

/// `amount × numerator / denominator`, rounded half up, for non-negative amounts.
pub fn mul_div_half_up(amount: i64, numerator: i64, denominator: i64) -> Result<i64, MoneyError> {
    if denominator <= 0 || amount < 0 || numerator < 0 {
        return Err(MoneyError::Overflow);
    }
    let product = i128::from(amount) * i128::from(numerator);
    let d = i128::from(denominator);
    let q = (product + d / 2) / d;
    i64::try_from(q).map_err(|_| MoneyError::Overflow)
}

/// A coupon's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CouponValue {
    /// Off the total, in the order's currency.
    Fixed { amount_minor: i64 },
    /// A percentage of the list price.
    Percent { bp: u32 },
}

/// What a coupon may be used on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum CouponScope {
    Any,
    Seller(String),
    Product(String),
    Plan(String),
}

/// A coupon as issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponRule {
    pub value: CouponValue,
    /// For fixed coupons: the currency of the amount.
    pub currency: Option<Currency>,
    pub scope: CouponScope,
    pub valid_from: chrono::DateTime<chrono::Utc>,
    pub valid_until: chrono::DateTime<chrono::Utc>,
    /// Uses per buyer organization.
    pub per_buyer_limit: u32,
    /// A seller's test coupon (seed §19): only this organization (the seller itself) may
    /// use it, and what it buys is marked as a test.
    #[serde(default)]
    pub only_buyer: Option<String>,
}

impl CouponRule {
    pub fn is_test(&self) -> bool {
        self.only_buyer.is_some()
    }
}

/// Why a coupon does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CouponRefused {
    #[error("this coupon is not valid yet")]
    NotYetValid,
    #[error("this coupon has expired")]
    Expired,
    #[error("this coupon does not apply to this purchase")]
    OutOfScope,
    #[error("this coupon is in another currency")]
    WrongCurrency,
    #[error("you have used this coupon as many times as it allows")]
    UsedUp,
    #[error("this coupon was issued to another organization")]
    NotYours,
}

/// What the coupon is being tried on.
pub struct CouponUse<'a> {
    pub now: chrono::DateTime<chrono::Utc>,
    pub seller: &'a str,
    pub product: &'a str,
    pub plan: &'a str,
    pub currency: Currency,
    pub used_by_buyer: u32,
    pub buyer: &'a str,
}

impl CouponRule {
    pub fn apply(&self, u: &CouponUse<'_>) -> Result<CouponValue, CouponRefused> {
        if u.now < self.valid_from {
            return Err(CouponRefused::NotYetValid);
        }
        if u.now >= self.valid_until {
            return Err(CouponRefused::Expired);
        }
        let in_scope = match &self.scope {
            CouponScope::Any => true,
            CouponScope::Seller(id) => id == u.seller,
            CouponScope::Product(id) => id == u.product,
            CouponScope::Plan(id) => id == u.plan,
        };
        if !in_scope {
            return Err(CouponRefused::OutOfScope);
        }
        if matches!(self.value, CouponValue::Fixed { .. }) && self.currency != Some(u.currency) {
            return Err(CouponRefused::WrongCurrency);
        }
        if self.only_buyer.as_deref().is_some_and(|b| b != u.buyer) {
            return Err(CouponRefused::NotYours);
        }
        if u.used_by_buyer >= self.per_buyer_limit {
            return Err(CouponRefused::UsedUp);
        }
        Ok(self.value)
    }
}

/// What is being bought, as the pure core prices it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteInput {
    /// Price of one unit for one period (or of the item, for one-time plans).
    pub unit_price: Money,
    /// Periods bought (1 for one-time plans).
    pub periods: u32,
    /// Seats or units (1 unless the plan is per seat).
    pub quantity: u32,
    pub coupon: Option<CouponValue>,
    /// Tax rate included in the price.
    pub tax_rate: Bp,
}

/// A quote: every line a buyer is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub currency: Currency,
    /// unit × periods × quantity.
    pub list_minor: i64,
    pub coupon_discount_minor: i64,
    /// What the buyer pays.
    pub total_minor: i64,
    /// The tax included in `total_minor`.
    pub tax_included_minor: i64,
}

impl Quote {
    pub fn total(&self) -> Money {
        Money::new(self.total_minor, self.currency)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    #[error("periods and quantity must be at least 1")]
    Zero,
    #[error("a percentage coupon is at most 100%")]
    PercentTooLarge,
    #[error("prices are not negative")]
    Negative,
    #[error(transparent)]
    Money(#[from] MoneyError),
}

pub fn quote(input: &QuoteInput) -> Result<Quote, QuoteError> {
    if input.periods == 0 || input.quantity == 0 {
        return Err(QuoteError::Zero);
    }
    if input.unit_price.minor < 0 {
        return Err(QuoteError::Negative);
    }
    let list = input.unit_price.checked_mul(i64::from(input.periods))?.checked_mul(i64::from(input.quantity))?.minor;
    let discount = match input.coupon {
        None => 0,
        Some(CouponValue::Fixed { amount_minor }) if amount_minor < 0 => return Err(QuoteError::Negative),
        Some(CouponValue::Fixed { amount_minor }) => amount_minor.min(list),
        Some(CouponValue::Percent { bp }) if bp > 10_000 => return Err(QuoteError::PercentTooLarge),
        Some(CouponValue::Percent { bp }) => mul_div_half_up(list, i64::from(bp), 10_000)?.min(list),
    };
    let total = list - discount;
    let rate = i64::from(input.tax_rate.0);
    let tax = mul_div_half_up(total, rate, 10_000 + rate)?;
    Ok(Quote {
        currency: input.unit_price.currency,
        list_minor: list,
        coupon_discount_minor: discount,
        total_minor: total,
        tax_included_minor: tax,
    })
}

/// Seconds in a period for pro-rata charges: a month counts 30 days, a year 365, whatever
/// the calendar says, so the same change costs the same in February and in March.
pub const MONTH_SECS: i64 = 30 * 86_400;
pub const YEAR_SECS: i64 = 365 * 86_400;

/// The charge for moving to a dearer plan now, for all the time left in the term (which may
/// span several periods). A cheaper plan gives no credit: downgrades wait for the renewal.
pub fn upgrade_charge(
    old_per_period: Money,
    new_per_period: Money,
    remaining_secs: i64,
    period_secs: i64,
) -> Result<Money, MoneyError> {
    let diff = new_per_period.checked_sub(old_per_period)?;
    if diff.minor <= 0 || remaining_secs <= 0 {
        return Ok(Money::zero(diff.currency));
    }
    Ok(Money::new(mul_div_half_up(diff.minor, remaining_secs, period_secs)?, diff.currency))
}

/// What a refund is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundKind {
    /// Inside the no-reason window: everything paid comes back.
    NoReason,
    /// After it: the whole periods not yet begun.
    UnusedPeriods,
    /// One-time items and delivered license codes are not refunded.
    None,
}

/// The inputs of a refund decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundInput {
    /// What was paid for the current term.
    pub paid: Money,
    /// Price of one period at the snapshot the order was sold at (after discount).
    pub per_period_paid: Money,
    /// Periods bought in the current term.
    pub periods_bought: u32,
    /// Periods that have begun (the current one counts as begun).
    pub periods_begun: u32,
    /// The item cannot be returned (one-time, delivered license codes).
    pub non_refundable: bool,
    /// Whether the request falls inside the product's no-reason window.
    pub inside_no_reason_window: bool,
    /// No-reason refunds this buyer already had this year, and the yearly limit.
    pub no_reason_used_this_year: u32,
    pub no_reason_limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub kind: RefundKind,
    pub amount: Money,
}

pub fn refund(input: &RefundInput) -> Result<Refund, MoneyError> {
    let zero = Money::zero(input.paid.currency);
    if input.non_refundable {
        return Ok(Refund { kind: RefundKind::None, amount: zero });
    }
    if input.inside_no_reason_window && input.no_reason_used_this_year < input.no_reason_limit {
        return Ok(Refund { kind: RefundKind::NoReason, amount: input.paid });
    }
    let unused = input.periods_bought.saturating_sub(input.periods_begun);
    let amount = input.per_period_paid.checked_mul(i64::from(unused))?;
    // Never more than was paid, whatever rounding did to the per-period price.
    let amount = if amount.minor > input.paid.minor { input.paid } else { amount };
    Ok(Refund { kind: if amount.minor > 0 { RefundKind::UnusedPeriods } else { RefundKind::None }, amount })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cny(minor: i64) -> Money {
        Money::new(minor, Currency::Cny)
    }

    #[test]
    fn half_up_rounding() {
        assert_eq!(mul_div_half_up(5, 1000, 10_000).unwrap(), 1); // 10% of 0.05 = 0.005 -> 0.01
        assert_eq!(mul_div_half_up(4, 1000, 10_000).unwrap(), 0); // 0.004 -> 0.00
        assert_eq!(mul_div_half_up(15, 1, 2).unwrap(), 8);
    }

    #[test]
    fn a_quote_shows_every_line() {
        let q = quote(&QuoteInput {
            unit_price: cny(9900),
            periods: 12,
            quantity: 3,
            coupon: Some(CouponValue::Percent { bp: 1500 }),
            tax_rate: Bp(600),
        })
        .unwrap();
        assert_eq!(q.list_minor, 356_400);
        assert_eq!(q.coupon_discount_minor, 53_460);
        assert_eq!(q.total_minor, 302_940);
        // 302940 × 6 / 106 = 17147.5… -> 17148
        assert_eq!(q.tax_included_minor, 17_148);
    }

    #[test]
    fn a_fixed_coupon_never_makes_a_negative_total() {
        let q = quote(&QuoteInput {
            unit_price: cny(500),
            periods: 1,
            quantity: 1,
            coupon: Some(CouponValue::Fixed { amount_minor: 100_000 }),
            tax_rate: Bp(0),
        })
        .unwrap();
        assert_eq!(q.coupon_discount_minor, 500);
        assert_eq!(q.total_minor, 0);
        assert!(quote(&QuoteInput { unit_price: cny(500), periods: 0, quantity: 1, coupon: None, tax_rate: Bp(0) }).is_err());
        assert!(
            quote(&QuoteInput {
                unit_price: cny(500),
                periods: 1,
                quantity: 1,
                coupon: Some(CouponValue::Percent { bp: 10_001 }),
                tax_rate: Bp(0)
            })
            .is_err()
        );
    }

    #[test]
    fn upgrades_charge_the_rest_of_the_period() {
        // Half a 30-day month left, from ¥99 to ¥199: ¥50.00.
        let day = 86_400;
        assert_eq!(upgrade_charge(cny(9900), cny(19900), 15 * day, 30 * day).unwrap(), cny(5000));
        // One second left of a month: 10000 × 1 / 2592000 rounds to 0.
        assert_eq!(upgrade_charge(cny(9900), cny(19900), 1, 30 * day).unwrap(), cny(0));
        // Three and a half months left: the difference for all of them.
        assert_eq!(upgrade_charge(cny(9900), cny(19900), 105 * day, 30 * day).unwrap(), cny(35000));
        // A downgrade is not charged (nor credited) now.
        assert_eq!(upgrade_charge(cny(19900), cny(9900), 15 * day, 30 * day).unwrap(), cny(0));
    }

    #[test]
    fn refunds_follow_the_rules() {
        let base = RefundInput {
            paid: cny(118_800),
            per_period_paid: cny(9_900),
            periods_bought: 12,
            periods_begun: 3,
            non_refundable: false,
            inside_no_reason_window: true,
            no_reason_used_this_year: 0,
            no_reason_limit: 10,
        };
        assert_eq!(refund(&base).unwrap(), Refund { kind: RefundKind::NoReason, amount: cny(118_800) });
        let outside = RefundInput { inside_no_reason_window: false, ..base.clone() };
        assert_eq!(refund(&outside).unwrap(), Refund { kind: RefundKind::UnusedPeriods, amount: cny(89_100) });
        let used_up = RefundInput { no_reason_used_this_year: 10, ..base.clone() };
        assert_eq!(refund(&used_up).unwrap().kind, RefundKind::UnusedPeriods, "the yearly limit of no-reason refunds");
        let license = RefundInput { non_refundable: true, ..base.clone() };
        assert_eq!(refund(&license).unwrap(), Refund { kind: RefundKind::None, amount: cny(0) });
        let last = RefundInput { inside_no_reason_window: false, periods_begun: 12, ..base };
        assert_eq!(refund(&last).unwrap(), Refund { kind: RefundKind::None, amount: cny(0) });
    }

    #[test]
    fn coupons_apply_within_their_window_scope_currency_and_limit() {
        let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let rule = CouponRule {
            value: CouponValue::Fixed { amount_minor: 1000 },
            currency: Some(Currency::Cny),
            scope: CouponScope::Seller("org_a".into()),
            valid_from: t("2026-03-01T00:00:00Z"),
            valid_until: t("2026-04-01T00:00:00Z"),
            per_buyer_limit: 1,
            only_buyer: None,
        };
        let ok = CouponUse {
            now: t("2026-03-15T00:00:00Z"),
            seller: "org_a",
            product: "p",
            plan: "pl",
            currency: Currency::Cny,
            used_by_buyer: 0,
            buyer: "org_buyer",
        };
        assert_eq!(rule.apply(&ok), Ok(CouponValue::Fixed { amount_minor: 1000 }));
        assert_eq!(rule.apply(&CouponUse { now: t("2026-02-28T00:00:00Z"), ..ok }), Err(CouponRefused::NotYetValid));
        let ok = CouponUse {
            now: t("2026-03-15T00:00:00Z"),
            seller: "org_a",
            product: "p",
            plan: "pl",
            currency: Currency::Cny,
            used_by_buyer: 0,
            buyer: "org_buyer",
        };
        assert_eq!(rule.apply(&CouponUse { now: t("2026-04-01T00:00:00Z"), ..ok }), Err(CouponRefused::Expired));
        let ok = CouponUse {
            now: t("2026-03-15T00:00:00Z"),
            seller: "org_a",
            product: "p",
            plan: "pl",
            currency: Currency::Cny,
            used_by_buyer: 0,
            buyer: "org_buyer",
        };
        assert_eq!(rule.apply(&CouponUse { seller: "org_b", ..ok }), Err(CouponRefused::OutOfScope));
        let ok = CouponUse {
            now: t("2026-03-15T00:00:00Z"),
            seller: "org_a",
            product: "p",
            plan: "pl",
            currency: Currency::Cny,
            used_by_buyer: 0,
            buyer: "org_buyer",
        };
        assert_eq!(rule.apply(&CouponUse { currency: Currency::Usd, ..ok }), Err(CouponRefused::WrongCurrency));
        let ok = CouponUse {
            now: t("2026-03-15T00:00:00Z"),
            seller: "org_a",
            product: "p",
            plan: "pl",
            currency: Currency::Cny,
            used_by_buyer: 0,
            buyer: "org_buyer",
        };
        assert_eq!(rule.apply(&CouponUse { used_by_buyer: 1, ..ok }), Err(CouponRefused::UsedUp));
        let test = CouponRule { only_buyer: Some("org_a".into()), ..rule };
        assert!(test.is_test());
        let mine = CouponUse { buyer: "org_a", ..ok };
        assert_eq!(test.apply(&mine), Ok(CouponValue::Fixed { amount_minor: 1000 }));
        let theirs = CouponUse { buyer: "org_buyer", ..mine };
        assert_eq!(test.apply(&theirs), Err(CouponRefused::NotYours));
    }

    proptest! {
        #[test]
        fn quotes_add_up(unit in 0i64..10_000_000, periods in 1u32..60, qty in 1u32..500, bp in 0u32..=10_000, fixed in 0i64..100_000_000, use_fixed: bool, tax in 0u32..3000) {
            let coupon = if use_fixed { CouponValue::Fixed { amount_minor: fixed } } else { CouponValue::Percent { bp } };
            let q = quote(&QuoteInput { unit_price: cny(unit), periods, quantity: qty, coupon: Some(coupon), tax_rate: Bp(tax) }).unwrap();
            prop_assert_eq!(q.list_minor - q.coupon_discount_minor, q.total_minor);
            prop_assert!(q.total_minor >= 0);
            prop_assert!(q.tax_included_minor <= q.total_minor);
        }

        #[test]
        fn refunds_never_exceed_what_was_paid(paid in 0i64..10_000_000, per in 0i64..10_000_000, bought in 1u32..36, begun in 0u32..40, window: bool) {
            let r = refund(&RefundInput { paid: cny(paid), per_period_paid: cny(per), periods_bought: bought, periods_begun: begun, non_refundable: false, inside_no_reason_window: window, no_reason_used_this_year: 0, no_reason_limit: 10 }).unwrap();
            prop_assert!(r.amount.minor <= paid && r.amount.minor >= 0);
        }
    }
}
