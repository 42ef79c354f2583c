//! Real-name verification (seed §9): a person proves who they are, an enterprise proves it
//! exists. Operators decide; later issues gate trials and purchases on the outcome.

use serde::{Deserialize, Serialize};

use crate::identity::{Email, FieldError, Name, OrgKind, Phone, string_enum};

string_enum!(
    /// Individual details come from personal organizations, enterprise details from
    /// enterprise organizations.
    VerificationKind { Individual => "individual", Enterprise => "enterprise" }
);

string_enum!(
    VerificationStatus { Pending => "pending", Approved => "approved", Rejected => "rejected" }
);

/// What the organization's verification state allows next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitRefused {
    #[error("a verification is already waiting for review")]
    AlreadyPending,
    #[error("this organization is already verified")]
    AlreadyVerified,
}

/// Decides whether a new submission may be made, given the latest one's status.
/// A rejected submission may be corrected and sent again; nothing else may be repeated.
pub fn may_submit(latest: Option<VerificationStatus>) -> Result<(), SubmitRefused> {
    match latest {
        None | Some(VerificationStatus::Rejected) => Ok(()),
        Some(VerificationStatus::Pending) => Err(SubmitRefused::AlreadyPending),
        Some(VerificationStatus::Approved) => Err(SubmitRefused::AlreadyVerified),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("only a pending verification can be decided")]
pub struct NotPending;

/// An operator's decision. A rejection always carries a reason the submitter can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject { reason: String },
}

impl Decision {
    pub fn parse(approve: bool, reason: Option<&str>) -> Result<Self, FieldError> {
        if approve {
            return Ok(Decision::Approve);
        }
        let reason = reason.map(str::trim).unwrap_or("");
        if reason.is_empty() {
            return Err(FieldError::new("reason", "a rejection needs a reason the submitter can act on"));
        }
        if reason.chars().count() > 1000 {
            return Err(FieldError::new("reason", "must be at most 1000 characters"));
        }
        Ok(Decision::Reject { reason: reason.to_owned() })
    }

    /// The status a pending verification moves to.
    pub fn apply(&self, current: VerificationStatus) -> Result<VerificationStatus, NotPending> {
        if current != VerificationStatus::Pending {
            return Err(NotPending);
        }
        Ok(match self {
            Decision::Approve => VerificationStatus::Approved,
            Decision::Reject { .. } => VerificationStatus::Rejected,
        })
    }
}

/// A person's details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndividualDetails {
    pub real_name: Name,
    /// National id or passport number; shown masked everywhere but the review queue.
    pub id_number: String,
}

/// A company's details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnterpriseDetails {
    pub company_name: Name,
    /// Business registration number (the unified social credit code on the cn site).
    pub registration_number: String,
    pub contact_name: Name,
    pub contact_phone: Phone,
    pub contact_email: Email,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Details {
    Individual(IndividualDetails),
    Enterprise(EnterpriseDetails),
}

/// Untrusted form or JSON input, every field optional so that all problems are reported
/// at once rather than one per round trip.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawDetails {
    pub real_name: Option<String>,
    pub id_number: Option<String>,
    pub company_name: Option<String>,
    pub registration_number: Option<String>,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub contact_email: Option<String>,
}

fn identifier(field: &'static str, raw: Option<&str>) -> Result<String, FieldError> {
    let s: String = raw.unwrap_or("").trim().to_uppercase();
    if !(5..=32).contains(&s.len()) || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(FieldError::new(field, "must be 5 to 32 letters, digits or dashes"));
    }
    Ok(s)
}

impl Details {
    pub fn kind(&self) -> VerificationKind {
        match self {
            Details::Individual(_) => VerificationKind::Individual,
            Details::Enterprise(_) => VerificationKind::Enterprise,
        }
    }

    /// Parses the details an organization of `org_kind` must give. Collects every field error.
    pub fn parse(org_kind: OrgKind, raw: &RawDetails) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        fn take<T>(errors: &mut Vec<FieldError>, r: Result<T, FieldError>) -> Option<T> {
            r.map_err(|e| errors.push(e)).ok()
        }
        let details = match org_kind {
            OrgKind::Personal => {
                let real_name = take(&mut errors, Name::parse("real_name", raw.real_name.as_deref().unwrap_or(""), 80));
                let id_number = take(&mut errors, identifier("id_number", raw.id_number.as_deref()));
                match (real_name, id_number) {
                    (Some(real_name), Some(id_number)) => Some(Details::Individual(IndividualDetails { real_name, id_number })),
                    _ => None,
                }
            }
            OrgKind::Enterprise => {
                let company_name = take(&mut errors, Name::parse("company_name", raw.company_name.as_deref().unwrap_or(""), 200));
                let registration_number =
                    take(&mut errors, identifier("registration_number", raw.registration_number.as_deref()));
                let contact_name = take(&mut errors, Name::parse("contact_name", raw.contact_name.as_deref().unwrap_or(""), 80));
                let contact_phone = take(&mut errors, Phone::parse("contact_phone", raw.contact_phone.as_deref().unwrap_or("")));
                let contact_email = take(&mut errors, Email::parse("contact_email", raw.contact_email.as_deref().unwrap_or("")));
                match (company_name, registration_number, contact_name, contact_phone, contact_email) {
                    (
                        Some(company_name),
                        Some(registration_number),
                        Some(contact_name),
                        Some(contact_phone),
                        Some(contact_email),
                    ) => Some(Details::Enterprise(EnterpriseDetails {
                        company_name,
                        registration_number,
                        contact_name,
                        contact_phone,
                        contact_email,
                    })),
                    _ => None,
                }
            }
        };
        match details {
            Some(d) if errors.is_empty() => Ok(d),
            _ => Err(errors),
        }
    }

    /// The name shown in queues and on the organization once verified.
    pub fn display_name(&self) -> &str {
        match self {
            Details::Individual(d) => d.real_name.as_str(),
            Details::Enterprise(d) => d.company_name.as_str(),
        }
    }
}

/// Masks all but the last four characters: `***************1234`.
pub fn mask(s: &str) -> String {
    let n = s.chars().count();
    s.chars().enumerate().map(|(i, c)| if i + 4 < n { '*' } else { c }).collect()
}

/// Rules for uploaded verification documents.
pub mod documents {
    /// Largest accepted file.
    pub const MAX_BYTES: usize = 5 * 1024 * 1024;
    /// Most documents one submission may carry.
    pub const MAX_PER_SUBMISSION: usize = 5;

    /// The accepted types, recognised by their content rather than the name or the
    /// declared type, which the uploader controls.
    pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
        if bytes.starts_with(b"%PDF-") {
            Some("application/pdf")
        } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
            Some("image/png")
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some("image/jpeg")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enterprise_raw() -> RawDetails {
        RawDetails {
            company_name: Some("Acme Cloud Ltd".into()),
            registration_number: Some("91110000ma01abcd2x".into()),
            contact_name: Some("Li Lei".into()),
            contact_phone: Some("+8613800000000".into()),
            contact_email: Some("li@acme.example".into()),
            ..Default::default()
        }
    }

    #[test]
    fn enterprise_details_parse_and_normalise() {
        let d = Details::parse(OrgKind::Enterprise, &enterprise_raw()).unwrap();
        let Details::Enterprise(e) = d else { panic!() };
        assert_eq!(e.registration_number, "91110000MA01ABCD2X");
    }

    #[test]
    fn all_field_errors_are_reported_at_once() {
        let errors = Details::parse(OrgKind::Enterprise, &RawDetails::default()).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_ref()).collect();
        assert_eq!(fields, vec!["company_name", "registration_number", "contact_name", "contact_phone", "contact_email"]);
        let errors = Details::parse(OrgKind::Personal, &RawDetails::default()).unwrap_err();
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn personal_orgs_give_individual_details() {
        let raw =
            RawDetails {
                real_name: Some("王小明".into()), id_number: Some("11010119900307123X".into()), ..Default::default()
            };
        assert_eq!(Details::parse(OrgKind::Personal, &raw).unwrap().kind(), VerificationKind::Individual);
    }

    #[test]
    fn submission_and_decision_rules() {
        assert!(may_submit(None).is_ok());
        assert!(may_submit(Some(VerificationStatus::Rejected)).is_ok());
        assert_eq!(may_submit(Some(VerificationStatus::Pending)), Err(SubmitRefused::AlreadyPending));
        assert_eq!(may_submit(Some(VerificationStatus::Approved)), Err(SubmitRefused::AlreadyVerified));
        assert!(Decision::parse(false, Some("  ")).is_err());
        let reject = Decision::parse(false, Some("blurry scan")).unwrap();
        assert_eq!(reject.apply(VerificationStatus::Pending), Ok(VerificationStatus::Rejected));
        assert_eq!(Decision::Approve.apply(VerificationStatus::Rejected), Err(NotPending));
    }

    #[test]
    fn documents_are_sniffed_by_content() {
        assert_eq!(documents::sniff(b"%PDF-1.7 ..."), Some("application/pdf"));
        assert_eq!(documents::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(documents::sniff(b"<html>"), None);
        assert_eq!(mask("11010119900307123X"), "**************123X");
    }
}
