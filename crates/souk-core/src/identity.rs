//! Who acts: accounts, organizations, roles. Values here are parsed from untrusted input,
//! so each constructor says exactly what is wrong with a bad value.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a value was refused. `field` names the input field for problem+json field errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// A field name, or a path into nested input such as `plans[1].prices`.
    pub field: std::borrow::Cow<'static, str>,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<std::borrow::Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }

    /// The same error under a parent path: `name` inside `plans[0]` is `plans[0].name`.
    pub fn within(self, parent: &str) -> Self {
        Self { field: format!("{parent}.{}", self.field).into(), message: self.message }
    }
}

/// An email address, lower-cased. Checked for shape only; ownership is proven by
/// confirmation codes where it matters (message center recipients).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim().to_lowercase();
        let bad = || FieldError::new(field, "must be an email address like name@example.com");
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || local.len() > 64
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(bad());
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password that meets the policy. Deliberately not `Debug`-printable and not
/// serializable: it must never reach a log or a response.
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_CHARS: usize = 128;

    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let n = raw.chars().count();
        if n < Self::MIN_CHARS {
            return Err(FieldError::new(field, format!("must be at least {} characters", Self::MIN_CHARS)));
        }
        if n > Self::MAX_CHARS {
            return Err(FieldError::new(field, format!("must be at most {} characters", Self::MAX_CHARS)));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A human-readable name (person, organization): trimmed, 1 to `max` characters,
/// no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Name(String);

impl Name {
    pub fn parse(field: &'static str, raw: &str, max: usize) -> Result<Self, FieldError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if s.chars().count() > max {
            return Err(FieldError::new(field, format!("must be at most {max} characters")));
        }
        if s.chars().any(char::is_control) {
            return Err(FieldError::new(field, "must not contain control characters"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A phone number in international form: `+` then 6 to 15 digits (E.164).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phone(String);

impl Phone {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let s: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
        let digits = s.strip_prefix('+').unwrap_or("");
        if !(6..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(FieldError::new(field, "must be a phone number in international form, like +8613800000000"));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// A member's role in an organization.
    OrgRole { Owner => "owner", Admin => "admin", Member => "member" }
);

string_enum!(
    /// Personal organizations are created with each account and hold exactly one member;
    /// enterprise organizations are created on purpose and may hold many.
    OrgKind { Personal => "personal", Enterprise => "enterprise" }
);

string_enum!(
    /// Platform staff: operators run the marketplace; supervisors accept deliveries.
    StaffRole { Operator => "operator", Supervisor => "supervisor" }
);

impl OrgRole {
    /// Owners and admins manage members, API keys and verification.
    pub fn can_administer(self) -> bool {
        matches!(self, OrgRole::Owner | OrgRole::Admin)
    }

    /// Whether someone with this role may give `target` to another member.
    /// Only owners make owners; admins manage admins and members.
    pub fn can_grant(self, target: OrgRole) -> bool {
        match self {
            OrgRole::Owner => true,
            OrgRole::Admin => target != OrgRole::Owner,
            OrgRole::Member => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(Email::parse("email", " Ann@Example.COM ").unwrap().as_str(), "ann@example.com");
        for bad in ["", "ann", "ann@", "@example.com", "ann@example", "a b@example.com", "ann@@example.com", "ann@.com"] {
            assert!(Email::parse("email", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn password_policy_counts_characters_not_bytes() {
        assert!(Password::parse("password", "short").is_err());
        assert!(Password::parse("password", "密码密码密码密码密码").is_ok());
        assert!(Password::parse("password", &"x".repeat(129)).is_err());
        assert_eq!(format!("{:?}", Password::parse("p", "correct horse").unwrap()), "Password(***)");
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(Name::parse("name", "  Acme  ", 10).unwrap().as_str(), "Acme");
        assert!(Name::parse("name", "   ", 10).is_err());
        assert!(Name::parse("name", "abcdefghijk", 10).is_err());
        assert!(Name::parse("name", "a\u{0007}b", 10).is_err());
    }

    #[test]
    fn phones_are_international() {
        assert_eq!(Phone::parse("phone", "+86 138-0000-0000").unwrap().as_str(), "+8613800000000");
        assert!(Phone::parse("phone", "13800000000").is_err());
        assert!(Phone::parse("phone", "+12").is_err());
    }

    #[test]
    fn role_grants() {
        assert!(OrgRole::Owner.can_grant(OrgRole::Owner));
        assert!(!OrgRole::Admin.can_grant(OrgRole::Owner));
        assert!(OrgRole::Admin.can_grant(OrgRole::Member));
        assert!(!OrgRole::Member.can_grant(OrgRole::Member));
        assert_eq!(OrgRole::parse("admin"), Some(OrgRole::Admin));
        assert_eq!(OrgRole::parse("root"), None);
    }
}
