//! Per-site working-day calendars: the Monday-to-Friday week with the site's holidays and
//! make-up working days, as operators configure them.

use chrono::NaiveDate;
use souk_core::calendar::WorkingCalendar;
use souk_core::site::Site;

use crate::{Conn, StoreError, parse_stored, q};

/// The site's offset from UTC: China Standard Time for `cn`, UTC for `intl`.
pub fn utc_offset(site: Site) -> i32 {
    match site {
        Site::Cn => 8 * 3600,
        Site::Intl => 0,
    }
}

pub async fn load(c: &mut impl Conn, site: Site) -> Result<WorkingCalendar, StoreError> {
    let mut cal = WorkingCalendar::new(utc_offset(site));
    for r in c.fetch_all(q("SELECT day, working FROM calendar_days WHERE site = $1").bind(site.as_str())).await? {
        let day: String = r.get("day")?;
        let day = parse_stored(NaiveDate::parse_from_str(&day, "%Y-%m-%d"))?;
        if r.get::<bool>("working")? {
            cal.make_up_days.insert(day);
        } else {
            cal.holidays.insert(day);
        }
    }
    Ok(cal)
}

/// Marks a date a holiday (`Some(false)`), a working day (`Some(true)`), or back to the
/// ordinary week (`None`).
pub async fn set_day(c: &mut impl Conn, site: Site, day: NaiveDate, working: Option<bool>) -> Result<(), StoreError> {
    let day = day.format("%Y-%m-%d").to_string();
    c.execute(q("DELETE FROM calendar_days WHERE site = $1 AND day = $2").bind(site.as_str()).bind(&day)).await?;
    if let Some(w) = working {
        c.execute(q("INSERT INTO calendar_days (site, day, working) VALUES ($1, $2, $3)").bind(site.as_str()).bind(&day).bind(w))
            .await?;
    }
    Ok(())
}
