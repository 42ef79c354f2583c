//! The integration suite. Every test here runs twice: on SQLite and on PostgreSQL.

mod helpers;

mod api;
mod catalog;
mod commerce;
mod compute;
mod fulfillment;
mod identity;
mod koogallery;
mod licenses;
mod messages;
mod outbox;
mod pages;
mod scoping;
mod verification;
mod wallet;
