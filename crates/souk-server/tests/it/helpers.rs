//! The test harness: boots the real server on port 0 against a fresh database of either
//! backend, with a clock the test moves.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use souk_core::clock::MockClock;
use souk_core::identity::{Email, StaffRole};
use souk_server::{AppState, ServerConfig};
use souk_store::{DatabaseUrl, Db};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for an `async fn(Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::helpers::Backend::Sqlite).await })+
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::helpers::Backend::Postgres).await })+
        }
    };
}

pub fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z").unwrap().to_utc()
}

/// A fresh, empty, migrated database, and what keeps it alive.
pub struct TestDb {
    pub url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
}

pub fn postgres_base() -> String {
    std::env::var("SOUK_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

static PG_READY: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// Each PostgreSQL test gets its own schema in the `souk_test` database. Schemas left by
/// runs more than an hour old are dropped, so the database does not grow without bound.
async fn postgres_schema() -> String {
    let base = postgres_base();
    PG_READY
        .get_or_init(|| async {
            let admin = Db::connect_with(&DatabaseUrl::parse(&format!("{base}/postgres")).unwrap(), 1)
                .await
                .expect("PostgreSQL must be reachable at SOUK_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432)");
            let mut c = admin.clone();
            let exists = souk_store::Conn::fetch_optional(
                &mut c,
                souk_store::q("SELECT 1 AS one FROM pg_database WHERE datname = 'souk_test'"),
            )
            .await
            .unwrap();
            if exists.is_none() {
                // Another test binary may create it at the same moment; that is fine.
                let _ = souk_store::Conn::execute(&mut c, souk_store::q("CREATE DATABASE souk_test")).await;
            }
            admin.close().await;
            let db = Db::connect_with(&DatabaseUrl::parse(&format!("{base}/souk_test")).unwrap(), 1).await.unwrap();
            let mut c = db.clone();
            let rows =
                souk_store::Conn::fetch_all(&mut c, souk_store::q("SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_%'"))
                    .await
                    .unwrap();
            let cutoff = Utc::now().timestamp() - 3600;
            for r in rows {
                let name: String = r.get("nspname").unwrap();
                let ts: i64 = name.split('_').nth(1).and_then(|t| t.parse().ok()).unwrap_or(0);
                if ts < cutoff && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    let sql: &'static str = Box::leak(format!("DROP SCHEMA IF EXISTS {name} CASCADE").into_boxed_str());
                    let _ = souk_store::Conn::execute(&mut c, souk_store::q(sql)).await;
                }
            }
            db.close().await;
        })
        .await;
    let schema =
        format!("t_{}_{}", Utc::now().timestamp(), souk_server::auth::random_token(6).to_lowercase().replace(['-', '_'], "x"));
    let db = Db::connect_with(&DatabaseUrl::parse(&format!("{base}/souk_test")).unwrap(), 1).await.unwrap();
    let sql: &'static str = Box::leak(format!("CREATE SCHEMA {schema}").into_boxed_str());
    souk_store::Conn::execute(&mut db.clone(), souk_store::q(sql)).await.unwrap();
    db.close().await;
    schema
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = DatabaseUrl::sqlite_file(&dir.path().join("souk.db"));
                TestDb { url, _dir: Some(dir) }
            }
            Backend::Postgres => {
                let schema = postgres_schema().await;
                let url =
                    DatabaseUrl::parse(&format!("{}/souk_test?options=-c%20search_path%3D{schema}", postgres_base())).unwrap();
                TestDb { url, _dir: None }
            }
        }
    }

    pub async fn connect(&self) -> Db {
        let db = Db::connect_with(&self.url, 5).await.unwrap();
        db.migrate().await.unwrap();
        db
    }
}

pub struct TestApp {
    pub addr: String,
    pub db: Db,
    pub clock: Arc<MockClock>,
    pub state: AppState,
    pub testdb: Arc<TestDb>,
    shutdown: watch::Sender<bool>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    // Server errors show in a failing test's output.
    let _ = tracing_subscriber::fmt().with_env_filter("warn,souk_server=info").with_test_writer().try_init();
    let testdb = Arc::new(TestDb::new(backend).await);
    let clock = Arc::new(MockClock::at(start_time()));
    spawn_node(testdb, clock).await
}

/// A server whose configuration the test adjusts (mail and SMS settings, say).
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut ServerConfig)) -> TestApp {
    let _ = tracing_subscriber::fmt().with_env_filter("warn,souk_server=info").with_test_writer().try_init();
    let testdb = Arc::new(TestDb::new(backend).await);
    let clock = Arc::new(MockClock::at(start_time()));
    spawn_node_with(testdb, clock, adjust).await
}

/// Another `souk serve` process on the same database (the scale path).
pub async fn spawn_node(testdb: Arc<TestDb>, clock: Arc<MockClock>) -> TestApp {
    spawn_node_with(testdb, clock, |_| {}).await
}

pub async fn spawn_node_with(testdb: Arc<TestDb>, clock: Arc<MockClock>, adjust: impl FnOnce(&mut ServerConfig)) -> TestApp {
    let db = testdb.connect().await;
    // Deliveries reach the seller stubs the tests run on this machine.
    let mut config = ServerConfig { outbound_allow: vec!["127.0.0.1".into(), "localhost".into()], ..ServerConfig::default() };
    adjust(&mut config);
    let state = AppState::new(db.clone(), clock.clone(), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = watch::channel(false);
    let serve_state = state.clone();
    tokio::spawn(async move { souk_server::serve(serve_state, listener, rx).await.unwrap() });
    TestApp { addr, db, clock, state, testdb, shutdown: tx }
}

/// A client that keeps cookies, like a browser.
pub fn client() -> Client {
    souk_server::tls_init();
    Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub const PASSWORD: &str = "correct horse battery";

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    pub async fn post(&self, c: &Client, path: &str, body: Value) -> Response {
        c.post(self.url(path)).json(&body).send().await.unwrap()
    }

    pub async fn put_json(&self, c: &Client, path: &str, body: Value) -> Response {
        c.put(self.url(path)).json(&body).send().await.unwrap()
    }

    pub async fn delete(&self, c: &Client, path: &str) -> Response {
        c.delete(self.url(path)).send().await.unwrap()
    }

    pub async fn get(&self, c: &Client, path: &str) -> Response {
        c.get(self.url(path)).send().await.unwrap()
    }

    /// Signs up and signs in a new account; returns its client and `/me`.
    pub async fn user(&self, email: &str, site: &str) -> (Client, Value) {
        let c = client();
        let res = self
            .post(
                &c,
                "/api/v1/auth/signup",
                json!({ "email": email, "name": email.split('@').next().unwrap(), "password": PASSWORD, "site": site }),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
        let res = self.post(&c, "/api/v1/auth/signin", json!({ "email": email, "password": PASSWORD })).await;
        assert_eq!(res.status(), StatusCode::OK);
        let me: Value = self.get(&c, "/api/v1/me").await.json().await.unwrap();
        (c, me)
    }

    /// A signed-in platform operator.
    pub async fn operator(&self, email: &str) -> (Client, Value) {
        let (c, me) = self.user(email, "intl").await;
        let account =
            souk_store::accounts::find_by_email(&mut self.db.clone(), &Email::parse("e", email).unwrap()).await.unwrap().unwrap();
        souk_store::accounts::set_staff_role(&mut self.db.clone(), self.clock.now_utc(), &account.id, Some(StaffRole::Operator))
            .await
            .unwrap();
        (c, me)
    }

    /// Creates an enterprise org for the client; returns its id.
    pub async fn enterprise(&self, c: &Client, name: &str) -> String {
        let res = self.post(c, "/api/v1/orgs", json!({ "name": name })).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    /// `c` orders the plan for `org`, paid from its wallet; the new subscription's id.
    pub async fn buy(&self, c: &Client, org: &str, product: &str, plan: &str) -> String {
        let res = self.post(c, &format!("/api/v1/orgs/{org}/orders"), json!({"product_id": product, "plan_id": plan})).await;
        assert_eq!(res.status(), StatusCode::CREATED, "the order");
        let order: Value = res.json().await.unwrap();
        order["subscription_id"].as_str().unwrap().to_owned()
    }

    pub async fn count(&self, table_query: &'static str) -> i64 {
        let row = souk_store::Conn::fetch_one(&mut self.db.clone(), souk_store::q(table_query)).await.unwrap();
        row.get("n").unwrap()
    }
}

pub trait ClockExt {
    fn now_utc(&self) -> DateTime<Utc>;
}

impl ClockExt for MockClock {
    fn now_utc(&self) -> DateTime<Utc> {
        souk_core::clock::Clock::now(self)
    }
}

/// Asserts a problem+json answer with this status and code; returns the body.
pub async fn assert_problem(res: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status, "wrong status");
    let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert_eq!(ct, "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    body
}

pub const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// Waits (up to 30 s, for a loaded CI machine) until `check` holds: for what the background
/// workers do after a request returns.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// The CSRF token of the first form on a page.
pub fn csrf(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("a form") + 20;
    html[at..].split('"').next().unwrap().to_owned()
}
