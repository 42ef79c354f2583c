//! The demo marketplace `souk demo` loads: staff, two sellers, a person buyer and an
//! enterprise buyer, each able to sign in. Loading twice changes nothing: every account is
//! looked up by email first. Later issues add products and orders here.

use serde_json::json;
use souk_core::identity::{Email, Name, Password, StaffRole};
use souk_core::site::Site;
use souk_core::verification::{Details, EnterpriseDetails, IndividualDetails, VerificationStatus};
use souk_store::accounts::{self, Account};
use souk_store::{audit, orgs, outbox, verifications};

use crate::AppState;
use crate::error::{Error, Result};
use crate::identity::create_account;

/// The password every demo account signs in with.
pub const DEMO_PASSWORD: &str = "souk-demo-password";

/// One demo account, as printed for the newcomer.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub role: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub org: Option<String>,
    pub created: bool,
}

struct Spec {
    role: &'static str,
    email: &'static str,
    name: &'static str,
    site: Site,
    staff: Option<StaffRole>,
    /// An enterprise org to create: (name, registration number, seller?).
    enterprise: Option<(&'static str, &'static str, bool)>,
    /// Verify the personal org as this person.
    verify_person: Option<&'static str>,
}

const SPECS: &[Spec] = &[
    Spec {
        role: "operator",
        email: "operator@souk.test",
        name: "Olivia Operator",
        site: Site::Intl,
        staff: Some(StaffRole::Operator),
        enterprise: None,
        verify_person: None,
    },
    Spec {
        role: "supervisor",
        email: "supervisor@souk.test",
        name: "Sam Supervisor",
        site: Site::Cn,
        staff: Some(StaffRole::Supervisor),
        enterprise: None,
        verify_person: None,
    },
    Spec {
        role: "seller",
        email: "seller@acme.test",
        name: "Alice Acme",
        site: Site::Intl,
        staff: None,
        enterprise: Some(("Acme Cloud Software Ltd", "GB12345678", true)),
        verify_person: None,
    },
    Spec {
        role: "seller",
        email: "seller@yunzhan.test",
        name: "王云",
        site: Site::Cn,
        staff: None,
        enterprise: Some(("云栈科技有限公司", "91110108MA01ABCD2X", true)),
        verify_person: None,
    },
    Spec {
        role: "buyer (person)",
        email: "buyer@souk.test",
        name: "Bob Buyer",
        site: Site::Intl,
        staff: None,
        enterprise: None,
        verify_person: Some("ID-A1234567"),
    },
    Spec {
        role: "buyer (enterprise)",
        email: "buyer@globex.test",
        name: "Grace Globex",
        site: Site::Intl,
        staff: None,
        enterprise: Some(("Globex Corporation", "US-98765432", false)),
        verify_person: None,
    },
];

/// Loads the demo data. Returns what a newcomer needs to sign in.
pub async fn load(state: &AppState) -> Result<Vec<DemoAccount>> {
    let password = Password::parse("password", DEMO_PASSWORD).map_err(|e| Error::validation(vec![e]))?;
    let mut out = Vec::new();
    for spec in SPECS {
        let email = Email::parse("email", spec.email).map_err(|e| Error::validation(vec![e]))?;
        let existing = accounts::find_by_email(&mut state.db.clone(), &email).await?;
        let created = existing.is_none();
        if existing.is_none() {
            let name = Name::parse("name", spec.name, 80).map_err(|e| Error::validation(vec![e]))?;
            let a =
                create_account(state, &email, &name, &password, spec.site, spec.site.default_lang(), spec.staff, None).await?;
            populate(state, &a, spec).await?;
        }
        let org = spec.enterprise.map(|(name, _, _)| name.to_owned());
        out.push(DemoAccount { role: spec.role, email: spec.email, password: DEMO_PASSWORD, org, created });
    }
    load_catalog(state).await?;
    Ok(out)
}

/// Publishes each demo seller's catalog (once).
async fn load_catalog(state: &AppState) -> Result<usize> {
    let mut db = state.db.clone();
    let find = |email: &'static str| Email::parse("email", email).map_err(|e| Error::validation(vec![e]));
    let operator = accounts::find_by_email(&mut db, &find("operator@souk.test")?).await?.ok_or_else(Error::not_found)?;
    let mut n = 0;
    for (email, site) in [("seller@acme.test", "intl"), ("seller@yunzhan.test", "cn")] {
        let seller = accounts::find_by_email(&mut db, &find(email)?).await?.ok_or_else(Error::not_found)?;
        let Some((org, _)) = orgs::list_for_account(&mut db, &seller.id)
            .await?
            .into_iter()
            .find(|(o, _)| o.kind == souk_core::identity::OrgKind::Enterprise)
        else {
            continue;
        };
        n += crate::demo_catalog::load(state, &operator, &seller, &org.id, site).await?;
    }
    Ok(n)
}

async fn populate(state: &AppState, account: &Account, spec: &Spec) -> Result<()> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    if let Some((org_name, reg, seller)) = spec.enterprise {
        let org = orgs::create_enterprise(&mut tx, now, org_name, spec.site, &account.id).await?;
        orgs::set_roles(&mut tx, &org.id, true, seller, false).await?;
        let details = Details::Enterprise(EnterpriseDetails {
            company_name: Name::parse("company_name", org_name, 200).map_err(|e| Error::validation(vec![e]))?,
            registration_number: reg.to_owned(),
            contact_name: Name::parse("contact_name", spec.name, 80).map_err(|e| Error::validation(vec![e]))?,
            contact_phone: souk_core::identity::Phone::parse(
                "contact_phone",
                if spec.site == Site::Cn { "+8613800000000" } else { "+14155550100" },
            )
            .map_err(|e| Error::validation(vec![e]))?,
            contact_email: Email::parse("contact_email", spec.email).map_err(|e| Error::validation(vec![e]))?,
        });
        approve(&mut tx, now, &org.id, &details).await?;
    }
    // Demo buyers start with money in their wallets, so a newcomer can buy right away.
    if spec.role.starts_with("buyer") {
        let wallet_org = match spec.enterprise {
            Some(_) => orgs::list_for_account(&mut tx, &account.id)
                .await?
                .into_iter()
                .find(|(o, _)| o.kind == souk_core::identity::OrgKind::Enterprise)
                .map(|(o, _)| o.id),
            None => Some(account.personal_org_id.clone()),
        };
        if let Some(org) = wallet_org {
            let amount = souk_core::money::Money::new(100_000, spec.site.currency());
            souk_store::wallets::credit(&mut tx, now, &org, amount, "top_up", Some("demo money"), "system").await?;
        }
    }
    if let Some(id_number) = spec.verify_person {
        let details = Details::Individual(IndividualDetails {
            real_name: Name::parse("real_name", spec.name, 80).map_err(|e| Error::validation(vec![e]))?,
            id_number: id_number.to_owned(),
        });
        approve(&mut tx, now, &account.personal_org_id, &details).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn approve(
    tx: &mut souk_store::Tx,
    now: chrono::DateTime<chrono::Utc>,
    org: &souk_core::id::OrgId,
    details: &Details,
) -> Result<()> {
    let v = verifications::create(tx, now, org, details, "system", &[]).await?;
    verifications::decide(tx, now, &v.id, VerificationStatus::Approved, "system", None).await?;
    orgs::set_verification(tx, org, "verified", Some(details.display_name()), Some(now)).await?;
    audit::record(
        tx,
        now,
        audit::NewEntry {
            actor: "system",
            actor_org: None,
            action: "verification.approved",
            target: v.id.as_str(),
            summary: format!("demo data: {} verified", details.display_name()),
            request_id: None,
        },
    )
    .await?;
    outbox::enqueue(
        tx,
        now,
        "verification.decided",
        org.as_str(),
        &json!({ "verification_id": v.id, "org_id": org, "status": "approved" }),
    )
    .await?;
    Ok(())
}
