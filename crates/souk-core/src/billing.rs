//! Monthly bills (seed §13): for a buyer organization and currency, what moved through its
//! wallet in a calendar month of its site's time zone (top-ups, purchases, renewals,
//! upgrades, refunds), with the opening and closing balances.
//!
//! A bill is computed from the wallet ledger, never stored apart from it, so it cannot
//! disagree with the wallet: opening balance + every line = closing balance, checked here.

use chrono::{DateTime, FixedOffset, NaiveDate, Offset, TimeZone, Utc};

use crate::site::Site;

/// A calendar month, written `2026-03`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BillMonth {
    year: i32,
    month: u32,
}

impl BillMonth {
    pub fn parse(s: &str) -> Option<Self> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let (year, month) = (y.parse().ok()?, m.parse().ok()?);
        NaiveDate::from_ymd_opt(year, month, 1)?;
        (2000..=2200).contains(&year).then_some(Self { year, month })
    }

    /// The month `at` falls in, on `site`'s clock.
    pub fn containing(at: DateTime<Utc>, site: Site) -> Self {
        let local = at.with_timezone(&offset(site));
        Self { year: chrono::Datelike::year(&local), month: chrono::Datelike::month(&local) }
    }

    pub fn next(self) -> Self {
        if self.month == 12 { Self { year: self.year + 1, month: 1 } } else { Self { year: self.year, month: self.month + 1 } }
    }

    pub fn previous(self) -> Self {
        if self.month == 1 { Self { year: self.year - 1, month: 12 } } else { Self { year: self.year, month: self.month - 1 } }
    }

    /// The first instant of the month on `site`'s clock.
    pub fn start(self, site: Site) -> DateTime<Utc> {
        let date = NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN);
        offset(site)
            .from_local_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
            .single()
            .map(|d| d.to_utc())
            .unwrap_or_default()
    }

    /// The first instant after the month.
    pub fn end(self, site: Site) -> DateTime<Utc> {
        self.next().start(site)
    }
}

impl std::fmt::Display for BillMonth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Each site's bills follow its own clock: Beijing time for the China site, UTC otherwise.
pub fn offset(site: Site) -> FixedOffset {
    match site {
        // 8 hours is always a valid offset; UTC is the harmless fallback the type demands.
        Site::Cn => FixedOffset::east_opt(8 * 3600).unwrap_or(Utc.fix()),
        Site::Intl => Utc.fix(),
    }
}

/// What a line of the bill is, from the ledger entry's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    TopUp,
    Purchase,
    Renewal,
    Upgrade,
    Refund,
    Other,
}

impl LineKind {
    pub fn of_reason(reason: &str) -> Self {
        match reason {
            "top_up" => Self::TopUp,
            "order" | "new" => Self::Purchase,
            "renewal" => Self::Renewal,
            "upgrade" => Self::Upgrade,
            "refund" => Self::Refund,
            _ => Self::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TopUp => "top_up",
            Self::Purchase => "purchase",
            Self::Renewal => "renewal",
            Self::Upgrade => "upgrade",
            Self::Refund => "refund",
            Self::Other => "other",
        }
    }
}

/// The sums of a bill. Charges are positive amounts spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct BillTotals {
    pub opening_minor: i64,
    pub top_ups_minor: i64,
    pub charges_minor: i64,
    pub refunds_minor: i64,
    pub other_minor: i64,
    pub closing_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the ledger does not add up: opening {opening} + lines {sum} != closing {closing}")]
pub struct LedgerMismatch {
    pub opening: i64,
    pub sum: i64,
    pub closing: i64,
}

/// Adds up the lines `(kind, delta, balance_after)` in ledger order after `opening`.
pub fn totals(opening: i64, lines: &[(LineKind, i64, i64)]) -> Result<BillTotals, LedgerMismatch> {
    let mut t = BillTotals { opening_minor: opening, closing_minor: opening, ..Default::default() };
    for (kind, delta, _) in lines {
        match kind {
            LineKind::TopUp => t.top_ups_minor += delta,
            LineKind::Purchase | LineKind::Renewal | LineKind::Upgrade => t.charges_minor -= delta,
            LineKind::Refund => t.refunds_minor += delta,
            LineKind::Other => t.other_minor += delta,
        }
    }
    let sum: i64 = lines.iter().map(|(_, d, _)| d).sum();
    let closing = lines.last().map(|(_, _, after)| *after).unwrap_or(opening);
    if opening + sum != closing {
        return Err(LedgerMismatch { opening, sum, closing });
    }
    t.closing_minor = closing;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_and_follow_the_sites_clock() {
        let m = BillMonth::parse("2026-03").unwrap();
        assert_eq!(m.to_string(), "2026-03");
        for bad in ["2026-13", "2026-3", "26-03", "2026/03", "abcd-ef", "1999-01"] {
            assert!(BillMonth::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(m.start(Site::Intl).to_rfc3339(), "2026-03-01T00:00:00+00:00");
        assert_eq!(m.start(Site::Cn).to_rfc3339(), "2026-02-28T16:00:00+00:00", "midnight in Beijing");
        assert_eq!(BillMonth::parse("2026-12").unwrap().next().to_string(), "2027-01");
        assert_eq!(BillMonth::parse("2026-01").unwrap().previous().to_string(), "2025-12");
        let late = DateTime::parse_from_rfc3339("2026-03-31T17:00:00Z").unwrap().to_utc();
        assert_eq!(BillMonth::containing(late, Site::Cn).to_string(), "2026-04");
        assert_eq!(BillMonth::containing(late, Site::Intl).to_string(), "2026-03");
    }

    #[test]
    fn a_bill_adds_up_or_says_the_ledger_does_not() {
        let lines = [
            (LineKind::TopUp, 100_000, 150_000),
            (LineKind::Purchase, -21_000, 129_000),
            (LineKind::Renewal, -7_000, 122_000),
            (LineKind::Refund, 7_000, 129_000),
        ];
        let t = totals(50_000, &lines).unwrap();
        assert_eq!((t.top_ups_minor, t.charges_minor, t.refunds_minor), (100_000, 28_000, 7_000));
        assert_eq!(t.closing_minor, 129_000);
        assert_eq!(t.opening_minor + t.top_ups_minor - t.charges_minor + t.refunds_minor + t.other_minor, t.closing_minor);
        assert_eq!(totals(42, &[]).unwrap().closing_minor, 42, "a quiet month closes where it opened");
        assert!(totals(0, &[(LineKind::TopUp, 100, 90)]).is_err());
    }
}
