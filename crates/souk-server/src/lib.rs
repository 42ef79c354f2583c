//! Souk's server: the JSON API (`api`), the server-rendered pages (`pages`) and the
//! background workers (`workers`), over the domain operations in `identity` and
//! `verification`. The `souk` binary builds an [`AppState`] and calls [`serve`].

pub mod api;
pub mod auth;
pub mod authorizations;
pub mod billing;
pub mod catalog;
pub mod commerce;
pub mod compute;
pub mod conformance;
pub mod demo;
mod demo_catalog;
pub mod error;
pub mod extract;
pub mod fulfillment;
pub mod gateway;
mod http;
pub mod i18n;
pub mod idempotency;
pub mod identity;
pub mod koogallery;
pub mod licenses;
pub mod markdown;
pub mod messages;
mod pages;
pub mod subscriptions;
pub mod verification;
pub mod wallet;
pub mod workers;

use std::sync::Arc;

use souk_core::clock::Clock;
use souk_store::Db;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use http::{app, openapi};

/// Settings the server needs at run time.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Mark cookies `Secure` (set when Souk is served over HTTPS).
    pub secure_cookies: bool,
    /// Names this process in outbox claims and logs; unique per process.
    pub node_id: String,
    /// 32 bytes that seal secrets waiting in the store (machine passwords until a provider
    /// takes them). Without it the first node generates a key and keeps it in the database,
    /// which protects nothing from someone who has the database: configure it in production.
    pub secret_key: Option<Vec<u8>>,
    /// Hosts or IP addresses inside the operator's network that deliveries may reach anyway
    /// (a seller stub on localhost in the demo and tests). Everything private is refused otherwise.
    pub outbound_allow: Vec<String>,
    /// Where emails go: an SMTP URL (`smtp://user:pass@host:587?tls=required`, `smtps://…:465`,
    /// `smtp://host:25`). Without one, emails are written to the log (development).
    pub smtp_url: Option<String>,
    /// The sender of every email.
    pub mail_from: String,
    /// Where SMS go: an HTTP gateway URL with `{to}` and `{text}` placeholders, POSTed the same
    /// as JSON. Without one, SMS are written to the log (development).
    pub sms_url: Option<String>,
    /// The `Authorization` header value the SMS gateway wants, if any.
    pub sms_auth: Option<String>,
    /// How long a seller's system has to answer a delivery before it counts as failed (and is
    /// retried); the delivery worker's lease is twice this and ten seconds more.
    pub seller_timeout: std::time::Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            secure_cookies: false,
            node_id: default_node_id(),
            secret_key: None,
            outbound_allow: Vec::new(),
            smtp_url: None,
            mail_from: messages::DEFAULT_FROM.to_owned(),
            sms_url: None,
            sms_auth: None,
            seller_timeout: std::time::Duration::from_secs(fulfillment::REQUEST_TIMEOUT_SECS),
        }
    }
}

/// Chooses the TLS implementation for every outbound HTTPS client of the process (deliveries
/// to sellers, the conformance kit). Safe to call many times.
pub fn tls_init() {
    // Fails only when a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub fn default_node_id() -> String {
    format!("node-{}-{}", std::process::id(), crate::auth::random_token(4))
}

/// What every handler can reach. Holds no decision of its own: sessions, locks, queues
/// and schedules are in the database, so any number of processes can serve the same data.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<ServerConfig>,
    /// Where machine-image purchases are deployed: the simulated cloud unless replaced.
    pub compute: Arc<dyn compute::ComputeProvider>,
    /// Where wallet top-ups are paid: the sandbox unless replaced.
    pub payments: Arc<dyn wallet::PaymentProvider>,
    /// The sealing key, loaded on first use.
    pub(crate) sealer: Arc<std::sync::OnceLock<compute::Sealer>>,
    /// Turns true when the server stops, so that reads waiting for a change answer at once
    /// instead of holding up the graceful shutdown.
    pub(crate) stopping: Arc<watch::Sender<bool>>,
}

impl AppState {
    pub fn new(db: Db, clock: Arc<dyn Clock>, config: ServerConfig) -> Self {
        tls_init();
        let compute = Arc::new(compute::SimulatedCompute::new(clock.clone(), chrono::Duration::seconds(20)));
        Self {
            db,
            clock,
            config: Arc::new(config),
            compute,
            payments: Arc::new(wallet::Sandbox),
            sealer: Arc::default(),
            stopping: Arc::new(watch::Sender::new(false)),
        }
    }

    /// The same state deploying machine images to `compute`.
    pub fn with_compute(mut self, compute: Arc<dyn compute::ComputeProvider>) -> Self {
        self.compute = compute;
        self
    }
}

/// Serves HTTP on `listener` and runs the background workers until `shutdown` turns true.
pub async fn serve(state: AppState, listener: TcpListener, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let housekeeping = tokio::spawn(workers::housekeeping(state.db.clone(), state.clock.clone(), shutdown.clone()));
    let sla_watch = tokio::spawn(watch_review_slas(state.clone(), shutdown.clone()));
    let outbox_workers: Vec<_> = compute::workers(&state)
        .into_iter()
        .chain([fulfillment::worker(&state), licenses::import_worker(&state)])
        .chain(messages::workers(&state))
        .map(|w| tokio::spawn(w.run(shutdown.clone(), std::time::Duration::from_millis(500))))
        .collect();
    let stopping = state.stopping.clone();
    let app = app(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
            stopping.send_replace(true);
        })
        .await?;
    housekeeping.abort();
    sla_watch.abort();
    for w in outbox_workers {
        w.abort();
    }
    Ok(())
}

/// Once a minute: "SLA at risk" events for reviews, and subscriptions expired and released.
/// Every node may run it: each step is claimed in the database, so it happens once.
async fn watch_review_slas(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(e) = catalog::warn_sla_at_risk(&state).await {
            tracing::warn!(error = %e.message(), "checking review SLAs failed");
        }
        if let Err(e) = fulfillment::flag_failing_endpoints(&state).await {
            tracing::warn!(error = %e.message(), "flagging failing seller endpoints failed");
        }
        // Subscriptions whose term or grace ended: expire and release (once, on any node).
        if let Err(e) = subscriptions::tick(&state).await {
            tracing::warn!(error = %e.message(), "subscription scheduler failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
            _ = shutdown.changed() => return,
        }
    }
}
