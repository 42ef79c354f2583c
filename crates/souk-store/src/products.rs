//! Products, their revisions (each seller edit, reviewed as a whole) and their plans.
//!
//! A product has at most one open revision (a draft, or one waiting for review), enforced
//! by a partial unique index, and at most one live revision: the last one approved. Editing
//! a listed product opens a new revision while the live one keeps selling.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use souk_core::catalog::{Plan, ProductContent, ProductKind, RevisionState};
use souk_core::id::{OrgId, PlanId, ProductId, RevisionId};
use souk_core::site::Site;

use crate::{Conn, Row, StoreError, parse_stored, q, q2, stored_enum};

#[derive(Debug, Clone, Serialize)]
pub struct Product {
    pub id: ProductId,
    pub seller_org_id: OrgId,
    pub kind: ProductKind,
    pub live_revision_id: Option<RevisionId>,
    pub listed: bool,
    pub delisted_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Revision {
    pub id: RevisionId,
    pub product_id: ProductId,
    pub number: i64,
    pub state: RevisionState,
    pub content: ProductContent,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub sla_due_at: Option<DateTime<Utc>>,
    pub reviewer: Option<String>,
    pub review_started_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// Per-field reasons of a rejection: (field, reason); field `""` is a general reason.
    pub reasons: Vec<(String, String)>,
}

fn product(r: &Row) -> Result<Product, StoreError> {
    let kind: String = r.get("kind")?;
    Ok(Product {
        id: parse_stored(ProductId::parse(&r.get::<String>("id")?))?,
        seller_org_id: parse_stored(OrgId::parse(&r.get::<String>("seller_org_id")?))?,
        kind: stored_enum(ProductKind::parse(&kind), &kind)?,
        live_revision_id: r
            .get::<Option<String>>("live_revision_id")?
            .map(|s| parse_stored(RevisionId::parse(&s)))
            .transpose()?,
        listed: r.get("listed")?,
        delisted_reason: r.get("delisted_reason")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

fn revision(r: &Row) -> Result<Revision, StoreError> {
    let state: String = r.get("state")?;
    let content: String = r.get("content")?;
    let reasons: Option<String> = r.get("reasons")?;
    Ok(Revision {
        id: parse_stored(RevisionId::parse(&r.get::<String>("id")?))?,
        product_id: parse_stored(ProductId::parse(&r.get::<String>("product_id")?))?,
        number: r.get("number")?,
        state: stored_enum(RevisionState::parse(&state), &state)?,
        content: parse_stored(serde_json::from_str(&content))?,
        created_by: r.get("created_by")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        submitted_at: r.get("submitted_at")?,
        sla_due_at: r.get("sla_due_at")?,
        reviewer: r.get("reviewer")?,
        review_started_at: r.get("review_started_at")?,
        decided_by: r.get("decided_by")?,
        decided_at: r.get("decided_at")?,
        reasons: match reasons {
            Some(s) => parse_stored(serde_json::from_str(&s))?,
            None => Vec::new(),
        },
    })
}

fn json(content: &ProductContent) -> Result<String, StoreError> {
    serde_json::to_string(content).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Creates a product with its first revision, a draft.
pub async fn create(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    seller: &OrgId,
    kind: ProductKind,
    content: &ProductContent,
    by: &str,
) -> Result<(Product, Revision), StoreError> {
    let id = ProductId::generate(now);
    c.execute(
        q("INSERT INTO products (id, seller_org_id, kind, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)")
            .bind(id.as_str())
            .bind(seller.as_str())
            .bind(kind.as_str())
            .bind(now),
    )
    .await?;
    let rev = new_revision(c, now, &id, content, by).await?;
    Ok((get(c, &id).await?, rev))
}

/// Opens a new draft revision. Another open revision gives [`StoreError::Conflict`].
pub async fn new_revision(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    product: &ProductId,
    content: &ProductContent,
    by: &str,
) -> Result<Revision, StoreError> {
    let id = RevisionId::generate(now);
    c.execute(
        q("INSERT INTO product_revisions (id, product_id, number, state, content, created_by, created_at, updated_at)
           VALUES ($1, $2, (SELECT COALESCE(MAX(number), 0) + 1 FROM product_revisions WHERE product_id = $2), 'draft', $3, $4, $5, $5)")
        .bind(id.as_str())
        .bind(product.as_str())
        .bind(json(content)?)
        .bind(by)
        .bind(now),
    )
    .await?;
    get_revision(c, &id).await
}

pub async fn get(c: &mut impl Conn, id: &ProductId) -> Result<Product, StoreError> {
    product(&c.fetch_one(q("SELECT * FROM products WHERE id = $1").bind(id.as_str())).await?)
}

/// A product of `seller`; another seller's product is not found.
pub async fn get_for_seller(c: &mut impl Conn, seller: &OrgId, id: &ProductId) -> Result<Product, StoreError> {
    product(
        &c.fetch_one(q("SELECT * FROM products WHERE id = $1 AND seller_org_id = $2").bind(id.as_str()).bind(seller.as_str()))
            .await?,
    )
}

pub async fn list_for_seller(c: &mut impl Conn, seller: &OrgId) -> Result<Vec<Product>, StoreError> {
    c.fetch_all(q("SELECT * FROM products WHERE seller_org_id = $1 ORDER BY id DESC").bind(seller.as_str()))
        .await?
        .iter()
        .map(product)
        .collect()
}

/// A product as a buyer's quote needs it, in one read: the product, if it is on `site`'s
/// storefront, with its live revision's content (`None` if it was never published).
pub async fn for_sale(
    c: &mut impl Conn,
    id: &ProductId,
    site: Site,
) -> Result<Option<(Product, Option<ProductContent>)>, StoreError> {
    let row = c
        .fetch_optional(
            q("SELECT p.*, r.content AS live_content FROM products p
               LEFT JOIN product_revisions r ON r.id = p.live_revision_id
               WHERE p.id = $1 AND EXISTS (SELECT 1 FROM storefront f WHERE f.product_id = p.id AND f.site = $2)")
            .bind(id.as_str())
            .bind(site.as_str()),
        )
        .await?;
    let Some(r) = row else { return Ok(None) };
    let live = match r.get::<Option<String>>("live_content")? {
        Some(content) => Some(parse_stored(serde_json::from_str(&content))?),
        None => None,
    };
    Ok(Some((product(&r)?, live)))
}

pub async fn get_revision(c: &mut impl Conn, id: &RevisionId) -> Result<Revision, StoreError> {
    revision(&c.fetch_one(q("SELECT * FROM product_revisions WHERE id = $1").bind(id.as_str())).await?)
}

/// The name in a product's live content (`None` if it was never published), read without
/// the rest of the content: messages name products, and a product's content can be long.
pub async fn live_name(c: &mut impl Conn, product: &str) -> Result<Option<String>, StoreError> {
    let row = c
        .fetch_optional(
            q2(
                "SELECT json_extract(r.content, '$.name') AS name FROM products p
                 JOIN product_revisions r ON r.id = p.live_revision_id WHERE p.id = $1",
                "SELECT CAST(r.content AS jsonb) ->> 'name' AS name FROM products p
                 JOIN product_revisions r ON r.id = p.live_revision_id WHERE p.id = $1",
            )
            .bind(product),
        )
        .await?;
    Ok(row.map(|r| r.get::<Option<String>>("name")).transpose()?.flatten())
}

/// The live name of a subscription's product and whether the subscription is a trial, in one
/// read; `None` if there is no such subscription (the name is `None` if never published).
pub async fn subscription_product_name(
    c: &mut impl Conn,
    subscription: &str,
) -> Result<Option<(Option<String>, bool)>, StoreError> {
    let row = c
        .fetch_optional(
            q2(
                "SELECT s.trial, json_extract(r.content, '$.name') AS name FROM subscriptions s
                 JOIN products p ON p.id = s.product_id LEFT JOIN product_revisions r ON r.id = p.live_revision_id
                 WHERE s.id = $1",
                "SELECT s.trial, CAST(r.content AS jsonb) ->> 'name' AS name FROM subscriptions s
                 JOIN products p ON p.id = s.product_id LEFT JOIN product_revisions r ON r.id = p.live_revision_id
                 WHERE s.id = $1",
            )
            .bind(subscription),
        )
        .await?;
    row.map(|r| Ok((r.get::<Option<String>>("name")?, r.get::<bool>("trial")?))).transpose()
}

pub async fn revisions(c: &mut impl Conn, product: &ProductId) -> Result<Vec<Revision>, StoreError> {
    c.fetch_all(q("SELECT * FROM product_revisions WHERE product_id = $1 ORDER BY number DESC").bind(product.as_str()))
        .await?
        .iter()
        .map(revision)
        .collect()
}

/// The draft or submission in progress, if any.
pub async fn open_revision(c: &mut impl Conn, product: &ProductId) -> Result<Option<Revision>, StoreError> {
    let row = c
        .fetch_optional(
            q("SELECT * FROM product_revisions WHERE product_id = $1 AND state IN ('draft', 'submitted', 'in_review')")
                .bind(product.as_str()),
        )
        .await?;
    row.as_ref().map(revision).transpose()
}

/// Replaces a draft's content; false if the revision is no longer a draft.
pub async fn update_draft(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    id: &RevisionId,
    content: &ProductContent,
) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE product_revisions SET content = $1, updated_at = $2 WHERE id = $3 AND state = 'draft'")
                .bind(json(content)?)
                .bind(now)
                .bind(id.as_str()),
        )
        .await?;
    Ok(n == 1)
}

/// Submits a draft for review, due by `sla_due_at`. False if it is no longer a draft.
pub async fn submit(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    id: &RevisionId,
    sla_due_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE product_revisions SET state = 'submitted', submitted_at = $1, sla_due_at = $2, updated_at = $1
               WHERE id = $3 AND state = 'draft'")
            .bind(now)
            .bind(sla_due_at)
            .bind(id.as_str()),
        )
        .await?;
    Ok(n == 1)
}

/// An operator takes a submission into review.
pub async fn start_review(c: &mut impl Conn, now: DateTime<Utc>, id: &RevisionId, reviewer: &str) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE product_revisions SET state = 'in_review', reviewer = $1, review_started_at = $2, updated_at = $2
               WHERE id = $3 AND state IN ('submitted', 'in_review')")
            .bind(reviewer)
            .bind(now)
            .bind(id.as_str()),
        )
        .await?;
    Ok(n == 1)
}

/// Records an operator's decision on a submission; false if it was already decided.
pub async fn decide(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    id: &RevisionId,
    to: RevisionState,
    by: &str,
    reasons: &[(String, String)],
) -> Result<bool, StoreError> {
    let reasons = if reasons.is_empty() {
        None
    } else {
        Some(serde_json::to_string(reasons).map_err(|e| StoreError::Corrupt(e.to_string()))?)
    };
    let n = c
        .execute(
            q("UPDATE product_revisions SET state = $1, decided_by = $2, decided_at = $3, reasons = $4, updated_at = $3,
                  reviewer = COALESCE(reviewer, $2)
               WHERE id = $5 AND state IN ('submitted', 'in_review')")
            .bind(to.as_str())
            .bind(by)
            .bind(now)
            .bind(reasons)
            .bind(id.as_str()),
        )
        .await?;
    Ok(n == 1)
}

/// The seller takes back a draft or an undecided submission.
pub async fn withdraw(c: &mut impl Conn, now: DateTime<Utc>, id: &RevisionId) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE product_revisions SET state = 'withdrawn', updated_at = $1
               WHERE id = $2 AND state IN ('draft', 'submitted', 'in_review')")
            .bind(now)
            .bind(id.as_str()),
        )
        .await?;
    Ok(n == 1)
}

pub async fn set_live(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    product: &ProductId,
    revision: &RevisionId,
) -> Result<(), StoreError> {
    c.execute(
        q("UPDATE products SET live_revision_id = $1, updated_at = $2 WHERE id = $3")
            .bind(revision.as_str())
            .bind(now)
            .bind(product.as_str()),
    )
    .await?;
    Ok(())
}

/// The seller lists or delists.
pub async fn set_listed(c: &mut impl Conn, now: DateTime<Utc>, product: &ProductId, listed: bool) -> Result<(), StoreError> {
    c.execute(q("UPDATE products SET listed = $1, updated_at = $2 WHERE id = $3").bind(listed).bind(now).bind(product.as_str()))
        .await?;
    Ok(())
}

/// An operator delists for a violation (`Some(reason)`) or lifts it (`None`).
pub async fn set_delisted(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    product: &ProductId,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    c.execute(
        q("UPDATE products SET delisted_reason = $1, updated_at = $2 WHERE id = $3")
            .bind(reason)
            .bind(now)
            .bind(product.as_str()),
    )
    .await?;
    Ok(())
}

/// A revision waiting for review, with what the queue shows beside it.
#[derive(Debug, Clone, Serialize)]
pub struct QueueItem {
    pub revision: Revision,
    pub kind: ProductKind,
    pub seller_org_id: String,
    pub seller_name: String,
    /// Whether the product already has a live revision (this is an edit).
    pub is_update: bool,
}

const QUEUE_UNWARNED: &str = "SELECT r.*, p.kind AS product_kind, p.seller_org_id AS seller, o.name AS seller_name,
        CAST(CASE WHEN p.live_revision_id IS NULL THEN 0 ELSE 1 END AS BIGINT) AS is_update
    FROM product_revisions r JOIN products p ON p.id = r.product_id JOIN orgs o ON o.id = p.seller_org_id
    WHERE r.state IN ('submitted', 'in_review') AND r.sla_warned_at IS NULL
    ORDER BY r.sla_due_at, r.id";

fn queue_item(r: &Row) -> Result<QueueItem, StoreError> {
    let kind: String = r.get("product_kind")?;
    Ok(QueueItem {
        revision: revision(r)?,
        kind: stored_enum(ProductKind::parse(&kind), &kind)?,
        seller_org_id: r.get("seller")?,
        seller_name: r.get("seller_name")?,
        is_update: r.get::<i64>("is_update")? == 1,
    })
}

/// The operators' queue: submissions by SLA deadline, soonest first.
pub async fn review_queue(c: &mut impl Conn, limit: u32) -> Result<Vec<QueueItem>, StoreError> {
    let rows = c
        .fetch_all(
            q("SELECT r.*, p.kind AS product_kind, p.seller_org_id AS seller, o.name AS seller_name,
                      CAST(CASE WHEN p.live_revision_id IS NULL THEN 0 ELSE 1 END AS BIGINT) AS is_update
               FROM product_revisions r JOIN products p ON p.id = r.product_id JOIN orgs o ON o.id = p.seller_org_id
               WHERE r.state IN ('submitted', 'in_review')
               ORDER BY r.sla_due_at, r.id LIMIT $1")
            .bind(i64::from(limit)),
        )
        .await?;
    rows.iter().map(queue_item).collect()
}

/// "My applications": every revision the seller has made, newest activity first.
pub async fn applications(c: &mut impl Conn, seller: &OrgId) -> Result<Vec<Revision>, StoreError> {
    c.fetch_all(
        q("SELECT r.* FROM product_revisions r JOIN products p ON p.id = r.product_id
           WHERE p.seller_org_id = $1 ORDER BY r.updated_at DESC, r.id DESC")
        .bind(seller.as_str()),
    )
    .await?
    .iter()
    .map(revision)
    .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct StoredPlan {
    pub id: PlanId,
    pub product_id: ProductId,
    pub code: String,
    pub spec: Plan,
    pub retired_at: Option<DateTime<Utc>>,
}

/// Makes the plans table match an approved revision: its plans are inserted or updated;
/// plans it no longer has are retired, never deleted (orders refer to them).
pub async fn materialize_plans(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    product: &ProductId,
    content: &ProductContent,
) -> Result<(), StoreError> {
    let mut keep = Vec::new();
    for plan in &content.plans {
        let Some(id) = plan.id.clone() else {
            return Err(StoreError::Corrupt("an approved plan has no id".into()));
        };
        let spec = serde_json::to_string(plan).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let updated = c
            .execute(
                q("UPDATE plans SET code = $1, spec = $2, retired_at = NULL, updated_at = $3 WHERE id = $4 AND product_id = $5")
                    .bind(&plan.code)
                    .bind(&spec)
                    .bind(now)
                    .bind(&id)
                    .bind(product.as_str()),
            )
            .await?;
        if updated == 0 {
            c.execute(
                q("INSERT INTO plans (id, product_id, code, spec, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)")
                    .bind(&id)
                    .bind(product.as_str())
                    .bind(&plan.code)
                    .bind(&spec)
                    .bind(now),
            )
            .await?;
        }
        keep.push(id);
    }
    for existing in plans(c, product, true).await? {
        if existing.retired_at.is_none() && !keep.contains(&existing.id.to_string()) {
            c.execute(q("UPDATE plans SET retired_at = $1, updated_at = $1 WHERE id = $2").bind(now).bind(existing.id.as_str()))
                .await?;
        }
    }
    Ok(())
}

pub async fn plans(c: &mut impl Conn, product: &ProductId, include_retired: bool) -> Result<Vec<StoredPlan>, StoreError> {
    let rows = c.fetch_all(q("SELECT * FROM plans WHERE product_id = $1 ORDER BY created_at, id").bind(product.as_str())).await?;
    plans_of(&rows, include_retired)
}

/// Plans from their rows, in order; retired ones only if asked for.
fn plans_of(rows: &[Row], include_retired: bool) -> Result<Vec<StoredPlan>, StoreError> {
    let mut out = Vec::new();
    for r in rows {
        let retired_at: Option<DateTime<Utc>> = r.get("retired_at")?;
        if retired_at.is_some() && !include_retired {
            continue;
        }
        let spec: String = r.get("spec")?;
        out.push(StoredPlan {
            id: parse_stored(PlanId::parse(&r.get::<String>("id")?))?,
            product_id: parse_stored(ProductId::parse(&r.get::<String>("product_id")?))?,
            code: r.get("code")?,
            spec: parse_stored(serde_json::from_str(&spec))?,
            retired_at,
        });
    }
    Ok(out)
}

/// A seller's product with what its console shows of it.
#[derive(Debug, Clone)]
pub struct SellerProduct {
    pub product: Product,
    /// What buyers see, if it was ever published.
    pub live: Option<Revision>,
    /// The revision being written or reviewed, if any.
    pub open: Option<Revision>,
    /// Its plans, retired ones included, in order.
    pub plans: Vec<StoredPlan>,
}

/// A seller's products, newest first, each with its live and open revisions and its plans:
/// four statements however many products the seller has (they were three per product).
pub async fn list_for_seller_in_full(c: &mut impl Conn, seller: &OrgId) -> Result<Vec<SellerProduct>, StoreError> {
    let products = list_for_seller(c, seller).await?;
    let by_product = |rows: Vec<Row>| -> Result<HashMap<String, Revision>, StoreError> {
        rows.iter().map(|r| revision(r).map(|rev| (rev.product_id.to_string(), rev))).collect()
    };
    let mut live = by_product(
        c.fetch_all(
            q("SELECT r.* FROM product_revisions r JOIN products p ON p.live_revision_id = r.id WHERE p.seller_org_id = $1")
                .bind(seller.as_str()),
        )
        .await?,
    )?;
    let mut open = by_product(
        c.fetch_all(
            q("SELECT r.* FROM product_revisions r JOIN products p ON p.id = r.product_id
               WHERE p.seller_org_id = $1 AND r.state IN ('draft', 'submitted', 'in_review')")
            .bind(seller.as_str()),
        )
        .await?,
    )?;
    let plan_rows = c
        .fetch_all(
            q("SELECT pl.* FROM plans pl JOIN products p ON p.id = pl.product_id WHERE p.seller_org_id = $1
               ORDER BY pl.created_at, pl.id")
            .bind(seller.as_str()),
        )
        .await?;
    let mut plans: HashMap<String, Vec<StoredPlan>> = HashMap::new();
    for plan in plans_of(&plan_rows, true)? {
        plans.entry(plan.product_id.to_string()).or_default().push(plan);
    }
    Ok(products
        .into_iter()
        .map(|product| {
            let key = product.id.to_string();
            SellerProduct {
                live: live.remove(&key),
                open: open.remove(&key),
                plans: plans.remove(&key).unwrap_or_default(),
                product,
            }
        })
        .collect())
}

pub async fn categories(c: &mut impl Conn) -> Result<Vec<Category>, StoreError> {
    c.fetch_all(q("SELECT * FROM categories ORDER BY position"))
        .await?
        .iter()
        .map(|r| Ok(Category { slug: r.get("slug")?, name_en: r.get("name_en")?, name_zh: r.get("name_zh")? }))
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct Category {
    pub slug: String,
    pub name_en: String,
    pub name_zh: String,
}

/// Submissions whose "SLA at risk" event has not been sent yet.
pub async fn unwarned_pending(c: &mut impl Conn) -> Result<Vec<QueueItem>, StoreError> {
    let rows = c.fetch_all(q(QUEUE_UNWARNED)).await?;
    rows.iter().map(queue_item).collect()
}

/// Claims the right to send the "SLA at risk" event for a revision: true for exactly one caller.
pub async fn mark_sla_warned(c: &mut impl Conn, now: DateTime<Utc>, id: &RevisionId) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE product_revisions SET sla_warned_at = $1 WHERE id = $2 AND sla_warned_at IS NULL")
                .bind(now)
                .bind(id.as_str()),
        )
        .await?;
    Ok(n == 1)
}
