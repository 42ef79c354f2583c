//! Saved responses for `Idempotency-Key`.
//!
//! The first request with a key inserts a row without a response (the primary key makes a
//! concurrent twin fail); when it finishes, the response is saved. A retry with the same key
//! and body gets the saved response; with another body, a 422.

use chrono::{DateTime, Utc};

use crate::{Conn, StoreError, q};

pub enum Lookup {
    /// No earlier request: this one may run.
    New,
    /// An earlier request with this key is still running (or died before saving).
    InFlight {
        request_hash: String,
    },
    Done {
        request_hash: String,
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
    },
}

/// Claims the key for this request, or reports what an earlier request left. A request with
/// the same body whose claim is older than `stale_before` and never finished died with its
/// process: this request takes the claim over (one retry wins, the others see it in flight).
pub async fn begin(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    stale_before: DateTime<Utc>,
    scope: &str,
    key: &str,
    request_hash: &str,
) -> Result<Lookup, StoreError> {
    let inserted = c
        .execute(
            q("INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES ($1, $2, $3, $4)
               ON CONFLICT (scope, key) DO NOTHING")
            .bind(scope)
            .bind(key)
            .bind(request_hash)
            .bind(now),
        )
        .await?;
    if inserted == 1 {
        return Ok(Lookup::New);
    }
    let taken_over = c
        .execute(
            q("UPDATE idempotency_keys SET created_at = $1
               WHERE scope = $2 AND key = $3 AND request_hash = $4 AND status IS NULL AND created_at < $5")
            .bind(now)
            .bind(scope)
            .bind(key)
            .bind(request_hash)
            .bind(stale_before),
        )
        .await?;
    if taken_over == 1 {
        return Ok(Lookup::New);
    }
    let r = c.fetch_one(q("SELECT * FROM idempotency_keys WHERE scope = $1 AND key = $2").bind(scope).bind(key)).await?;
    let request_hash: String = r.get("request_hash")?;
    let status: Option<i64> = r.get("status")?;
    Ok(match status {
        None => Lookup::InFlight { request_hash },
        Some(s) => Lookup::Done {
            request_hash,
            status: u16::try_from(s).unwrap_or(500),
            content_type: r.get("content_type")?,
            body: r.get::<Option<Vec<u8>>>("body")?.unwrap_or_default(),
        },
    })
}

pub async fn finish(
    c: &mut impl Conn,
    scope: &str,
    key: &str,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(), StoreError> {
    c.execute(
        q("UPDATE idempotency_keys SET status = $1, content_type = $2, body = $3 WHERE scope = $4 AND key = $5")
            .bind(i64::from(status))
            .bind(content_type)
            .bind(body)
            .bind(scope)
            .bind(key),
    )
    .await?;
    Ok(())
}

/// Forgets a key whose request failed on our side, so the client may retry it.
pub async fn abandon(c: &mut impl Conn, scope: &str, key: &str) -> Result<(), StoreError> {
    c.execute(q("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status IS NULL").bind(scope).bind(key)).await?;
    Ok(())
}

/// Forgets keys created before `before`; run periodically. Clients retry within minutes,
/// so a day is plenty.
pub async fn purge(c: &mut impl Conn, before: DateTime<Utc>) -> Result<u64, StoreError> {
    c.execute(q("DELETE FROM idempotency_keys WHERE created_at < $1").bind(before)).await
}
