//! Wallets and their ledger. The balance lives in one row per organization and currency,
//! changed only by [`credit`] and [`debit`], each of which writes its ledger entry in the
//! caller's transaction (they take a transaction, not the pool: the entry records the
//! balance after, read while the row is still locked). A debit is a single conditional update (`balance >= amount`), so
//! concurrent debits can never take a balance below zero on either database.

use chrono::{DateTime, Utc};
use serde::Serialize;
use souk_core::id::OrgId;
use souk_core::money::{Currency, Money};

use crate::{Conn, Row, StoreError, Tx, q};

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: String,
    pub currency: String,
    pub delta_minor: i64,
    pub balance_after: i64,
    /// Why: `top_up`, `order`, `refund`, `renewal`, …
    pub reason: String,
    /// What it concerns: an order id, a refund id.
    pub reference: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

fn entry(r: &Row) -> Result<Entry, StoreError> {
    Ok(Entry {
        id: r.get("id")?,
        currency: r.get("currency")?,
        delta_minor: r.get("delta_minor")?,
        balance_after: r.get("balance_after")?,
        reason: r.get("reason")?,
        reference: r.get("reference")?,
        actor: r.get("actor")?,
        at: r.get("at")?,
    })
}

/// Why a debit was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsufficientFunds {
    pub balance: Money,
}

pub async fn balance(c: &mut impl Conn, org: &OrgId, currency: Currency) -> Result<Money, StoreError> {
    let row = c
        .fetch_optional(
            q("SELECT balance_minor FROM wallets WHERE org_id = $1 AND currency = $2").bind(org.as_str()).bind(currency.code()),
        )
        .await?;
    Ok(Money::new(row.map(|r| r.get::<i64>("balance_minor")).transpose()?.unwrap_or(0), currency))
}

pub async fn balances(c: &mut impl Conn, org: &OrgId) -> Result<Vec<Money>, StoreError> {
    let rows = c
        .fetch_all(q("SELECT currency, balance_minor FROM wallets WHERE org_id = $1 ORDER BY currency").bind(org.as_str()))
        .await?;
    rows.iter()
        .map(|r| {
            let code: String = r.get("currency")?;
            let currency = Currency::parse(&code).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(Money::new(r.get("balance_minor")?, currency))
        })
        .collect()
}

/// Writes the ledger line of a change already made to the wallet, which left `after`.
#[allow(clippy::too_many_arguments)]
async fn record(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    org: &OrgId,
    delta: Money,
    after: Money,
    reason: &str,
    reference: Option<&str>,
    actor: &str,
) -> Result<Money, StoreError> {
    c.execute(
        q("INSERT INTO wallet_ledger (id, org_id, currency, delta_minor, balance_after, reason, reference, actor, at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(format!("wle_{}", souk_core::id::new_body(now)))
        .bind(org.as_str())
        .bind(delta.currency.code())
        .bind(delta.minor)
        .bind(after.minor)
        .bind(reason)
        .bind(reference)
        .bind(actor)
        .bind(now),
    )
    .await?;
    Ok(after)
}

/// Adds money (a top-up, a refund). Returns the new balance.
pub async fn credit(
    c: &mut Tx,
    now: DateTime<Utc>,
    org: &OrgId,
    amount: Money,
    reason: &str,
    reference: Option<&str>,
    actor: &str,
) -> Result<Money, StoreError> {
    if amount.minor <= 0 {
        return Err(StoreError::Corrupt("a credit is positive".into()));
    }
    let row = c
        .fetch_one(
            q("INSERT INTO wallets (org_id, currency, balance_minor, updated_at) VALUES ($1, $2, $3, $4)
               ON CONFLICT (org_id, currency) DO UPDATE SET balance_minor = wallets.balance_minor + $3, updated_at = $4
               RETURNING balance_minor")
            .bind(org.as_str())
            .bind(amount.currency.code())
            .bind(amount.minor)
            .bind(now),
        )
        .await?;
    let after = Money::new(row.get("balance_minor")?, amount.currency);
    record(c, now, org, amount, after, reason, reference, actor).await
}

/// Takes money if the balance covers it; otherwise changes nothing and says what is there.
pub async fn debit(
    c: &mut Tx,
    now: DateTime<Utc>,
    org: &OrgId,
    amount: Money,
    reason: &str,
    reference: Option<&str>,
    actor: &str,
) -> Result<Result<Money, InsufficientFunds>, StoreError> {
    if amount.minor < 0 {
        return Err(StoreError::Corrupt("a debit is not negative".into()));
    }
    let row = c
        .fetch_optional(
            q("UPDATE wallets SET balance_minor = balance_minor - $1, updated_at = $2
               WHERE org_id = $3 AND currency = $4 AND balance_minor >= $1
               RETURNING balance_minor")
            .bind(amount.minor)
            .bind(now)
            .bind(org.as_str())
            .bind(amount.currency.code()),
        )
        .await?;
    let after = match row {
        Some(r) => Money::new(r.get("balance_minor")?, amount.currency),
        None if amount.minor > 0 => return Ok(Err(InsufficientFunds { balance: balance(c, org, amount.currency).await? })),
        // Nothing taken from a wallet that does not exist yet.
        None => balance(c, org, amount.currency).await?,
    };
    Ok(Ok(record(c, now, org, Money::new(-amount.minor, amount.currency), after, reason, reference, actor).await?))
}

/// Newest first; `before` is the last id of the previous page.
pub async fn ledger(c: &mut impl Conn, org: &OrgId, before: Option<&str>, limit: u32) -> Result<Vec<Entry>, StoreError> {
    c.fetch_all(
        q("SELECT * FROM wallet_ledger WHERE org_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3")
            .bind(org.as_str())
            .bind(before)
            .bind(i64::from(limit)),
    )
    .await?
    .iter()
    .map(entry)
    .collect()
}

/// The sum of the ledger, which must equal the balance (checked by tests and audits).
pub async fn ledger_sum(c: &mut impl Conn, org: &OrgId, currency: Currency) -> Result<i64, StoreError> {
    c.fetch_one(
        q("SELECT CAST(COALESCE(SUM(delta_minor), 0) AS BIGINT) AS n FROM wallet_ledger WHERE org_id = $1 AND currency = $2")
            .bind(org.as_str())
            .bind(currency.code()),
    )
    .await?
    .get("n")
}

/// The ledger entries of one currency in `[from, to)`, oldest first (a bill's lines).
pub async fn entries_between(
    c: &mut impl Conn,
    org: &OrgId,
    currency: Currency,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Entry>, StoreError> {
    c.fetch_all(
        q("SELECT * FROM wallet_ledger WHERE org_id = $1 AND currency = $2 AND at >= $3 AND at < $4 ORDER BY at, id LIMIT 10000")
            .bind(org.as_str())
            .bind(currency.code())
            .bind(from)
            .bind(to),
    )
    .await?
    .iter()
    .map(entry)
    .collect()
}

/// The balance just before `at` (a bill's opening balance).
pub async fn balance_before(c: &mut impl Conn, org: &OrgId, currency: Currency, at: DateTime<Utc>) -> Result<i64, StoreError> {
    let row = c
        .fetch_optional(
            q("SELECT balance_after FROM wallet_ledger WHERE org_id = $1 AND currency = $2 AND at < $3 ORDER BY at DESC, id DESC LIMIT 1")
                .bind(org.as_str())
                .bind(currency.code())
                .bind(at),
        )
        .await?;
    Ok(row.map(|r| r.get::<i64>("balance_after")).transpose()?.unwrap_or(0))
}
