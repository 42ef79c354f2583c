//! Catalog operations shared by the API and the pages: agreements, seller onboarding and
//! enforcement, products and their drafts, review with a working-day SLA, listing.
//!
//! Every change runs in one transaction with its audit entry, its outbox event and the
//! storefront rows it affects, so the storefront never shows what the catalog does not hold.

use chrono::{DateTime, Utc};
use serde_json::json;
use souk_core::calendar::SlaStatus;
use souk_core::catalog::{ProductContent, ProductKind, RevisionState, check_rejection};
use souk_core::id::{OrgId, PlanId, ProductId, RevisionId};
use souk_core::identity::{FieldError, OrgKind, StaffRole};
use souk_store::products::{self, Product, QueueItem, Revision};
use souk_store::sellers::{self, Agreement, Seller};
use souk_store::{StoreError, Tx, audit, calendars, orgs, outbox, storefront};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{Error, Result};

/// Review SLA: this many working days after submission (seed §10, §14).
pub const REVIEW_SLA_WORKING_DAYS: u32 = 3;

struct Change<'a> {
    actor: &'a str,
    org: Option<&'a OrgId>,
    action: &'a str,
    target: &'a str,
    summary: String,
    request_id: Option<&'a str>,
}

async fn record(tx: &mut Tx, now: DateTime<Utc>, c: Change<'_>) -> Result<()> {
    audit::record(
        tx,
        now,
        audit::NewEntry {
            actor: c.actor,
            actor_org: c.org,
            action: c.action,
            target: c.target,
            summary: c.summary,
            request_id: c.request_id,
        },
    )
    .await?;
    Ok(())
}

fn slug(field: &'static str, raw: &str) -> std::result::Result<String, FieldError> {
    let s = raw.trim();
    if s.is_empty() || s.len() > 40 || !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(FieldError::new(field, "1 to 40 lower-case letters, digits or dashes"));
    }
    Ok(s.to_owned())
}

// ----- agreements and onboarding -----

pub async fn publish_agreement(
    state: &AppState,
    caller: &Caller,
    kind: &str,
    title: &str,
    body: &str,
    effective_at: Option<DateTime<Utc>>,
    request_id: Option<&str>,
) -> Result<Agreement> {
    let operator = caller.staff(StaffRole::Operator)?;
    let mut errors = Vec::new();
    let kind = slug("kind", kind).map_err(|e| errors.push(e)).ok();
    if title.trim().is_empty() || title.chars().count() > 200 {
        errors.push(FieldError::new("title", "1 to 200 characters"));
    }
    if body.trim().is_empty() || body.chars().count() > 200_000 {
        errors.push(FieldError::new("body", "1 to 200000 characters"));
    }
    let Some(kind) = kind.filter(|_| errors.is_empty()) else { return Err(Error::validation(errors)) };
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let a =
        sellers::publish_agreement(&mut tx, now, &kind, title.trim(), body, effective_at.unwrap_or(now), operator.id.as_str())
            .await?;
    record(
        &mut tx,
        now,
        Change {
            actor: operator.id.as_str(),
            org: None,
            action: "agreement.published",
            target: &a.id,
            summary: format!("{} version {} published, effective {}", a.kind, a.version, a.effective_at),
            request_id,
        },
    )
    .await?;
    outbox::enqueue(
        &mut tx,
        now,
        "agreement.published",
        &a.id,
        &json!({ "agreement_id": a.id, "kind": a.kind, "version": a.version }),
    )
    .await?;
    tx.commit().await?;
    Ok(a)
}

/// Where an organization stands as a seller.
pub struct SellerStanding {
    pub seller: Option<Seller>,
    pub current_agreements: Vec<Agreement>,
    pub missing_agreements: Vec<Agreement>,
}

pub async fn standing(state: &AppState, org: &OrgId) -> Result<SellerStanding> {
    let mut db = state.db.clone();
    let now = state.clock.now();
    Ok(SellerStanding {
        seller: sellers::get(&mut db, org).await?,
        current_agreements: sellers::current_agreements(&mut db, now).await?,
        missing_agreements: sellers::missing_acceptances(&mut db, now, org).await?,
    })
}

pub async fn accept_agreement(
    state: &AppState,
    caller: &Caller,
    org: &OrgId,
    agreement_id: &str,
    request_id: Option<&str>,
) -> Result<()> {
    caller.admin_of(state, org).await?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let a = sellers::get_agreement(&mut tx, agreement_id).await?;
    if sellers::accept(&mut tx, now, org, &a.id, &caller.actor()).await? {
        record(
            &mut tx,
            now,
            Change {
                actor: &caller.actor(),
                org: Some(org),
                action: "agreement.accepted",
                target: &a.id,
                summary: format!("{} version {} accepted", a.kind, a.version),
                request_id,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn agreements_missing(missing: &[Agreement]) -> Error {
    let names: Vec<String> = missing.iter().map(|a| format!("{} v{}", a.kind, a.version)).collect();
    Error::conflict("agreements_not_accepted", format!("accept the platform agreements in force first: {}", names.join(", ")))
}

/// An enterprise applies to sell. It must be verified and have accepted the agreements.
pub async fn apply_to_sell(state: &AppState, caller: &Caller, org_id: &OrgId, request_id: Option<&str>) -> Result<Seller> {
    caller.admin_of(state, org_id).await?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let org = orgs::get(&mut tx, org_id).await?;
    if org.kind != OrgKind::Enterprise || org.verification_status != "verified" {
        return Err(Error::conflict("verification_required", "only an enterprise with approved real-name verification can sell"));
    }
    let missing = sellers::missing_acceptances(&mut tx, now, org_id).await?;
    if !missing.is_empty() {
        return Err(agreements_missing(&missing));
    }
    if let Some(s) = sellers::get(&mut tx, org_id).await?
        && s.status != "rejected"
    {
        return Err(Error::conflict("already_applied", format!("this organization's seller status is {}", s.status)));
    }
    sellers::apply(&mut tx, now, org_id, &caller.actor()).await?;
    record(
        &mut tx,
        now,
        Change {
            actor: &caller.actor(),
            org: Some(org_id),
            action: "seller.applied",
            target: org_id.as_str(),
            summary: "applied to sell".into(),
            request_id,
        },
    )
    .await?;
    outbox::enqueue(&mut tx, now, "seller.applied", org_id.as_str(), &json!({ "org_id": org_id })).await?;
    tx.commit().await?;
    sellers::get(&mut state.db.clone(), org_id).await?.ok_or_else(Error::not_found)
}

pub async fn decide_seller(
    state: &AppState,
    caller: &Caller,
    org_id: &OrgId,
    approve: bool,
    reason: Option<&str>,
    request_id: Option<&str>,
) -> Result<Seller> {
    let operator = caller.staff(StaffRole::Operator)?;
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if !approve && reason.is_none() {
        return Err(Error::field("reason", "a rejection needs a reason the applicant can act on"));
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let to = if approve { "approved" } else { "rejected" };
    if !sellers::transition(&mut tx, now, org_id, "applied", to, operator.id.as_str(), reason).await? {
        return Err(match sellers::get(&mut tx, org_id).await? {
            None => Error::not_found(),
            Some(s) => Error::conflict("not_applied", format!("the seller is {}, not waiting for a decision", s.status)),
        });
    }
    if approve {
        let org = orgs::get(&mut tx, org_id).await?;
        orgs::set_roles(&mut tx, org_id, org.is_buyer, true, org.is_reseller).await?;
    }
    record(
        &mut tx,
        now,
        Change {
            actor: operator.id.as_str(),
            org: None,
            action: if approve { "seller.approved" } else { "seller.rejected" },
            target: org_id.as_str(),
            summary: reason.map(|r| format!("rejected: {r}")).unwrap_or_else(|| "approved to sell".into()),
            request_id,
        },
    )
    .await?;
    outbox::enqueue(
        &mut tx,
        now,
        "seller.decided",
        org_id.as_str(),
        &json!({ "org_id": org_id, "status": to, "reason": reason }),
    )
    .await?;
    tx.commit().await?;
    sellers::get(&mut state.db.clone(), org_id).await?.ok_or_else(Error::not_found)
}

/// The operator's enforcement actions (seed §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    Warn,
    Suspend,
    Reinstate,
    Delist,
    Relist,
}

impl Enforcement {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "warn" => Self::Warn,
            "suspend" => Self::Suspend,
            "reinstate" => Self::Reinstate,
            "delist" => Self::Delist,
            "relist" => Self::Relist,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warn => "warn",
            Self::Suspend => "suspend",
            Self::Reinstate => "reinstate",
            Self::Delist => "delist",
            Self::Relist => "relist",
        }
    }
}

/// Warns or suspends a seller, or delists one of its products, with a reason. Suspension
/// takes the seller's products off the storefront; running subscriptions are not touched.
pub async fn enforce(
    state: &AppState,
    caller: &Caller,
    org_id: &OrgId,
    action: Enforcement,
    product: Option<&ProductId>,
    reason: &str,
    request_id: Option<&str>,
) -> Result<()> {
    let operator = caller.staff(StaffRole::Operator)?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 1000 {
        return Err(Error::field("reason", "say why, in at most 1000 characters"));
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    if sellers::get(&mut tx, org_id).await?.is_none() {
        return Err(Error::not_found());
    }
    let affected: Vec<ProductId> = match (action, product) {
        (Enforcement::Delist | Enforcement::Relist, None) => return Err(Error::field("product_id", "delisting names a product")),
        (Enforcement::Delist | Enforcement::Relist, Some(p)) => {
            products::get_for_seller(&mut tx, org_id, p).await?;
            products::set_delisted(&mut tx, now, p, if action == Enforcement::Delist { Some(reason) } else { None }).await?;
            vec![p.clone()]
        }
        (Enforcement::Suspend, _) => {
            if !sellers::transition(&mut tx, now, org_id, "approved", "suspended", operator.id.as_str(), Some(reason)).await? {
                return Err(Error::conflict("not_active", "only an approved seller can be suspended"));
            }
            products::list_for_seller(&mut tx, org_id).await?.into_iter().map(|p| p.id).collect()
        }
        (Enforcement::Reinstate, _) => {
            if !sellers::transition(&mut tx, now, org_id, "suspended", "approved", operator.id.as_str(), Some(reason)).await? {
                return Err(Error::conflict("not_suspended", "only a suspended seller can be reinstated"));
            }
            products::list_for_seller(&mut tx, org_id).await?.into_iter().map(|p| p.id).collect()
        }
        (Enforcement::Warn, _) => Vec::new(),
    };
    for p in &affected {
        storefront::refresh(&mut tx, now, p).await?;
    }
    sellers::record_enforcement(&mut tx, now, org_id, product.map(|p| p.as_str()), action.as_str(), reason, operator.id.as_str())
        .await?;
    record(
        &mut tx,
        now,
        Change {
            actor: operator.id.as_str(),
            org: None,
            action: &format!("seller.{}", action.as_str()),
            target: product.map(|p| p.as_str()).unwrap_or(org_id.as_str()),
            summary: reason.to_owned(),
            request_id,
        },
    )
    .await?;
    outbox::enqueue(
        &mut tx,
        now,
        "seller.enforcement",
        org_id.as_str(),
        &json!({ "org_id": org_id, "action": action.as_str(), "product_id": product, "reason": reason }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

// ----- products and drafts -----

async fn require_active_seller(tx: &mut Tx, org: &OrgId) -> Result<()> {
    match sellers::get(tx, org).await? {
        Some(s) if s.status == "approved" => Ok(()),
        Some(s) if s.status == "suspended" => Err(Error::forbidden("this seller is suspended")),
        _ => Err(Error::forbidden("this organization is not an approved seller; apply to sell first")),
    }
}

/// Gives new plans ids, and refuses ids that are not this product's.
fn assign_plan_ids(now: DateTime<Utc>, content: &mut ProductContent, known: &[String]) -> Result<()> {
    for (i, plan) in content.plans.iter_mut().enumerate() {
        match &plan.id {
            Some(id) if known.contains(id) => {}
            Some(_) => {
                return Err(Error::validation(vec![FieldError::new(
                    format!("plans[{i}].id"),
                    "is not a plan of this product; leave it out for a new plan",
                )]));
            }
            None => plan.id = Some(PlanId::generate(now).to_string()),
        }
    }
    Ok(())
}

async fn known_plan_ids(tx: &mut Tx, product: &ProductId) -> Result<Vec<String>> {
    let mut ids: Vec<String> = products::plans(tx, product, true).await?.into_iter().map(|p| p.id.to_string()).collect();
    for r in products::revisions(tx, product).await? {
        ids.extend(r.content.plans.iter().filter_map(|p| p.id.clone()));
    }
    Ok(ids)
}

fn parse_draft(mut content: ProductContent) -> Result<ProductContent> {
    content.normalise();
    content.check_draft().map_err(Error::validation)?;
    Ok(content)
}

pub async fn create_product(
    state: &AppState,
    caller: &Caller,
    org: &OrgId,
    kind: ProductKind,
    content: ProductContent,
    request_id: Option<&str>,
) -> Result<(Product, Revision)> {
    let mut content = parse_draft(content)?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    require_active_seller(&mut tx, org).await?;
    assign_plan_ids(now, &mut content, &[])?;
    let (p, r) = products::create(&mut tx, now, org, kind, &content, &caller.actor()).await?;
    record(
        &mut tx,
        now,
        Change {
            actor: &caller.actor(),
            org: Some(org),
            action: "product.created",
            target: p.id.as_str(),
            summary: format!("{kind} product {:?} drafted", content.name),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((p, r))
}

/// Saves the seller's edit as the open draft, opening a new revision if the product has
/// none (editing a listed product). A revision waiting for review is frozen.
pub async fn save_draft(
    state: &AppState,
    caller: &Caller,
    org: &OrgId,
    product_id: &ProductId,
    content: ProductContent,
    request_id: Option<&str>,
) -> Result<Revision> {
    let mut content = parse_draft(content)?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    products::get_for_seller(&mut tx, org, product_id).await?;
    require_active_seller(&mut tx, org).await?;
    let known = known_plan_ids(&mut tx, product_id).await?;
    assign_plan_ids(now, &mut content, &known)?;
    let rev = match products::open_revision(&mut tx, product_id).await? {
        Some(r) if r.state.is_editable() => {
            products::update_draft(&mut tx, now, &r.id, &content).await?;
            products::get_revision(&mut tx, &r.id).await?
        }
        Some(r) => {
            return Err(Error::conflict(
                "revision_in_review",
                format!("revision {} is {} and cannot change; withdraw it to edit", r.number, r.state),
            ));
        }
        None => products::new_revision(&mut tx, now, product_id, &content, &caller.actor()).await.map_err(|e| match e {
            StoreError::Conflict(_) => Error::conflict("revision_in_review", "another revision is open"),
            other => other.into(),
        })?,
    };
    record(
        &mut tx,
        now,
        Change {
            actor: &caller.actor(),
            org: Some(org),
            action: "product.draft_saved",
            target: rev.id.as_str(),
            summary: format!("revision {} saved", rev.number),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(rev)
}

/// Submits the open draft for review; it is frozen until decided or withdrawn.
pub async fn submit(
    state: &AppState,
    caller: &Caller,
    org_id: &OrgId,
    product_id: &ProductId,
    request_id: Option<&str>,
) -> Result<Revision> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let product = products::get_for_seller(&mut tx, org_id, product_id).await?;
    require_active_seller(&mut tx, org_id).await?;
    let missing = sellers::missing_acceptances(&mut tx, now, org_id).await?;
    if !missing.is_empty() {
        return Err(agreements_missing(&missing));
    }
    let rev = match products::open_revision(&mut tx, product_id).await? {
        Some(r) if r.state == RevisionState::Draft => r,
        Some(r) => return Err(Error::conflict("already_submitted", format!("revision {} is already {}", r.number, r.state))),
        None => return Err(Error::conflict("no_draft", "there is no draft to submit; save your changes first")),
    };
    let categories: Vec<String> = products::categories(&mut tx).await?.into_iter().map(|c| c.slug).collect();
    let images = souk_store::uploads::image_ids(&mut tx, org_id).await?;
    rev.content.check(product.kind, &categories, &images).map_err(Error::validation)?;
    let org = orgs::get(&mut tx, org_id).await?;
    let due = calendars::load(&mut tx, org.site).await?.add_working_days(now, REVIEW_SLA_WORKING_DAYS);
    if !products::submit(&mut tx, now, &rev.id, due).await? {
        return Err(Error::conflict("already_submitted", "the draft was submitted meanwhile"));
    }
    record(
        &mut tx,
        now,
        Change {
            actor: &caller.actor(),
            org: Some(org_id),
            action: "product.submitted",
            target: rev.id.as_str(),
            summary: format!("revision {} of {:?} submitted; review due {due}", rev.number, rev.content.name),
            request_id,
        },
    )
    .await?;
    outbox::enqueue(
        &mut tx,
        now,
        "product.review_submitted",
        org_id.as_str(),
        &json!({ "org_id": org_id, "product_id": product_id, "revision_id": rev.id, "sla_due_at": due }),
    )
    .await?;
    tx.commit().await?;
    Ok(products::get_revision(&mut state.db.clone(), &rev.id).await?)
}

pub async fn withdraw(
    state: &AppState,
    caller: &Caller,
    org_id: &OrgId,
    product_id: &ProductId,
    request_id: Option<&str>,
) -> Result<Revision> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    products::get_for_seller(&mut tx, org_id, product_id).await?;
    let rev = products::open_revision(&mut tx, product_id)
        .await?
        .ok_or_else(|| Error::conflict("no_open_revision", "nothing to withdraw"))?;
    rev.state.withdraw().map_err(|e| Error::conflict("illegal_transition", e.to_string()))?;
    products::withdraw(&mut tx, now, &rev.id).await?;
    record(
        &mut tx,
        now,
        Change {
            actor: &caller.actor(),
            org: Some(org_id),
            action: "product.withdrawn",
            target: rev.id.as_str(),
            summary: format!("revision {} withdrawn", rev.number),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(products::get_revision(&mut state.db.clone(), &rev.id).await?)
}

/// The seller lists or delists an approved product.
pub async fn set_listed(
    state: &AppState,
    caller: &Caller,
    org_id: &OrgId,
    product_id: &ProductId,
    listed: bool,
    request_id: Option<&str>,
) -> Result<Product> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let p = products::get_for_seller(&mut tx, org_id, product_id).await?;
    if listed && p.live_revision_id.is_none() {
        return Err(Error::conflict("not_approved", "a product is listed only after its review passes"));
    }
    products::set_listed(&mut tx, now, product_id, listed).await?;
    storefront::refresh(&mut tx, now, product_id).await?;
    record(
        &mut tx,
        now,
        Change {
            actor: &caller.actor(),
            org: Some(org_id),
            action: if listed { "product.listed" } else { "product.delisted" },
            target: product_id.as_str(),
            summary: if listed { "listed by the seller".into() } else { "delisted by the seller".into() },
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(products::get(&mut state.db.clone(), product_id).await?)
}

// ----- review -----

/// A queue entry with where its SLA stands now.
pub struct QueueEntry {
    pub item: QueueItem,
    pub sla: SlaStatus,
}

pub async fn review_queue(state: &AppState, caller: &Caller) -> Result<Vec<QueueEntry>> {
    caller.staff(StaffRole::Operator)?;
    let mut db = state.db.clone();
    let now = state.clock.now();
    let items = products::review_queue(&mut db, 500).await?;
    let mut slas = Slas::new(now);
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let org = OrgId::parse(&item.seller_org_id).map_err(|e| anyhow::anyhow!(e))?;
        let sla = match item.revision.sla_due_at {
            Some(due) => slas.status(&mut db, &org, due).await?,
            None => SlaStatus::OnTrack,
        };
        out.push(QueueEntry { item, sla });
    }
    Ok(out)
}

/// Where review deadlines stand at one moment, loading each site's calendar once.
struct Slas {
    now: DateTime<Utc>,
    calendars: std::collections::HashMap<souk_core::site::Site, souk_core::calendar::WorkingCalendar>,
}

impl Slas {
    fn new(now: DateTime<Utc>) -> Self {
        Self { now, calendars: std::collections::HashMap::new() }
    }

    /// The SLA status of a submission by `org` due at `due`, on the org's site calendar.
    async fn status(&mut self, db: &mut souk_store::Db, org: &OrgId, due: DateTime<Utc>) -> Result<SlaStatus> {
        let site = orgs::get(db, org).await?.site;
        if let std::collections::hash_map::Entry::Vacant(slot) = self.calendars.entry(site) {
            slot.insert(calendars::load(db, site).await?);
        }
        Ok(self.calendars[&site].status(self.now, due))
    }
}

pub async fn start_review(state: &AppState, caller: &Caller, rev: &RevisionId, request_id: Option<&str>) -> Result<Revision> {
    let operator = caller.staff(StaffRole::Operator)?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let r = products::get_revision(&mut tx, rev).await?;
    r.state.start_review().map_err(|e| Error::conflict("illegal_transition", e.to_string()))?;
    products::start_review(&mut tx, now, rev, operator.id.as_str()).await?;
    record(
        &mut tx,
        now,
        Change {
            actor: operator.id.as_str(),
            org: None,
            action: "product.review_started",
            target: rev.as_str(),
            summary: "taken into review".into(),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(products::get_revision(&mut state.db.clone(), rev).await?)
}

/// Approves (the revision goes live, its plans become sellable) or rejects with reasons
/// per field.
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    rev_id: &RevisionId,
    approve: bool,
    reasons: Vec<(String, String)>,
    request_id: Option<&str>,
) -> Result<Revision> {
    let operator = caller.staff(StaffRole::Operator)?;
    let reasons: Vec<(String, String)> =
        reasons.into_iter().map(|(f, r)| (f.trim().to_owned(), r.trim().to_owned())).filter(|(_, r)| !r.is_empty()).collect();
    if !approve {
        check_rejection(&reasons, None).map_err(|e| Error::validation(vec![e]))?;
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let rev = products::get_revision(&mut tx, rev_id).await?;
    let to = rev.state.decide(approve).map_err(|e| Error::conflict("already_decided", e.to_string()))?;
    if !products::decide(&mut tx, now, rev_id, to, operator.id.as_str(), &reasons).await? {
        return Err(Error::conflict("already_decided", "another operator decided this revision first"));
    }
    let product = products::get(&mut tx, &rev.product_id).await?;
    if approve {
        products::set_live(&mut tx, now, &rev.product_id, rev_id).await?;
        products::materialize_plans(&mut tx, now, &rev.product_id, &rev.content).await?;
        storefront::refresh(&mut tx, now, &rev.product_id).await?;
    }
    let summary = if approve {
        format!("revision {} of {:?} approved", rev.number, rev.content.name)
    } else {
        format!(
            "revision {} rejected: {}",
            rev.number,
            reasons
                .iter()
                .map(|(f, r)| if f.is_empty() { r.clone() } else { format!("{f}: {r}") })
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    record(
        &mut tx,
        now,
        Change {
            actor: operator.id.as_str(),
            org: None,
            action: if approve { "product.approved" } else { "product.rejected" },
            target: rev_id.as_str(),
            summary,
            request_id,
        },
    )
    .await?;
    outbox::enqueue(
        &mut tx,
        now,
        "product.review_decided",
        product.seller_org_id.as_str(),
        &json!({ "org_id": product.seller_org_id, "product_id": product.id, "revision_id": rev_id, "status": to, "reasons": reasons }),
    )
    .await?;
    tx.commit().await?;
    Ok(products::get_revision(&mut state.db.clone(), rev_id).await?)
}

/// Sends "SLA at risk" once for every product or shop submission with less than a working
/// day left.
/// Safe on every node: the first to mark a revision sends its event.
pub async fn warn_sla_at_risk(state: &AppState) -> Result<usize> {
    let now = state.clock.now();
    let mut db = state.db.clone();
    let mut slas = Slas::new(now);
    let mut sent = 0;
    for item in products::unwarned_pending(&mut db).await? {
        let Some(due) = item.revision.sla_due_at else { continue };
        let org_id = OrgId::parse(&item.seller_org_id).map_err(|e| anyhow::anyhow!(e))?;
        let status = slas.status(&mut db, &org_id, due).await?;
        if status == SlaStatus::OnTrack {
            continue;
        }
        let mut tx = state.db.begin().await?;
        if products::mark_sla_warned(&mut tx, now, &item.revision.id).await? {
            let payload = json!({ "revision_id": item.revision.id, "product_id": item.revision.product_id, "sla_due_at": due, "status": status });
            outbox::enqueue(&mut tx, now, "product.review_sla_at_risk", item.revision.id.as_str(), &payload).await?;
            sent += 1;
        }
        tx.commit().await?;
    }
    for rev in souk_store::shops::unwarned_pending(&mut db).await? {
        let Some(due) = rev.sla_due_at else { continue };
        let status = slas.status(&mut db, &rev.org_id, due).await?;
        if status == SlaStatus::OnTrack {
            continue;
        }
        let mut tx = state.db.begin().await?;
        if souk_store::shops::mark_sla_warned(&mut tx, now, &rev.id).await? {
            let payload = json!({ "revision_id": rev.id, "org_id": rev.org_id, "sla_due_at": due, "status": status });
            outbox::enqueue(&mut tx, now, "shop.review_sla_at_risk", rev.id.as_str(), &payload).await?;
            sent += 1;
        }
        tx.commit().await?;
    }
    Ok(sent)
}

// ----- shop decoration (seed §10) -----

pub async fn save_shop_draft(
    state: &AppState,
    caller: &Caller,
    org: &OrgId,
    mut content: souk_core::catalog::ShopContent,
    request_id: Option<&str>,
) -> Result<souk_store::shops::ShopRevision> {
    content.normalise();
    if content.introduction.chars().count() > 10_000 || content.featured.len() > 50 {
        return Err(Error::field("introduction", "is far too long"));
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    require_active_seller(&mut tx, org).await?;
    let rev = souk_store::shops::save_draft(&mut tx, now, org, &content, &caller.actor()).await?.ok_or_else(|| {
        Error::conflict("revision_in_review", "the shop page waiting for review cannot change; withdraw it to edit")
    })?;
    record(
        &mut tx,
        now,
        Change {
            actor: &caller.actor(),
            org: Some(org),
            action: "shop.draft_saved",
            target: rev.id.as_str(),
            summary: format!("shop page revision {} saved", rev.number),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(rev)
}

pub async fn submit_shop(
    state: &AppState,
    caller: &Caller,
    org: &OrgId,
    request_id: Option<&str>,
) -> Result<souk_store::shops::ShopRevision> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    require_active_seller(&mut tx, org).await?;
    let missing = sellers::missing_acceptances(&mut tx, now, org).await?;
    if !missing.is_empty() {
        return Err(agreements_missing(&missing));
    }
    let rev = match souk_store::shops::open(&mut tx, org).await? {
        Some(r) if r.state == RevisionState::Draft => r,
        Some(r) => {
            return Err(Error::conflict("already_submitted", format!("shop page revision {} is already {}", r.number, r.state)));
        }
        None => return Err(Error::conflict("no_draft", "there is no draft to submit; save your shop page first")),
    };
    let own: Vec<String> = products::list_for_seller(&mut tx, org).await?.into_iter().map(|p| p.id.to_string()).collect();
    rev.content.check(&own).map_err(Error::validation)?;
    let site = orgs::get(&mut tx, org).await?.site;
    let due = calendars::load(&mut tx, site).await?.add_working_days(now, REVIEW_SLA_WORKING_DAYS);
    souk_store::shops::submit(&mut tx, now, &rev.id, due).await?;
    record(
        &mut tx,
        now,
        Change {
            actor: &caller.actor(),
            org: Some(org),
            action: "shop.submitted",
            target: rev.id.as_str(),
            summary: format!("shop page revision {} submitted; review due {due}", rev.number),
            request_id,
        },
    )
    .await?;
    outbox::enqueue(
        &mut tx,
        now,
        "shop.review_submitted",
        org.as_str(),
        &json!({ "org_id": org, "revision_id": rev.id, "sla_due_at": due }),
    )
    .await?;
    tx.commit().await?;
    Ok(souk_store::shops::get_revision(&mut state.db.clone(), &rev.id).await?)
}

pub async fn withdraw_shop(state: &AppState, caller: &Caller, org: &OrgId, request_id: Option<&str>) -> Result<()> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let rev =
        souk_store::shops::open(&mut tx, org).await?.ok_or_else(|| Error::conflict("no_open_revision", "nothing to withdraw"))?;
    souk_store::shops::withdraw(&mut tx, now, &rev.id).await?;
    record(
        &mut tx,
        now,
        Change {
            actor: &caller.actor(),
            org: Some(org),
            action: "shop.withdrawn",
            target: rev.id.as_str(),
            summary: format!("shop page revision {} withdrawn", rev.number),
            request_id,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Approves (the page is published) or rejects with reasons.
pub async fn decide_shop(
    state: &AppState,
    caller: &Caller,
    id: &souk_core::id::ShopRevisionId,
    approve: bool,
    reasons: Vec<(String, String)>,
    request_id: Option<&str>,
) -> Result<souk_store::shops::ShopRevision> {
    let operator = caller.staff(StaffRole::Operator)?;
    let reasons: Vec<(String, String)> =
        reasons.into_iter().map(|(f, r)| (f.trim().to_owned(), r.trim().to_owned())).filter(|(_, r)| !r.is_empty()).collect();
    if !approve {
        check_rejection(&reasons, None).map_err(|e| Error::validation(vec![e]))?;
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    let rev = souk_store::shops::get_revision(&mut tx, id).await?;
    let to = rev.state.decide(approve).map_err(|e| Error::conflict("already_decided", e.to_string()))?;
    if !souk_store::shops::decide(&mut tx, now, id, &rev.org_id, to, operator.id.as_str(), &reasons).await? {
        return Err(Error::conflict("already_decided", "another operator decided this shop page first"));
    }
    record(
        &mut tx,
        now,
        Change {
            actor: operator.id.as_str(),
            org: None,
            action: if approve { "shop.approved" } else { "shop.rejected" },
            target: id.as_str(),
            summary: format!("shop page revision {} {}", rev.number, to),
            request_id,
        },
    )
    .await?;
    outbox::enqueue(
        &mut tx,
        now,
        "shop.review_decided",
        rev.org_id.as_str(),
        &json!({ "org_id": rev.org_id, "revision_id": id, "status": to, "reasons": reasons }),
    )
    .await?;
    tx.commit().await?;
    Ok(souk_store::shops::get_revision(&mut state.db.clone(), id).await?)
}
