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
    /// When set, the event gives up once this long has passed since its first attempt,
    /// however many attempts that took (polls included); the schedule's last delay repeats
    /// until then, and the last try falls at the window's end.
    pub window: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::seconds(5),
            max_delay: Duration::hours(6),
            max_attempts: 25,
            jitter_per_mille: 200,
            schedule: &[],
            window: None,
        }
    }
}

/// Deliveries to sellers: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (about 27.6 hours in all),
/// then the order is given up as failed.
pub const SELLER_SCHEDULE: &[i64] = &[5, 300, 1800, 7200, 18_000, 36_000, 36_000];

/// KooGallery's cadence: create and upgrade are retried hourly for 3 hours, then the order
/// fails and is refunded.
pub const KOOGALLERY_PROVISIONING_SCHEDULE: &[i64] = &[3600];
pub const KOOGALLERY_PROVISIONING_WINDOW_SECS: i64 = 3 * 3600;
/// KooGallery's cadence for renewals, status changes and releases: retried for an hour
/// (here every 10 minutes), after which the seller can redeliver from its console.
pub const KOOGALLERY_LIFECYCLE_SCHEDULE: &[i64] = &[600];
pub const KOOGALLERY_LIFECYCLE_WINDOW_SECS: i64 = 3600;

impl RetryPolicy {
    pub fn seller_deliveries() -> Self {
        Self { schedule: SELLER_SCHEDULE, jitter_per_mille: 100, ..Self::default() }
    }

    /// KooGallery-protocol creates and upgrades.
    pub fn koogallery_provisioning() -> Self {
        Self {
            schedule: KOOGALLERY_PROVISIONING_SCHEDULE,
            window: Some(Duration::seconds(KOOGALLERY_PROVISIONING_WINDOW_SECS)),
            jitter_per_mille: 100,
            ..Self::default()
        }
    }

    /// KooGallery-protocol renewals, status changes, releases and syncs.
    pub fn koogallery_lifecycle() -> Self {
        Self {
            schedule: KOOGALLERY_LIFECYCLE_SCHEDULE,
            window: Some(Duration::seconds(KOOGALLERY_LIFECYCLE_WINDOW_SECS)),
            jitter_per_mille: 100,
            ..Self::default()
        }
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
    /// What to do after attempt number `attempt` (1-based) failed, `elapsed` after the
    /// event's first attempt: a windowed policy decides by time, the others by attempts.
    pub fn after_failure_at(&self, attempt: u32, elapsed: Duration, unit: f64) -> AfterFailure {
        let Some(window) = self.window else { return self.after_failure(attempt, unit) };
        if elapsed >= window {
            return AfterFailure::GiveUp;
        }
        let idx = (attempt.saturating_sub(1) as usize).min(self.schedule.len().saturating_sub(1));
        let step = self.schedule.get(idx).map_or(self.base, |s| Duration::seconds(*s));
        let delay = self.jittered(step.num_milliseconds(), unit);
        AfterFailure::RetryIn(delay.min(window - elapsed).max(Duration::milliseconds(1)))
    }

    fn jittered(&self, raw_ms: i64, unit: f64) -> Duration {
        let spread = raw_ms * i64::from(self.jitter_per_mille) / 1000;
        // unit in [0,1) maps to an offset in [-spread, +spread).
        let unit = unit.clamp(0.0, 0.999_999);
        let offset = ((unit * 2.0 - 1.0) * spread as f64) as i64;
        Duration::milliseconds((raw_ms + offset).max(1))
    }

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
        AfterFailure::RetryIn(self.jittered(raw, unit))
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
    fn koogallery_creates_retry_hourly_for_three_hours_then_give_up() {
        let p = RetryPolicy::koogallery_provisioning();
        // Attempts at 0 h, 1 h, 2 h and 3 h (no jitter at 0.5): the fourth failure gives up.
        let mut at = Duration::zero();
        let mut attempts = 0;
        loop {
            attempts += 1;
            match p.after_failure_at(attempts, at, 0.5) {
                AfterFailure::RetryIn(d) => at += d,
                AfterFailure::GiveUp => break,
            }
        }
        assert_eq!((attempts, at), (4, Duration::hours(3)));
        // Early jitter does not add an attempt past the window: the last try is at its end.
        let AfterFailure::RetryIn(d) = p.after_failure_at(9, Duration::minutes(170), 0.99) else { panic!() };
        assert_eq!(d, Duration::minutes(10));
        // Polls do not count: the hundredth attempt inside the window still retries.
        assert!(matches!(p.after_failure_at(100, Duration::minutes(30), 0.5), AfterFailure::RetryIn(_)));
        let l = RetryPolicy::koogallery_lifecycle();
        assert_eq!(l.after_failure_at(1, Duration::minutes(59), 0.5), AfterFailure::RetryIn(Duration::minutes(1)));
        assert_eq!(l.after_failure_at(2, Duration::minutes(60), 0.5), AfterFailure::GiveUp);
    }

    #[test]
    fn without_a_window_elapsed_time_is_ignored() {
        let p = RetryPolicy::seller_deliveries();
        assert_eq!(p.after_failure_at(2, Duration::days(30), 0.5), p.after_failure(2, 0.5));
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
