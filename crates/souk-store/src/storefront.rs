//! The storefront: one row per listed product and site, kept in step with the catalog in
//! the same transaction as the change that affects it, and searched with each database's
//! full-text index over the tokens `souk_core::search` produces (FTS5 on SQLite, a GIN
//! tsvector on PostgreSQL).

use chrono::{DateTime, Utc};
use serde::Serialize;
use souk_core::catalog::ProductContent;
use souk_core::id::ProductId;
use souk_core::search::{index_text, query_tokens};
use souk_core::site::Site;

use crate::{Backend, Conn, StoreError, Tx, products, q, q2, sellers};

/// Removes the product from the storefront and, if it should be there, puts it back with
/// its live content. Call in the transaction of any change to the product or its seller.
pub async fn refresh(tx: &mut Tx, now: DateTime<Utc>, product_id: &ProductId) -> Result<(), StoreError> {
    if tx.backend() == Backend::Sqlite {
        tx.execute(
            q("DELETE FROM storefront_fts WHERE rowid IN (SELECT rowid FROM storefront WHERE product_id = $1)")
                .bind(product_id.as_str()),
        )
        .await?;
    }
    tx.execute(q("DELETE FROM storefront WHERE product_id = $1").bind(product_id.as_str())).await?;
    let product = products::get(tx, product_id).await?;
    let Some(live) = &product.live_revision_id else { return Ok(()) };
    if !product.listed || product.delisted_reason.is_some() || !sellers::is_active(tx, &product.seller_org_id).await? {
        return Ok(());
    }
    let content = products::get_revision(tx, live).await?.content;
    let text = search_text(&content);
    for site in &content.sites {
        let listing = Listing {
            product_id: product_id.as_str(),
            site: *site,
            seller_org_id: product.seller_org_id.as_str(),
            kind: product.kind.as_str(),
            category: &content.category,
            name: &content.name,
            summary: &content.summary,
            min_price: content.from_price(*site),
            has_trial: content.has_trial(),
            listed_at: now,
            search_text: &text,
        };
        insert_listing(tx, &listing).await?;
    }
    Ok(())
}

/// One storefront row.
pub struct Listing<'a> {
    pub product_id: &'a str,
    pub site: Site,
    pub seller_org_id: &'a str,
    pub kind: &'a str,
    pub category: &'a str,
    pub name: &'a str,
    pub summary: &'a str,
    pub min_price: Option<i64>,
    pub has_trial: bool,
    pub listed_at: DateTime<Utc>,
    /// Tokens from [`search_text`].
    pub search_text: &'a str,
}

/// Writes a storefront row and its full-text entry. [`refresh`] is the normal way in; the
/// search benchmark uses this directly to load many rows quickly.
pub async fn insert_listing(tx: &mut Tx, l: &Listing<'_>) -> Result<(), StoreError> {
    let row = tx
            .fetch_one(
                q2(
                    "INSERT INTO storefront (product_id, site, seller_org_id, kind, category, name, summary, min_price, has_trial, listed_at, search_text)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING rowid AS rid",
                    "INSERT INTO storefront (product_id, site, seller_org_id, kind, category, name, summary, min_price, has_trial, listed_at, search_text)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING 0::BIGINT AS rid",
                )
                .bind(l.product_id)
                .bind(l.site.as_str())
                .bind(l.seller_org_id)
                .bind(l.kind)
                .bind(l.category)
                .bind(l.name)
                .bind(l.summary)
                .bind(l.min_price)
                .bind(l.has_trial)
                .bind(l.listed_at)
                .bind(l.search_text),
            )
            .await?;
    if tx.backend() == Backend::Sqlite {
        let rid: i64 = row.get("rid")?;
        tx.execute(q("INSERT INTO storefront_fts (rowid, search_text) VALUES ($1, $2)").bind(rid).bind(l.search_text)).await?;
    }
    Ok(())
}

/// What is searched: name, summary, tags and description.
pub fn search_text(c: &ProductContent) -> String {
    let tags = c.tags.join(" ");
    index_text(&[&c.name, &c.summary, &tags, &c.description])
}

#[derive(Debug, Clone, Default)]
pub struct Search {
    pub query: Option<String>,
    pub category: Option<String>,
    pub kind: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub has_trial: bool,
    pub seller: Option<String>,
    /// `relevance` (default with a query), `newest` (default without), `price`, `price_desc`.
    pub sort: String,
    pub limit: u32,
    pub offset: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub product_id: String,
    pub site: String,
    pub seller_org_id: String,
    pub kind: String,
    pub category: String,
    pub name: String,
    pub summary: String,
    pub min_price: Option<i64>,
    pub has_trial: bool,
    pub listed_at: DateTime<Utc>,
}

/// Totals above this are reported as this number (the storefront shows "10000+").
pub const COUNT_CAP: i64 = 10_000;

/// Matching listings (one page) and the total number of matches, up to [`COUNT_CAP`].
///
/// The SQL is assembled from constant fragments so that each filter appears only when
/// given and each sort is a plain `ORDER BY` the indexes can serve; every value is bound.
pub async fn search(c: &mut impl Conn, s: &Search, site: Site) -> Result<(Vec<Hit>, i64), StoreError> {
    let tokens = s.query.as_deref().map(query_tokens).unwrap_or_default();
    let backend = c.backend();
    let mut args: Vec<crate::Value> = Vec::new();
    fn arg(args: &mut Vec<crate::Value>, v: crate::Value) -> String {
        args.push(v);
        format!("${}", args.len())
    }
    let (from, mut wheres) = if tokens.is_empty() {
        ("FROM storefront s".to_owned(), Vec::new())
    } else {
        // Tokens are letters and digits only, so quoting them cannot change the query's shape.
        // On SQLite, CROSS JOIN keeps the full-text index as the outer loop: otherwise the
        // planner may walk the storefront and probe the index once per row.
        match backend {
            Backend::Sqlite => {
                let expr = tokens.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(" ");
                let p = arg(&mut args, expr.into());
                (
                    "FROM storefront_fts CROSS JOIN storefront s ON s.rowid = storefront_fts.rowid".to_owned(),
                    vec![format!("storefront_fts MATCH {p}")],
                )
            }
            Backend::Postgres => {
                let expr = tokens.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(" & ");
                let p = arg(&mut args, expr.into());
                (format!("FROM storefront s, to_tsquery('simple', {p}) query"), vec!["s.search_tsv @@ query".to_owned()])
            }
        }
    };
    wheres.push(format!("s.site = {}", arg(&mut args, site.as_str().into())));
    if let Some(v) = &s.category {
        wheres.push(format!("s.category = {}", arg(&mut args, v.as_str().into())));
    }
    if let Some(v) = &s.kind {
        wheres.push(format!("s.kind = {}", arg(&mut args, v.as_str().into())));
    }
    if let Some(v) = s.min_price {
        wheres.push(format!("s.min_price >= {}", arg(&mut args, v.into())));
    }
    if let Some(v) = s.max_price {
        wheres.push(format!("s.min_price <= {}", arg(&mut args, v.into())));
    }
    if s.has_trial {
        wheres.push("s.has_trial".to_owned());
    }
    if let Some(v) = &s.seller {
        wheres.push(format!("s.seller_org_id = {}", arg(&mut args, v.as_str().into())));
    }
    let filter_args = args.clone();
    let order = match (s.sort.as_str(), tokens.is_empty(), backend) {
        ("price", ..) => "s.min_price, s.product_id",
        ("price_desc", ..) => "s.min_price DESC, s.product_id",
        ("relevance", false, Backend::Sqlite) => "storefront_fts.rank, s.product_id",
        ("relevance", false, Backend::Postgres) => "ts_rank(s.search_tsv, query) DESC, s.product_id",
        _ => "s.listed_at DESC, s.product_id",
    };
    let body = format!("{from} WHERE {}", wheres.join(" AND "));
    let limit = arg(&mut args, i64::from(s.limit).into());
    let offset = arg(&mut args, i64::from(s.offset).into());
    let page_sql = format!(
        "SELECT s.product_id, s.site, s.seller_org_id, s.kind, s.category, s.name, s.summary, s.min_price, s.has_trial, s.listed_at
         {body} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
    );
    // Counting every match of a broad query costs as much as the query; past COUNT_CAP the
    // storefront shows "10000+".
    let count_sql = format!("SELECT COUNT(*) AS n FROM (SELECT 1 AS one {body} LIMIT {COUNT_CAP}) capped");
    let mut page_q = crate::q_built(page_sql.clone(), page_sql);
    for a in args {
        page_q = page_q.bind(a);
    }
    let mut count_q = crate::q_built(count_sql.clone(), count_sql);
    for a in filter_args {
        count_q = count_q.bind(a);
    }
    let rows = c.fetch_all(page_q).await?;
    // The count is only needed when the page is full or not the first; otherwise it is known.
    let total =
        if s.offset == 0 && rows.len() < s.limit as usize { rows.len() as i64 } else { c.fetch_one(count_q).await?.get("n")? };
    let hits = rows
        .iter()
        .map(|r| {
            Ok(Hit {
                product_id: r.get("product_id")?,
                site: r.get("site")?,
                seller_org_id: r.get("seller_org_id")?,
                kind: r.get("kind")?,
                category: r.get("category")?,
                name: r.get("name")?,
                summary: r.get("summary")?,
                min_price: r.get("min_price")?,
                has_trial: r.get("has_trial")?,
                listed_at: r.get("listed_at")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok((hits, total))
}

/// Whether the product is listed on the site now.
pub async fn is_listed(c: &mut impl Conn, product: &ProductId, site: Site) -> Result<bool, StoreError> {
    Ok(c.fetch_optional(
        q("SELECT 1 AS one FROM storefront WHERE product_id = $1 AND site = $2").bind(product.as_str()).bind(site.as_str()),
    )
    .await?
    .is_some())
}
