//! Accounts: the people who sign in. Creating one also creates its personal organization.

use chrono::{DateTime, Utc};
use souk_core::id::{AccountId, OrgId, SessionId};
use souk_core::identity::{Email, OrgKind, OrgRole, StaffRole};
use souk_core::site::{Lang, Site};

use crate::orgs::Org;
use crate::{Conn, Row, StoreError, Tx, parse_stored, q, stored_enum};

#[derive(Debug, Clone)]
pub struct Account {
    pub id: AccountId,
    pub email: String,
    pub name: String,
    pub site: Site,
    pub lang: Lang,
    pub phone: Option<String>,
    pub staff_role: Option<StaffRole>,
    pub personal_org_id: OrgId,
    pub created_at: DateTime<Utc>,
}

pub struct NewAccount<'a> {
    pub email: &'a Email,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub site: Site,
    pub lang: Lang,
    pub phone: Option<&'a str>,
    pub staff_role: Option<StaffRole>,
}

fn from_row(r: &Row) -> Result<Account, StoreError> {
    let site: String = r.get("site")?;
    let lang: String = r.get("lang")?;
    let staff: Option<String> = r.get("staff_role")?;
    Ok(Account {
        id: parse_stored(AccountId::parse(&r.get::<String>("id")?))?,
        email: r.get("email")?,
        name: r.get("name")?,
        site: parse_stored(Site::parse(&site))?,
        lang: stored_enum(Lang::parse(&lang), &lang)?,
        phone: r.get("phone")?,
        staff_role: match staff {
            Some(s) => Some(stored_enum(StaffRole::parse(&s), &s)?),
            None => None,
        },
        personal_org_id: parse_stored(OrgId::parse(&r.get::<String>("personal_org_id")?))?,
        created_at: r.get("created_at")?,
    })
}

/// Creates the account, its personal organization and its owner membership.
/// An email already registered gives [`StoreError::Conflict`].
pub async fn create(tx: &mut Tx, now: DateTime<Utc>, new: NewAccount<'_>) -> Result<Account, StoreError> {
    let id = AccountId::generate(now);
    let org = OrgId::generate(now);
    tx.execute(
        q("INSERT INTO orgs (id, name, kind, site, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(org.as_str())
            .bind(new.name)
            .bind(OrgKind::Personal.as_str())
            .bind(new.site.as_str())
            .bind(id.as_str())
            .bind(now),
    )
    .await?;
    tx.execute(
        q("INSERT INTO accounts (id, email, name, password_hash, site, lang, phone, staff_role, personal_org_id, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)")
        .bind(id.as_str())
        .bind(new.email.as_str())
        .bind(new.name)
        .bind(new.password_hash)
        .bind(new.site.as_str())
        .bind(new.lang.code())
        .bind(new.phone)
        .bind(new.staff_role.map(|r| r.as_str()))
        .bind(org.as_str())
        .bind(now),
    )
    .await?;
    tx.execute(
        q("INSERT INTO memberships (org_id, account_id, role, created_at) VALUES ($1, $2, $3, $4)")
            .bind(org.as_str())
            .bind(id.as_str())
            .bind(OrgRole::Owner.as_str())
            .bind(now),
    )
    .await?;
    get(tx, &id).await
}

pub async fn get(c: &mut impl Conn, id: &AccountId) -> Result<Account, StoreError> {
    from_row(&c.fetch_one(q("SELECT * FROM accounts WHERE id = $1").bind(id.as_str())).await?)
}

/// The account signed in by the session whose token hashes to `token_hash`, if that session
/// has not expired, with the session's id: one query for what every signed-in request needs.
pub async fn by_active_session(
    c: &mut impl Conn,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<(SessionId, Account)>, StoreError> {
    let row = c
        .fetch_optional(
            q("SELECT a.*, s.id AS session_id FROM sessions s JOIN accounts a ON a.id = s.account_id \
               WHERE s.token_hash = $1 AND s.expires_at > $2")
            .bind(token_hash)
            .bind(now),
        )
        .await?;
    match row {
        Some(r) => Ok(Some((parse_stored(SessionId::parse(&r.get::<String>("session_id")?))?, from_row(&r)?))),
        None => Ok(None),
    }
}

/// [`by_active_session`] with the account's role in `org` and the organization itself, if it
/// is a member (`None` otherwise): the one read a request to an organization's resources needs
/// to know who asks, what they may do, and for whom.
pub async fn by_active_session_in(
    c: &mut impl Conn,
    token_hash: &str,
    now: DateTime<Utc>,
    org: &OrgId,
) -> Result<Option<(SessionId, Account, Option<(OrgRole, Org)>)>, StoreError> {
    let row = c
        .fetch_optional(
            q(concat!(
                "SELECT a.*, s.id AS session_id, m.role AS member_role, ",
                crate::orgs::columns_as_org!(),
                " FROM sessions s JOIN accounts a ON a.id = s.account_id
                  LEFT JOIN memberships m ON m.org_id = $3 AND m.account_id = a.id
                  LEFT JOIN orgs o ON o.id = m.org_id
                  WHERE s.token_hash = $1 AND s.expires_at > $2"
            ))
            .bind(token_hash)
            .bind(now)
            .bind(org.as_str()),
        )
        .await?;
    let Some(r) = row else { return Ok(None) };
    let membership = match r.get::<Option<String>>("member_role")? {
        Some(role) => Some((stored_enum(OrgRole::parse(&role), &role)?, crate::orgs::from_columns(&r, "org_")?)),
        None => None,
    };
    Ok(Some((parse_stored(SessionId::parse(&r.get::<String>("session_id")?))?, from_row(&r)?, membership)))
}

/// An organization's site and its members with their whole accounts, in the order they
/// joined, in one read (what the message center needs to reach an organization); `None` if
/// there is no such organization.
pub async fn members_of(c: &mut impl Conn, org: &OrgId) -> Result<Option<(Site, Vec<(OrgRole, Account)>)>, StoreError> {
    let rows = c
        .fetch_all(
            q("SELECT a.*, m.role AS member_role, o.site AS org_site FROM orgs o
               LEFT JOIN memberships m ON m.org_id = o.id LEFT JOIN accounts a ON a.id = m.account_id
               WHERE o.id = $1 ORDER BY m.created_at, a.id")
            .bind(org.as_str()),
        )
        .await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let site: String = first.get("org_site")?;
    let site = parse_stored(Site::parse(&site))?;
    let mut members = Vec::with_capacity(rows.len());
    for r in &rows {
        // An organization without members gives one row with no account.
        let Some(role) = r.get::<Option<String>>("member_role")? else { continue };
        members.push((stored_enum(OrgRole::parse(&role), &role)?, from_row(r)?));
    }
    Ok(Some((site, members)))
}

/// The account and its password hash, for signing in.
pub async fn find_for_sign_in(c: &mut impl Conn, email: &Email) -> Result<Option<(Account, String)>, StoreError> {
    let row = c.fetch_optional(q("SELECT * FROM accounts WHERE email = $1").bind(email.as_str())).await?;
    match row {
        Some(r) => Ok(Some((from_row(&r)?, r.get("password_hash")?))),
        None => Ok(None),
    }
}

pub async fn find_by_email(c: &mut impl Conn, email: &Email) -> Result<Option<Account>, StoreError> {
    Ok(find_for_sign_in(c, email).await?.map(|(a, _)| a))
}

pub async fn password_hash(c: &mut impl Conn, id: &AccountId) -> Result<String, StoreError> {
    c.fetch_one(q("SELECT password_hash FROM accounts WHERE id = $1").bind(id.as_str())).await?.get("password_hash")
}

pub async fn set_password(c: &mut impl Conn, now: DateTime<Utc>, id: &AccountId, hash: &str) -> Result<(), StoreError> {
    c.execute(q("UPDATE accounts SET password_hash = $1, updated_at = $2 WHERE id = $3").bind(hash).bind(now).bind(id.as_str()))
        .await?;
    Ok(())
}

pub async fn set_staff_role(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    id: &AccountId,
    role: Option<StaffRole>,
) -> Result<(), StoreError> {
    c.execute(
        q("UPDATE accounts SET staff_role = $1, updated_at = $2 WHERE id = $3")
            .bind(role.map(|r| r.as_str()))
            .bind(now)
            .bind(id.as_str()),
    )
    .await?;
    Ok(())
}

pub async fn set_lang(c: &mut impl Conn, now: DateTime<Utc>, id: &AccountId, lang: Lang) -> Result<(), StoreError> {
    c.execute(q("UPDATE accounts SET lang = $1, updated_at = $2 WHERE id = $3").bind(lang.code()).bind(now).bind(id.as_str()))
        .await?;
    Ok(())
}

/// Every platform operator (for the operators' messages).
pub async fn operators(c: &mut impl Conn) -> Result<Vec<Account>, StoreError> {
    c.fetch_all(q("SELECT * FROM accounts WHERE staff_role = 'operator' ORDER BY id")).await?.iter().map(from_row).collect()
}

/// A phone number waiting for its code before it becomes the account's.
#[derive(Debug, Clone)]
pub struct PhoneBinding {
    pub phone: String,
    pub code_hash: String,
    pub code_expires: DateTime<Utc>,
    pub attempts: i64,
}

/// Starts (or restarts, with a new code) binding a phone number to the account.
pub async fn start_phone_binding(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    id: &AccountId,
    phone: &str,
    code_hash: &str,
    code_expires: DateTime<Utc>,
) -> Result<(), StoreError> {
    c.execute(
        q("INSERT INTO phone_bindings (account_id, phone, code_hash, code_expires, attempts, created_at) VALUES ($1, $2, $3, $4, 0, $5)
           ON CONFLICT (account_id) DO UPDATE SET phone = $2, code_hash = $3, code_expires = $4, attempts = 0, created_at = $5")
        .bind(id.as_str())
        .bind(phone)
        .bind(code_hash)
        .bind(code_expires)
        .bind(now),
    )
    .await?;
    Ok(())
}

pub async fn phone_binding(c: &mut impl Conn, id: &AccountId) -> Result<Option<PhoneBinding>, StoreError> {
    let Some(r) = c.fetch_optional(q("SELECT * FROM phone_bindings WHERE account_id = $1").bind(id.as_str())).await? else {
        return Ok(None);
    };
    Ok(Some(PhoneBinding {
        phone: r.get("phone")?,
        code_hash: r.get("code_hash")?,
        code_expires: r.get("code_expires")?,
        attempts: r.get("attempts")?,
    }))
}

/// Counts a try at the code (before it is checked, so that guesses are bounded).
pub async fn count_phone_attempt(c: &mut impl Conn, id: &AccountId) -> Result<(), StoreError> {
    c.execute(q("UPDATE phone_bindings SET attempts = attempts + 1 WHERE account_id = $1").bind(id.as_str())).await?;
    Ok(())
}

/// Makes the pending number the account's phone, if the code it was checked against is still
/// the pending one (a new request in between wins); false otherwise.
pub async fn bind_phone(tx: &mut Tx, now: DateTime<Utc>, id: &AccountId, code_hash: &str) -> Result<bool, StoreError> {
    let n = tx
        .execute(
            q("UPDATE accounts SET phone = (SELECT phone FROM phone_bindings WHERE account_id = $1 AND code_hash = $2), updated_at = $3
               WHERE id = $1 AND EXISTS (SELECT 1 FROM phone_bindings WHERE account_id = $1 AND code_hash = $2)")
            .bind(id.as_str())
            .bind(code_hash)
            .bind(now),
        )
        .await?;
    if n == 1 {
        tx.execute(q("DELETE FROM phone_bindings WHERE account_id = $1").bind(id.as_str())).await?;
    }
    Ok(n == 1)
}

/// Removes the account's phone (and any number waiting for its code).
pub async fn unbind_phone(tx: &mut Tx, now: DateTime<Utc>, id: &AccountId) -> Result<(), StoreError> {
    tx.execute(q("UPDATE accounts SET phone = NULL, updated_at = $1 WHERE id = $2").bind(now).bind(id.as_str())).await?;
    tx.execute(q("DELETE FROM phone_bindings WHERE account_id = $1").bind(id.as_str())).await?;
    Ok(())
}
