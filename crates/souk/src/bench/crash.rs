//! `souk bench crash`: buyers place `orders` orders while the server is killed with SIGKILL
//! and started again, `kills` times; then checks what a buyer and an auditor would:
//! - every order the server acknowledged (201) exists, and there is no order nobody was told
//!   about (a buyer whose request died retries it with the same Idempotency-Key, as a client
//!   must, so an order committed just before a crash is answered, not made twice);
//! - every subscription was provisioned at the seller, and the seller holds exactly one
//!   instance per subscription (deliveries re-sent after a crash are counted: the seller
//!   answers them from its record of the event id);
//! - each buyer's wallet balance equals the sum of its ledger, and the ledger holds exactly one
//!   debit per order, of the order's total.
//!
//! With `--nodes 2` (PostgreSQL), two servers share the database; buyers alternate between
//! them and the kills alternate too.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use souk_store::{Conn, q};

use super::purchase::{Setup, start_server_at};

pub struct Options {
    pub database_url: Option<String>,
    pub orders: usize,
    pub buyers: usize,
    pub kills: usize,
    pub nodes: usize,
}

/// An order the server acknowledged: buyer organization, order, subscription.
type Acked = (String, String, String);

pub async fn run(opts: Options) -> anyhow::Result<()> {
    if opts.nodes > 1 && opts.database_url.is_none() {
        bail!("two nodes share a PostgreSQL database: give --database-url postgres://…");
    }
    let dir = tempfile::tempdir()?;
    let (backend, url, key_hex) = super::demo_database(opts.database_url.as_deref(), &dir).await?;

    let mut ports = Vec::new();
    let mut servers = Vec::new();
    for n in 0..opts.nodes.max(1) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = format!("souk-bench-crash-{n}.log");
        std::fs::File::create(std::env::temp_dir().join(&log))?;
        servers.push(start_server_at(url.expose(), dir.path(), &key_hex, port, &log).await?);
        ports.push(port);
    }
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let setup = Setup::new(&bases[0], opts.buyers).await?;
    println!(
        "souk bench crash: {backend:?}, {} node(s), {} buyers, {} orders, SIGKILL {} times",
        bases.len(),
        opts.buyers,
        opts.orders,
        opts.kills
    );

    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let retried = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, buyer) in setup.buyers.iter().enumerate() {
        let (buyer, base) = (buyer.clone(), bases[i % bases.len()].clone());
        let (product, plan) = (setup.product.clone(), setup.plan.clone());
        let (acked, count, retried, target) = (acked.clone(), count.clone(), retried.clone(), opts.orders);
        tasks.push(tokio::spawn(async move {
            while count.fetch_add(1, Ordering::SeqCst) < target {
                let key = hex::encode(rand::random::<[u8; 16]>());
                let body = json!({"product_id": product, "plan_id": plan});
                let url = format!("{base}/api/v1/orgs/{}/orders", buyer.org);
                let deadline = Instant::now() + Duration::from_secs(120);
                // Until acknowledged: the same key every time.
                let order = loop {
                    if Instant::now() > deadline {
                        bail!("no answer to an order for 120 s");
                    }
                    match buyer.session.client.post(&url).header("Idempotency-Key", &key).json(&body).send().await {
                        // 200: a retry of an order that was placed before the answer was lost.
                        Ok(res) if res.status() == reqwest::StatusCode::CREATED || res.status() == reqwest::StatusCode::OK => {
                            break res.json::<serde_json::Value>().await?;
                        }
                        Ok(res) if res.status().is_server_error() || res.status() == reqwest::StatusCode::CONFLICT => {}
                        Ok(res) => bail!("order: {}: {}", res.status(), res.text().await?),
                        Err(_) => {}
                    }
                    retried.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                };
                let id = order["id"].as_str().context("order id")?.to_owned();
                let sub = order["subscription_id"].as_str().context("subscription id")?.to_owned();
                acked.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push((buyer.org.clone(), id, sub));
            }
            anyhow::Ok(())
        }));
    }

    // The killer: at even shares of the orders, SIGKILL a node (in turn) and start it again.
    let mut kills = 0;
    for k in 1..=opts.kills {
        let at = opts.orders * k / (opts.kills + 1);
        while acked.lock().map(|a| a.len()).unwrap_or(0) < at {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let n = (k - 1) % servers.len();
        servers[n].child.start_kill()?;
        servers[n].child.wait().await?;
        kills += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let log = format!("souk-bench-crash-{n}.log");
        servers[n] = start_server_at(url.expose(), dir.path(), &key_hex, ports[n], &log).await?;
    }
    for t in tasks {
        t.await??;
    }
    let placed = start.elapsed();
    let acked = acked.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    println!(
        "{} orders acknowledged in {:.1} s with {kills} kills; {} requests retried by buyers",
        acked.len(),
        placed.as_secs_f64(),
        retried.load(Ordering::SeqCst)
    );

    // Provisioning catches up (a delivery in flight at a kill waits for its lease to lapse).
    let db = souk_store::Db::connect(&url).await?;
    let mut c = db.clone();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let open: i64 = c.fetch_one(q("SELECT COUNT(*) AS n FROM subscriptions WHERE instance_id IS NULL")).await?.get("n")?;
        if open == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("{open} subscriptions not provisioned 180 s after the last order");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("all provisioned {:.1} s after the last order", (start.elapsed() - placed).as_secs_f64());
    drop(servers);

    check(&mut c, &setup, &acked).await?;
    db.close().await;
    Ok(())
}

async fn check(c: &mut souk_store::Db, setup: &Setup, acked: &[Acked]) -> anyhow::Result<()> {
    let buyers: HashSet<&str> = setup.buyers.iter().map(|b| b.org.as_str()).collect();
    let mut orders = HashMap::new();
    for r in c.fetch_all(q("SELECT id, buyer_org_id, subscription_id, total_minor FROM orders")).await? {
        let buyer: String = r.get("buyer_org_id")?;
        if buyers.contains(buyer.as_str()) {
            orders.insert(r.get::<String>("id")?, (buyer, r.get::<String>("subscription_id")?, r.get::<i64>("total_minor")?));
        }
    }
    let acked_ids: HashSet<&str> = acked.iter().map(|(_, id, _)| id.as_str()).collect();
    if acked_ids.len() != acked.len() {
        bail!("the same order was acknowledged to two requests");
    }
    let missing = acked.iter().filter(|(_, id, _)| !orders.contains_key(id)).count();
    let unacked = orders.keys().filter(|id| !acked_ids.contains(id.as_str())).count();
    if missing > 0 || unacked > 0 {
        bail!("{missing} acknowledged orders missing; {unacked} orders nobody was answered for");
    }
    println!("check: {} acknowledged orders, each exists once; no other orders", acked.len());

    let subs: HashSet<&str> = orders.values().map(|(_, s, _)| s.as_str()).collect();
    let instances = setup.seller.instances();
    let held: HashSet<&str> = instances.iter().map(|i| i.subscription_id.as_str()).collect();
    if instances.len() != subs.len() || !subs.iter().all(|s| held.contains(s)) {
        bail!("{} subscriptions but the seller holds {} instances", subs.len(), instances.len());
    }
    let resent: i64 = c
        .fetch_one(q("SELECT COUNT(*) - COUNT(DISTINCT event_id) AS n FROM deliveries WHERE topic = 'instance.create'"))
        .await?
        .get("n")?;
    println!(
        "check: {} subscriptions, each provisioned once at the seller; {resent} creates re-sent after a crash (same event id, answered from the seller's record)",
        subs.len()
    );

    let mut debits: HashMap<String, Vec<i64>> = HashMap::new();
    for r in c.fetch_all(q("SELECT reference, delta_minor FROM wallet_ledger WHERE reason = 'order'")).await? {
        if let Some(reference) = r.get::<Option<String>>("reference")? {
            debits.entry(reference).or_default().push(r.get("delta_minor")?);
        }
    }
    for (id, (_, _, total)) in &orders {
        match debits.get(id).map(Vec::as_slice) {
            Some([d]) if *d == -total => {}
            other => bail!("order {id} ({total}) has debits {other:?}"),
        }
    }
    for org in &buyers {
        let balance: i64 = c
            .fetch_one(q("SELECT CAST(COALESCE(SUM(balance_minor), 0) AS BIGINT) AS n FROM wallets WHERE org_id = $1").bind(*org))
            .await?
            .get("n")?;
        let ledger: i64 = c
            .fetch_one(
                q("SELECT CAST(COALESCE(SUM(delta_minor), 0) AS BIGINT) AS n FROM wallet_ledger WHERE org_id = $1").bind(*org),
            )
            .await?
            .get("n")?;
        if balance != ledger {
            bail!("wallet of {org}: balance {balance} but the ledger sums to {ledger}");
        }
    }
    println!("check: every wallet equals its ledger; one debit per order, of its total");
    Ok(())
}
