//! `souk bench deliveries`: Souk's delivery worker sending a burst of events to sellers'
//! endpoints on a local receiver, and (with `--hook0-worker`) Hook0's output worker sending
//! the same burst to the same receiver, at the same concurrency.
//!
//! Souk: a server (this crate's `serve`, in this process, so that the events the benchmark
//! writes wake its worker as a purchase's commit would) with the demo marketplace; ten products
//! point their integration at the receiver, one endpoint each, and a hundred subscriptions each.
//! A run writes `events` renewal events (round robin over the subscriptions, 500 per
//! transaction) and waits until the receiver has answered every one with a success.
//!
//! Hook0: its own database (`hook0_bench`, made from hook0-api's migrations), one organization
//! and application, ten subscriptions (one per endpoint), and the same number of events
//! inserted 500 per transaction; Hook0's dispatch trigger turns each into a request attempt,
//! which `hook0-output-worker` picks and sends.
//!
//! The receiver answers in one of three ways per run: at once, after 50 ms, or with a 500 to
//! the first attempt of one event in twenty (chosen by a hash of its id, so 5%). It counts
//! attempts and successes per event id (`webhook-id` from Souk, `X-Event-Id` from Hook0) and,
//! for Souk, checks that each subscription's events succeed in their sequence order.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use souk_server::{AppState, ServerConfig};
use souk_store::clock::SystemClock;
use souk_store::{Conn, q};

use super::purchase::Session;

pub struct Options {
    pub database_url: Option<String>,
    pub events: usize,
    pub endpoints: usize,
    pub runs: usize,
    pub modes: Vec<Mode>,
    /// The Hook0 output worker's binary and hook0-api's migrations folder.
    pub hook0: Option<(PathBuf, PathBuf)>,
}

/// How the receiver answers during a run.
#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
pub enum Mode {
    #[value(name = "ok")]
    Ok = 0,
    #[value(name = "slow")]
    Slow = 1,
    #[value(name = "flaky")]
    Flaky = 2,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Ok => "answers at once",
            Mode::Slow => "answers after 50 ms",
            Mode::Flaky => "5% errors",
        }
    }
}

#[derive(Default)]
struct Seen {
    attempts: u32,
    successes: u32,
    first: Option<Instant>,
}

/// The local receiver both peers deliver to.
#[derive(Default)]
struct Receiver {
    mode: AtomicU8,
    seen: Mutex<HashMap<String, Seen>>,
    last_sequence: Mutex<HashMap<String, i64>>,
    out_of_order: AtomicU64,
    delivered: AtomicU64,
    last_success: Mutex<Option<Instant>>,
}

impl Receiver {
    fn reset(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
        self.seen.lock().map(|mut s| s.clear()).ok();
        self.last_sequence.lock().map(|mut s| s.clear()).ok();
        self.out_of_order.store(0, Ordering::SeqCst);
        self.delivered.store(0, Ordering::SeqCst);
        self.last_success.lock().map(|mut s| *s = None).ok();
    }

    fn mode(&self) -> Mode {
        match self.mode.load(Ordering::SeqCst) {
            1 => Mode::Slow,
            2 => Mode::Flaky,
            _ => Mode::Ok,
        }
    }
}

/// One event in twenty, by a hash of its id (the same events for every run of a peer).
fn unlucky(id: &str) -> bool {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish().is_multiple_of(20)
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    UrlPath(_endpoint): UrlPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let now = Instant::now();
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let Some(id) = header("webhook-id").or_else(|| header("x-event-id")) else {
        return StatusCode::BAD_REQUEST;
    };
    let mode = r.mode();
    if mode == Mode::Slow {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempt = {
        let Ok(mut seen) = r.seen.lock() else { return StatusCode::INTERNAL_SERVER_ERROR };
        let s = seen.entry(id.clone()).or_default();
        s.attempts += 1;
        s.first.get_or_insert(now);
        s.attempts
    };
    if mode == Mode::Flaky && attempt == 1 && unlucky(&id) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    // Souk's bodies carry the subscription and the event's place in its sequence.
    if let Ok(v) = serde_json::from_slice::<Value>(&body)
        && let (Some(sub), Some(seq)) = (v["data"]["subscription_id"].as_str(), v["sequence"].as_i64())
        && let Ok(mut last) = r.last_sequence.lock()
    {
        let prev = last.entry(sub.to_owned()).or_insert(i64::MIN);
        if seq <= *prev {
            r.out_of_order.fetch_add(1, Ordering::SeqCst);
        }
        *prev = (*prev).max(seq);
    }
    let first_success = match r.seen.lock() {
        Ok(mut seen) => {
            let s = seen.entry(id).or_default();
            s.successes += 1;
            s.successes == 1
        }
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR,
    };
    if first_success {
        r.delivered.fetch_add(1, Ordering::SeqCst);
        r.last_success.lock().map(|mut l| *l = Some(Instant::now())).ok();
    }
    StatusCode::OK
}

async fn start_receiver() -> anyhow::Result<(Arc<Receiver>, String)> {
    let r = Arc::new(Receiver::default());
    let app = axum::Router::new().route("/{endpoint}", axum::routing::post(receive)).with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((r, base))
}

/// One run's figures.
#[derive(Debug, Clone)]
struct RunResult {
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    attempts: u64,
    duplicates: u64,
    out_of_order: u64,
}

/// Whether the receiver has a success for every one of `enqueued`.
fn all_delivered(r: &Receiver, enqueued: &HashMap<String, Instant>) -> anyhow::Result<bool> {
    let seen = r.seen.lock().map_err(|_| anyhow::anyhow!("receiver poisoned"))?;
    Ok(enqueued.keys().all(|id| seen.get(id).is_some_and(|s| s.successes > 0)))
}

/// Waits until the receiver has a success for all `n` events, then reads the run's figures
/// against when each event was committed.
async fn measure(r: &Receiver, enqueued: &HashMap<String, Instant>, start: Instant) -> anyhow::Result<RunResult> {
    let n = enqueued.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(180);
    // The count of first successes can include a stray (a request of a stopped peer's run
    // that arrived after the reset), so when it reaches `n`, every event is checked.
    while r.delivered.load(Ordering::SeqCst) < n || !all_delivered(r, enqueued)? {
        if Instant::now() > deadline {
            // Reported, not fatal: the rate is what was delivered in the time.
            let got = r.delivered.load(Ordering::SeqCst);
            println!("  (run cut at 180 s: {got} of {n} delivered)");
            let seen = r.seen.lock().map_err(|_| anyhow::anyhow!("receiver poisoned"))?;
            let mut waits: Vec<f64> = enqueued
                .iter()
                .filter_map(|(id, at)| {
                    seen.get(id).and_then(|s| s.first).map(|f| f.saturating_duration_since(*at).as_secs_f64() * 1000.0)
                })
                .collect();
            return Ok(RunResult {
                per_s: got as f64 / start.elapsed().as_secs_f64(),
                p50_ms: super::percentile(&mut waits, 0.5),
                p99_ms: super::percentile(&mut waits, 0.99),
                attempts: seen.values().map(|s| u64::from(s.attempts)).sum(),
                duplicates: seen.values().map(|s| u64::from(s.successes.saturating_sub(1))).sum(),
                out_of_order: r.out_of_order.load(Ordering::SeqCst),
            });
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Late duplicates would arrive just after: give them a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let last = r.last_success.lock().ok().and_then(|l| *l).context("no success recorded")?;
    let seen = r.seen.lock().map_err(|_| anyhow::anyhow!("receiver poisoned"))?;
    let mut waits = Vec::with_capacity(enqueued.len());
    let (mut attempts, mut duplicates) = (0u64, 0u64);
    for (id, at) in enqueued {
        let s = seen.get(id).with_context(|| format!("event {id} never arrived"))?;
        waits.push(s.first.map_or(0.0, |f| f.saturating_duration_since(*at).as_secs_f64() * 1000.0));
        attempts += u64::from(s.attempts);
        duplicates += u64::from(s.successes.saturating_sub(1));
    }
    let stray = seen.keys().filter(|k| !enqueued.contains_key(*k)).count();
    if stray > 0 {
        // Not this run's events: reported, so that a peer sending what it was never given
        // is seen, without throwing away the runs measured so far.
        println!("  ({stray} deliveries of events this run did not write)");
    }
    Ok(RunResult {
        per_s: n as f64 / last.duration_since(start).as_secs_f64(),
        p50_ms: super::percentile(&mut waits, 0.5),
        p99_ms: super::percentile(&mut waits, 0.99),
        attempts,
        duplicates,
        out_of_order: r.out_of_order.load(Ordering::SeqCst),
    })
}

/// Prints one run's figures as it ends (a later run's failure does not lose them).
fn report(peer: &str, mode: Mode, r: RunResult) -> RunResult {
    println!(
        "  run: {peer} {}: {:.0} deliveries/s, first try p50 {:.1} ms p99 {:.1} ms, {} attempts, {} duplicates, {} out of order",
        mode.label(),
        r.per_s,
        r.p50_ms,
        r.p99_ms,
        r.attempts,
        r.duplicates,
        r.out_of_order
    );
    r
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    let (receiver, base) = start_receiver().await?;
    println!(
        "souk bench deliveries: {} events to {} endpoints per run, {} runs per mode; medians",
        opts.events, opts.endpoints, opts.runs
    );
    let mut table = Vec::new();
    let souk = SoukPeer::start(opts.database_url.as_deref(), &base, opts.endpoints).await?;
    println!("Souk's delivery worker: up to {} events in hand at once", souk.concurrency);
    for &mode in &opts.modes {
        let mut runs = Vec::new();
        for _ in 0..opts.runs {
            receiver.reset(mode);
            let start = Instant::now();
            let enqueued = souk.enqueue(opts.events).await?;
            runs.push(report("Souk", mode, measure(&receiver, &enqueued, start).await?));
        }
        table.push(("Souk", mode, runs));
    }
    let concurrency = souk.concurrency;
    souk.stop().await;
    if let Some((worker, migrations)) = &opts.hook0 {
        let url = opts.database_url.as_deref().context("Hook0 runs on PostgreSQL: give --database-url postgres://…")?;
        for &mode in &opts.modes {
            let mut runs = Vec::new();
            for _ in 0..opts.runs {
                // A fresh database and worker for every run: a run cut at its time limit
                // leaves attempts behind, which the next run's worker would be busy with (and
                // Hook0's pick of the next attempt slows as they accumulate).
                let hook0 = Hook0Peer::start(url, migrations, worker, &base, opts.endpoints, concurrency).await?;
                receiver.reset(mode);
                let start = Instant::now();
                let enqueued = hook0.enqueue(opts.events).await?;
                runs.push(report("Hook0", mode, measure(&receiver, &enqueued, start).await?));
                hook0.stop().await;
            }
            table.push(("Hook0", mode, runs));
        }
    }
    println!(
        "{:<6} {:<20} {:>12} {:>14} {:>14} {:>9} {:>10} {:>12}",
        "peer", "receiver", "deliveries/s", "first try p50", "first try p99", "attempts", "duplicates", "out of order"
    );
    for (peer, mode, runs) in &table {
        let m = |f: fn(&RunResult) -> f64| super::median(runs.iter().map(f).collect());
        println!(
            "{:<6} {:<20} {:>12.0} {:>11.1} ms {:>11.1} ms {:>9.0} {:>10} {:>12}",
            peer,
            mode.label(),
            m(|r| r.per_s),
            m(|r| r.p50_ms),
            m(|r| r.p99_ms),
            m(|r| r.attempts as f64),
            runs.iter().map(|r| r.duplicates).sum::<u64>(),
            if *peer == "Souk" { runs.iter().map(|r| r.out_of_order).sum::<u64>().to_string() } else { "-".into() },
        );
    }
    for &mode in &opts.modes {
        let rate = |peer: &str| {
            table
                .iter()
                .find(|(p, m, _)| *p == peer && *m == mode)
                .map(|(_, _, r)| super::median(r.iter().map(|r| r.per_s).collect()))
        };
        if let (Some(s), Some(h)) = (rate("Souk"), rate("Hook0")) {
            println!("{}: Souk ÷ Hook0 = {:.2}×", mode.label(), s / h);
        }
    }
    Ok(())
}

/// Souk in this process, with ten products pointed at the receiver.
struct SoukPeer {
    state: AppState,
    subscriptions: Vec<String>,
    stop: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    concurrency: u32,
    _dir: tempfile::TempDir,
}

impl SoukPeer {
    async fn start(database_url: Option<&str>, receiver: &str, endpoints: usize) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let (db, _url) = super::fresh_database(database_url, &dir).await?;
        let config = ServerConfig {
            secret_key: Some(rand::random::<[u8; 32]>().to_vec()),
            outbound_allow: vec!["127.0.0.1".into()],
            ..ServerConfig::default()
        };
        let state = AppState::new(db, Arc::new(SystemClock), config);
        souk_server::demo::load(&state).await.map_err(|e| anyhow::anyhow!(e.message()))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(souk_server::serve(state.clone(), listener, shutdown));
        let concurrency = souk_server::fulfillment::worker(&state).batch;

        // The demo sellers' products, each pointed at an endpoint of its own.
        let mut products = Vec::new();
        for email in ["seller@acme.test", "seller@yunzhan.test"] {
            let s = Session::sign_in(&base, email, souk_server::demo::DEMO_PASSWORD).await?;
            let org = s.company().await?;
            let list = s.call(reqwest::Method::GET, &format!("/api/v1/orgs/{org}/products"), None).await?;
            for p in list["items"].as_array().cloned().unwrap_or_default() {
                let Some(id) = p["id"].as_str() else { continue };
                if products.len() == endpoints {
                    break;
                }
                let endpoint = format!("{receiver}/{}", products.len());
                s.call(
                    reqwest::Method::PUT,
                    &format!("/api/v1/orgs/{org}/products/{id}/integration"),
                    Some(json!({"endpoint": endpoint})),
                )
                .await?;
                products.push((id.to_owned(), org.clone()));
            }
        }
        if products.len() < endpoints {
            bail!("the demo has {} products for {endpoints} endpoints", products.len());
        }
        // A hundred subscriptions per product, bought by the demo buyer.
        let mut db = state.db.clone();
        let buyer: String = db
            .fetch_one(
                q("SELECT o.id FROM orgs o JOIN accounts a ON a.personal_org_id = o.id WHERE a.email = $1")
                    .bind("buyer@souk.test"),
            )
            .await?
            .get("id")?;
        let now = chrono::Utc::now();
        let mut subscriptions = Vec::new();
        let mut tx = state.db.begin().await?;
        for (product, seller) in &products {
            let plan: String = tx
                .fetch_one(q("SELECT id FROM plans WHERE product_id = $1 ORDER BY id LIMIT 1").bind(product.as_str()))
                .await?
                .get("id")?;
            for _ in 0..100 {
                let sub = souk_store::orders::create_subscription(
                    &mut tx,
                    now,
                    souk_store::orders::NewSubscription {
                        buyer: &buyer,
                        seller,
                        product,
                        plan: &plan,
                        quantity: 1,
                        term_start: now,
                        term_end: Some(now + chrono::Duration::days(30)),
                        trial: false,
                        grace_days: 15,
                        no_reason_days: 0,
                    },
                )
                .await?;
                subscriptions.push(sub.id);
            }
        }
        tx.commit().await?;
        Ok(Self { state, subscriptions, stop, server, concurrency, _dir: dir })
    }

    /// Writes `n` renewal events, round robin over the subscriptions, 500 per transaction;
    /// each event's time is its transaction's commit.
    async fn enqueue(&self, n: usize) -> anyhow::Result<HashMap<String, Instant>> {
        let mut out = HashMap::with_capacity(n);
        let payload = json!({"periods": 1});
        let mut i = 0;
        while i < n {
            let mut tx = self.state.db.begin().await?;
            let mut ids = Vec::new();
            let now = chrono::Utc::now();
            for _ in 0..500.min(n - i) {
                let sub = &self.subscriptions[i % self.subscriptions.len()];
                ids.push(souk_store::outbox::enqueue(&mut tx, now, "instance.renew", sub, &payload).await?);
                i += 1;
            }
            tx.commit().await?;
            let at = Instant::now();
            out.extend(ids.into_iter().map(|id| (id.to_string(), at)));
        }
        Ok(out)
    }

    async fn stop(self) {
        self.stop.send(true).ok();
        self.server.await.ok();
        self.state.db.close().await;
    }
}

/// Hook0's output worker and its database.
struct Hook0Peer {
    pool: sqlx::PgPool,
    application: String,
    endpoints: usize,
    worker: tokio::process::Child,
}

impl Hook0Peer {
    /// Stops the worker and lets go of the database, before the next run drops it.
    async fn stop(mut self) {
        let _ = self.worker.kill().await;
        self.pool.close().await;
    }

    async fn start(
        admin_url: &str,
        migrations: &std::path::Path,
        worker: &std::path::Path,
        receiver: &str,
        endpoints: usize,
        concurrency: u32,
    ) -> anyhow::Result<Self> {
        use sqlx::Executor;
        let admin = sqlx::PgPool::connect(admin_url).await?;
        admin.execute("DROP DATABASE IF EXISTS hook0_bench WITH (FORCE)").await?;
        admin.execute("CREATE DATABASE hook0_bench").await?;
        admin.close().await;
        let mut url = url::Url::parse(admin_url)?;
        url.set_path("/hook0_bench");
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(url.as_str()).await?;
        let mut files: Vec<_> = std::fs::read_dir(migrations)
            .with_context(|| format!("reading {}", migrations.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".up.sql"))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("no *.up.sql in {}", migrations.display());
        }
        for f in &files {
            let sql = std::fs::read_to_string(f)?;
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await.with_context(|| format!("applying {}", f.display()))?;
        }
        let org: String =
            sqlx::query_scalar("INSERT INTO iam.organization (name) VALUES ('bench') RETURNING organization__id::text")
                .fetch_one(&pool)
                .await?;
        let app: String = sqlx::query_scalar(
            "INSERT INTO event.application (organization__id, name) VALUES ($1::uuid, 'bench') RETURNING application__id::text",
        )
        .bind(&org)
        .fetch_one(&pool)
        .await?;
        for sql in [
            "INSERT INTO event.service (service__name, application__id) VALUES ('bench', $1::uuid)",
            "INSERT INTO event.resource_type (resource_type__name, application__id, service__name) VALUES ('instance', $1::uuid, 'bench')",
            "INSERT INTO event.verb (verb__name, application__id) VALUES ('renewed', $1::uuid)",
            "INSERT INTO event.event_type (application__id, service__name, resource_type__name, verb__name) VALUES ($1::uuid, 'bench', 'instance', 'renewed')",
        ] {
            sqlx::query(sql).bind(&app).execute(&pool).await?;
        }
        for i in 0..endpoints {
            let sub: String = sqlx::query_scalar(
                "INSERT INTO webhook.subscription (application__id, label_key, label_value, target__id)
                 VALUES ($1::uuid, 'endpoint', $2, gen_random_uuid()) RETURNING subscription__id::text",
            )
            .bind(&app)
            .bind(i.to_string())
            .fetch_one(&pool)
            .await?;
            sqlx::query(
                "INSERT INTO webhook.target_http (target__id, method, url)
                 SELECT target__id, 'POST', $2 FROM webhook.subscription WHERE subscription__id = $1::uuid",
            )
            .bind(&sub)
            .bind(format!("{receiver}/{i}"))
            .execute(&pool)
            .await?;
            sqlx::query(
                "INSERT INTO webhook.subscription__event_type (subscription__id, event_type__name, application__id)
                 VALUES ($1::uuid, 'bench.instance.renewed', $2::uuid)",
            )
            .bind(&sub)
            .bind(&app)
            .execute(&pool)
            .await?;
        }
        let child = tokio::process::Command::new(worker)
            .env("DATABASE_URL", url.as_str())
            .env("WORKER_NAME", "bench")
            .env("CONCURRENT", concurrency.to_string())
            .env("DISABLE_TARGET_IP_CHECK", "true")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(std::env::temp_dir().join("souk-bench-hook0.log"))?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", worker.display()))?;
        // Ready once it has written its error names (its start-up step before the units run).
        for _ in 0..200 {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook.response_error").fetch_one(&pool).await?;
            if n > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        println!("Hook0's output worker: {concurrency} units (--concurrent)");
        Ok(Self { pool, application: app, endpoints, worker: child })
    }

    /// Inserts `n` events, 500 per transaction, round robin over the endpoints' labels.
    async fn enqueue(&self, n: usize) -> anyhow::Result<HashMap<String, Instant>> {
        let mut out = HashMap::with_capacity(n);
        let mut i = 0usize;
        while i < n {
            let k = 500.min(n - i);
            let mut tx = self.pool.begin().await?;
            let ids: Vec<String> = sqlx::query_scalar(
                "INSERT INTO event.event (application__id, event_type__name, payload, payload_content_type, ip, occurred_at, labels)
                 SELECT $1::uuid, 'bench.instance.renewed', convert_to('{\"n\":' || g || '}', 'UTF8'), 'application/json',
                        '127.0.0.1', statement_timestamp(), jsonb_build_object('endpoint', (g % $4)::text)
                 FROM generate_series($2::bigint, $3::bigint) AS g
                 RETURNING event__id::text",
            )
            .bind(&self.application)
            .bind(i as i64)
            .bind((i + k - 1) as i64)
            .bind(self.endpoints as i64)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            let at = Instant::now();
            out.extend(ids.into_iter().map(|id| (id, at)));
            i += k;
        }
        Ok(out)
    }
}
