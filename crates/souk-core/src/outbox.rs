//! The retry policy for outbox deliveries.
//!
//! A failed attempt is retried after an exponentially growing delay with jitter, so that
//! many events failing together (a seller's endpoint down) do not retry in lockstep.
//! The jitter's randomness is passed in, which keeps this function pure and testable.

use chrono::Duration;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub base: Duration,
    /// No delay grows beyond this.
    pub max_delay: Duration,
    /// After this many failed attempts the event is marked dead for an operator to look at.
    pub max_attempts: u32,
    /// Jitter as a fraction of the delay, in per mille (200 = ±20%).
    pub jitter_per_mille: u32,
    /// When not empty, the delays after each failure in seconds, instead of doubling from
    /// `base`; an event gives up after the last (and `max_attempts` is ignored).
    pub schedule: &'static [i64],
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { base: Duration::seconds(5), max_delay: Duration::hours(6), max_attempts: 25, jitter_per_mille: 200, schedule: &[] }
    }
}

/// Deliveries to sellers: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (about 27.6 hours in all),
/// then the order is given up as failed.
pub const SELLER_SCHEDULE: &[i64] = &[5, 300, 1800, 7200, 18_000, 36_000, 36_000];

impl RetryPolicy {
    pub fn seller_deliveries() -> Self {
        Self { schedule: SELLER_SCHEDULE, jitter_per_mille: 100, ..Self::default() }
    }

    /// Attempts made before giving up.
    pub fn attempts(&self) -> u32 {
        if self.schedule.is_empty() { self.max_attempts } else { u32::try_from(self.schedule.len()).unwrap_or(u32::MAX) + 1 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryIn(Duration),
    GiveUp,
}

impl RetryPolicy {
    /// What to do after attempt number `attempt` (1-based) failed. `unit` is a random
    /// number in [0, 1) that picks the jitter.
    pub fn after_failure(&self, attempt: u32, unit: f64) -> AfterFailure {
        if attempt >= self.attempts() {
            return AfterFailure::GiveUp;
        }
        let raw = match self.schedule.get(attempt.saturating_sub(1) as usize) {
            Some(secs) => secs.saturating_mul(1000),
            None => {
                let exp = attempt.saturating_sub(1).min(30);
                let base_ms = self.base.num_milliseconds().max(1);
                base_ms.saturating_mul(1i64 << exp).min(self.max_delay.num_milliseconds())
            }
        };
        let spread = raw * i64::from(self.jitter_per_mille) / 1000;
        // unit in [0,1) maps to an offset in [-spread, +spread).
        let unit = unit.clamp(0.0, 0.999_999);
        let offset = ((unit * 2.0 - 1.0) * spread as f64) as i64;
        AfterFailure::RetryIn(Duration::milliseconds((raw + offset).max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seller_deliveries_follow_their_schedule_then_give_up() {
        let p = RetryPolicy::seller_deliveries();
        assert_eq!(p.attempts(), 8);
        let mid = |n| match p.after_failure(n, 0.5) {
            AfterFailure::RetryIn(d) => d.num_seconds(),
            AfterFailure::GiveUp => -1,
        };
        assert_eq!((1..=8).map(mid).collect::<Vec<_>>(), vec![5, 300, 1800, 7200, 18_000, 36_000, 36_000, -1]);
        match p.after_failure(2, 0.0) {
            AfterFailure::RetryIn(d) => assert_eq!(d.num_seconds(), 270, "10% jitter"),
            AfterFailure::GiveUp => panic!(),
        }
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let p = RetryPolicy::default();
        let mid = |n| match p.after_failure(n, 0.5) {
            AfterFailure::RetryIn(d) => d,
            AfterFailure::GiveUp => panic!("gave up at {n}"),
        };
        assert_eq!(mid(1), Duration::seconds(5));
        assert_eq!(mid(2), Duration::seconds(10));
        assert_eq!(mid(3), Duration::seconds(20));
        assert_eq!(mid(24), Duration::hours(6));
        assert_eq!(p.after_failure(25, 0.5), AfterFailure::GiveUp);
    }

    #[test]
    fn jitter_stays_within_its_band() {
        let p = RetryPolicy::default();
        for unit in [0.0, 0.25, 0.75, 0.999] {
            let AfterFailure::RetryIn(d) = p.after_failure(3, unit) else { panic!() };
            assert!(d >= Duration::seconds(16) && d <= Duration::seconds(24), "{d:?}");
        }
        let AfterFailure::RetryIn(low) = p.after_failure(3, 0.0) else { panic!() };
        let AfterFailure::RetryIn(high) = p.after_failure(3, 0.99) else { panic!() };
        assert!(low < high);
    }
}
