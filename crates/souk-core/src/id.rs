//! Prefixed, time-sortable identifiers: `org_01jd…`, `acct_01jd…`.
//!
//! The body is a ULID in lower case, so ids sort by creation time (cursor pagination relies
//! on this) and the prefix tells a reader what kind of thing an id names. Each kind is its own
//! type, so an `OrgId` cannot be passed where an `AccountId` is expected.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {expected} id")]
pub struct IdParseError {
    pub expected: &'static str,
}

/// Makes the body of a new id from the creation time and randomness. Ids made in one
/// process within the same millisecond still sort in the order they were made (the random
/// part is incremented), so "newest first" lists stay in order even under a frozen test clock.
pub fn new_body(at: DateTime<Utc>) -> String {
    static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
    let time = std::time::SystemTime::from(at);
    let made = {
        let mut guard = GENERATOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.get_or_insert_with(ulid::Generator::new).generate_from_datetime(time).ok()
    };
    let id = made.unwrap_or_else(|| {
        let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
        ulid::Ulid::from_parts(ms, rand::random::<u128>())
    });
    id.to_string().to_lowercase()
}

macro_rules! prefixed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate(at: DateTime<Utc>) -> Self {
                Self(format!("{}_{}", $prefix, new_body(at)))
            }

            pub fn parse(s: &str) -> Result<Self, IdParseError> {
                let err = IdParseError { expected: $prefix };
                let body = s
                    .strip_prefix($prefix)
                    .and_then(|rest| rest.strip_prefix('_'))
                    .ok_or(err.clone())?;
                if body.len() != 26 || !body.starts_with(|c: char| ('0'..='7').contains(&c)) || ulid::Ulid::from_string(body).is_err() {
                    return Err(err);
                }
                Ok(Self(s.to_ascii_lowercase()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdParseError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

prefixed_id!(/// An account: one person who signs in.
    AccountId, "acct");
prefixed_id!(/// An organization: personal or enterprise; buys, sells and/or resells.
    OrgId, "org");
prefixed_id!(/// A browser session.
    SessionId, "sess");
prefixed_id!(/// An API key (the id, not the secret).
    ApiKeyId, "key");
prefixed_id!(/// A real-name verification submission.
    VerificationId, "ver");
prefixed_id!(/// An uploaded file.
    UploadId, "upl");
prefixed_id!(/// An outbox event.
    EventId, "evt");
prefixed_id!(/// An audit log entry.
    AuditId, "aud");
prefixed_id!(/// A version of a platform agreement.
    AgreementId, "agr");
prefixed_id!(/// An operator's enforcement action against a seller or product.
    EnforcementId, "enf");
prefixed_id!(/// A product in the catalog.
    ProductId, "prd");
prefixed_id!(/// One revision of a product's content, reviewed as a whole.
    RevisionId, "rev");
prefixed_id!(/// A plan (SKU) of a product.
    PlanId, "pln");
prefixed_id!(/// One revision of a seller's shop page.
    ShopRevisionId, "shp");
prefixed_id!(/// A message in a member's inbox.
    MessageId, "msg");
prefixed_id!(/// An email or SMS a message is sent as.
    SendId, "snd");
prefixed_id!(/// An extra email address or phone number an organization's messages may go to.
    ContactId, "ctc");
prefixed_id!(/// An upload of license codes into a product's pool, imported in the background.
    ImportId, "imp");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_by_time() {
        let t1 = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
        let t2 = t1 + chrono::Duration::milliseconds(1);
        let a = OrgId::generate(t1);
        let b = OrgId::generate(t2);
        assert!(a.as_str().starts_with("org_"));
        assert!(a < b);
        assert_eq!(OrgId::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn ids_made_in_the_same_millisecond_keep_their_order() {
        let t = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
        let ids: Vec<OrgId> = (0..100).map(|_| OrgId::generate(t)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn wrong_prefix_or_body_is_rejected() {
        let t = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
        let org = OrgId::generate(t);
        assert!(AccountId::parse(org.as_str()).is_err());
        assert!(OrgId::parse("org_").is_err());
        assert!(OrgId::parse("org_zzzzzzzzzzzzzzzzzzzzzzzzzz").is_err());
        assert!(OrgId::parse("org_0uuuuuuuuuuuuuuuuuuuuuuuuu").is_err());
        assert!(OrgId::parse("").is_err());
    }
}
