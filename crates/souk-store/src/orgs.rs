//! Organizations and their members. Every read that serves a request is scoped by
//! membership: [`role_of`] is how the HTTP layer decides whether an org exists for a caller.

use chrono::{DateTime, Utc};
use serde::Serialize;
use souk_core::id::{AccountId, OrgId};
use souk_core::identity::{OrgKind, OrgRole};
use souk_core::site::Site;

use crate::{Conn, Row, StoreError, Tx, parse_stored, q, stored_enum};

#[derive(Debug, Clone, Serialize)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub kind: OrgKind,
    pub site: Site,
    pub is_buyer: bool,
    pub is_seller: bool,
    pub is_reseller: bool,
    /// `unverified`, `pending`, `verified` or `rejected`.
    pub verification_status: String,
    pub verified_name: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub account_id: AccountId,
    pub email: String,
    pub name: String,
    pub role: OrgRole,
    pub joined_at: DateTime<Utc>,
}

fn from_row(r: &Row) -> Result<Org, StoreError> {
    from_columns(r, "")
}

/// The organization's columns as [`from_columns`] reads them with the prefix `org_`, for a
/// query that joins `orgs o` to rows whose own columns have the same names.
macro_rules! columns_as_org {
    () => {
        "o.id AS org_id, o.name AS org_name, o.kind AS org_kind, o.site AS org_site, \
         o.is_buyer AS org_is_buyer, o.is_seller AS org_is_seller, o.is_reseller AS org_is_reseller, \
         o.verification_status AS org_verification_status, o.verified_name AS org_verified_name, \
         o.verified_at AS org_verified_at, o.created_at AS org_created_at"
    };
}
pub(crate) use columns_as_org;

/// An organization from columns named with `prefix` (see [`columns_as_org`]).
pub(crate) fn from_columns(r: &Row, prefix: &str) -> Result<Org, StoreError> {
    let col = |name: &str| format!("{prefix}{name}");
    let kind: String = r.get(&col("kind"))?;
    let site: String = r.get(&col("site"))?;
    Ok(Org {
        id: parse_stored(OrgId::parse(&r.get::<String>(&col("id"))?))?,
        name: r.get(&col("name"))?,
        kind: stored_enum(OrgKind::parse(&kind), &kind)?,
        site: parse_stored(Site::parse(&site))?,
        is_buyer: r.get(&col("is_buyer"))?,
        is_seller: r.get(&col("is_seller"))?,
        is_reseller: r.get(&col("is_reseller"))?,
        verification_status: r.get(&col("verification_status"))?,
        verified_name: r.get(&col("verified_name"))?,
        verified_at: r.get(&col("verified_at"))?,
        created_at: r.get(&col("created_at"))?,
    })
}

fn role(raw: String) -> Result<OrgRole, StoreError> {
    stored_enum(OrgRole::parse(&raw), &raw)
}

/// Creates an enterprise organization owned by `creator`.
pub async fn create_enterprise(
    tx: &mut Tx,
    now: DateTime<Utc>,
    name: &str,
    site: Site,
    creator: &AccountId,
) -> Result<Org, StoreError> {
    let id = OrgId::generate(now);
    tx.execute(
        q("INSERT INTO orgs (id, name, kind, site, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id.as_str())
            .bind(name)
            .bind(OrgKind::Enterprise.as_str())
            .bind(site.as_str())
            .bind(creator.as_str())
            .bind(now),
    )
    .await?;
    add_member(tx, now, &id, creator, OrgRole::Owner).await?;
    get(tx, &id).await
}

pub async fn get(c: &mut impl Conn, id: &OrgId) -> Result<Org, StoreError> {
    from_row(&c.fetch_one(q("SELECT * FROM orgs WHERE id = $1").bind(id.as_str())).await?)
}

/// The caller's role in the organization, or `None` if they are not a member.
pub async fn role_of(c: &mut impl Conn, org: &OrgId, account: &AccountId) -> Result<Option<OrgRole>, StoreError> {
    let row = c
        .fetch_optional(
            q("SELECT role FROM memberships WHERE org_id = $1 AND account_id = $2").bind(org.as_str()).bind(account.as_str()),
        )
        .await?;
    row.map(|r| role(r.get("role")?)).transpose()
}

/// The organizations an account belongs to, oldest first (the personal one leads).
pub async fn list_for_account(c: &mut impl Conn, account: &AccountId) -> Result<Vec<(Org, OrgRole)>, StoreError> {
    let rows = c
        .fetch_all(
            q("SELECT o.*, m.role AS member_role FROM orgs o JOIN memberships m ON m.org_id = o.id
               WHERE m.account_id = $1 ORDER BY o.id")
            .bind(account.as_str()),
        )
        .await?;
    rows.iter().map(|r| Ok((from_row(r)?, role(r.get("member_role")?)?))).collect()
}

pub async fn members(c: &mut impl Conn, org: &OrgId) -> Result<Vec<Member>, StoreError> {
    let rows = c
        .fetch_all(
            q("SELECT a.id, a.email, a.name, m.role, m.created_at FROM memberships m JOIN accounts a ON a.id = m.account_id
               WHERE m.org_id = $1 ORDER BY m.created_at, a.id")
            .bind(org.as_str()),
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Member {
                account_id: parse_stored(AccountId::parse(&r.get::<String>("id")?))?,
                email: r.get("email")?,
                name: r.get("name")?,
                role: role(r.get("role")?)?,
                joined_at: r.get("created_at")?,
            })
        })
        .collect()
}

/// Adds a member. Already a member gives [`StoreError::Conflict`].
pub async fn add_member(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    org: &OrgId,
    account: &AccountId,
    role: OrgRole,
) -> Result<(), StoreError> {
    c.execute(
        q("INSERT INTO memberships (org_id, account_id, role, created_at) VALUES ($1, $2, $3, $4)")
            .bind(org.as_str())
            .bind(account.as_str())
            .bind(role.as_str())
            .bind(now),
    )
    .await?;
    Ok(())
}

pub async fn set_role(c: &mut impl Conn, org: &OrgId, account: &AccountId, role: OrgRole) -> Result<(), StoreError> {
    let n = c
        .execute(
            q("UPDATE memberships SET role = $1 WHERE org_id = $2 AND account_id = $3")
                .bind(role.as_str())
                .bind(org.as_str())
                .bind(account.as_str()),
        )
        .await?;
    if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

pub async fn remove_member(c: &mut impl Conn, org: &OrgId, account: &AccountId) -> Result<(), StoreError> {
    let n = c
        .execute(q("DELETE FROM memberships WHERE org_id = $1 AND account_id = $2").bind(org.as_str()).bind(account.as_str()))
        .await?;
    if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

pub async fn count_owners(c: &mut impl Conn, org: &OrgId) -> Result<i64, StoreError> {
    c.fetch_one(q("SELECT COUNT(*) AS n FROM memberships WHERE org_id = $1 AND role = 'owner'").bind(org.as_str()))
        .await?
        .get("n")
}

/// Records the organization's verification state as the latest submission leaves it.
pub async fn set_verification(
    c: &mut impl Conn,
    org: &OrgId,
    status: &str,
    verified_name: Option<&str>,
    verified_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    c.execute(
        q("UPDATE orgs SET verification_status = $1, verified_name = COALESCE($2, verified_name), verified_at = COALESCE($3, verified_at)
           WHERE id = $4")
        .bind(status)
        .bind(verified_name)
        .bind(verified_at)
        .bind(org.as_str()),
    )
    .await?;
    Ok(())
}

/// Marks what the organization acts as. Selling is granted through seller onboarding.
pub async fn set_roles(c: &mut impl Conn, org: &OrgId, buyer: bool, seller: bool, reseller: bool) -> Result<(), StoreError> {
    c.execute(
        q("UPDATE orgs SET is_buyer = $1, is_seller = $2, is_reseller = $3 WHERE id = $4")
            .bind(buyer)
            .bind(seller)
            .bind(reseller)
            .bind(org.as_str()),
    )
    .await?;
    Ok(())
}
