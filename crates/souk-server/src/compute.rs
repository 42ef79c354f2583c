//! Machine-image deployments (seed §8): the compute-provider interface, a simulated provider,
//! and the outbox handler that drives an order's servers from requested to running, or to a
//! failure that cancels the order and refunds the buyer in full.
//!
//! The flow: placing an image order records its servers (`requested`, the administrator
//! password sealed) and a `compute.deploy` event in the order's transaction. The handler
//! hands each server to the provider (create is idempotent on the server id, so a handler run
//! twice after a crash creates nothing twice), erases the password once accepted, and polls.
//! While servers are still being built it reports "in progress" and the worker comes back
//! (a short, capped retry policy); when all run, the subscription becomes active; when one
//! fails or the deployment takes too long, the rest are deleted, the subscription cancelled,
//! the order marked `fulfillment_failed`, and its total credited back to the wallet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Duration, Utc};
use futures_util::future::BoxFuture;
use serde_json::json;
use souk_core::clock::Clock;
use souk_core::compute::{DeployInput, DeploySpec, DeploymentOutcome, ServerState, outcome};
use souk_core::id::OrgId;
use souk_core::outbox::RetryPolicy;
use souk_store::servers::{self, Server};
use souk_store::{Tx, audit, orders, outbox};

use crate::AppState;
use crate::error::{Error, Result};

/// The outbox topics of deployments.
pub const DEPLOY_TOPIC: &str = "compute.deploy";
pub const RELEASE_TOPIC: &str = "compute.release";
/// A deployment not finished after this long has failed.
pub const DEPLOY_TIMEOUT_MINUTES: i64 = 30;

/// The polling schedule while servers are being built: 5 s, 10 s, 20 s, then every 30 s,
/// without jitter, until well past the deployment timeout (which ends it first).
pub fn polling_policy() -> RetryPolicy {
    RetryPolicy {
        base: Duration::seconds(5),
        max_delay: Duration::seconds(30),
        max_attempts: 200,
        jitter_per_mille: 0,
        schedule: &[],
        window: None,
    }
}

/// What the provider is asked to create.
#[derive(Debug, Clone)]
pub struct ServerRequest {
    /// Souk's server id: the provider's idempotency key.
    pub id: String,
    pub name: String,
    pub spec: DeploySpec,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStatus {
    Building,
    Running { private_ip: String, public_ip: Option<String> },
    Failed(String),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused the request for good (quota, unknown flavor).
    #[error("refused: {0}")]
    Refused(String),
    /// The provider could not be reached or answered with an error; try again.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// A cloud's compute API, as much of it as Souk needs. Real providers plug in here.
pub trait ComputeProvider: Send + Sync + 'static {
    /// Creates the server, or returns the reference of the one already created for `req.id`.
    fn create<'a>(&'a self, req: &'a ServerRequest, admin_password: &'a str) -> BoxFuture<'a, Result<String, ProviderError>>;
    fn status<'a>(&'a self, provider_ref: &'a str) -> BoxFuture<'a, Result<ServerStatus, ProviderError>>;
    /// Deletes the server; deleting one already gone succeeds.
    fn delete<'a>(&'a self, provider_ref: &'a str) -> BoxFuture<'a, Result<(), ProviderError>>;
}

/// A stand-in cloud for development, the demo and tests. Servers take `build_time` (by the
/// injected clock) to start. A server whose name contains `fail` fails to build ("no
/// capacity"), and one whose name contains `refuse` is refused at once, so every path can be
/// tried from the wizard. Its servers live in this process's memory: it simulates a cloud,
/// it is not part of Souk's state.
pub struct SimulatedCompute {
    clock: Arc<dyn Clock>,
    build_time: Duration,
    servers: Mutex<HashMap<String, SimServer>>,
}

struct SimServer {
    reference: String,
    created: DateTime<Utc>,
    fails: Option<String>,
    public: bool,
    number: usize,
    deleted: bool,
}

impl SimulatedCompute {
    pub fn new(clock: Arc<dyn Clock>, build_time: Duration) -> Self {
        Self { clock, build_time, servers: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SimServer>> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.servers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ComputeProvider for SimulatedCompute {
    fn create<'a>(&'a self, req: &'a ServerRequest, admin_password: &'a str) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            if admin_password.is_empty() {
                return Err(ProviderError::Refused("an administrator password is required".into()));
            }
            if req.name.contains("refuse") {
                return Err(ProviderError::Refused(format!("quota exceeded for {} in {}", req.spec.flavor, req.spec.region)));
            }
            let mut servers = self.lock();
            let number = servers.len() + 1;
            let s = servers.entry(req.id.clone()).or_insert_with(|| SimServer {
                reference: format!("sim-{}", req.id.trim_start_matches("srv_")),
                created: self.clock.now(),
                fails: req.name.contains("fail").then(|| format!("no capacity for {} in {}", req.spec.flavor, req.spec.region)),
                public: req.spec.public_ip_mbps.is_some(),
                number,
                deleted: false,
            });
            Ok(s.reference.clone())
        })
    }

    fn status<'a>(&'a self, provider_ref: &'a str) -> BoxFuture<'a, Result<ServerStatus, ProviderError>> {
        Box::pin(async move {
            let servers = self.lock();
            let s = servers
                .values()
                .find(|s| s.reference == provider_ref)
                .ok_or_else(|| ProviderError::Refused(format!("no server {provider_ref}")))?;
            if s.deleted {
                return Ok(ServerStatus::Failed("deleted".into()));
            }
            if self.clock.now() < s.created + self.build_time {
                return Ok(ServerStatus::Building);
            }
            Ok(match &s.fails {
                Some(why) => ServerStatus::Failed(why.clone()),
                None => ServerStatus::Running {
                    private_ip: format!("192.168.{}.{}", s.number / 250, s.number % 250 + 2),
                    public_ip: s.public.then(|| format!("100.64.{}.{}", s.number / 250, s.number % 250 + 2)),
                },
            })
        })
    }

    fn delete<'a>(&'a self, provider_ref: &'a str) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            if let Some(s) = self.lock().values_mut().find(|s| s.reference == provider_ref) {
                s.deleted = true;
            }
            Ok(())
        })
    }
}

/// Seals secrets that must wait in the store (XChaCha20-Poly1305, random nonce). The key is
/// the configured one, or one generated by the first node and kept in the database.
#[derive(Clone)]
pub struct Sealer(Arc<XChaCha20Poly1305>);

impl Sealer {
    pub fn new(key: &[u8]) -> Result<Self> {
        let cipher =
            XChaCha20Poly1305::new_from_slice(key).map_err(|_| Error::Internal(anyhow::anyhow!("the key must be 32 bytes")))?;
        Ok(Self(Arc::new(cipher)))
    }

    pub fn seal(&self, plain: &[u8]) -> Result<Vec<u8>> {
        let nonce_bytes: [u8; 24] = rand::random();
        let nonce = XNonce::from_slice(&nonce_bytes);
        let mut out = nonce_bytes.to_vec();
        out.extend(self.0.encrypt(nonce, plain).map_err(|_| Error::Internal(anyhow::anyhow!("sealing failed")))?);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < 24 {
            return Err(Error::Internal(anyhow::anyhow!("sealed value too short")));
        }
        let (nonce, body) = sealed.split_at(24);
        self.0
            .decrypt(XNonce::from_slice(nonce), body)
            .map_err(|_| Error::Internal(anyhow::anyhow!("sealed value does not open")))
    }
}

/// The deployment's sealer, loaded once per process.
pub async fn sealer(state: &AppState) -> Result<Sealer> {
    if let Some(s) = state.sealer.get() {
        return Ok(s.clone());
    }
    let key = match &state.config.secret_key {
        Some(k) => k.clone(),
        None => servers::key(&mut state.db.clone(), state.clock.now(), "sealing", || rand::random::<[u8; 32]>().to_vec()).await?,
    };
    let s = Sealer::new(&key)?;
    Ok(state.sealer.get_or_init(|| s).clone())
}

/// Checks the wizard's answers for an image product and seals the password. Called before
/// the order's transaction starts.
pub async fn prepare(
    state: &AppState,
    image: Option<&souk_core::catalog::ImageSpec>,
    input: &DeployInput,
    count: u32,
) -> Result<(DeploySpec, Vec<u8>)> {
    let image = image.ok_or_else(|| Error::field("product_id", "this product has no machine image to deploy"))?;
    let (spec, password) = input.check(image, count).map_err(Error::validation)?;
    let sealed = sealer(state).await?.seal(password.expose().as_bytes())?;
    Ok((spec, sealed))
}

/// Records the servers of an image order and the event that deploys them, inside the order's
/// transaction.
#[allow(clippy::too_many_arguments)]
pub async fn record(
    tx: &mut Tx,
    now: DateTime<Utc>,
    subscription_id: &str,
    order_id: &str,
    buyer: &OrgId,
    spec: &DeploySpec,
    sealed_password: &[u8],
    count: u32,
) -> Result<()> {
    for name in spec.server_names(count) {
        servers::create(tx, now, subscription_id, order_id, buyer, &name, spec, sealed_password).await?;
    }
    outbox::enqueue(tx, now, DEPLOY_TOPIC, subscription_id, &json!({ "subscription_id": subscription_id })).await?;
    Ok(())
}

fn spec_of(s: &Server) -> Result<DeploySpec> {
    let v = &s.spec;
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_owned();
    Ok(DeploySpec {
        region: text("region"),
        flavor: text("flavor"),
        image_ref: text("image_ref"),
        disk_gb: v.get("disk_gb").and_then(serde_json::Value::as_u64).and_then(|d| u32::try_from(d).ok()).unwrap_or(0),
        vpc: text("vpc"),
        subnet: text("subnet"),
        security_group: text("security_group"),
        public_ip_mbps: v.get("public_ip_mbps").and_then(serde_json::Value::as_u64).and_then(|d| u32::try_from(d).ok()),
        server_name: s.name.clone(),
    })
}

/// Advances one subscription's deployment. `Ok(true)`: finished (running, or failed and
/// refunded); `Ok(false)`: still in progress, come back later.
pub async fn drive(state: &AppState, subscription_id: &str) -> Result<bool> {
    let mut db = state.db.clone();
    let sub = orders::get_subscription(&mut db, subscription_id).await?;
    if sub.state != "pending_fulfillment" {
        return Ok(true);
    }
    for s in servers::of_subscription(&mut db, subscription_id).await? {
        let now = state.clock.now();
        match s.state {
            ServerState::Requested => {
                let Some(sealed) = &s.sealed_password else {
                    servers::failed(&mut db, now, &s.id, "the administrator password was lost").await?;
                    continue;
                };
                let password = String::from_utf8(sealer(state).await?.open(sealed)?).map_err(|e| Error::Internal(e.into()))?;
                let req = ServerRequest { id: s.id.clone(), name: s.name.clone(), spec: spec_of(&s)? };
                match state.compute.create(&req, &password).await {
                    Ok(reference) => {
                        servers::accepted(&mut db, now, &s.id, &reference).await?;
                    }
                    Err(ProviderError::Refused(why)) => {
                        servers::failed(&mut db, now, &s.id, &why).await?;
                    }
                    Err(e @ ProviderError::Unavailable(_)) => return Err(Error::Internal(e.into())),
                }
            }
            ServerState::Creating => {
                let reference = s.provider_ref.clone().unwrap_or_default();
                match state.compute.status(&reference).await {
                    Ok(ServerStatus::Building) => {}
                    Ok(ServerStatus::Running { private_ip, public_ip }) => {
                        servers::running(&mut db, now, &s.id, &private_ip, public_ip.as_deref()).await?;
                    }
                    Ok(ServerStatus::Failed(why)) | Err(ProviderError::Refused(why)) => {
                        servers::failed(&mut db, now, &s.id, &why).await?;
                    }
                    Err(e @ ProviderError::Unavailable(_)) => return Err(Error::Internal(e.into())),
                }
            }
            _ => {}
        }
    }
    let now = state.clock.now();
    let all = servers::of_subscription(&mut db, subscription_id).await?;
    let states: Vec<ServerState> = all.iter().map(|s| s.state).collect();
    match outcome(&states) {
        DeploymentOutcome::Running => {
            finish(state, &sub, &all).await?;
            Ok(true)
        }
        DeploymentOutcome::Failed => {
            fail(state, &sub, &all).await?;
            Ok(true)
        }
        DeploymentOutcome::InProgress if now - sub.created_at > Duration::minutes(DEPLOY_TIMEOUT_MINUTES) => {
            for s in all.iter().filter(|s| matches!(s.state, ServerState::Requested | ServerState::Creating)) {
                servers::failed(&mut db, now, &s.id, "timed out").await?;
            }
            let all = servers::of_subscription(&mut db, subscription_id).await?;
            fail(state, &sub, &all).await?;
            Ok(true)
        }
        DeploymentOutcome::InProgress => Ok(false),
    }
}

async fn finish(state: &AppState, sub: &orders::Subscription, all: &[Server]) -> Result<()> {
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    if !orders::transition(&mut tx, now, &sub.id, &["pending_fulfillment"], "active").await? {
        return Ok(());
    }
    for o in orders::orders_of(&mut tx, &sub.id).await? {
        if o.state == "paid" {
            orders::set_order_state(&mut tx, now, &o.id, "completed").await?;
        }
    }
    let addresses: Vec<_> = all
        .iter()
        .map(|s| json!({ "server_id": s.id, "name": s.name, "public_ip": s.public_ip, "private_ip": s.private_ip }))
        .collect();
    outbox::enqueue(
        &mut tx,
        now,
        "compute.deployed",
        &sub.id,
        &json!({ "subscription_id": sub.id, "buyer_org_id": sub.buyer_org_id, "servers": addresses }),
    )
    .await?;
    audit_entry(&mut tx, now, sub, "deployment.running", format!("{} server(s) running", all.len())).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes what was built, cancels the subscription and refunds every order in full.
async fn fail(state: &AppState, sub: &orders::Subscription, all: &[Server]) -> Result<()> {
    let why = all.iter().find_map(|s| s.failure.clone()).unwrap_or_else(|| "deployment failed".into());
    // Provider calls first: if this run dies here, the next run deletes again (idempotent).
    let mut db = state.db.clone();
    for s in all.iter().filter(|s| matches!(s.state, ServerState::Creating | ServerState::Running)) {
        if let Some(r) = &s.provider_ref {
            state.compute.delete(r).await.map_err(|e| Error::Internal(e.into()))?;
        }
        servers::released(&mut db, state.clock.now(), &s.id).await?;
    }
    crate::subscriptions::fail_fulfillment(state, sub, &format!("deployment failed: {why}")).await?;
    Ok(())
}

async fn audit_entry(tx: &mut Tx, now: DateTime<Utc>, sub: &orders::Subscription, action: &str, summary: String) -> Result<()> {
    let org: Option<OrgId> = sub.buyer_org_id.parse().ok();
    audit::record(
        tx,
        now,
        audit::NewEntry { actor: "system", actor_org: org.as_ref(), action, target: &sub.id, summary, request_id: None },
    )
    .await?;
    Ok(())
}

/// Deletes the servers of a subscription that ended (released or unsubscribed).
pub async fn release(state: &AppState, subscription_id: &str) -> Result<()> {
    let mut db = state.db.clone();
    for s in servers::of_subscription(&mut db, subscription_id).await? {
        if matches!(s.state, ServerState::Creating | ServerState::Running) {
            if let Some(r) = &s.provider_ref {
                state.compute.delete(r).await.map_err(|e| Error::Internal(e.into()))?;
            }
            servers::released(&mut db, state.clock.now(), &s.id).await?;
        }
    }
    Ok(())
}

/// The outbox workers of deployments, for `serve` and for tests.
pub fn workers(state: &AppState) -> Vec<crate::workers::Worker> {
    let deploy = {
        let state = state.clone();
        move |e: outbox::Event| {
            let state = state.clone();
            async move {
                let id = e.payload.get("subscription_id").and_then(|v| v.as_str()).unwrap_or(&e.aggregate_id).to_owned();
                match drive(&state, &id).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err("servers are still being created".to_owned()),
                    Err(e) => Err(e.message()),
                }
            }
        }
    };
    let release_handler = {
        let state = state.clone();
        move |e: outbox::Event| {
            let state = state.clone();
            async move {
                let id = e.payload.get("subscription_id").and_then(|v| v.as_str()).unwrap_or(&e.aggregate_id).to_owned();
                release(&state, &id).await.map_err(|e| e.message())
            }
        }
    };
    let mut d =
        crate::workers::Worker::new(state.db.clone(), state.clock.clone(), DEPLOY_TOPIC, Arc::new(deploy), &state.config.node_id);
    d.policy = polling_policy();
    let r = crate::workers::Worker::new(
        state.db.clone(),
        state.clock.clone(),
        RELEASE_TOPIC,
        Arc::new(release_handler),
        &state.config.node_id,
    );
    vec![d, r]
}

/// A page of the servers a buyer organization has, newest first.
pub async fn list(state: &AppState, buyer: &OrgId, before: Option<&str>, limit: u32) -> Result<Vec<Server>> {
    Ok(servers::list_for_buyer(&mut state.db.clone(), buyer, before, limit).await?)
}
