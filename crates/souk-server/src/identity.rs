//! Identity operations shared by the JSON API and the pages: sign-up, sign-in, passwords,
//! organizations, members, API keys. Each opens one transaction for the change and its
//! audit entry, so either both are written or neither.

use axum::http::StatusCode;
use chrono::Duration;
use souk_core::id::{AccountId, ApiKeyId, OrgId};
use souk_core::identity::{Email, FieldError, Name, OrgKind, OrgRole, Password, StaffRole};
use souk_core::site::{Lang, Site};
use souk_store::accounts::{self, Account, NewAccount};
use souk_store::api_keys::{self, ApiKey, NewKey};
use souk_store::orgs::{self, Org};
use souk_store::{StoreError, audit, sessions};

use crate::AppState;
use crate::auth::{API_KEY_PREFIX, Caller, hash_password, hash_token, random_token, verify_password};
use crate::error::{Error, ProblemField, Result};

/// How long a browser session lasts.
pub const SESSION_TTL: Duration = Duration::days(14);

/// Untrusted sign-up input.
pub struct SignUp<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password: &'a str,
    pub site: &'a str,
    pub lang: Option<&'a str>,
}

fn collect<T>(errors: &mut Vec<FieldError>, r: std::result::Result<T, FieldError>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

fn email_taken() -> Error {
    Error::Problem {
        status: StatusCode::CONFLICT,
        code: "email_taken",
        detail: "an account with this email already exists".into(),
        fields: vec![ProblemField { field: "email".into(), message: "is already registered".into() }],
    }
}

/// Creates the account with its personal organization.
pub async fn sign_up(state: &AppState, input: SignUp<'_>, request_id: Option<&str>) -> Result<Account> {
    let mut errors = Vec::new();
    let email = collect(&mut errors, Email::parse("email", input.email));
    let name = collect(&mut errors, Name::parse("name", input.name, 80));
    let password = collect(&mut errors, Password::parse("password", input.password));
    let site = collect(&mut errors, Site::parse(input.site).map_err(|_| FieldError::new("site", "must be cn or intl")));
    let lang = match input.lang.filter(|l| !l.is_empty()) {
        Some(raw) => collect(&mut errors, Lang::parse(raw).ok_or_else(|| FieldError::new("lang", "must be en or zh-CN"))),
        None => site.map(Site::default_lang),
    };
    let (Some(email), Some(name), Some(password), Some(site), Some(lang)) = (email, name, password, site, lang) else {
        return Err(Error::validation(errors));
    };
    create_account(state, &email, &name, &password, site, lang, None, request_id).await
}

/// Creates an account from parsed values; used by sign-up, the demo and `admin create-operator`.
#[allow(clippy::too_many_arguments)]
pub async fn create_account(
    state: &AppState,
    email: &Email,
    name: &Name,
    password: &Password,
    site: Site,
    lang: Lang,
    staff_role: Option<StaffRole>,
    request_id: Option<&str>,
) -> Result<Account> {
    let hash = hash_password(password.expose().to_owned()).await?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let account = accounts::create(
        &mut tx,
        now,
        NewAccount { email, name: name.as_str(), password_hash: &hash, site, lang, phone: None, staff_role },
    )
    .await
    .map_err(|e| if e.is_conflict() { email_taken() } else { e.into() })?;
    audit::record(
        &mut tx,
        now,
        audit::NewEntry {
            actor: account.id.as_str(),
            actor_org: Some(&account.personal_org_id),
            action: "account.created",
            target: account.id.as_str(),
            summary: format!("account {} created on site {}", account.email, site.as_str()),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(account)
}

fn invalid_credentials() -> Error {
    Error::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "the email or the password is wrong")
}

/// Checks the credentials and opens a session. Returns the account and the session token
/// (which goes into the cookie and nowhere else).
pub async fn sign_in(state: &AppState, email: &str, password: &str) -> Result<(Account, String)> {
    let email = Email::parse("email", email).map_err(|e| Error::validation(vec![e]))?;
    let found = accounts::find_for_sign_in(&mut state.db.clone(), &email).await?;
    let Some((account, hash)) = found else {
        // Spend the same time as a real check, so response times do not reveal which
        // emails are registered.
        let dummy = DUMMY_HASH.get_or_try_init(|| hash_password(random_token(16))).await?;
        let _ = verify_password(password.to_owned(), dummy.clone()).await;
        return Err(invalid_credentials());
    };
    if !verify_password(password.to_owned(), hash).await? {
        return Err(invalid_credentials());
    }
    let token = random_token(32);
    sessions::create(&mut state.db.clone(), state.clock.now(), &account.id, &hash_token(&token), SESSION_TTL).await?;
    Ok((account, token))
}

/// A hash of a random password, checked against when the email is unknown.
static DUMMY_HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

pub async fn sign_out(state: &AppState, token: &str) -> Result<()> {
    sessions::delete(&mut state.db.clone(), &hash_token(token)).await?;
    Ok(())
}

/// Changes the password after checking the current one, and signs out every other session.
pub async fn change_password(
    state: &AppState,
    caller: &Caller,
    current: &str,
    new: &str,
    request_id: Option<&str>,
) -> Result<()> {
    let account = caller.account()?;
    let new = Password::parse("new_password", new).map_err(|e| Error::validation(vec![e]))?;
    let hash = accounts::password_hash(&mut state.db.clone(), &account.id).await?;
    if !verify_password(current.to_owned(), hash).await? {
        return Err(Error::field("current_password", "is not your current password"));
    }
    let new_hash = hash_password(new.expose().to_owned()).await?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    accounts::set_password(&mut tx, now, &account.id, &new_hash).await?;
    sessions::delete_others(&mut tx, &account.id, caller.session()).await?;
    audit::record(
        &mut tx,
        now,
        audit::NewEntry {
            actor: account.id.as_str(),
            actor_org: None,
            action: "account.password_changed",
            target: account.id.as_str(),
            summary: "password changed; other sessions signed out".into(),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn create_org(state: &AppState, caller: &Caller, name: &str, request_id: Option<&str>) -> Result<Org> {
    let account = caller.account()?;
    let name = Name::parse("name", name, 120).map_err(|e| Error::validation(vec![e]))?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let org = orgs::create_enterprise(&mut tx, now, name.as_str(), account.site, &account.id).await?;
    audit::record(
        &mut tx,
        now,
        audit::NewEntry {
            actor: account.id.as_str(),
            actor_org: Some(&org.id),
            action: "org.created",
            target: org.id.as_str(),
            summary: format!("enterprise organization {:?} created", org.name),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(org)
}

pub fn parse_role(field: &'static str, raw: &str) -> Result<OrgRole> {
    OrgRole::parse(raw).ok_or_else(|| Error::field(field, "must be owner, admin or member"))
}

/// Adds an existing account, by email, to an enterprise organization.
pub async fn add_member(
    state: &AppState,
    caller: &Caller,
    org_id: &OrgId,
    email: &str,
    role: &str,
    request_id: Option<&str>,
) -> Result<orgs::Member> {
    let my_role = caller.admin_of(state, org_id).await?;
    let mut errors = Vec::new();
    let email = collect(&mut errors, Email::parse("email", email));
    let role =
        collect(&mut errors, OrgRole::parse(role).ok_or_else(|| FieldError::new("role", "must be owner, admin or member")));
    let (Some(email), Some(role)) = (email, role) else { return Err(Error::validation(errors)) };
    if !my_role.can_grant(role) {
        return Err(Error::forbidden(format!("a {my_role} cannot grant the {role} role")));
    }
    let mut db = state.db.clone();
    let org = orgs::get(&mut db, org_id).await?;
    if org.kind == OrgKind::Personal {
        return Err(Error::conflict(
            "personal_org",
            "a personal organization has exactly one member; create an enterprise organization to work with others",
        ));
    }
    let account = accounts::find_by_email(&mut db, &email)
        .await?
        .ok_or_else(|| Error::field("email", "no account has this email; ask them to sign up first"))?;
    if account.site != org.site {
        return Err(Error::field("email", "this account belongs to another site"));
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    orgs::add_member(&mut tx, now, org_id, &account.id, role).await.map_err(|e| match e {
        StoreError::Conflict(_) => Error::conflict("already_member", "this account is already a member"),
        other => other.into(),
    })?;
    audit::record(
        &mut tx,
        now,
        audit::NewEntry {
            actor: &caller.actor(),
            actor_org: Some(org_id),
            action: "org.member_added",
            target: org_id.as_str(),
            summary: format!("{} added as {role}", account.email),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    orgs::members(&mut state.db.clone(), org_id)
        .await?
        .into_iter()
        .find(|m| m.account_id == account.id)
        .ok_or_else(Error::not_found)
}

/// Changes a member's role, or removes the member (`role = None`). The last owner can be
/// neither demoted nor removed: an organization always has someone who can administer it.
pub async fn change_member(
    state: &AppState,
    caller: &Caller,
    org_id: &OrgId,
    member: &AccountId,
    role: Option<OrgRole>,
    request_id: Option<&str>,
) -> Result<()> {
    let my_role = caller.admin_of(state, org_id).await?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let current = orgs::role_of(&mut tx, org_id, member).await?.ok_or_else(Error::not_found)?;
    if !my_role.can_grant(current) || role.is_some_and(|r| !my_role.can_grant(r)) {
        return Err(Error::forbidden(format!("a {my_role} cannot change a {current}")));
    }
    if current == OrgRole::Owner && role != Some(OrgRole::Owner) && orgs::count_owners(&mut tx, org_id).await? <= 1 {
        return Err(Error::conflict("last_owner", "an organization needs at least one owner"));
    }
    let summary = match role {
        Some(r) => {
            orgs::set_role(&mut tx, org_id, member, r).await?;
            format!("{member} is now {r}")
        }
        None => {
            orgs::remove_member(&mut tx, org_id, member).await?;
            format!("{member} removed")
        }
    };
    audit::record(
        &mut tx,
        now,
        audit::NewEntry {
            actor: &caller.actor(),
            actor_org: Some(org_id),
            action: if role.is_some() { "org.member_role_changed" } else { "org.member_removed" },
            target: org_id.as_str(),
            summary,
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Creates an API key and returns it with its secret, which is never shown again.
pub async fn create_api_key(
    state: &AppState,
    caller: &Caller,
    org_id: &OrgId,
    name: &str,
    role: &str,
    request_id: Option<&str>,
) -> Result<(ApiKey, String)> {
    let account = caller.account()?;
    let my_role = caller.admin_of(state, org_id).await?;
    let mut errors = Vec::new();
    let name = collect(&mut errors, Name::parse("name", name, 80));
    let role = collect(
        &mut errors,
        match OrgRole::parse(role) {
            Some(r @ (OrgRole::Admin | OrgRole::Member)) => Ok(r),
            _ => Err(FieldError::new("role", "must be admin or member")),
        },
    );
    let (Some(name), Some(role)) = (name, role) else { return Err(Error::validation(errors)) };
    if !my_role.can_grant(role) {
        return Err(Error::forbidden(format!("a {my_role} cannot create a key with the {role} role")));
    }
    let token = format!("{API_KEY_PREFIX}{}", random_token(30));
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let key = api_keys::create(
        &mut tx,
        now,
        NewKey {
            org: org_id,
            name: name.as_str(),
            role,
            token_hash: &hash_token(&token),
            token_prefix: &token[..API_KEY_PREFIX.len() + 6],
            created_by: &account.id,
        },
    )
    .await?;
    audit::record(
        &mut tx,
        now,
        audit::NewEntry {
            actor: account.id.as_str(),
            actor_org: Some(org_id),
            action: "api_key.created",
            target: key.id.as_str(),
            summary: format!("API key {:?} ({role}) created", key.name),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((key, token))
}

pub async fn revoke_api_key(
    state: &AppState,
    caller: &Caller,
    org_id: &OrgId,
    key_id: &ApiKeyId,
    request_id: Option<&str>,
) -> Result<()> {
    caller.admin_of(state, org_id).await?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    if !api_keys::revoke(&mut tx, now, org_id, key_id).await? {
        return Err(Error::not_found());
    }
    audit::record(
        &mut tx,
        now,
        audit::NewEntry {
            actor: &caller.actor(),
            actor_org: Some(org_id),
            action: "api_key.revoked",
            target: key_id.as_str(),
            summary: "API key revoked".into(),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Grants or removes a platform staff role. Only operators may do this.
pub async fn set_staff_role(
    state: &AppState,
    caller: &Caller,
    email: &str,
    role: Option<StaffRole>,
    request_id: Option<&str>,
) -> Result<Account> {
    let operator = caller.staff(StaffRole::Operator)?;
    let email = Email::parse("email", email).map_err(|e| Error::validation(vec![e]))?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let account =
        accounts::find_by_email(&mut tx, &email).await?.ok_or_else(|| Error::field("email", "no account has this email"))?;
    if account.id == operator.id && role != Some(StaffRole::Operator) {
        return Err(Error::conflict("self_demotion", "operators cannot remove their own operator role"));
    }
    accounts::set_staff_role(&mut tx, now, &account.id, role).await?;
    audit::record(
        &mut tx,
        now,
        audit::NewEntry {
            actor: operator.id.as_str(),
            actor_org: None,
            action: "account.staff_role_changed",
            target: account.id.as_str(),
            summary: format!("staff role of {} set to {}", account.email, role.map(|r| r.as_str()).unwrap_or("none")),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(accounts::get(&mut state.db.clone(), &account.id).await?)
}

/// `souk admin create-operator`: creates the account as an operator, or makes an existing
/// account one (its password unchanged). Returns the account and whether it was created.
pub async fn bootstrap_operator(
    state: &AppState,
    email: &Email,
    name: &Name,
    password: &Password,
    site: Site,
) -> Result<(Account, bool)> {
    let Some(existing) = accounts::find_by_email(&mut state.db.clone(), email).await? else {
        let account =
            create_account(state, email, name, password, site, site.default_lang(), Some(StaffRole::Operator), None).await?;
        return Ok((account, true));
    };
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    accounts::set_staff_role(&mut tx, now, &existing.id, Some(StaffRole::Operator)).await?;
    audit::record(
        &mut tx,
        now,
        audit::NewEntry {
            actor: "system",
            actor_org: None,
            action: "account.staff_role_changed",
            target: existing.id.as_str(),
            summary: format!("{} made an operator from the command line", existing.email),
            request_id: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((accounts::get(&mut state.db.clone(), &existing.id).await?, false))
}
