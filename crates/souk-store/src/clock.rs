//! The production clock. Reading the system time is I/O, so it lives here rather than in
//! the core, which only knows the [`souk_core::clock::Clock`] trait.

use chrono::{DateTime, Utc};
use souk_core::clock::Clock;

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
