//! Money: integer minor units with an ISO 4217 currency. No floats, ever.
//!
//! Rounding rule (applies everywhere money is divided): amounts are split with
//! [`Money::allocate`], which gives each share the floor of its exact part and hands the
//! remaining minor units, one each, to the shares with the largest remainders (ties go to
//! the earlier share). So a split always adds up to the original amount to the cent.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The currencies Souk prices in. Adding one is a deliberate change: its minor-unit
/// exponent matters to every display and every split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Currency {
    Cny,
    Usd,
    Eur,
    Jpy,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency {0:?}")]
    UnknownCurrency(String),
    #[error("currencies differ: {0:?} and {1:?}")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount out of range")]
    Overflow,
    #[error("cannot allocate over no shares or zero total weight")]
    EmptyAllocation,
    #[error("{0:?} is not an amount")]
    NotAnAmount(String),
}

impl Currency {
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        match code.to_ascii_uppercase().as_str() {
            "CNY" => Ok(Self::Cny),
            "USD" => Ok(Self::Usd),
            "EUR" => Ok(Self::Eur),
            "JPY" => Ok(Self::Jpy),
            _ => Err(MoneyError::UnknownCurrency(code.to_owned())),
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Cny => "CNY",
            Self::Usd => "USD",
            Self::Eur => "EUR",
            Self::Jpy => "JPY",
        }
    }

    /// Digits after the decimal point in the currency's minor unit.
    pub fn exponent(self) -> u32 {
        match self {
            Self::Jpy => 0,
            _ => 2,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Self::Cny => "¥",
            Self::Usd => "$",
            Self::Eur => "€",
            Self::Jpy => "¥",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// Amount in the currency's minor unit (fen, cents).
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    /// Parses an amount written in major units, as a person types it: `99`, `99.5`, `1,299.00`.
    /// More decimals than the currency has, signs and other characters are refused.
    pub fn parse_major(raw: &str, currency: Currency) -> Result<Money, MoneyError> {
        let s: String = raw.trim().chars().filter(|c| *c != ',' && *c != '_').collect();
        let bad = || MoneyError::NotAnAmount(raw.to_owned());
        let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
        let exp = currency.exponent() as usize;
        if int.is_empty()
            || frac.len() > exp
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let int: i64 = int.parse().map_err(|_| MoneyError::Overflow)?;
        let frac_minor: i64 = if exp == 0 { 0 } else { format!("{frac:0<exp$}").parse().map_err(|_| bad())? };
        let minor = int.checked_mul(10i64.pow(exp as u32)).and_then(|m| m.checked_add(frac_minor)).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, currency))
    }

    /// The amount in major units without a symbol, as a form shows it: `99.00`.
    pub fn major_string(self) -> String {
        let exp = self.currency.exponent();
        if exp == 0 {
            return self.minor.to_string();
        }
        let div = 10i64.pow(exp);
        let sign = if self.minor < 0 { "-" } else { "" };
        format!("{sign}{}.{:0width$}", self.minor.abs() / div, self.minor.abs() % div, width = exp as usize)
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self.minor.checked_add(other.minor).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self.minor.checked_sub(other.minor).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    pub fn checked_mul(self, factor: i64) -> Result<Money, MoneyError> {
        let minor = self.minor.checked_mul(factor).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    /// Splits this amount in proportion to `weights` (see the module's rounding rule).
    /// The shares always sum to `self`.
    pub fn allocate(self, weights: &[u64]) -> Result<Vec<Money>, MoneyError> {
        let total: u128 = weights.iter().map(|w| u128::from(*w)).sum();
        if weights.is_empty() || total == 0 {
            return Err(MoneyError::EmptyAllocation);
        }
        let negative = self.minor < 0;
        let amount = u128::from(self.minor.unsigned_abs());
        let mut shares: Vec<u128> = Vec::with_capacity(weights.len());
        let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(weights.len());
        for (i, w) in weights.iter().enumerate() {
            let exact = amount * u128::from(*w);
            shares.push(exact / total);
            remainders.push((exact % total, i));
        }
        let given: u128 = shares.iter().sum();
        let mut left = amount - given;
        // Largest remainder first; on equal remainders the earlier share wins.
        remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, i) in remainders {
            if left == 0 {
                break;
            }
            shares[i] += 1;
            left -= 1;
        }
        shares
            .into_iter()
            .map(|s| {
                let s = i64::try_from(s).map_err(|_| MoneyError::Overflow)?;
                Ok(Money::new(if negative { -s } else { s }, self.currency))
            })
            .collect()
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency { Ok(()) } else { Err(MoneyError::CurrencyMismatch(self.currency, other.currency)) }
    }
}

impl fmt::Display for Money {
    /// `¥12.30`, `$0.05`, `-$3.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        let exp = self.currency.exponent();
        if exp == 0 {
            return write!(f, "{sign}{}{abs}", self.currency.symbol());
        }
        let div = 10u64.pow(exp);
        write!(f, "{sign}{}{}.{:0width$}", self.currency.symbol(), abs / div, abs % div, width = exp as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn displays_with_minor_units() {
        assert_eq!(Money::new(1230, Currency::Cny).to_string(), "¥12.30");
        assert_eq!(Money::new(5, Currency::Usd).to_string(), "$0.05");
        assert_eq!(Money::new(-300, Currency::Usd).to_string(), "-$3.00");
        assert_eq!(Money::new(500, Currency::Jpy).to_string(), "¥500");
    }

    #[test]
    fn mixing_currencies_is_an_error() {
        let err = Money::new(1, Currency::Cny).checked_add(Money::new(1, Currency::Usd));
        assert_eq!(err, Err(MoneyError::CurrencyMismatch(Currency::Cny, Currency::Usd)));
    }

    #[test]
    fn allocation_gives_leftover_cents_to_largest_remainders() {
        let shares = Money::new(100, Currency::Cny).allocate(&[1, 1, 1]).unwrap();
        let minors: Vec<i64> = shares.iter().map(|m| m.minor).collect();
        assert_eq!(minors, vec![34, 33, 33]);
        let shares = Money::new(1000, Currency::Cny).allocate(&[70, 30]).unwrap();
        assert_eq!(shares[0].minor, 700);
        assert_eq!(shares[1].minor, 300);
    }

    #[test]
    fn amounts_typed_by_people_parse_exactly() {
        assert_eq!(Money::parse_major("99", Currency::Cny).unwrap().minor, 9900);
        assert_eq!(Money::parse_major("99.5", Currency::Cny).unwrap().minor, 9950);
        assert_eq!(Money::parse_major(" 1,299.05 ", Currency::Usd).unwrap().minor, 129905);
        assert_eq!(Money::parse_major("500", Currency::Jpy).unwrap().minor, 500);
        for bad in ["", "-1", "1.234", "abc", "1.2.3", ".5", "5.x", "500.5"] {
            let currency = if bad == "500.5" { Currency::Jpy } else { Currency::Usd };
            assert!(Money::parse_major(bad, currency).is_err(), "{bad:?} accepted");
        }
        assert_eq!(Money::new(129905, Currency::Usd).major_string(), "1299.05");
    }

    #[test]
    fn parse_currency_codes() {
        assert_eq!(Currency::parse("cny"), Ok(Currency::Cny));
        assert!(Currency::parse("XXX").is_err());
    }

    proptest! {
        #[test]
        fn allocation_always_sums_to_the_amount(
            minor in -1_000_000_000_000i64..1_000_000_000_000i64,
            weights in proptest::collection::vec(0u64..10_000, 1..12),
        ) {
            prop_assume!(weights.iter().any(|w| *w > 0));
            let shares = Money::new(minor, Currency::Usd).allocate(&weights).unwrap();
            prop_assert_eq!(shares.len(), weights.len());
            prop_assert_eq!(shares.iter().map(|m| m.minor).sum::<i64>(), minor);
            // A zero weight never receives anything.
            for (share, w) in shares.iter().zip(&weights) {
                if *w == 0 { prop_assert_eq!(share.minor, 0); }
            }
        }
    }
}
