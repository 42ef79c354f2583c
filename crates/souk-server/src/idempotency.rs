//! `Idempotency-Key` for POST requests.
//!
//! The same key with the same body gets the first response again (marked with
//! `Idempotency-Replayed: true`); the same key with another body is a 422; a retry while the
//! first request is still running is a 409. Keys are scoped to the caller's credentials.
//! Server errors (5xx) are not saved, so a failed request can be retried with its key.
//! Placing an order keeps its key itself, on the order (see [`keeps_its_own_key`]).
//!
//! A process that dies mid-request leaves its key "in flight": a retry gets 409 until the
//! claim is `IN_FLIGHT_STALE` old, then runs the request again (found by `souk bench crash`:
//! before, a key in hand at a crash answered 409 forever, though nothing had happened).
//! Trade-off: the saved response is written after the handler's own transaction commits, so
//! a crash in that instant, then a retry a minute later, runs the handler twice. Orders are
//! exactly-once even then (the order's own unique key answers with the first order); other
//! writes accept that window.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use souk_store::idempotency::{self, Lookup};

use crate::AppState;
use crate::auth::{SESSION_COOKIE, cookie, hash_token};
use crate::error::Error;
use crate::extract::payload_too_large;

pub const HEADER: &str = "idempotency-key";
/// A claim this old that never finished belongs to a process that died (requests are much
/// shorter: the longest, a delivery test to a seller, is bounded at 15 s).
pub const IN_FLIGHT_STALE: chrono::Duration = chrono::Duration::seconds(60);
/// Largest body the API accepts on any route (uploads are the largest).
pub const MAX_BODY: usize = 6 * 1024 * 1024;

/// The request's `Idempotency-Key`, if it sent one that is well formed.
pub fn key_of(headers: &HeaderMap) -> Result<Option<&str>, Error> {
    let Some(key) = headers.get(HEADER) else { return Ok(None) };
    match key.to_str() {
        Ok(k) if (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()) => Ok(Some(k)),
        _ => Err(Error::bad_request("invalid_idempotency_key", "Idempotency-Key must be 1 to 255 visible ASCII characters")),
    }
}

/// Routes whose handler keeps its own idempotency in its own transaction, so this layer's
/// two commits (the claim, then the saved response) would only repeat it: placing an order
/// records the key on the order, in the order's transaction (`commerce::place_order`). A
/// retry gets the first order (200, replayed), a concurrent one waits for the first's commit
/// instead of a 409, and another request under the same key is a 422, as here.
fn keeps_its_own_key(path: &str) -> bool {
    // /api/v1/orgs/{org_id}/orders
    let mut parts = path.strip_prefix("/api/v1/orgs/").unwrap_or_default().split('/');
    matches!((parts.next(), parts.next(), parts.next()), (Some(org), Some("orders"), None) if !org.is_empty())
}

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || keeps_its_own_key(req.uri().path()) {
        return next.run(req).await;
    }
    let key = match key_of(req.headers()) {
        Ok(Some(k)) => k.to_owned(),
        Ok(None) => return next.run(req).await,
        Err(e) => return e.into_response(),
    };
    let scope = match (req.headers().get(header::AUTHORIZATION), cookie(req.headers(), SESSION_COOKIE)) {
        (Some(auth), _) => format!("key:{}", hash_token(auth.to_str().unwrap_or(""))),
        (None, Some(session)) => format!("session:{}", hash_token(session)),
        (None, None) => "anonymous".to_owned(),
    };
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return payload_too_large().into_response(),
    };
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update([0]);
    hasher.update(parts.uri.path());
    hasher.update([0]);
    hasher.update(&bytes);
    let request_hash = hex::encode(hasher.finalize());

    let mut db = state.db.clone();
    let lookup =
        match idempotency::begin(&mut db, state.clock.now(), state.clock.now() - IN_FLIGHT_STALE, &scope, &key, &request_hash)
            .await
        {
            Ok(l) => l,
            Err(e) => return Error::from(e).into_response(),
        };
    let reused = || {
        Error::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was already used with a different request",
        )
        .into_response()
    };
    match lookup {
        Lookup::Done { request_hash: h, .. } | Lookup::InFlight { request_hash: h } if h != request_hash => reused(),
        Lookup::InFlight { .. } => {
            Error::conflict("idempotency_in_flight", "a request with this Idempotency-Key is still being processed; retry later")
                .into_response()
        }
        Lookup::Done { status, content_type, body, .. } => {
            let mut res = (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body).into_response();
            if let Some(ct) = content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
                res.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            res.headers_mut().insert("idempotency-replayed", HeaderValue::from_static("true"));
            res
        }
        Lookup::New => {
            let res = next.run(Request::from_parts(parts, Body::from(bytes))).await;
            if res.status().is_server_error() {
                let _ = idempotency::abandon(&mut db, &scope, &key).await;
                return res;
            }
            let (parts, body) = res.into_parts();
            let bytes = match to_bytes(body, usize::MAX).await {
                Ok(b) => b,
                Err(e) => return Error::Internal(anyhow::anyhow!("buffering response: {e}")).into_response(),
            };
            let ct = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            if let Err(e) = idempotency::finish(&mut db, &scope, &key, parts.status.as_u16(), ct, &bytes).await {
                tracing::error!(error = %e, "saving idempotent response failed");
            }
            Response::from_parts(parts, Body::from(bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_order_collection_keeps_its_own_key() {
        assert!(keeps_its_own_key("/api/v1/orgs/org_01/orders"));
        for other in [
            "/api/v1/orgs/org_01/orders/ord_1/cancel",
            "/api/v1/orgs//orders",
            "/api/v1/orgs",
            "/api/v1/orgs/org_01/quotes",
            "/orgs/org_01/orders",
        ] {
            assert!(!keeps_its_own_key(other), "{other}");
        }
    }
}
