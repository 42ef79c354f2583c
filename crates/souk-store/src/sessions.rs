//! Browser sessions, kept in the database so that any `souk` node can serve any request.
//! Only a hash of the cookie's token is stored: a leaked database does not sign anyone in.

use chrono::{DateTime, Duration, Utc};
use souk_core::id::{AccountId, SessionId};

use crate::{Conn, StoreError, q};

pub async fn create(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    account: &AccountId,
    token_hash: &str,
    ttl: Duration,
) -> Result<SessionId, StoreError> {
    let id = SessionId::generate(now);
    c.execute(
        q("INSERT INTO sessions (id, token_hash, account_id, created_at, expires_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $4)")
            .bind(id.as_str())
            .bind(token_hash)
            .bind(account.as_str())
            .bind(now)
            .bind(now + ttl),
    )
    .await?;
    Ok(id)
}

pub async fn delete(c: &mut impl Conn, token_hash: &str) -> Result<(), StoreError> {
    c.execute(q("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash)).await?;
    Ok(())
}

/// Signs the account out everywhere but `keep` (after a password change).
pub async fn delete_others(c: &mut impl Conn, account: &AccountId, keep: Option<&SessionId>) -> Result<u64, StoreError> {
    c.execute(
        q("DELETE FROM sessions WHERE account_id = $1 AND ($2 IS NULL OR id <> $2)")
            .bind(account.as_str())
            .bind(keep.map(|k| k.as_str())),
    )
    .await
}

/// Removes expired sessions; run periodically.
pub async fn purge_expired(c: &mut impl Conn, now: DateTime<Utc>) -> Result<u64, StoreError> {
    c.execute(q("DELETE FROM sessions WHERE expires_at <= $1").bind(now)).await
}
