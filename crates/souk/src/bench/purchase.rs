//! `souk bench purchase`: N concurrent buyers each buy a SaaS plan over HTTP, end to end, and
//! wait until the seller has provisioned it. The server is a real `souk serve` process (this
//! binary) on a fresh database, so its CPU time and memory are its own; the seller is Souk's
//! reference seller, in this process, answering each signed delivery.
//!
//! One purchase, as a buyer's client does it: a quote, the order (paid from the wallet, with an
//! Idempotency-Key), then reading the subscription until the seller's instance is on it: by
//! default as a client that waits for the change (`If-None-Match` with the last `ETag` and
//! `Prefer: wait=5`, the server holding the answer until the subscription changes), or with
//! `--poll` reading it every `poll_ms`. Its latency runs from the quote request to the read
//! that saw the instance.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::limits;

pub struct Options {
    pub database_url: Option<String>,
    pub concurrency: Vec<usize>,
    pub seconds: u64,
    pub runs: usize,
    pub read: Read,
    /// A Medusa server to run its place-order flow beside Souk's, level by level.
    pub medusa: Option<super::medusa::Medusa>,
}

/// How a buyer waits for its seller.
#[derive(Debug, Clone, Copy)]
pub enum Read {
    /// Reads the subscription again after each interval.
    Poll(Duration),
    /// Asks the server to hold each read until the subscription changes.
    Wait,
}

impl std::fmt::Display for Read {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Read::Poll(d) => write!(f, "the buyer polls every {} ms", d.as_millis()),
            Read::Wait => f.write_str("the buyer waits for the change (Prefer: wait)"),
        }
    }
}

/// One run at one concurrency.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub orders: usize,
    pub orders_per_s: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub cpu_ms_per_order: f64,
    pub rss_mb: f64,
}

/// The `souk serve` child: killed when dropped.
pub struct Server {
    pub child: tokio::process::Child,
    pub base: String,
}

impl Server {
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("the server has exited")
    }
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (backend, url, key_hex) = super::demo_database(opts.database_url.as_deref(), &dir).await?;

    let server = start_server(url.expose(), dir.path(), &key_hex).await?;
    let idle_rss = limits::rss_mb(server.pid()?)?;
    let max_buyers = opts.concurrency.iter().copied().max().unwrap_or(1);
    let setup = Setup::new(&server.base, max_buyers).await?;

    println!("souk bench purchase: {backend:?}, {} s per run, {} runs per level, {}", opts.seconds, opts.runs, opts.read);
    println!("idle server memory (RSS after start and setup): {idle_rss:.1} MB");
    let bare = limits::http_requests_per_s(&format!("{}/livez", server.base), 8, Duration::from_secs(3)).await?;
    let commits = match opts.database_url.as_deref() {
        Some(u) => limits::postgres_commits_per_s(u, 8, 5)?,
        None => limits::sqlite_commits_per_s(dir.path(), Duration::from_secs(5)).await?,
    };
    println!("machine: bare HTTP (GET /livez, 8 clients) {bare:.0} req/s; single-row commits {commits:.0}/s");
    println!(
        "{:>5} {:>8} {:>9} {:>8} {:>8} {:>8} {:>11} {:>8} {:>9} {:>9}",
        "conc", "orders", "orders/s", "p50 ms", "p95 ms", "p99 ms", "cpu ms/ord", "rss MB", "÷commits", "÷bareHTTP"
    );
    let mut peer_rows = Vec::new();
    for &c in &opts.concurrency {
        let mut runs = Vec::new();
        let mut peer_runs = Vec::new();
        for _ in 0..opts.runs {
            let length = Duration::from_secs(opts.seconds);
            let souk = level(&server, &setup, c, length, opts.read).await?;
            // Medusa right after Souk at the same level, so that a ratio compares one moment
            // of the machine with the next.
            if let Some(m) = &opts.medusa {
                let peer = m.level(c, length).await?;
                let waited = m.settle().await?;
                if waited > Duration::from_secs(2) {
                    println!("(Medusa was busy for {:.1} s after its run; Souk's next run waited)", waited.as_secs_f64());
                }
                peer_runs.push((souk.orders_per_s / peer.orders_per_s.max(f64::MIN_POSITIVE), peer));
            }
            runs.push(souk);
        }
        if !peer_runs.is_empty() {
            peer_rows.push((c, peer_runs));
        }
        let m = |f: fn(&RunResult) -> f64| super::median(runs.iter().map(f).collect());
        let ops = m(|r| r.orders_per_s);
        println!(
            "{:>5} {:>8} {:>9.1} {:>8.1} {:>8.1} {:>8.1} {:>11.2} {:>8.1} {:>8.1}% {:>8.2}%",
            c,
            m(|r| r.orders as f64) as usize,
            ops,
            m(|r| r.p50_ms),
            m(|r| r.p95_ms),
            m(|r| r.p99_ms),
            m(|r| r.cpu_ms_per_order),
            m(|r| r.rss_mb),
            100.0 * ops / commits,
            100.0 * ops / bare,
        );
    }
    if !peer_rows.is_empty() {
        println!("Medusa, place order (cart, line item, shipping method, payment collection and session, complete):");
        println!(
            "{:>5} {:>8} {:>9} {:>8} {:>8} {:>11} {:>8} {:>12}",
            "conc", "orders", "orders/s", "p50 ms", "p99 ms", "cpu ms/ord", "rss MB", "Souk÷Medusa"
        );
        for (c, runs) in peer_rows {
            let m = |f: &dyn Fn(&super::medusa::RunResult) -> f64| super::median(runs.iter().map(|(_, r)| f(r)).collect());
            let opt = |v: f64| if v.is_nan() { "-".to_owned() } else { format!("{v:.1}") };
            println!(
                "{:>5} {:>8} {:>9.1} {:>8.1} {:>8.1} {:>11} {:>8} {:>11.1}×",
                c,
                m(&|r| r.orders as f64) as usize,
                m(&|r| r.orders_per_s),
                m(&|r| r.p50_ms),
                m(&|r| r.p99_ms),
                opt(m(&|r| r.cpu_ms_per_order.unwrap_or(f64::NAN))),
                opt(m(&|r| r.rss_mb.unwrap_or(f64::NAN))),
                super::median(runs.iter().map(|(ratio, _)| *ratio).collect()),
            );
        }
    }
    check_provisioned(&setup).await?;
    drop(server);
    Ok(())
}

/// Starts `souk serve` on a free port and waits until it answers.
pub async fn start_server(database_url: &str, data_dir: &std::path::Path, key_hex: &str) -> anyhow::Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    std::fs::File::create(std::env::temp_dir().join("souk-bench-server.log"))?;
    start_server_at(database_url, data_dir, key_hex, port, "souk-bench-server.log").await
}

/// Starts `souk serve` on `port`, its output appended to `log_name` in the temporary folder.
pub async fn start_server_at(
    database_url: &str,
    data_dir: &std::path::Path,
    key_hex: &str,
    port: u16,
    log_name: &str,
) -> anyhow::Result<Server> {
    // Kept after the run (the data folder is not), for a look at what the server said.
    let log_path = std::env::temp_dir().join(log_name);
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
    let child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("SOUK_DATABASE_URL", database_url)
        .env("SOUK_DATA_DIR", data_dir)
        .env("SOUK_SECRET_KEY", key_hex)
        .env("SOUK_OUTBOUND_ALLOW", "127.0.0.1")
        // SOUK_BENCH_SERVER_LOG sets the server's log filter (to count its queries, say).
        .env("RUST_LOG", std::env::var("SOUK_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting souk serve")?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client.get(format!("{base}/livez")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(Server { child, base });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("souk serve did not answer within 10 s (see {})", log_path.display())
}

/// A signed-in client of one account.
#[derive(Clone)]
pub struct Session {
    pub client: reqwest::Client,
    pub base: String,
}

impl Session {
    pub async fn sign_in(base: &str, email: &str, password: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().cookie_store(true).pool_max_idle_per_host(4).build()?;
        let s = Self { client, base: base.to_owned() };
        s.call(reqwest::Method::POST, "/api/v1/auth/signin", Some(json!({"email": email, "password": password}))).await?;
        Ok(s)
    }

    /// The id of the first enterprise organization this account belongs to (a demo seller's).
    pub async fn company(&self) -> anyhow::Result<String> {
        let me = self.call(reqwest::Method::GET, "/api/v1/me", None).await?;
        me["orgs"]
            .as_array()
            .and_then(|o| o.iter().find(|o| o["kind"] == "enterprise"))
            .and_then(|o| o["id"].as_str())
            .map(str::to_owned)
            .context("the account's company")
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut req = self.client.request(method.clone(), format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await?;
        let status = res.status();
        let text = res.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {text}");
        }
        Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text)? })
    }
}

/// A buyer: its session and organization.
#[derive(Clone)]
pub struct Buyer {
    pub session: Session,
    pub org: String,
}

/// What every run shares: the product and plan, the buyers, the seller endpoint.
pub struct Setup {
    pub product: String,
    pub plan: String,
    pub buyers: Vec<Buyer>,
    pub seller: souk_isv::reference::Seller,
}

impl Setup {
    /// The demo seller's first SaaS product points at a reference seller started here;
    /// `buyers` verified people each get a wallet that covers the whole run.
    pub async fn new(base: &str, buyers: usize) -> anyhow::Result<Self> {
        let pw = souk_server::demo::DEMO_PASSWORD;
        let seller_s = Session::sign_in(base, "seller@acme.test", pw).await?;
        let org = seller_s.company().await?;
        let products = seller_s.call(reqwest::Method::GET, &format!("/api/v1/orgs/{org}/products"), None).await?;
        let product = products["items"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["kind"] == "saas"))
            .and_then(|p| p["id"].as_str())
            .context("a SaaS product")?
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}/", listener.local_addr()?);
        let integration = seller_s
            .call(
                reqwest::Method::PUT,
                &format!("/api/v1/orgs/{org}/products/{product}/integration"),
                Some(json!({"endpoint": endpoint})),
            )
            .await?;
        let secret = integration["secret"].as_str().context("the signing secret")?;
        let seller = souk_isv::reference::Seller::new(vec![souk_isv::signature::Secret::parse(secret)?]);
        tokio::spawn(souk_isv::reference::serve(listener, seller.clone()));

        let page = seller_s.call(reqwest::Method::GET, &format!("/api/v1/storefront/intl/products/{product}"), None).await?;
        let plan = page["plans"][0]["id"].as_str().context("a plan")?.to_owned();

        let operator = Session::sign_in(base, "operator@souk.test", pw).await?;
        let mut list = Vec::new();
        for i in 0..buyers {
            let email = format!("bench-buyer-{i}@souk.test");
            let anon = reqwest::Client::new();
            let res = anon
                .post(format!("{base}/api/v1/auth/signup"))
                .json(&json!({"email": email, "name": format!("Buyer {i}"), "password": pw, "site": "intl"}))
                .send()
                .await?;
            if !res.status().is_success() {
                bail!("sign-up: {}", res.text().await?);
            }
            let session = Session::sign_in(base, &email, pw).await?;
            let me = session.call(reqwest::Method::GET, "/api/v1/me", None).await?;
            let org = me["account"]["personal_org_id"].as_str().context("personal org")?.to_owned();
            let v = session
                .call(
                    reqwest::Method::POST,
                    &format!("/api/v1/orgs/{org}/verifications"),
                    Some(json!({"real_name": format!("Buyer {i}"), "id_number": format!("ID-{:07}", 1_000_000 + i)})),
                )
                .await?;
            let vid = v["id"].as_str().context("verification id")?;
            operator
                .call(
                    reqwest::Method::POST,
                    &format!("/api/v1/admin/verifications/{vid}/decision"),
                    Some(json!({"approve": true})),
                )
                .await?;
            operator
                .call(
                    reqwest::Method::POST,
                    &format!("/api/v1/admin/wallets/{org}/top-ups"),
                    Some(
                        json!({"currency": "USD", "amount_minor": souk_server::wallet::MAX_TOP_UP_MINOR, "reason": "benchmark"}),
                    ),
                )
                .await?;
            list.push(Buyer { session, org });
        }
        Ok(Self { product, plan, buyers: list, seller })
    }
}

/// One purchase, quote to provisioned; its latency in milliseconds.
pub async fn purchase(buyer: &Buyer, product: &str, plan: &str, read: Read) -> anyhow::Result<f64> {
    let t = Instant::now();
    let s = &buyer.session;
    let body = json!({"product_id": product, "plan_id": plan});
    s.call(reqwest::Method::POST, &format!("/api/v1/orgs/{}/quotes", buyer.org), Some(body.clone())).await?;
    let key = hex::encode(rand::random::<[u8; 16]>());
    let res = s
        .client
        .post(format!("{}/api/v1/orgs/{}/orders", s.base, buyer.org))
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await?;
    if res.status() != reqwest::StatusCode::CREATED {
        bail!("order: {}: {}", res.status(), res.text().await?);
    }
    let order: Value = res.json().await?;
    let sub = order["subscription_id"].as_str().context("the order's subscription")?;
    let path = format!("/api/v1/orgs/{}/subscriptions/{sub}", buyer.org);
    let deadline = t + Duration::from_secs(60);
    let mut etag: Option<reqwest::header::HeaderValue> = None;
    loop {
        let mut req = s.client.get(format!("{}{path}", s.base));
        if let (Read::Wait, Some(tag)) = (read, &etag) {
            req = req.header(reqwest::header::IF_NONE_MATCH, tag.clone()).header("prefer", "wait=5");
        }
        let res = req.send().await?;
        match res.status() {
            reqwest::StatusCode::OK => {
                etag = res.headers().get(reqwest::header::ETAG).cloned();
                let v: Value = res.json().await?;
                if !v["instance_id"].is_null() {
                    return Ok(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            reqwest::StatusCode::NOT_MODIFIED => {}
            other => bail!("subscription {sub}: {other}: {}", res.text().await?),
        }
        if Instant::now() > deadline {
            bail!("subscription {sub} not provisioned within 60 s");
        }
        if let Read::Poll(every) = read {
            tokio::time::sleep(every).await;
        }
    }
}

/// `c` buyers buying for `length`: throughput, latency, the server's CPU per order and memory.
async fn level(server: &Server, setup: &Setup, c: usize, length: Duration, read: Read) -> anyhow::Result<RunResult> {
    let pid = server.pid()?;
    let cpu_before = limits::cpu_ms(pid)?;
    let start = Instant::now();
    let deadline = start + length;
    let mut tasks = Vec::new();
    for buyer in setup.buyers.iter().take(c) {
        let (buyer, product, plan) = (buyer.clone(), setup.product.clone(), setup.plan.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                lat.push(purchase(&buyer, &product, &plan, read).await?);
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = limits::cpu_ms(pid)? - cpu_before;
    let n = all.len();
    Ok(RunResult {
        orders: n,
        orders_per_s: n as f64 / elapsed,
        p50_ms: super::percentile(&mut all, 0.5),
        p95_ms: super::percentile(&mut all, 0.95),
        p99_ms: super::percentile(&mut all, 0.99),
        cpu_ms_per_order: if n == 0 { 0.0 } else { cpu / n as f64 },
        rss_mb: limits::rss_mb(pid)?,
    })
}

/// After the runs: every order the buyers placed was provisioned, once, at the seller.
async fn check_provisioned(setup: &Setup) -> anyhow::Result<()> {
    let mut subs = 0usize;
    for b in &setup.buyers {
        // Every page of the buyer's list: a buyer places hundreds of orders in a run.
        let mut path = format!("/api/v1/orgs/{}/subscriptions?limit=100", b.org);
        loop {
            let list = b.session.call(reqwest::Method::GET, &path, None).await?;
            let items = list["items"].as_array().cloned().unwrap_or_default();
            if items.iter().any(|s| s["instance_id"].is_null()) {
                bail!("a subscription of {} was never provisioned", b.org);
            }
            subs += items.len();
            match list["next_cursor"].as_str() {
                Some(cursor) => path = format!("/api/v1/orgs/{}/subscriptions?limit=100&cursor={cursor}", b.org),
                None => break,
            }
        }
    }
    let instances = setup.seller.instances().len();
    if instances != subs {
        bail!("{subs} subscriptions but the seller holds {instances} instances");
    }
    println!("check: {subs} subscriptions, each provisioned once at the seller ({instances} instances)");
    Ok(())
}
