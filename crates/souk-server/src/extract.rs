//! Extractors that turn every kind of bad input into a problem+json answer instead of
//! axum's plain-text rejections.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// Largest JSON body the API reads.
pub const JSON_LIMIT: usize = 1024 * 1024;

/// A JSON body. Malformed JSON is 400, a wrong shape (types, unknown enum values, missing
/// fields) 422, a wrong content type 415 and a body over [`JSON_LIMIT`] 413.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Error> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime::Mime>().ok())
            .is_some_and(|m| m.type_() == "application" && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json")));
        if !is_json {
            return Err(Error::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        // Read up to the API-wide cap so the client receives the 413 rather than a reset.
        let bytes = axum::body::to_bytes(req.into_body(), crate::idempotency::MAX_BODY).await.map_err(|_| payload_too_large())?;
        if bytes.len() > JSON_LIMIT {
            return Err(payload_too_large());
        }
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => Error::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", e.to_string()),
            _ => Error::new(StatusCode::BAD_REQUEST, "malformed_json", e.to_string()),
        })
    }
}

pub fn payload_too_large() -> Error {
    Error::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is larger than this endpoint accepts")
}

/// Query parameters; a bad one is a 400.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rej) => Err(query_rejection(rej)),
        }
    }
}

fn query_rejection(rej: QueryRejection) -> Error {
    Error::new(StatusCode::BAD_REQUEST, "invalid_query", rej.body_text())
}

/// The request id set by the request-id layer, for the audit log.
pub struct RequestId(pub Option<String>);

impl RequestId {
    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestId(parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned)))
    }
}

/// Parses an id from the path; an id that cannot exist is simply not found.
pub fn path_id<T: std::str::FromStr>(raw: &str) -> Result<T, Error> {
    raw.parse().map_err(|_| Error::not_found())
}
