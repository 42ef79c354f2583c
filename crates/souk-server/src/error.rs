//! The server layer's one error type, rendered as RFC 9457 problem+json.
//!
//! Every error has a stable machine-readable `code` that clients may match on and a human
//! `detail`. Internal causes are logged with the request id and never sent to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use souk_core::identity::FieldError;
use souk_store::StoreError;
use utoipa::ToSchema;

/// A problem+json body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:souk:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable machine-readable code, e.g. `validation_failed`.
    pub code: String,
    pub detail: String,
    /// Field-level errors, for input that failed validation.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemField {
    /// The input field, as named in the request.
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{code}: {detail}")]
    Problem { status: StatusCode, code: &'static str, detail: String, fields: Vec<ProblemField> },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Error::Problem { status, code, detail: detail.into(), fields: Vec::new() }
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "sign in, or send an API key as `Authorization: Bearer …`")
    }

    /// The answer for anything the caller may not see, including another organization's
    /// resources: it reveals nothing about whether the thing exists.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        Error::Problem {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
            detail: "some fields are invalid; see `errors`".into(),
            fields: errors.into_iter().map(|e| ProblemField { field: e.field.into_owned(), message: e.message }).collect(),
        }
    }

    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::Problem { status, .. } => *status,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The field errors, for pages that show them beside the inputs.
    /// One line for a page: each field's problem (`field: message; …`), or the message.
    pub fn summary(&self) -> String {
        let fields: Vec<String> = self.field_errors().iter().map(|f| format!("{}: {}", f.field, f.message)).collect();
        if fields.is_empty() { self.message() } else { fields.join("; ") }
    }

    pub fn field_errors(&self) -> &[ProblemField] {
        match self {
            Error::Problem { fields, .. } => fields,
            Error::Internal(_) => &[],
        }
    }

    /// A sentence for a person: the detail of a problem, a generic line for internal errors.
    pub fn message(&self) -> String {
        match self {
            Error::Problem { detail, .. } => detail.clone(),
            Error::Internal(_) => "something went wrong on our side; it has been logged".into(),
        }
    }

    pub fn to_problem(&self) -> Problem {
        let (status, code, detail, fields) = match self {
            Error::Problem { status, code, detail, fields } => (*status, *code, detail.clone(), fields.clone()),
            Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", self.message(), Vec::new()),
        };
        Problem {
            kind: format!("urn:souk:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            code: code.to_owned(),
            detail,
            errors: fields,
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Error::not_found(),
            StoreError::Conflict(what) => Error::conflict("conflict", format!("conflicts with an existing record ({what})")),
            other => Error::Internal(other.into()),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Error::Internal(e) = &self {
            // The request id is on the enclosing span (see `http::trace_layer`).
            tracing::error!(error = ?e, "internal error");
        }
        problem_response(&self.to_problem())
    }
}

pub fn problem_response(p: &Problem) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(p).unwrap_or_default();
    let mut res = (status, body).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    res
}
