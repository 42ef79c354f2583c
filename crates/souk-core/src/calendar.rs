//! Working days, for review SLAs ("reviewed within 3 working days", seed §10 and §14).
//!
//! Rule: time passes for an SLA only on working dates, in the site's time zone. A working
//! date is a weekday that is not a holiday, or a weekend date the site declares a make-up
//! working day (China moves weekends around public holidays). A submission made on a
//! non-working date starts counting at 00:00 of the next working date. The deadline of
//! `n` working days is the same local time of day on the n-th following working date.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkingCalendar {
    /// The site's offset from UTC in seconds (cn: +8h).
    pub utc_offset_secs: i32,
    pub holidays: BTreeSet<NaiveDate>,
    /// Weekend dates that are working days.
    pub make_up_days: BTreeSet<NaiveDate>,
}

/// How a deadline stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaStatus {
    OnTrack,
    /// Less than one working day left.
    AtRisk,
    Breached,
}

impl WorkingCalendar {
    pub fn new(utc_offset_secs: i32) -> Self {
        Self { utc_offset_secs, holidays: BTreeSet::new(), make_up_days: BTreeSet::new() }
    }

    fn offset(&self) -> FixedOffset {
        FixedOffset::east_opt(self.utc_offset_secs).unwrap_or(FixedOffset::east_opt(0).expect("zero offset is valid"))
    }

    pub fn is_working(&self, date: NaiveDate) -> bool {
        if self.make_up_days.contains(&date) {
            return true;
        }
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&date)
    }

    fn next_working(&self, mut date: NaiveDate) -> NaiveDate {
        loop {
            date = date.succ_opt().unwrap_or(date);
            if self.is_working(date) {
                return date;
            }
        }
    }

    /// The moment `n` working days after `start`.
    pub fn add_working_days(&self, start: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        let tz = self.offset();
        let local = start.with_timezone(&tz);
        let (mut date, time) = if self.is_working(local.date_naive()) {
            (local.date_naive(), local.time())
        } else {
            (self.next_working(local.date_naive()), NaiveTime::MIN)
        };
        for _ in 0..n {
            date = self.next_working(date);
        }
        let naive = date.and_time(time);
        tz.from_local_datetime(&naive).single().map(|d| d.with_timezone(&Utc)).unwrap_or(start)
    }

    /// Working time left before `deadline` at `now`, counting only working dates.
    pub fn working_time_left(&self, now: DateTime<Utc>, deadline: DateTime<Utc>) -> Duration {
        if now >= deadline {
            return Duration::zero();
        }
        let tz = self.offset();
        let (mut cursor, end) = (now.with_timezone(&tz), deadline.with_timezone(&tz));
        let mut left = Duration::zero();
        while cursor < end {
            let next_midnight = tz
                .from_local_datetime(&cursor.date_naive().succ_opt().unwrap_or(cursor.date_naive()).and_time(NaiveTime::MIN))
                .single()
                .unwrap_or(end);
            let stop = if next_midnight < end { next_midnight } else { end };
            if self.is_working(cursor.date_naive()) {
                left += stop - cursor;
            }
            cursor = stop;
        }
        left
    }

    pub fn status(&self, now: DateTime<Utc>, deadline: DateTime<Utc>) -> SlaStatus {
        if now >= deadline {
            SlaStatus::Breached
        } else if self.working_time_left(now, deadline) < Duration::days(1) {
            SlaStatus::AtRisk
        } else {
            SlaStatus::OnTrack
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn three_working_days_skip_the_weekend() {
        let cal = WorkingCalendar::new(0);
        // Friday 10:00 -> Wednesday 10:00.
        assert_eq!(cal.add_working_days(utc("2026-03-06T10:00:00Z"), 3), utc("2026-03-11T10:00:00Z"));
        // Monday 10:00 -> Thursday 10:00.
        assert_eq!(cal.add_working_days(utc("2026-03-02T10:00:00Z"), 3), utc("2026-03-05T10:00:00Z"));
    }

    #[test]
    fn weekend_submissions_start_on_monday_morning() {
        let cal = WorkingCalendar::new(0);
        assert_eq!(cal.add_working_days(utc("2026-03-07T15:00:00Z"), 3), utc("2026-03-12T00:00:00Z"));
    }

    #[test]
    fn holidays_and_make_up_days_count_as_the_site_says() {
        let mut cal = WorkingCalendar::new(8 * 3600);
        // A national-day week: Thursday 1st to Wednesday 7th off, Saturday 10th worked.
        for day in ["2026-10-01", "2026-10-02", "2026-10-05", "2026-10-06", "2026-10-07"] {
            cal.holidays.insert(d(day));
        }
        cal.make_up_days.insert(d("2026-10-10"));
        // Wednesday 30 Sep, 10:00 Beijing (02:00 UTC): Thu 8, Fri 9, Sat 10 (make-up).
        assert_eq!(cal.add_working_days(utc("2026-09-30T02:00:00Z"), 3), utc("2026-10-10T02:00:00Z"));
    }

    #[test]
    fn the_local_date_decides() {
        // Friday 23:00 UTC is already Saturday in Beijing.
        let cal = WorkingCalendar::new(8 * 3600);
        let deadline = cal.add_working_days(utc("2026-03-06T23:00:00Z"), 3);
        // Counting starts Monday 00:00 Beijing; three working days later is Thursday 00:00 Beijing.
        assert_eq!(deadline, utc("2026-03-11T16:00:00Z"));
    }

    #[test]
    fn status_turns_at_risk_then_breached() {
        let cal = WorkingCalendar::new(0);
        let submitted = utc("2026-03-06T10:00:00Z");
        let deadline = cal.add_working_days(submitted, 3);
        assert_eq!(cal.status(submitted, deadline), SlaStatus::OnTrack);
        // Over the weekend no working time passes.
        assert_eq!(cal.working_time_left(utc("2026-03-08T12:00:00Z"), deadline), Duration::days(2) + Duration::hours(10));
        assert_eq!(cal.status(utc("2026-03-10T12:00:00Z"), deadline), SlaStatus::AtRisk);
        assert_eq!(cal.status(deadline, deadline), SlaStatus::Breached);
    }
}
