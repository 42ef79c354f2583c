//! Enterprise user authorization (seed §5): an enterprise's admin decides which members may use
//! an application the enterprise bought; each change reaches the seller's system as an
//! `authorization.sync` delivery, in order with the subscription's other events.

use chrono::{DateTime, Utc};
use serde_json::json;
use souk_core::id::{AccountId, OrgId};
use souk_core::identity::OrgKind;
use souk_store::app_users::{self, AppUser};
use souk_store::{Tx, orders, orgs, outbox};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{Error, Result};

async fn enterprise_subscription(state: &AppState, org: &OrgId, subscription_id: &str) -> Result<orders::Subscription> {
    let mut db = state.db.clone();
    let s = orders::get_subscription(&mut db, subscription_id).await?;
    if s.buyer_org_id != org.as_str() {
        return Err(Error::not_found());
    }
    if orgs::get(&mut db, org).await?.kind != OrgKind::Enterprise {
        return Err(Error::conflict("not_enterprise", "user authorization is for enterprise organizations"));
    }
    Ok(s)
}

#[allow(clippy::too_many_arguments)]
async fn sync(
    tx: &mut Tx,
    now: DateTime<Utc>,
    s: &orders::Subscription,
    flag: &str,
    account: &AccountId,
    email: &str,
    name: &str,
    role: &str,
) -> Result<String> {
    let id = outbox::enqueue(
        tx,
        now,
        "authorization.sync",
        &s.id,
        &json!({
            "subscription_id": s.id, "flag": flag,
            "users": [{ "account_id": account, "email": email, "name": name, "role": role, "enabled": flag != "delete" }],
        }),
    )
    .await?;
    Ok(id.to_string())
}

/// Lets a member use the application (or changes their role): `admin` or `user`.
pub async fn grant(
    state: &AppState,
    caller: &Caller,
    org: &OrgId,
    subscription_id: &str,
    account_id: &str,
    role: &str,
) -> Result<AppUser> {
    caller.admin_of(state, org).await?;
    if !matches!(role, "admin" | "user") {
        return Err(Error::field("role", "admin or user"));
    }
    let s = enterprise_subscription(state, org, subscription_id).await?;
    if !matches!(s.state.as_str(), "pending_fulfillment" | "active") {
        return Err(Error::conflict("illegal_transition", "only a running subscription's users can change"));
    }
    let account: AccountId = account_id.parse().map_err(|_| Error::field("account_id", "not a member of this organization"))?;
    let mut db = state.db.clone();
    let member = orgs::members(&mut db, org)
        .await?
        .into_iter()
        .find(|m| m.account_id == account)
        .ok_or_else(|| Error::field("account_id", "not a member of this organization"))?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let existed = app_users::upsert(&mut tx, now, &s.id, account.as_str(), role).await?;
    let event =
        sync(&mut tx, now, &s, if existed { "modify" } else { "add" }, &account, &member.email, &member.name, role).await?;
    app_users::set_sync_event(&mut tx, &s.id, account.as_str(), &event).await?;
    souk_store::audit::record(
        &mut tx,
        now,
        souk_store::audit::NewEntry {
            actor: &caller.actor(),
            actor_org: Some(org),
            action: "app_user.granted",
            target: &s.id,
            summary: format!("{} may use it as {role}", member.email),
            request_id: None,
        },
    )
    .await?;
    tx.commit().await?;
    list(state, caller, org, subscription_id)
        .await?
        .into_iter()
        .find(|u| u.account_id == account.as_str())
        .ok_or_else(Error::not_found)
}

/// Takes a member's access away.
pub async fn revoke(state: &AppState, caller: &Caller, org: &OrgId, subscription_id: &str, account_id: &str) -> Result<()> {
    caller.admin_of(state, org).await?;
    let s = enterprise_subscription(state, org, subscription_id).await?;
    let account: AccountId = account_id.parse().map_err(|_| Error::not_found())?;
    let mut db = state.db.clone();
    let member = orgs::members(&mut db, org).await?.into_iter().find(|m| m.account_id == account);
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    if !app_users::remove(&mut tx, &s.id, account.as_str()).await? {
        return Err(Error::not_found());
    }
    let (email, name) = member.map(|m| (m.email, m.name)).unwrap_or_default();
    sync(&mut tx, now, &s, "delete", &account, &email, &name, "user").await?;
    souk_store::audit::record(
        &mut tx,
        now,
        souk_store::audit::NewEntry {
            actor: &caller.actor(),
            actor_org: Some(org),
            action: "app_user.revoked",
            target: &s.id,
            summary: format!("{email} may no longer use it"),
            request_id: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The members authorized, each with the delivery state of their last change.
pub async fn list(state: &AppState, caller: &Caller, org: &OrgId, subscription_id: &str) -> Result<Vec<AppUser>> {
    caller.role_in(state, org).await?;
    let s = enterprise_subscription(state, org, subscription_id).await?;
    Ok(app_users::list(&mut state.db.clone(), &s.id).await?)
}
