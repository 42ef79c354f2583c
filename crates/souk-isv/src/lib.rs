//! The seller (ISV) SDK.
//!
//! Sellers link this crate into their own systems to verify the signed deliveries Souk sends
//! (`instance.create`, `instance.renew`, …) and to build the answers Souk expects. It is empty
//! until the fulfillment engine defines the protocol (docs/PROTOCOL.md); it exists now so the
//! workspace already has the shape the architecture document describes.
