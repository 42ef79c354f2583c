//! License codes and their assignment to subscriptions.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Conn, Row, StoreError, q, q2};

#[derive(Debug, Clone, Serialize)]
pub struct LicenseCode {
    pub code: String,
    pub product_id: String,
    pub source: String,
    pub subscription_id: Option<String>,
    pub order_id: Option<String>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    pub activations: i64,
}

fn license(r: &Row) -> Result<LicenseCode, StoreError> {
    Ok(LicenseCode {
        code: r.get("code")?,
        product_id: r.get("product_id")?,
        source: r.get("source")?,
        subscription_id: r.get("subscription_id")?,
        order_id: r.get("order_id")?,
        assigned_at: r.get("assigned_at")?,
        activated_at: r.get("activated_at")?,
        activations: r.get("activations")?,
    })
}

/// Records a code Souk generated, already assigned. A collision gives `Conflict`.
pub async fn insert_assigned(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    product_id: &str,
    code: &str,
    subscription_id: &str,
    order_id: &str,
) -> Result<(), StoreError> {
    insert_assigned_from(c, now, product_id, code, "souk", subscription_id, order_id).await
}

/// Records an assigned code from `source` (`souk` or `seller`). A code the product already
/// has gives `Conflict`.
pub async fn insert_assigned_from(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    product_id: &str,
    code: &str,
    source: &str,
    subscription_id: &str,
    order_id: &str,
) -> Result<(), StoreError> {
    c.execute(
        q("INSERT INTO license_codes (code, product_id, source, subscription_id, order_id, assigned_at, created_at)
           VALUES ($1, $2, $6, $3, $4, $5, $5)")
        .bind(code)
        .bind(product_id)
        .bind(subscription_id)
        .bind(order_id)
        .bind(now)
        .bind(source),
    )
    .await?;
    Ok(())
}

/// Adds codes to a product's pool; codes already there are skipped. Returns how many were added.
pub async fn add_to_pool(c: &mut impl Conn, now: DateTime<Utc>, product_id: &str, codes: &[String]) -> Result<u64, StoreError> {
    let mut added = 0;
    for code in codes {
        added += c
            .execute(
                q("INSERT INTO license_codes (code, product_id, source, created_at) VALUES ($1, $2, 'pool', $3)
                   ON CONFLICT (product_id, code) DO NOTHING")
                .bind(code.as_str())
                .bind(product_id)
                .bind(now),
            )
            .await?;
    }
    Ok(added)
}

/// Takes one free code of the product's pool for the subscription, or `None` when the pool is
/// empty. On PostgreSQL concurrent takers skip each other's rows; the update re-checks that
/// the code is still free, so a code is never given twice.
pub async fn take_from_pool(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    product_id: &str,
    subscription_id: &str,
    order_id: &str,
) -> Result<Option<String>, StoreError> {
    let row = c
        .fetch_optional(
            q2(
                "UPDATE license_codes SET subscription_id = $1, order_id = $2, assigned_at = $3
                 WHERE product_id = $4 AND code = (SELECT code FROM license_codes WHERE product_id = $4 AND subscription_id IS NULL ORDER BY created_at, code LIMIT 1)
                   AND subscription_id IS NULL
                 RETURNING code",
                "UPDATE license_codes SET subscription_id = $1, order_id = $2, assigned_at = $3
                 WHERE product_id = $4 AND code = (SELECT code FROM license_codes WHERE product_id = $4 AND subscription_id IS NULL
                                                   ORDER BY created_at, code LIMIT 1 FOR UPDATE SKIP LOCKED)
                   AND subscription_id IS NULL
                 RETURNING code",
            )
            .bind(subscription_id)
            .bind(order_id)
            .bind(now)
            .bind(product_id),
        )
        .await?;
    row.map(|r| r.get("code")).transpose()
}

/// (available, assigned) codes of a product.
pub async fn stock(c: &mut impl Conn, product_id: &str) -> Result<(i64, i64), StoreError> {
    let r = c
        .fetch_one(
            q("SELECT COALESCE(SUM(CASE WHEN subscription_id IS NULL THEN 1 ELSE 0 END), 0) AS free,
                      COALESCE(SUM(CASE WHEN subscription_id IS NULL THEN 0 ELSE 1 END), 0) AS used
               FROM license_codes WHERE product_id = $1")
            .bind(product_id),
        )
        .await?;
    Ok((r.get("free")?, r.get("used")?))
}

pub async fn of_subscription(c: &mut impl Conn, subscription_id: &str) -> Result<Vec<LicenseCode>, StoreError> {
    c.fetch_all(q("SELECT * FROM license_codes WHERE subscription_id = $1 ORDER BY code").bind(subscription_id))
        .await?
        .iter()
        .map(license)
        .collect()
}

/// The assigned code, looked up for the seller's software (codes are unique per product; the
/// seller's products are searched).
pub async fn find_for_seller(c: &mut impl Conn, seller: &str, code: &str) -> Result<Option<LicenseCode>, StoreError> {
    c.fetch_optional(
        q("SELECT l.* FROM license_codes l JOIN products p ON p.id = l.product_id
           WHERE p.seller_org_id = $1 AND l.code = $2 AND l.subscription_id IS NOT NULL LIMIT 1")
        .bind(seller)
        .bind(code),
    )
    .await?
    .as_ref()
    .map(license)
    .transpose()
}

/// Notes an activation of the code by the seller's software.
pub async fn activated(c: &mut impl Conn, now: DateTime<Utc>, product_id: &str, code: &str) -> Result<(), StoreError> {
    c.execute(
        q("UPDATE license_codes SET activations = activations + 1, activated_at = COALESCE(activated_at, $1) WHERE product_id = $2 AND code = $3")
            .bind(now)
            .bind(product_id)
            .bind(code),
    )
    .await?;
    Ok(())
}
