//! The seller (ISV) SDK for Souk's native fulfillment protocol (docs/PROTOCOL.md).
//!
//! Souk tells a seller's system about each subscription's life with signed HTTPS POSTs:
//! `instance.create`, `instance.renew`, `instance.change_plan`, `instance.suspend`,
//! `instance.resume`, `instance.release`. This crate verifies them ([`signature`]), parses them
//! into types ([`event`]) and builds the answers Souk expects ([`answer`]), including the
//! encrypted initial password ([`crypto`]). [`reference`] is a small working seller built on
//! it, which `souk isv demo` serves.
//!
//! ```
//! use souk_isv::{signature::{Secret, sign, verify, Headers}, event::Event};
//! let secret = Secret::generate();
//! let body = br#"{"id":"evt_1","type":"instance.release","sequence":3,"test":false,"timestamp":"2026-03-02T09:00:00Z","data":{"subscription_id":"sub_1","reason":"unsubscribed"}}"#;
//! let now = 1_772_442_000;
//! let signed = sign(&[&secret], "evt_1", now, body);
//! let headers = Headers { id: "evt_1", timestamp: &now.to_string(), signature: &signed };
//! verify(&headers, body, &[&secret], now + 10, 300).expect("signed by Souk");
//! let event: Event = serde_json::from_slice(body).unwrap();
//! assert_eq!(event.kind, "instance.release");
//! ```

pub mod answer;
pub mod apig;
pub mod crypto;
pub mod event;
pub mod koogallery;
pub mod reference;
pub mod signature;
