//! Real-name verification: members upload documents and submit details; operators decide
//! from a queue. The decision is recorded with who and when, audited, and announced on the
//! outbox (`verification.submitted`, `verification.decided`) for the message center.

use axum::http::StatusCode;
use serde_json::json;
use souk_core::id::{OrgId, UploadId, VerificationId};
use souk_core::identity::StaffRole;
use souk_core::verification::{Decision, Details, RawDetails, VerificationStatus, documents, may_submit};
use souk_store::uploads::{self, Upload};
use souk_store::verifications::{self, Verification};
use souk_store::{StoreError, audit, orgs, outbox};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{Error, Result};

pub fn file_too_large() -> Error {
    Error::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "file_too_large",
        format!("files may be at most {} MiB", documents::MAX_BYTES / 1024 / 1024),
    )
}

/// Stores an uploaded document for the organization. The type is decided by the content.
pub async fn upload(
    state: &AppState,
    caller: &Caller,
    org_id: &OrgId,
    filename: &str,
    bytes: &[u8],
    request_id: Option<&str>,
) -> Result<Upload> {
    caller.role_in(state, org_id).await?;
    if bytes.is_empty() {
        return Err(Error::field("file", "is empty"));
    }
    if bytes.len() > documents::MAX_BYTES {
        return Err(file_too_large());
    }
    let content_type = documents::sniff(bytes).ok_or_else(|| {
        Error::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_file_type", "files must be PDF, PNG or JPEG")
    })?;
    let filename: String =
        filename.rsplit(['/', '\\']).next().unwrap_or("").chars().filter(|c| !c.is_control()).take(200).collect();
    let filename = if filename.trim().is_empty() { "document".to_owned() } else { filename };
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let up = uploads::create(&mut tx, now, org_id, &caller.actor(), &filename, content_type, bytes).await?;
    audit::record(
        &mut tx,
        now,
        audit::NewEntry {
            actor: &caller.actor(),
            actor_org: Some(org_id),
            action: "upload.created",
            target: up.id.as_str(),
            summary: format!("{} ({content_type}, {} bytes) uploaded", up.filename, up.size),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(up)
}

/// Submits details (and, for enterprises, documents) for review.
pub async fn submit(
    state: &AppState,
    caller: &Caller,
    org_id: &OrgId,
    raw: &RawDetails,
    document_ids: &[String],
    request_id: Option<&str>,
) -> Result<Verification> {
    caller.admin_of(state, org_id).await?;
    let mut db = state.db.clone();
    let org = orgs::get(&mut db, org_id).await?;
    let mut errors = match Details::parse(org.kind, raw) {
        Ok(_) => Vec::new(),
        Err(errors) => errors,
    };
    let mut docs = Vec::new();
    if document_ids.len() > documents::MAX_PER_SUBMISSION {
        errors.push(souk_core::identity::FieldError::new(
            "document_ids",
            format!("at most {} documents", documents::MAX_PER_SUBMISSION),
        ));
    }
    for raw_id in document_ids {
        // Another organization's upload is reported exactly like a missing one.
        let found = match UploadId::parse(raw_id) {
            Ok(id) => match uploads::get(&mut db, org_id, &id).await {
                Ok(_) => Some(id),
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
            Err(_) => None,
        };
        match found {
            Some(id) if !docs.contains(&id) => docs.push(id),
            Some(_) => {}
            None => errors
                .push(souk_core::identity::FieldError::new("document_ids", format!("no upload {raw_id:?} in this organization"))),
        }
    }
    if org.kind == souk_core::identity::OrgKind::Enterprise && document_ids.is_empty() {
        errors.push(souk_core::identity::FieldError::new("document_ids", "an enterprise must attach its business licence"));
    }
    if !errors.is_empty() {
        return Err(Error::validation(errors));
    }
    let details = Details::parse(org.kind, raw).map_err(Error::validation)?;

    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let latest = verifications::list_for_org(&mut tx, org_id).await?.first().map(|v| v.status);
    may_submit(latest).map_err(|e| Error::conflict("verification_exists", e.to_string()))?;
    let v = verifications::create(&mut tx, now, org_id, &details, &caller.actor(), &docs).await.map_err(|e| match e {
        StoreError::Conflict(_) => Error::conflict("verification_exists", "a verification is already waiting for review"),
        other => other.into(),
    })?;
    orgs::set_verification(&mut tx, org_id, "pending", None, None).await?;
    audit::record(
        &mut tx,
        now,
        audit::NewEntry {
            actor: &caller.actor(),
            actor_org: Some(org_id),
            action: "verification.submitted",
            target: v.id.as_str(),
            summary: format!("{} verification submitted for {:?}", v.kind, v.display_name),
            request_id,
        },
    )
    .await?;
    outbox::enqueue(
        &mut tx,
        now,
        "verification.submitted",
        org_id.as_str(),
        &json!({ "verification_id": v.id, "org_id": org_id, "kind": v.kind }),
    )
    .await?;
    tx.commit().await?;
    Ok(v)
}

/// An operator approves or rejects a pending submission.
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    id: &VerificationId,
    approve: bool,
    reason: Option<&str>,
    request_id: Option<&str>,
) -> Result<Verification> {
    let operator = caller.staff(StaffRole::Operator)?;
    let decision = Decision::parse(approve, reason).map_err(|e| Error::validation(vec![e]))?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let v = verifications::get(&mut tx, id).await?;
    let status = decision.apply(v.status).map_err(|e| Error::conflict("already_decided", e.to_string()))?;
    let reason = match &decision {
        Decision::Approve => None,
        Decision::Reject { reason } => Some(reason.as_str()),
    };
    if !verifications::decide(&mut tx, now, id, status, operator.id.as_str(), reason).await? {
        return Err(Error::conflict("already_decided", "another operator decided this verification first"));
    }
    match status {
        VerificationStatus::Approved => {
            orgs::set_verification(&mut tx, &v.org_id, "verified", Some(&v.display_name), Some(now)).await?
        }
        _ => orgs::set_verification(&mut tx, &v.org_id, "rejected", None, None).await?,
    }
    audit::record(
        &mut tx,
        now,
        audit::NewEntry {
            actor: operator.id.as_str(),
            actor_org: None,
            action: if approve { "verification.approved" } else { "verification.rejected" },
            target: v.id.as_str(),
            summary: match reason {
                Some(r) => format!("rejected: {r}"),
                None => format!("approved {:?}", v.display_name),
            },
            request_id,
        },
    )
    .await?;
    outbox::enqueue(
        &mut tx,
        now,
        "verification.decided",
        v.org_id.as_str(),
        &json!({ "verification_id": v.id, "org_id": v.org_id, "status": status, "reason": reason }),
    )
    .await?;
    tx.commit().await?;
    Ok(verifications::get(&mut state.db.clone(), id).await?)
}
