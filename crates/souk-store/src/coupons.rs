//! Coupons: a code and its rule (value, scope, validity, per-buyer limit), and the
//! redemptions that count against the limit.

use chrono::{DateTime, Utc};
use serde::Serialize;
use souk_core::id::OrgId;
use souk_core::pricing::CouponRule;

use crate::{Conn, Row, StoreError, parse_stored, q};

#[derive(Debug, Clone, Serialize)]
pub struct Coupon {
    pub id: String,
    pub code: String,
    pub rule: CouponRule,
    pub issued_by: String,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

fn coupon(r: &Row) -> Result<Coupon, StoreError> {
    let rule: String = r.get("rule")?;
    Ok(Coupon {
        id: r.get("id")?,
        code: r.get("code")?,
        rule: parse_stored(serde_json::from_str(&rule))?,
        issued_by: r.get("issued_by")?,
        created_at: r.get("created_at")?,
        disabled_at: r.get("disabled_at")?,
    })
}

/// Creates a coupon; a code already used gives [`StoreError::Conflict`].
pub async fn create(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    code: &str,
    rule: &CouponRule,
    issued_by: &str,
) -> Result<Coupon, StoreError> {
    let id = format!("cpn_{}", souk_core::id::new_body(now));
    c.execute(
        q("INSERT INTO coupons (id, code, rule, issued_by, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(code)
            .bind(serde_json::to_string(rule).map_err(|e| StoreError::Corrupt(e.to_string()))?)
            .bind(issued_by)
            .bind(now),
    )
    .await?;
    coupon(&c.fetch_one(q("SELECT * FROM coupons WHERE id = $1").bind(&id)).await?)
}

/// The live coupon with this code (codes are matched case-insensitively: stored upper-case).
pub async fn by_code(c: &mut impl Conn, code: &str) -> Result<Option<Coupon>, StoreError> {
    let row = c.fetch_optional(q("SELECT * FROM coupons WHERE code = $1 AND disabled_at IS NULL").bind(code)).await?;
    row.as_ref().map(coupon).transpose()
}

pub async fn list(c: &mut impl Conn) -> Result<Vec<Coupon>, StoreError> {
    c.fetch_all(q("SELECT * FROM coupons ORDER BY id DESC")).await?.iter().map(coupon).collect()
}

/// Times the buyer used the coupon.
pub async fn used_by(c: &mut impl Conn, coupon_id: &str, buyer: &OrgId) -> Result<u32, StoreError> {
    let n: i64 = c
        .fetch_one(
            q("SELECT COUNT(*) AS n FROM coupon_redemptions WHERE coupon_id = $1 AND buyer_org_id = $2")
                .bind(coupon_id)
                .bind(buyer.as_str()),
        )
        .await?
        .get("n")?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}
