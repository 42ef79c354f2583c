//! Monthly bills per buyer organization and currency, from the wallet ledger, with the
//! orders behind each line; and their CSV export.

use chrono::{DateTime, Utc};
use serde::Serialize;
use souk_core::billing::{self, BillMonth, BillTotals, LineKind};
use souk_core::id::OrgId;
use souk_core::money::{Currency, Money};
use souk_store::{orders, orgs, wallets};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize)]
pub struct BillLine {
    pub at: DateTime<Utc>,
    pub kind: LineKind,
    /// The order (for purchases, renewals, upgrades and refunds) or top-up it concerns.
    pub reference: Option<String>,
    pub product_id: Option<String>,
    pub plan_name: Option<String>,
    pub delta_minor: i64,
    pub balance_after: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bill {
    pub month: String,
    pub currency: Currency,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub totals: BillTotals,
    pub lines: Vec<BillLine>,
}

pub fn parse_month(raw: &str) -> Result<BillMonth> {
    BillMonth::parse(raw).ok_or_else(|| Error::field("month", "a month like 2026-03"))
}

/// The organization's bills for `month`, one per currency its wallet has held.
pub async fn bills(state: &AppState, caller: &Caller, org: &OrgId, month: BillMonth) -> Result<Vec<Bill>> {
    caller.role_in(state, org).await?;
    let mut db = state.db.clone();
    let site = orgs::get(&mut db, org).await?.site;
    let (from, to) = (month.start(site), month.end(site));
    let mut out = Vec::new();
    for balance in wallets::balances(&mut db, org).await? {
        let currency = balance.currency;
        let opening = wallets::balance_before(&mut db, org, currency, from).await?;
        let mut lines = Vec::new();
        for e in wallets::entries_between(&mut db, org, currency, from, to).await? {
            let order = match &e.reference {
                Some(r) if r.starts_with("ord_") => orders::get_for_buyer(&mut db, org, r).await.ok(),
                _ => None,
            };
            lines.push(BillLine {
                at: e.at,
                kind: LineKind::of_reason(&e.reason),
                product_id: order.as_ref().map(|o| o.product_id.clone()),
                plan_name: order.as_ref().and_then(|o| o.plan_snapshot.get("name").and_then(|n| n.as_str()).map(str::to_owned)),
                reference: e.reference,
                delta_minor: e.delta_minor,
                balance_after: e.balance_after,
            });
        }
        let sums: Vec<_> = lines.iter().map(|l| (l.kind, l.delta_minor, l.balance_after)).collect();
        let totals = billing::totals(opening, &sums).map_err(|e| Error::Internal(e.into()))?;
        out.push(Bill { month: month.to_string(), currency, from, to, totals, lines });
    }
    Ok(out)
}

/// The bill as CSV: one row per line, amounts in major units, times on the site's clock.
pub fn csv(bill: &Bill, site: souk_core::site::Site) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = |e: csv::Error| Error::Internal(e.into());
    w.write_record(["time", "type", "reference", "product_id", "plan", "amount", "currency", "balance_after"]).map_err(io)?;
    let tz = billing::offset(site);
    let major = |m: i64| Money::new(m, bill.currency).major_string();
    for l in &bill.lines {
        w.write_record([
            l.at.with_timezone(&tz).to_rfc3339(),
            l.kind.as_str().to_owned(),
            l.reference.clone().unwrap_or_default(),
            l.product_id.clone().unwrap_or_default(),
            l.plan_name.clone().unwrap_or_default(),
            major(l.delta_minor),
            bill.currency.code().to_owned(),
            major(l.balance_after),
        ])
        .map_err(io)?;
    }
    w.into_inner().map_err(|e| Error::Internal(anyhow::anyhow!("writing CSV: {e}")))
}
