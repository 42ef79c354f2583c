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

/// Takes `amount` from a seller's yearly test-coupon quota of `quota_minor`. Returns false,
/// taking nothing, when the amount does not fit in what is left.
pub async fn take_test_quota(
    c: &mut impl Conn,
    seller: &OrgId,
    year: i32,
    currency: &str,
    amount_minor: i64,
    quota_minor: i64,
) -> Result<bool, StoreError> {
    c.execute(
        q("INSERT INTO test_coupon_quotas (seller_org_id, year, currency, used_minor) VALUES ($1, $2, $3, 0)
           ON CONFLICT (seller_org_id, year, currency) DO NOTHING")
        .bind(seller.as_str())
        .bind(i64::from(year))
        .bind(currency),
    )
    .await?;
    let n = c
        .execute(
            q("UPDATE test_coupon_quotas SET used_minor = used_minor + $1
               WHERE seller_org_id = $2 AND year = $3 AND currency = $4 AND used_minor + $1 <= $5")
            .bind(amount_minor)
            .bind(seller.as_str())
            .bind(i64::from(year))
            .bind(currency)
            .bind(quota_minor),
        )
        .await?;
    Ok(n == 1)
}

/// How much of its test-coupon quota a seller has used this year, in `currency`.
pub async fn test_quota_used(c: &mut impl Conn, seller: &OrgId, year: i32, currency: &str) -> Result<i64, StoreError> {
    let row = c
        .fetch_optional(
            q("SELECT used_minor FROM test_coupon_quotas WHERE seller_org_id = $1 AND year = $2 AND currency = $3")
                .bind(seller.as_str())
                .bind(i64::from(year))
                .bind(currency),
        )
        .await?;
    row.map(|r| r.get("used_minor")).transpose().map(|v| v.unwrap_or(0))
}

/// The test coupons a seller issued to itself, newest first.
pub async fn issued_by_org(c: &mut impl Conn, seller: &OrgId) -> Result<Vec<Coupon>, StoreError> {
    c.fetch_all(q("SELECT * FROM coupons WHERE issued_by = $1 ORDER BY id DESC LIMIT 200").bind(seller.as_str()))
        .await?
        .iter()
        .map(coupon)
        .collect()
}
