//! The events Souk delivers, as types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One delivery. `id` is stable across retries (answer a repeated id as before); `sequence`
/// counts the subscription's events from 1, and Souk never sends one before the previous was
/// answered with success.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    /// `instance.create`, `instance.renew`, `instance.change_plan`, `instance.suspend`,
    /// `instance.resume`, `instance.release`.
    #[serde(rename = "type")]
    pub kind: String,
    pub sequence: u64,
    pub timestamp: DateTime<Utc>,
    /// Bought with the seller's own test coupon.
    #[serde(default)]
    pub test: bool,
    pub data: Data,
}

/// The subscription's state after the event, and what the event is about.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Data {
    pub subscription_id: String,
    #[serde(default)]
    pub product_id: String,
    /// The plan in force after the event.
    #[serde(default)]
    pub plan_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_code: Option<String>,
    #[serde(default)]
    pub buyer_org_id: String,
    /// `pending_fulfillment`, `active`, `expired` (suspended in grace), `released`, `cancelled`.
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub quantity: i64,
    #[serde(default)]
    pub trial: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periods: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The instance the seller answered `instance.create` with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Why (suspend, release): `expired`, `unsubscribed`, `grace_ended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `authorization.sync`: `add`, `modify` or `delete`, for `users`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<User>>,
    /// License-code products: the codes the order's units got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_codes: Option<Vec<String>>,
    /// `license.issue`: how many codes to answer with (`{"license_codes": [...]}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_quantity: Option<u32>,
}

/// A member of the buyer enterprise whose access to the application changed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct User {
    pub account_id: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub name: String,
    /// `admin` or `user`.
    #[serde(default)]
    pub role: String,
    /// False when access was taken away.
    #[serde(default)]
    pub enabled: bool,
}

impl Event {
    pub fn is(&self, kind: &str) -> bool {
        self.kind == kind
    }
}
