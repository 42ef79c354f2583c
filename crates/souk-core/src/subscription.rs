//! The life every purchase follows, as a state machine: pending fulfillment → active →
//! expired (grace period, service suspended) → released; or cancelled. Each transition is a
//! function that returns the next state or says why it is not allowed.

use chrono::{DateTime, Duration, Months, Utc};

use crate::catalog::Period;
use crate::identity::string_enum;

string_enum!(
    SubscriptionState {
        PendingFulfillment => "pending_fulfillment",
        Active => "active",
        Expired => "expired",
        Released => "released",
        Cancelled => "cancelled",
    }
);

pub use crate::catalog::DEFAULT_GRACE_DAYS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {from} subscription cannot {action}")]
pub struct IllegalTransition {
    pub from: SubscriptionState,
    pub action: &'static str,
}

impl SubscriptionState {
    /// The seller's system provisioned the instance.
    pub fn fulfilled(self) -> Result<Self, IllegalTransition> {
        match self {
            Self::PendingFulfillment => Ok(Self::Active),
            from => Err(IllegalTransition { from, action: "be fulfilled" }),
        }
    }

    /// The paid term ran out: service is suspended for the grace period.
    pub fn expire(self) -> Result<Self, IllegalTransition> {
        match self {
            Self::Active => Ok(Self::Expired),
            from => Err(IllegalTransition { from, action: "expire" }),
        }
    }

    /// A renewal paid: an expired subscription in grace comes back.
    pub fn renew(self) -> Result<Self, IllegalTransition> {
        match self {
            Self::Active | Self::Expired => Ok(Self::Active),
            from => Err(IllegalTransition { from, action: "be renewed" }),
        }
    }

    /// The grace period ended: the instance is released for good.
    pub fn release(self) -> Result<Self, IllegalTransition> {
        match self {
            Self::Expired => Ok(Self::Released),
            from => Err(IllegalTransition { from, action: "be released" }),
        }
    }

    /// The buyer unsubscribes, or fulfillment failed.
    pub fn cancel(self) -> Result<Self, IllegalTransition> {
        match self {
            Self::PendingFulfillment | Self::Active | Self::Expired => Ok(Self::Cancelled),
            from => Err(IllegalTransition { from, action: "be cancelled" }),
        }
    }

    /// Whether the buyer's service runs.
    pub fn is_serving(self) -> bool {
        self == Self::Active
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Released | Self::Cancelled)
    }
}

/// The end of `periods` periods starting at `start`. Months are calendar months: a term
/// starting on 31 January ends on the last day of February, at the same time of day.
pub fn term_end(start: DateTime<Utc>, period: Period, periods: u32) -> Option<DateTime<Utc>> {
    let months = match period {
        Period::Month => periods,
        Period::Year => periods.checked_mul(12)?,
    };
    start.checked_add_months(Months::new(months))
}

/// When an expired subscription is released.
pub fn release_at(expired_at: DateTime<Utc>, grace_days: i64) -> DateTime<Utc> {
    expired_at + Duration::days(grace_days)
}

/// The reminders before expiry: 7, 3 and 1 days ahead.
pub const REMINDER_DAYS: [i64; 3] = [7, 3, 1];

/// The reminders due by `now` for a term ending at `end`, of those not yet sent.
pub fn due_reminders(now: DateTime<Utc>, end: DateTime<Utc>, sent: &[i64]) -> Vec<i64> {
    REMINDER_DAYS.iter().copied().filter(|d| !sent.contains(d) && now >= end - Duration::days(*d) && now < end).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use SubscriptionState::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn the_life_of_a_subscription() {
        let s = PendingFulfillment.fulfilled().unwrap();
        assert_eq!(s, Active);
        let s = s.expire().unwrap();
        assert_eq!(s, Expired);
        assert!(!s.is_serving());
        assert_eq!(s.renew(), Ok(Active), "renewing in grace brings it back");
        assert_eq!(Active.expire().and_then(SubscriptionState::release), Ok(Released));
        assert!(Released.renew().is_err(), "released is final");
        assert!(Released.cancel().is_err());
        assert!(Active.fulfilled().is_err());
        assert_eq!(PendingFulfillment.cancel(), Ok(Cancelled));
        assert!(Cancelled.is_final());
    }

    #[test]
    fn terms_follow_the_calendar() {
        assert_eq!(term_end(t("2026-01-31T10:00:00Z"), Period::Month, 1), Some(t("2026-02-28T10:00:00Z")));
        assert_eq!(term_end(t("2026-03-02T09:00:00Z"), Period::Year, 2), Some(t("2028-03-02T09:00:00Z")));
        assert_eq!(release_at(t("2026-04-02T09:00:00Z"), i64::from(DEFAULT_GRACE_DAYS)), t("2026-04-17T09:00:00Z"));
    }

    #[test]
    fn reminders_are_due_7_3_and_1_days_ahead_once() {
        let end = t("2026-04-30T00:00:00Z");
        assert!(due_reminders(t("2026-04-22T00:00:00Z"), end, &[]).is_empty());
        assert_eq!(due_reminders(t("2026-04-23T00:00:00Z"), end, &[]), vec![7]);
        // After downtime, every reminder passed is due at once (the scheduler catches up).
        assert_eq!(due_reminders(t("2026-04-29T12:00:00Z"), end, &[7]), vec![3, 1]);
        assert!(due_reminders(t("2026-04-30T00:00:01Z"), end, &[]).is_empty(), "none after expiry");
    }
}
