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
        // Every body the API takes is an object. serde would also read a struct from an array
        // of its fields in order (and an empty struct from `[]`), which no client means.
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|b| *b != b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() {
            return Err(Error::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", "the body must be a JSON object"));
        }
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => Error::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", e.to_string()),
            _ => Error::new(StatusCode::BAD_REQUEST, "malformed_json", e.to_string()),
        })
    }
}

/// For a body's field that is a struct: only a JSON object. serde reads a struct from an array
/// of its fields too (and, where every field has a default, an empty struct from `[]`), so
/// `{"content": []}` would replace a draft with nothing (found by schemathesis).
pub fn object<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::Deserialize;
    let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
    serde_json::from_value(serde_json::Value::Object(map)).map_err(serde::de::Error::custom)
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

/// The longest a client may ask a read to wait for a change (`Prefer: wait=N`).
pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A conditional read that may wait: `If-None-Match` (RFC 9110 §13.1.2) names the
/// representations the client has, and `Prefer: wait=N` (RFC 7240 §4.3) asks the server to hold
/// the answer up to N seconds (at most [`MAX_WAIT`]) until the representation is another one.
/// Unparseable values are ignored, as the RFCs ask: the read is then unconditional, or does not
/// wait.
#[derive(Debug, Default)]
pub struct Conditional {
    known: Known,
    wait: Option<std::time::Duration>,
}

#[derive(Debug, Default, PartialEq)]
enum Known {
    #[default]
    Nothing,
    /// `If-None-Match: *`: any current representation.
    Any,
    /// The opaque tags, without quotes or `W/` (a weak comparison, as GET uses).
    Tags(Vec<String>),
}

impl Conditional {
    pub fn parse(headers: &axum::http::HeaderMap) -> Self {
        let mut tags = Vec::new();
        let mut any = false;
        for v in headers.get_all(axum::http::header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()) {
            for t in v.split(',').map(str::trim) {
                if t == "*" {
                    any = true;
                } else if let Some(tag) = t.trim_start_matches("W/").strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                    tags.push(tag.to_owned());
                }
            }
        }
        let known = if any {
            Known::Any
        } else if tags.is_empty() {
            Known::Nothing
        } else {
            Known::Tags(tags)
        };
        let wait = headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|p| {
                // A preference's own parameters follow a `;`; the value may be quoted.
                let (name, value) = p.split(';').next()?.split_once('=')?;
                if !name.trim().eq_ignore_ascii_case("wait") {
                    return None;
                }
                value.trim().trim_matches('"').parse::<u64>().ok()
            })
            .next()
            .map(|s| std::time::Duration::from_secs(s).min(MAX_WAIT));
        Self { known, wait }
    }

    /// Whether the client already has the representation tagged `etag` (without quotes).
    pub fn has(&self, etag: &str) -> bool {
        match &self.known {
            Known::Nothing => false,
            Known::Any => true,
            Known::Tags(tags) => tags.iter().any(|t| t == etag),
        }
    }

    /// How long to wait for a change: only when the client named the tags it has (`*` would
    /// wait for a representation that is none at all, which never comes).
    pub fn wait(&self) -> Option<std::time::Duration> {
        self.wait.filter(|_| matches!(self.known, Known::Tags(_)))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Conditional {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::parse(&parts.headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn conditional_reads_parse_tags_and_waits() {
        let c = Conditional::parse(&headers(&[("if-none-match", "\"a1\", W/\"b2\""), ("prefer", "respond-async, wait=5")]));
        assert!(c.has("a1") && c.has("b2") && !c.has("c3"));
        assert_eq!(c.wait(), Some(std::time::Duration::from_secs(5)));

        let long = Conditional::parse(&headers(&[("if-none-match", "\"a1\""), ("prefer", "wait=\"600\"; x=1")]));
        assert_eq!(long.wait(), Some(MAX_WAIT), "capped");
        let star = Conditional::parse(&headers(&[("if-none-match", "*"), ("prefer", "wait=5")]));
        assert!(star.has("anything"));
        assert_eq!(star.wait(), None, "no tag to wait for a change from");

        // Nothing known: nothing to wait for a change from.
        let bare = Conditional::parse(&headers(&[("prefer", "wait=5")]));
        assert!(!bare.has("a1"));
        assert_eq!(bare.wait(), None);

        // Garbage is ignored, not an error.
        let junk = Conditional::parse(&headers(&[("if-none-match", "a1, \"unterminated"), ("prefer", "wait=-3, wait=soon")]));
        assert!(!junk.has("a1"));
        assert_eq!(junk.wait(), None);
    }
}
