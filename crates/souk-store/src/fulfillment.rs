//! Integrations with sellers' systems and the log of deliveries to them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use souk_core::id::OrgId;

use crate::{Conn, Row, StoreError, q};

#[derive(Debug, Clone, Serialize)]
pub struct Integration {
    pub product_id: String,
    pub seller_org_id: String,
    pub endpoint: String,
    /// `native` or `koogallery`.
    pub protocol: String,
    #[serde(skip)]
    pub secret_sealed: Option<Vec<u8>>,
    #[serde(skip)]
    pub previous_sealed: Option<Vec<u8>>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Every delivery since then failed.
    pub failing_since: Option<DateTime<Utc>>,
    /// When operators were told of this failing spell.
    pub flagged_at: Option<DateTime<Utc>>,
    /// KooGallery: the joint-operation sync APIs' base URL (`…/produceAPI/v2/authSync` is
    /// appended), where enterprise user authorization goes.
    pub sync_url: Option<String>,
    /// KooGallery: the sync APIs' own access key, sealed; without one the basic key signs.
    #[serde(skip)]
    pub sync_key_sealed: Option<Vec<u8>>,
    /// KooGallery: the seller answers `changeInstanceCheck` before a plan change.
    pub change_check: bool,
}

fn integration(r: &Row) -> Result<Integration, StoreError> {
    Ok(Integration {
        product_id: r.get("product_id")?,
        seller_org_id: r.get("seller_org_id")?,
        endpoint: r.get("endpoint")?,
        protocol: r.get("protocol")?,
        secret_sealed: r.get("secret_sealed")?,
        previous_sealed: r.get("previous_sealed")?,
        rotated_at: r.get("rotated_at")?,
        updated_at: r.get("updated_at")?,
        failing_since: r.get("failing_since")?,
        flagged_at: r.get("flagged_at")?,
        sync_url: r.get("sync_url")?,
        sync_key_sealed: r.get("sync_key_sealed")?,
        change_check: r.get("change_check")?,
    })
}

/// A delivery to the product's endpoint succeeded or failed: a success ends a failing spell.
pub async fn note_outcome(c: &mut impl Conn, now: DateTime<Utc>, product_id: &str, ok: bool) -> Result<(), StoreError> {
    let sql = if ok {
        q("UPDATE integrations SET failing_since = NULL, flagged_at = NULL WHERE product_id = $1 AND failing_since IS NOT NULL")
            .bind(product_id)
    } else {
        q("UPDATE integrations SET failing_since = $1 WHERE product_id = $2 AND failing_since IS NULL").bind(now).bind(product_id)
    };
    c.execute(sql).await?;
    Ok(())
}

/// Endpoints failing since before `cutoff`, whether or not operators were told.
pub async fn failing(c: &mut impl Conn, cutoff: DateTime<Utc>) -> Result<Vec<Integration>, StoreError> {
    c.fetch_all(q("SELECT * FROM integrations WHERE failing_since <= $1 ORDER BY failing_since LIMIT 500").bind(cutoff))
        .await?
        .iter()
        .map(integration)
        .collect()
}

/// Claims telling operators about a failing spell; true for the one caller that does.
pub async fn claim_flag(c: &mut impl Conn, now: DateTime<Utc>, product_id: &str) -> Result<bool, StoreError> {
    Ok(c.execute(
        q("UPDATE integrations SET flagged_at = $1 WHERE product_id = $2 AND flagged_at IS NULL AND failing_since IS NOT NULL")
            .bind(now)
            .bind(product_id),
    )
    .await?
        == 1)
}

pub async fn get(c: &mut impl Conn, product_id: &str) -> Result<Option<Integration>, StoreError> {
    c.fetch_optional(q("SELECT * FROM integrations WHERE product_id = $1").bind(product_id))
        .await?
        .as_ref()
        .map(integration)
        .transpose()
}

/// Sets where a product's deliveries go (keeping its secrets).
pub async fn upsert(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    product_id: &str,
    seller: &OrgId,
    endpoint: &str,
    protocol: &str,
) -> Result<Integration, StoreError> {
    c.execute(
        q("INSERT INTO integrations (product_id, seller_org_id, endpoint, protocol, updated_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (product_id) DO UPDATE SET endpoint = $3, protocol = $4, updated_at = $5")
        .bind(product_id)
        .bind(seller.as_str())
        .bind(endpoint)
        .bind(protocol)
        .bind(now),
    )
    .await?;
    get(c, product_id).await?.ok_or(StoreError::NotFound)
}

/// The KooGallery extras: the sync APIs' base URL and whether plan changes are checked first.
pub async fn set_koogallery(
    c: &mut impl Conn,
    product_id: &str,
    sync_url: Option<&str>,
    change_check: bool,
) -> Result<(), StoreError> {
    c.execute(
        q("UPDATE integrations SET sync_url = $1, change_check = $2 WHERE product_id = $3")
            .bind(sync_url)
            .bind(change_check)
            .bind(product_id),
    )
    .await?;
    Ok(())
}

/// Sets (or, with `None`, clears) the sync APIs' own access key.
pub async fn set_sync_key(c: &mut impl Conn, product_id: &str, sealed: Option<&[u8]>) -> Result<(), StoreError> {
    c.execute(q("UPDATE integrations SET sync_key_sealed = $1 WHERE product_id = $2").bind(sealed).bind(product_id)).await?;
    Ok(())
}

/// A new signing secret; the current one becomes the previous (still accepted by sellers
/// mid-rotation, so deliveries carry both signatures until the rotation is finished).
pub async fn rotate_secret(c: &mut impl Conn, now: DateTime<Utc>, product_id: &str, sealed: &[u8]) -> Result<(), StoreError> {
    c.execute(
        q("UPDATE integrations SET previous_sealed = secret_sealed, secret_sealed = $1, rotated_at = $2, updated_at = $2 WHERE product_id = $3")
            .bind(sealed)
            .bind(now)
            .bind(product_id),
    )
    .await?;
    Ok(())
}

/// Ends a rotation: only the current secret signs from now on.
pub async fn drop_previous_secret(c: &mut impl Conn, now: DateTime<Utc>, product_id: &str) -> Result<(), StoreError> {
    c.execute(
        q("UPDATE integrations SET previous_sealed = NULL, updated_at = $1 WHERE product_id = $2").bind(now).bind(product_id),
    )
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub topic: String,
    pub subscription_id: String,
    pub seller_org_id: String,
    pub product_id: String,
    pub attempt: i64,
    pub url: String,
    pub request_body: String,
    pub status: Option<i64>,
    pub response_excerpt: Option<String>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

fn delivery(r: &Row) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: r.get("id")?,
        event_id: r.get("event_id")?,
        topic: r.get("topic")?,
        subscription_id: r.get("subscription_id")?,
        seller_org_id: r.get("seller_org_id")?,
        product_id: r.get("product_id")?,
        attempt: r.get("attempt")?,
        url: r.get("url")?,
        request_body: r.get("request_body")?,
        status: r.get("status")?,
        response_excerpt: r.get("response_excerpt")?,
        latency_ms: r.get("latency_ms")?,
        error: r.get("error")?,
        at: r.get("at")?,
    })
}

pub struct NewDelivery<'a> {
    pub event_id: &'a str,
    pub topic: &'a str,
    pub subscription_id: &'a str,
    pub seller: &'a str,
    pub product_id: &'a str,
    pub attempt: u32,
    pub url: &'a str,
    pub request_body: &'a str,
    pub status: Option<u16>,
    pub response_excerpt: Option<&'a str>,
    pub latency_ms: i64,
    pub error: Option<&'a str>,
}

pub async fn record(c: &mut impl Conn, now: DateTime<Utc>, d: NewDelivery<'_>) -> Result<(), StoreError> {
    c.execute(
        q("INSERT INTO deliveries (id, event_id, topic, subscription_id, seller_org_id, product_id, attempt, url, request_body,
                                   status, response_excerpt, latency_ms, error, at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
        .bind(format!("dlv_{}", souk_core::id::new_body(now)))
        .bind(d.event_id)
        .bind(d.topic)
        .bind(d.subscription_id)
        .bind(d.seller)
        .bind(d.product_id)
        .bind(d.attempt)
        .bind(d.url)
        .bind(d.request_body)
        .bind(d.status.map(i64::from))
        .bind(d.response_excerpt)
        .bind(d.latency_ms)
        .bind(d.error)
        .bind(now),
    )
    .await?;
    Ok(())
}

/// Filters of the delivery log.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub subscription_id: Option<String>,
    pub event_id: Option<String>,
    /// Only failed attempts (`Some(false)`) or only successful ones (`Some(true)`).
    pub ok: Option<bool>,
    pub before: Option<String>,
    pub limit: u32,
}

/// A seller's delivery log, newest first.
pub async fn log(c: &mut impl Conn, seller: &OrgId, f: &DeliveryFilter) -> Result<Vec<Delivery>, StoreError> {
    let ok = f.ok.map(i64::from);
    c.fetch_all(
        q("SELECT * FROM deliveries WHERE seller_org_id = $1 AND ($2 IS NULL OR subscription_id = $2) AND ($3 IS NULL OR event_id = $3)
             AND ($4 IS NULL OR ($4 = 1 AND status BETWEEN 200 AND 299) OR ($4 = 0 AND (status IS NULL OR status NOT BETWEEN 200 AND 299)))
             AND ($5 IS NULL OR id < $5)
           ORDER BY id DESC LIMIT $6")
        .bind(seller.as_str())
        .bind(f.subscription_id.as_deref())
        .bind(f.event_id.as_deref())
        .bind(ok)
        .bind(f.before.as_deref())
        .bind(i64::from(f.limit.clamp(1, 500))),
    )
    .await?
    .iter()
    .map(delivery)
    .collect()
}

/// Records the seller's instance and access details on the subscription.
pub async fn set_instance(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    subscription_id: &str,
    instance_id: Option<&str>,
    access: Option<&serde_json::Value>,
) -> Result<(), StoreError> {
    c.execute(
        q("UPDATE subscriptions SET instance_id = COALESCE($1, instance_id), access = COALESCE($2, access), updated_at = $3 WHERE id = $4")
            .bind(instance_id)
            .bind(access.map(|a| a.to_string()))
            .bind(now)
            .bind(subscription_id),
    )
    .await?;
    c.changed(subscription_id);
    Ok(())
}
