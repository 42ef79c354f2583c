use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use souk_core::id::UploadId;
use souk_core::verification::{Details, RawDetails, mask};
use souk_store::uploads::{self, Upload};
use souk_store::verifications::{self, Verification};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::OrgScope;
use crate::error::{Error, Problem, Result};
use crate::extract::{ApiJson, RequestId, path_id};
use crate::verification;

#[derive(Debug, Serialize, ToSchema)]
pub struct UploadOut {
    pub id: String,
    pub filename: String,
    /// Decided from the content: `application/pdf`, `image/png` or `image/jpeg`.
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

impl From<&Upload> for UploadOut {
    fn from(u: &Upload) -> Self {
        Self {
            id: u.id.to_string(),
            filename: u.filename.clone(),
            content_type: u.content_type.clone(),
            size: u.size,
            sha256: u.sha256.clone(),
            created_at: u.created_at,
        }
    }
}

/// Reads the `file` part of a multipart body: its name and bytes.
pub async fn read_file_part(multipart: &mut Multipart) -> Result<(String, Vec<u8>)> {
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| multipart_error(&e))?
            .ok_or_else(|| Error::field("file", "a multipart part named `file` is required"))?;
        if field.name() != Some("file") {
            continue;
        }
        let filename = field.file_name().unwrap_or("document").to_owned();
        let bytes = field.bytes().await.map_err(|e| multipart_error(&e))?;
        return Ok((filename, bytes.to_vec()));
    }
}

pub fn multipart_error(e: &axum::extract::multipart::MultipartError) -> Error {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        verification::file_too_large()
    } else {
        Error::bad_request("invalid_multipart", e.body_text())
    }
}

/// Upload a document (PDF, PNG or JPEG, at most 5 MiB) as multipart field `file`.
#[utoipa::path(post, path = "/orgs/{org_id}/uploads", tag = "verification",
    request_body(content_type = "multipart/form-data", description = "a part named `file`"),
    responses((status = 201, body = UploadOut), (status = 413, body = Problem), (status = 415, body = Problem)))]
pub async fn upload(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    multipart: std::result::Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response> {
    caller.role_in(&state, &org_id).await?;
    let mut multipart = multipart.map_err(|e| {
        Error::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("send multipart/form-data: {}", e.body_text()),
        )
    })?;
    let (filename, bytes) = read_file_part(&mut multipart).await?;
    let up = verification::upload(&state, &caller, &org_id, &filename, &bytes, rid.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(UploadOut::from(&up))).into_response())
}

/// Download one of the organization's uploads.
#[utoipa::path(get, path = "/orgs/{org_id}/uploads/{upload_id}", tag = "verification",
    responses((status = 200, description = "the file"), (status = 404, body = Problem)))]
pub async fn download(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    Path((_org, upload_id)): Path<(String, String)>,
) -> Result<Response> {
    let upload_id: UploadId = path_id(&upload_id)?;
    caller.role_in(&state, &org_id).await?;
    let mut db = state.db.clone();
    uploads::get(&mut db, &org_id, &upload_id).await?;
    let (up, bytes) = uploads::content(&mut db, &upload_id).await?;
    Ok(file_response(&up, bytes))
}

pub fn file_response(up: &Upload, bytes: Vec<u8>) -> Response {
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&up.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    let name: String = up.filename.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')).collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    res
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationOut {
    pub id: String,
    pub org_id: String,
    /// `individual` or `enterprise`.
    pub kind: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    pub display_name: String,
    /// The submitted details; identity numbers are masked except in the review queue.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub document_ids: Vec<String>,
    pub submitted_by: String,
    pub submitted_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// Why it was rejected.
    pub reason: Option<String>,
}

impl VerificationOut {
    pub fn new(v: &Verification, reveal: bool) -> Self {
        let mut details = v.details.clone();
        if !reveal {
            match &mut details {
                Details::Individual(d) => d.id_number = mask(&d.id_number),
                Details::Enterprise(d) => d.registration_number = mask(&d.registration_number),
            }
        }
        Self {
            id: v.id.to_string(),
            org_id: v.org_id.to_string(),
            kind: v.kind.as_str().to_owned(),
            status: v.status.as_str().to_owned(),
            display_name: v.display_name.clone(),
            details: serde_json::to_value(&details).unwrap_or_default(),
            document_ids: v.document_ids.iter().map(ToString::to_string).collect(),
            submitted_by: v.submitted_by.clone(),
            submitted_at: v.submitted_at,
            decided_by: v.decided_by.clone(),
            decided_at: v.decided_at,
            reason: v.reason.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationList {
    pub items: Vec<VerificationOut>,
}

/// The organization's verification submissions, newest first.
#[utoipa::path(get, path = "/orgs/{org_id}/verifications", tag = "verification",
    responses((status = 200, body = VerificationList), (status = 404, body = Problem)))]
pub async fn list_verifications(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
) -> Result<Json<VerificationList>> {
    caller.role_in(&state, &org_id).await?;
    let items = verifications::list_for_org(&mut state.db.clone(), &org_id)
        .await?
        .iter()
        .map(|v| VerificationOut::new(v, false))
        .collect();
    Ok(Json(VerificationList { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitVerificationIn {
    /// Personal organizations: the person's legal name.
    pub real_name: Option<String>,
    /// Personal organizations: national id or passport number.
    pub id_number: Option<String>,
    /// Enterprise organizations: the registered company name.
    pub company_name: Option<String>,
    pub registration_number: Option<String>,
    pub contact_name: Option<String>,
    /// International form, e.g. +8613800000000.
    pub contact_phone: Option<String>,
    pub contact_email: Option<String>,
    /// Ids of uploads of this organization (an enterprise needs at least one).
    #[serde(default)]
    pub document_ids: Vec<String>,
}

/// Submit real-name verification (owner or admin). Personal organizations give individual
/// details, enterprise organizations company details and documents.
#[utoipa::path(post, path = "/orgs/{org_id}/verifications", tag = "verification", request_body = SubmitVerificationIn,
    responses((status = 201, body = VerificationOut), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn submit(
    State(state): State<AppState>,
    OrgScope { caller, org_id, .. }: OrgScope,
    rid: RequestId,
    ApiJson(input): ApiJson<SubmitVerificationIn>,
) -> Result<Response> {
    let raw = RawDetails {
        real_name: input.real_name,
        id_number: input.id_number,
        company_name: input.company_name,
        registration_number: input.registration_number,
        contact_name: input.contact_name,
        contact_phone: input.contact_phone,
        contact_email: input.contact_email,
    };
    let v = verification::submit(&state, &caller, &org_id, &raw, &input.document_ids, rid.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(VerificationOut::new(&v, false))).into_response())
}
