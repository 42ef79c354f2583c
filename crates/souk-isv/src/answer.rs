//! What a seller answers. `200` with an [`Answer`] when done; `202` with
//! `{"status":"in_progress"}` when provisioning continues (then report it done through Souk's
//! API). Any other status is a failure Souk retries.

use serde::{Deserialize, Serialize};

/// The answer to an event. For `instance.create`, the instance and how the buyer reaches it;
/// the same subscription must always get the same instance.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Answer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
}

/// How the buyer reaches the instance. The initial password is encrypted with the product's
/// signing secret ([`crate::crypto::encrypt_password`]); Souk stores it only encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Access {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_encrypted: Option<String>,
}

/// The body of a `202 Accepted`.
pub fn in_progress() -> serde_json::Value {
    serde_json::json!({ "status": "in_progress" })
}
