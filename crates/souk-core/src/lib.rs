//! Souk's domain core.
//!
//! Everything here is pure: no database, no network, no reading of the system clock.
//! Values are constructed by parsing, so a value of a type in this crate is always valid
//! (an [`identity::Email`] is a plausible address, a [`money::Money`] has a real currency).
//! The store and server crates depend on this one, never the other way round.

pub mod billing;
pub mod calendar;
pub mod catalog;
pub mod clock;
pub mod compute;
pub mod id;
pub mod identity;
pub mod license;
pub mod messages;
pub mod money;
pub mod outbox;
pub mod pricing;
pub mod search;
pub mod site;
pub mod subscription;
pub mod verification;
