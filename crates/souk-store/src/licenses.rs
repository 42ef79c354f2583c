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
    c.changed(subscription_id);
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

/// An upload of codes into a pool, as far as it has been imported.
#[derive(Debug, Clone, Serialize)]
pub struct Import {
    pub id: String,
    pub product_id: String,
    pub seller_org_id: String,
    /// `pending` until every code is in the pool, then `done`.
    pub status: String,
    /// Distinct valid codes in the file.
    pub total: i64,
    /// Of those, how many have been through the pool so far.
    pub processed: i64,
    /// Of those, how many were new to the pool.
    pub added: i64,
    /// Repeated in the file.
    pub duplicates: i64,
    /// (line, why) for each row refused.
    pub errors: Vec<(usize, String)>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Import {
    /// Repeated in the file, plus (once done) codes the pool already had.
    pub fn duplicates_total(&self) -> i64 {
        self.duplicates + if self.status == "done" { self.processed - self.added } else { 0 }
    }
}

fn import(r: &Row) -> Result<Import, StoreError> {
    let errors: String = r.get("errors")?;
    Ok(Import {
        id: r.get("id")?,
        product_id: r.get("product_id")?,
        seller_org_id: r.get("seller_org_id")?,
        status: r.get("status")?,
        total: r.get("total")?,
        processed: r.get("processed")?,
        added: r.get("added")?,
        duplicates: r.get("duplicates")?,
        errors: crate::parse_stored(serde_json::from_str(&errors))?,
        created_at: r.get("created_at")?,
        finished_at: r.get("finished_at")?,
    })
}

const IMPORT_COLUMNS: &str =
    "id, product_id, seller_org_id, status, total, processed, added, duplicates, errors, created_at, finished_at";

pub struct NewImport<'a> {
    pub id: &'a str,
    pub product_id: &'a str,
    pub seller: &'a str,
    pub codes: &'a [String],
    pub duplicates: usize,
    pub errors: &'a [(usize, String)],
    pub created_by: &'a str,
}

pub async fn create_import(c: &mut impl Conn, now: DateTime<Utc>, n: NewImport<'_>) -> Result<(), StoreError> {
    let codes = serde_json::to_string(n.codes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let errors = serde_json::to_string(n.errors).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    c.execute(
        q("INSERT INTO license_imports (id, product_id, seller_org_id, status, codes, total, duplicates, errors, created_by, created_at)
           VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9)")
        .bind(n.id)
        .bind(n.product_id)
        .bind(n.seller)
        .bind(codes)
        .bind(i64::try_from(n.codes.len()).unwrap_or(i64::MAX))
        .bind(i64::try_from(n.duplicates).unwrap_or(i64::MAX))
        .bind(errors)
        .bind(n.created_by)
        .bind(now),
    )
    .await?;
    Ok(())
}

pub async fn get_import(c: &mut impl Conn, id: &str) -> Result<Option<Import>, StoreError> {
    let sql = format!("SELECT {IMPORT_COLUMNS} FROM license_imports WHERE id = $1");
    c.fetch_optional(crate::q_built(sql.clone(), sql).bind(id)).await?.as_ref().map(import).transpose()
}

/// A product's latest imports, newest first.
pub async fn imports(c: &mut impl Conn, product_id: &str, limit: u32) -> Result<Vec<Import>, StoreError> {
    let sql = format!("SELECT {IMPORT_COLUMNS} FROM license_imports WHERE product_id = $1 ORDER BY id DESC LIMIT $2");
    c.fetch_all(crate::q_built(sql.clone(), sql).bind(product_id).bind(i64::from(limit))).await?.iter().map(import).collect()
}

/// The codes an import still holds (emptied once it is done).
pub async fn import_codes(c: &mut impl Conn, id: &str) -> Result<Vec<String>, StoreError> {
    let row = c.fetch_one(q("SELECT codes FROM license_imports WHERE id = $1").bind(id)).await?;
    crate::parse_stored(serde_json::from_str(&row.get::<String>("codes")?))
}

/// Records that codes `from..to` went through the pool, adding `added`; false (and nothing
/// written) if another worker recorded that chunk first.
pub async fn import_progress(c: &mut impl Conn, id: &str, from: i64, to: i64, added: u64) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE license_imports SET processed = $1, added = added + $2 WHERE id = $3 AND processed = $4 AND status = 'pending'")
                .bind(to)
                .bind(i64::try_from(added).unwrap_or(i64::MAX))
                .bind(id)
                .bind(from),
        )
        .await?;
    Ok(n == 1)
}

/// Marks an import done and lets go of its codes; true for the one caller that does.
pub async fn finish_import(c: &mut impl Conn, now: DateTime<Utc>, id: &str) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE license_imports SET status = 'done', codes = '[]', finished_at = $1
               WHERE id = $2 AND status = 'pending' AND processed = total")
            .bind(now)
            .bind(id),
        )
        .await?;
    Ok(n == 1)
}
