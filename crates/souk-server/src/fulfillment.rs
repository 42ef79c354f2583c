//! The fulfillment engine (seed §5): each subscription's events delivered to its seller's
//! system over the native protocol (docs/PROTOCOL.md), signed as Standard Webhooks specifies,
//! in order per subscription, retried on a schedule, logged attempt by attempt; the seller's
//! answer provisions the subscription, and when every retry failed the order fails and the
//! buyer is refunded in full.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use chrono::Duration;
use serde_json::{Value, json};
use souk_core::id::{OrgId, ProductId};
use souk_core::outbox::RetryPolicy;
use souk_isv::answer::Answer;
use souk_isv::signature::{Secret, sign};
use souk_store::fulfillment::{self as store, Integration};
use souk_store::outbox::{self, Event};
use souk_store::{orders, products};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::workers::{Attempt, Failure, Handler, HandlerFuture, Worker};

/// The outbox topics delivered to sellers, in order per subscription.
pub const SELLER_TOPICS: &[&str] = &[
    "instance.create",
    "instance.renew",
    "instance.change_plan",
    "instance.suspend",
    "instance.resume",
    "instance.release",
    "authorization.sync",
    "license.issue",
];
/// How long a seller has to answer, unless the operator sets otherwise.
pub const REQUEST_TIMEOUT_SECS: u64 = 15;
/// After a 202, the create is sent again no sooner than this.
pub const POLL_SECS: i64 = 60;
/// How much of a seller's answer the delivery log keeps.
pub const EXCERPT_CHARS: usize = 2000;

/// What a seller set for a product, and a newly created secret (shown once).
pub struct Settings {
    pub integration: Integration,
    pub new_secret: Option<String>,
}

async fn own_product(state: &AppState, caller: &Caller, seller: &OrgId, product_id: &str) -> Result<ProductId> {
    caller.admin_of(state, seller).await?;
    let pid: ProductId = product_id.parse().map_err(|_| Error::not_found())?;
    let p = products::get(&mut state.db.clone(), &pid).await?;
    if p.seller_org_id != *seller {
        return Err(Error::not_found());
    }
    Ok(pid)
}

/// What a seller sets for a product's integration.
#[derive(Debug, Clone, Copy, Default)]
pub struct IntegrationInput<'a> {
    pub endpoint: &'a str,
    /// `native` or `koogallery`.
    pub protocol: &'a str,
    /// KooGallery: keep the existing access key of the basic APIs (one is made otherwise).
    pub access_key: Option<&'a str>,
    /// KooGallery: the joint-operation sync APIs' base URL, for enterprise user authorization.
    pub sync_url: Option<&'a str>,
    /// KooGallery: the sync APIs' own access key (without one, the basic key signs them).
    pub sync_access_key: Option<&'a str>,
    /// KooGallery: ask the seller (`changeInstanceCheck`) before every plan change.
    pub change_check: bool,
}

fn parse_endpoint(field: &'static str, given: &str) -> Result<url::Url> {
    let url = url::Url::parse(given.trim()).map_err(|_| Error::field(field, "an http(s) URL"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() || given.len() > 500 {
        return Err(Error::field(field, "an http(s) URL of at most 500 characters"));
    }
    Ok(url)
}

fn parse_access_key(field: &'static str, given: Option<&str>) -> Result<Option<String>> {
    match given.map(str::trim).filter(|k| !k.is_empty()) {
        Some(k) if (16..=128).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()) => Ok(Some(k.to_owned())),
        Some(_) => Err(Error::field(field, "16 to 128 printable characters")),
        None => Ok(None),
    }
}

/// Where a product's deliveries go. The first time, a signing secret is created and returned.
pub async fn configure(
    state: &AppState,
    caller: &Caller,
    seller: &OrgId,
    product_id: &str,
    input: IntegrationInput<'_>,
) -> Result<Settings> {
    let pid = own_product(state, caller, seller, product_id).await?;
    let url = parse_endpoint("endpoint", input.endpoint)?;
    let protocol = input.protocol;
    if !matches!(protocol, "native" | "koogallery") {
        return Err(Error::field("protocol", "native or koogallery"));
    }
    // A seller moving from KooGallery keeps its access keys, so its system works unchanged.
    let given_key = parse_access_key("access_key", input.access_key)?;
    let sync_key = parse_access_key("sync_access_key", input.sync_access_key)?;
    let sync_url = match input.sync_url.map(str::trim).filter(|u| !u.is_empty()) {
        Some(u) => Some(parse_endpoint("sync_url", u)?.to_string()),
        None => None,
    };
    if protocol != "koogallery" {
        let stray = [
            ("access_key", given_key.is_some()),
            ("sync_access_key", sync_key.is_some()),
            ("sync_url", sync_url.is_some()),
            ("change_check", input.change_check),
        ];
        if let Some((field, _)) = stray.iter().find(|(_, set)| *set) {
            return Err(Error::field(field, "only the koogallery protocol takes this"));
        }
    } else {
        // KooGallery's license 2.0 has no call asking the seller for codes.
        let product = products::get(&mut state.db.clone(), &pid).await?;
        if let Some(rev) = &product.live_revision_id {
            let live = products::get_revision(&mut state.db.clone(), rev).await?.content;
            if product.kind == souk_core::catalog::ProductKind::License
                && live.license_source() == souk_core::catalog::LicenseSource::Seller
            {
                return Err(Error::field(
                    "protocol",
                    "KooGallery's protocol cannot ask your system for license codes: use native, or codes Souk generates",
                ));
            }
        }
    }
    let now = state.clock.now();
    // Loaded before the transaction: on first use it writes the key on a connection of its own.
    let sealer = crate::compute::sealer(state).await?;
    let mut tx = state.db.begin().await?;
    let mut integration = store::upsert(&mut tx, now, pid.as_str(), seller, url.as_str(), protocol).await?;
    store::set_koogallery(&mut tx, pid.as_str(), sync_url.as_deref(), input.change_check).await?;
    if protocol != "koogallery" {
        store::set_sync_key(&mut tx, pid.as_str(), None).await?;
    } else if let Some(k) = &sync_key {
        store::set_sync_key(&mut tx, pid.as_str(), Some(&sealer.seal(k.as_bytes())?)).await?;
    }
    let mut new_secret = None;
    if integration.secret_sealed.is_none() || given_key.is_some() {
        let (bytes, shown) = match (protocol, given_key) {
            (_, Some(k)) => (k.clone().into_bytes(), k),
            ("koogallery", None) => {
                let k = crate::auth::random_token(24);
                (k.clone().into_bytes(), k)
            }
            _ => {
                let secret = Secret::generate();
                (secret.bytes().to_vec(), secret.expose())
            }
        };
        let sealed = sealer.seal(&bytes)?;
        store::rotate_secret(&mut tx, now, pid.as_str(), &sealed).await?;
        store::drop_previous_secret(&mut tx, now, pid.as_str()).await?;
        new_secret = Some(shown);
    }
    integration = store::get(&mut tx, pid.as_str()).await?.ok_or_else(Error::not_found)?;
    audit(&mut tx, now, caller, seller, "integration.configured", pid.as_str(), format!("deliveries to {url} ({protocol})"))
        .await?;
    tx.commit().await?;
    Ok(Settings { integration, new_secret })
}

pub async fn settings(state: &AppState, caller: &Caller, seller: &OrgId, product_id: &str) -> Result<Integration> {
    let pid = own_product(state, caller, seller, product_id).await?;
    store::get(&mut state.db.clone(), pid.as_str()).await?.ok_or_else(Error::not_found)
}

/// Starts a rotation: a new secret signs from now on, alongside the previous one until the
/// seller finishes the rotation. Returns the new secret (shown once).
pub async fn rotate(state: &AppState, caller: &Caller, seller: &OrgId, product_id: &str) -> Result<String> {
    let pid = own_product(state, caller, seller, product_id).await?;
    let now = state.clock.now();
    let secret = Secret::generate();
    let sealed = crate::compute::sealer(state).await?.seal(secret.bytes())?;
    let mut tx = state.db.begin().await?;
    store::get(&mut tx, pid.as_str()).await?.ok_or_else(|| Error::conflict("no_integration", "set the endpoint first"))?;
    store::rotate_secret(&mut tx, now, pid.as_str(), &sealed).await?;
    audit(
        &mut tx,
        now,
        caller,
        seller,
        "integration.secret_rotated",
        pid.as_str(),
        "new signing secret; the previous one still signs".into(),
    )
    .await?;
    tx.commit().await?;
    Ok(secret.expose())
}

/// Ends a rotation: the previous secret stops signing.
pub async fn finish_rotation(state: &AppState, caller: &Caller, seller: &OrgId, product_id: &str) -> Result<Integration> {
    let pid = own_product(state, caller, seller, product_id).await?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    store::drop_previous_secret(&mut tx, now, pid.as_str()).await?;
    audit(&mut tx, now, caller, seller, "integration.rotation_finished", pid.as_str(), "previous signing secret retired".into())
        .await?;
    let i = store::get(&mut tx, pid.as_str()).await?.ok_or_else(Error::not_found)?;
    tx.commit().await?;
    Ok(i)
}

/// Records what a member of `org` did, in the change's transaction.
pub(crate) async fn audit(
    tx: &mut souk_store::Tx,
    now: chrono::DateTime<chrono::Utc>,
    caller: &Caller,
    org: &OrgId,
    action: &str,
    target: &str,
    summary: String,
) -> Result<()> {
    souk_store::audit::record(
        tx,
        now,
        souk_store::audit::NewEntry { actor: &caller.actor(), actor_org: Some(org), action, target, summary, request_id: None },
    )
    .await?;
    Ok(())
}

/// The integration's signing secrets, current first.
async fn secrets(state: &AppState, i: &Integration) -> Result<Vec<Secret>> {
    let sealer = crate::compute::sealer(state).await?;
    let mut out = Vec::new();
    for sealed in [&i.secret_sealed, &i.previous_sealed].into_iter().flatten() {
        out.push(Secret::from_bytes(sealer.open(sealed)?));
    }
    Ok(out)
}

/// The key that signs KooGallery sync calls: the sync APIs' own, else the basic one.
pub(crate) async fn sync_key(state: &AppState, i: &Integration) -> Result<Option<String>> {
    let sealer = crate::compute::sealer(state).await?;
    let sealed = i.sync_key_sealed.as_ref().or(i.secret_sealed.as_ref());
    Ok(match sealed {
        Some(s) => Some(String::from_utf8_lossy(&sealer.open(s)?).into_owned()),
        None => None,
    })
}

/// The current signing secret of a product (to decrypt what its seller encrypted).
pub async fn current_secret(state: &AppState, product_id: &str) -> Result<Option<Secret>> {
    match store::get(&mut state.db.clone(), product_id).await? {
        Some(i) => Ok(secrets(state, &i).await?.into_iter().next()),
        None => Ok(None),
    }
}

/// The state a subscription is in once the event applies.
fn state_after(topic: &str, payload: &Value) -> &'static str {
    match topic {
        "instance.create" => "pending_fulfillment",
        "instance.suspend" => "expired",
        "instance.release" if payload.get("reason").and_then(Value::as_str) == Some("grace_ended") => "released",
        "instance.release" => "cancelled",
        "authorization.sync" => "active",
        _ => "active",
    }
}

/// The body Souk sends for an event.
async fn body_of(state: &AppState, event: &Event, sub: &orders::Subscription) -> Result<Value> {
    let mut db = state.db.clone();
    let p = &event.payload;
    let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
    let plan_id = text("new_plan_id").or_else(|| text("plan_id")).unwrap_or_else(|| sub.plan_id.clone());
    let pid: ProductId = sub.product_id.parse().map_err(|_| Error::not_found())?;
    // An order's event names its plan's code as bought; other events' plans are looked up.
    let plan_code = match p.get("plan_code").and_then(Value::as_str).filter(|_| text("new_plan_id").is_none()) {
        Some(code) => Some(code.to_owned()),
        None => products::plans(&mut db, &pid, true).await?.into_iter().find(|x| x.id.as_str() == plan_id).map(|x| x.spec.code),
    };
    let sequence = outbox::sequence(&mut db, event, SELLER_TOPICS).await?;
    let instance_id = sub.instance_id.clone();
    Ok(json!({
        "id": event.id,
        "type": event.topic,
        "sequence": sequence,
        "timestamp": event.created_at,
        "test": p.get("test").and_then(Value::as_bool).unwrap_or(false),
        "data": {
            "subscription_id": sub.id,
            "product_id": sub.product_id,
            "plan_id": plan_id,
            "plan_code": plan_code,
            "buyer_org_id": sub.buyer_org_id,
            "state": state_after(&event.topic, p),
            "quantity": p.get("quantity").and_then(Value::as_i64).unwrap_or(sub.quantity),
            "trial": p.get("trial").and_then(Value::as_bool).unwrap_or(sub.trial),
            "order_id": text("order_id"),
            "periods": p.get("periods").and_then(Value::as_i64),
            "expires_at": p.get("expires_at").cloned().filter(|v| !v.is_null()).or_else(|| sub.term_end.map(|t| json!(t))),
            "instance_id": instance_id,
            "reason": text("reason"),
            "flag": text("flag"),
            "users": p.get("users").cloned(),
            "license_codes": p.get("license_codes").cloned(),
            "license_quantity": (event.topic == "license.issue").then(|| p.get("quantity").cloned()).flatten(),
        }
    }))
}

/// Loopback, private, link-local, shared (CGNAT) and unspecified addresses: the operator's
/// own network, which a seller's endpoint must not point Souk at.
fn is_internal(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            v.is_loopback()
                || v.is_private()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
                || v.octets()[0] == 100 && (64..128).contains(&v.octets()[1])
        }
        IpAddr::V6(v) => match v.to_ipv4_mapped() {
            Some(v4) => is_internal(&IpAddr::V4(v4)),
            None => {
                v.is_loopback()
                    || v.is_unspecified()
                    || (v.segments()[0] & 0xfe00) == 0xfc00
                    || (v.segments()[0] & 0xffc0) == 0xfe80
            }
        },
    }
}

fn allowed_ip(allow: &[String], ip: &IpAddr) -> bool {
    allow.iter().any(|a| a.parse::<IpAddr>().is_ok_and(|x| x == *ip))
}

/// Refuses addresses inside the operator's network (loopback, private, link-local) unless
/// the host is on the allow-list. This gives an early, clear answer; the connection itself is
/// guarded again by [`GuardedResolver`], so a name that resolves differently the second time
/// (DNS rebinding) still cannot reach an internal address.
pub async fn check_destination(url: &url::Url, allow: &[String]) -> std::result::Result<(), String> {
    let host = url.host_str().ok_or("the endpoint has no host")?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if allow.iter().any(|a| a.eq_ignore_ascii_case(bare)) {
        return Ok(());
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| format!("cannot resolve {bare}: {e}"))?
            .map(|a| a.ip())
            .collect(),
    };
    for ip in &addrs {
        if is_internal(ip) && !allowed_ip(allow, ip) {
            return Err(format!("refused: {bare} is a private or loopback address ({ip}); an operator can allow it"));
        }
    }
    Ok(())
}

/// The resolver of the client that calls sellers: it hands the connector only the addresses
/// it checked, so what is checked is what is connected to. (IP-literal URLs skip resolution;
/// [`check_destination`] refuses those.)
struct GuardedResolver {
    allow: Arc<Vec<String>>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if allow.iter().any(|a| a.eq_ignore_ascii_case(&host)) {
                return Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs);
            }
            let ok: Vec<std::net::SocketAddr> =
                addrs.into_iter().filter(|a| !is_internal(&a.ip()) || allowed_ip(&allow, &a.ip())).collect();
            if ok.is_empty() {
                return Err(format!("refused: {host} resolves to a private or loopback address").into());
            }
            Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// One attempt's entry in the delivery log, and what it says of the endpoint's health.
pub(crate) struct Logged {
    at: chrono::DateTime<chrono::Utc>,
    event_id: String,
    topic: String,
    subscription_id: String,
    seller: String,
    product_id: String,
    attempt: u32,
    url: String,
    request_body: String,
    status: Option<u16>,
    excerpt: String,
    latency_ms: i64,
    error: Option<String>,
    /// Whether the endpoint may be marked failing now: a success then clears the mark. Known
    /// false when the integration, just read, was not failing: a statement saved per delivery.
    maybe_failing: bool,
}

impl Logged {
    async fn write(&self, c: &mut impl souk_store::Conn) -> std::result::Result<(), souk_store::StoreError> {
        let entry = store::NewDelivery {
            event_id: &self.event_id,
            topic: &self.topic,
            subscription_id: &self.subscription_id,
            seller: &self.seller,
            product_id: &self.product_id,
            attempt: self.attempt,
            url: &self.url,
            request_body: &self.request_body,
            status: self.status,
            response_excerpt: Some(self.excerpt.as_str()).filter(|e| !e.is_empty()),
            latency_ms: self.latency_ms,
            error: self.error.as_deref(),
        };
        store::record(c, self.at, entry).await?;
        if self.error.is_some() || self.maybe_failing {
            store::note_outcome(c, self.at, &self.product_id, self.error.is_none()).await?;
        }
        Ok(())
    }

    /// Writes the entry in a commit of its own.
    async fn write_alone(&self, state: &AppState) -> std::result::Result<(), Failure> {
        let db_err = |e: souk_store::StoreError| Failure::from(e.to_string());
        let mut tx = state.db.begin().await.map_err(db_err)?;
        self.write(&mut tx).await.map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }
}

/// Delivers seller events. Implements the outbox handler with its give-up compensation.
pub struct Deliverer {
    state: AppState,
    client: reqwest::Client,
}

/// The HTTP client for calls to sellers' systems: the request timeout, and no redirects (an
/// answer we do not follow: 3xx counts as a failure). With `guard`, the operator's
/// allow-list, it connects to no internal address the list does not name; without, it goes
/// anywhere (`souk isv check`, run by a seller against its own endpoint).
pub fn seller_client(guard: Option<&[String]>) -> reqwest::Client {
    seller_client_with(guard, std::time::Duration::from_secs(REQUEST_TIMEOUT_SECS))
}

/// [`seller_client`] with the operator's own request timeout.
pub fn seller_client_with(guard: Option<&[String]>, timeout: std::time::Duration) -> reqwest::Client {
    crate::tls_init();
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Souk/", env!("CARGO_PKG_VERSION")));
    if let Some(allow) = guard {
        b = b.dns_resolver(Arc::new(GuardedResolver { allow: Arc::new(allow.to_vec()) }));
    }
    b.build().unwrap_or_default()
}

impl Deliverer {
    pub fn new(state: AppState) -> Self {
        let client = seller_client_with(Some(&state.config.outbound_allow), state.config.seller_timeout);
        Self { state, client }
    }

    /// [`Deliverer::post`], with the attempt's log written at once.
    pub(crate) async fn post_logged(
        &self,
        event: &Event,
        sub: &orders::Subscription,
        url: url::Url,
        body: &str,
        headers: &[(&str, String)],
    ) -> std::result::Result<(u16, String), Failure> {
        let (status, text, log) = self.post(event, sub, url, body, headers).await?;
        log.write_alone(&self.state).await?;
        Ok((status, text))
    }

    /// POSTs `body` to `url` (refusing private addresses) and returns the status and answer
    /// with the attempt's entry for the delivery log and the endpoint's health, to be written
    /// with what follows from the answer; or the failure to retry with, its entry written.
    async fn post(
        &self,
        event: &Event,
        sub: &orders::Subscription,
        url: url::Url,
        body: &str,
        headers: &[(&str, String)],
    ) -> std::result::Result<(u16, String, Logged), Failure> {
        let state = &self.state;
        let started = Instant::now();
        let sent = match check_destination(&url, &state.config.outbound_allow).await {
            Err(refused) => Err(refused),
            Ok(()) => {
                let mut req = self.client.post(url.clone()).header("content-type", "application/json").body(body.to_owned());
                for (k, v) in headers {
                    req = req.header(*k, v.as_str());
                }
                req.send().await.map_err(|e| {
                    if e.is_timeout() {
                        format!("no answer within {} ms", state.config.seller_timeout.as_millis())
                    } else {
                        format!("request failed: {e}")
                    }
                })
            }
        };
        let (status, text, retry_after, error) = match sent {
            Err(e) => (None, String::new(), None, Some(e)),
            Ok(res) => {
                let status = res.status().as_u16();
                let retry_after = res
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .map(|s| Duration::seconds(s.clamp(0, 86_400)));
                let text = res.text().await.unwrap_or_default();
                let error = (!(200..300).contains(&status)).then(|| format!("the seller answered {status}"));
                (Some(status), text, retry_after, error)
            }
        };
        let latency = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let excerpt: String = text.chars().take(EXCERPT_CHARS).collect();
        let log = Logged {
            at: state.clock.now(),
            event_id: event.id.to_string(),
            topic: event.topic.clone(),
            subscription_id: sub.id.clone(),
            seller: sub.seller_org_id.clone(),
            product_id: sub.product_id.clone(),
            attempt: event.attempts,
            url: url.to_string(),
            request_body: body.to_owned(),
            status,
            excerpt,
            latency_ms: latency,
            error,
            maybe_failing: true,
        };
        match log.error.clone() {
            Some(message) => {
                log.write_alone(state).await?;
                Err(Failure { message, retry_after, ..Failure::default() })
            }
            None => Ok((status.unwrap_or(200), text, log)),
        }
    }

    async fn deliver(&self, attempt: &Attempt) -> std::result::Result<(), Failure> {
        let event = &attempt.event;
        let state = &self.state;
        let internal = |e: Error| Failure::from(e.message());
        let mut db = state.db.clone();
        let (sub, codes) =
            orders::subscription_with_codes(&mut db, &event.aggregate_id).await.map_err(|e| Failure::from(e.to_string()))?;
        // A product without an integration is provisioned by hand through the API.
        let Some(integration) = store::get(&mut db, &sub.product_id).await.map_err(|e| Failure::from(e.to_string()))? else {
            return Ok(());
        };
        // A retry after a 202, but the seller reported through the API meanwhile: nothing left to
        // ask. (A manual redelivery starts again at attempt 1 and is always sent.)
        if event.topic == "instance.create" && event.attempts > 1 && sub.state != "pending_fulfillment" {
            return Ok(());
        }
        let secrets = secrets(state, &integration).await.map_err(internal)?;
        let url = url::Url::parse(&integration.endpoint).map_err(|e| Failure::from(e.to_string()))?;
        if integration.protocol == "koogallery" {
            let key = secrets.first().map(|s| String::from_utf8_lossy(s.bytes()).into_owned()).unwrap_or_default();
            return crate::koogallery::deliver(self, event, &sub, &integration, url, &key, &codes).await;
        }
        let body = body_of(state, event, &sub).await.map_err(internal)?.to_string();
        let refs: Vec<&Secret> = secrets.iter().collect();
        // The signature's timestamp is the wall clock: receivers check it against theirs.
        let ts = chrono::Utc::now().timestamp();
        let headers = [
            ("webhook-id", event.id.to_string()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", sign(&refs, event.id.as_str(), ts, body.as_bytes())),
        ];
        let (status, text, mut log) = self.post(event, &sub, url, &body, &headers).await?;
        // If another delivery marked it failing since the read, the next success clears it.
        log.maybe_failing = integration.failing_since.is_some();
        if event.topic == "license.issue" {
            log.write_alone(state).await?;
            let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let codes: Vec<String> = answer
                .get("license_codes")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            let p = &event.payload;
            let quantity = p.get("quantity").and_then(Value::as_u64).and_then(|q| u32::try_from(q).ok()).unwrap_or(1);
            let order_id = p.get("order_id").and_then(Value::as_str).unwrap_or_default();
            crate::licenses::record_issued(state, &sub.id, order_id, quantity, &codes).await.map_err(|e| {
                let detail = e.field_errors().iter().map(|f| f.message.clone()).collect::<Vec<_>>().join("; ");
                Failure::from(if detail.is_empty() { e.message() } else { detail })
            })?;
            return Ok(());
        }
        if event.topic == "instance.create" && status == 202 {
            // Still provisioning: the same create is sent again later (polling), until the
            // seller answers 200 or reports through the API.
            log.write_alone(state).await?;
            crate::subscriptions::fulfilling(state, &sub.id).await.map_err(internal)?;
            return Err(Failure {
                message: "in progress (202): will ask again".into(),
                retry_after: Some(Duration::seconds(POLL_SECS)),
                ..Failure::default()
            });
        }
        // The common case in one commit: the log entry, for a create the subscription
        // provisioned, and the event done.
        let db_err = |e: souk_store::StoreError| Failure::from(e.to_string());
        let mut tx = state.db.begin().await.map_err(db_err)?;
        log.write(&mut tx).await.map_err(db_err)?;
        if event.topic == "instance.create" {
            let answer: Answer = serde_json::from_str(&text).unwrap_or_default();
            crate::subscriptions::provisioned_in(&mut tx, state.clock.now(), &sub, &answer, "seller").await.map_err(internal)?;
        }
        attempt.done(tx).await.map_err(db_err)
    }

    pub(crate) fn state(&self) -> &AppState {
        &self.state
    }
}

impl Handler for Deliverer {
    fn handle<'a>(&'a self, attempt: &'a Attempt) -> HandlerFuture<'a> {
        Box::pin(self.deliver(attempt))
    }

    fn given_up<'a>(&'a self, event: &'a Event, error: &'a str) -> HandlerFuture<'a> {
        Box::pin(async move {
            if event.topic != "instance.create" {
                return Ok(());
            }
            let sub = orders::get_subscription(&mut self.state.db.clone(), &event.aggregate_id)
                .await
                .map_err(|e| Failure::from(e.to_string()))?;
            crate::subscriptions::fail_fulfillment(
                &self.state,
                &sub,
                &format!("the seller's system did not provision it: {error}"),
            )
            .await
            .map(|_| ())
            .map_err(|e| Failure::from(e.message()))
        })
    }
}

/// The delivery worker, for `serve` and for tests.
pub fn worker(state: &AppState) -> Worker {
    let mut w = Worker::new(
        state.db.clone(),
        state.clock.clone(),
        "seller.deliveries",
        Arc::new(Deliverer::new(state.clone())),
        &state.config.node_id,
    );
    w.claim = crate::workers::Claim::InOrder(SELLER_TOPICS);
    w.policy = RetryPolicy::seller_deliveries();
    // Longer than the request timeout, so a slow seller is not taken over mid-request.
    let timeout = i64::try_from(state.config.seller_timeout.as_millis()).unwrap_or(i64::MAX / 4);
    w.lease = Duration::milliseconds(timeout.saturating_mul(2)) + Duration::seconds(10);
    w
}

/// Sends an event again now (from the seller console or the API).
pub async fn redeliver(state: &AppState, caller: &Caller, seller: &OrgId, event_id: &str) -> Result<()> {
    caller.admin_of(state, seller).await?;
    let mut db = state.db.clone();
    let id = souk_core::id::EventId::parse(event_id).map_err(|_| Error::not_found())?;
    let event = outbox::get(&mut db, &id).await?;
    let sub = orders::get_subscription(&mut db, &event.aggregate_id).await?;
    if sub.seller_org_id != seller.as_str() || !SELLER_TOPICS.contains(&event.topic.as_str()) {
        return Err(Error::not_found());
    }
    if !outbox::redeliver(&mut db, state.clock.now(), event_id).await? {
        return Err(Error::conflict("in_flight", "this event is being delivered right now"));
    }
    Ok(())
}

/// The access details as the buyer sees them: the seller's encrypted initial password is
/// decrypted (with the product's current secret, else the previous) for display only.
pub async fn access_for_buyer(state: &AppState, product_id: &str, mut access: Value) -> Result<Value> {
    // Most access details carry no password: no need to read the signing secrets.
    if access.get("password_kg").is_none() && access.get("password_encrypted").is_none() {
        return Ok(access);
    }
    let Some(i) = store::get(&mut state.db.clone(), product_id).await? else { return Ok(access) };
    if access.get("password_kg").is_some() {
        let key = secrets(state, &i).await?.first().map(|s| String::from_utf8_lossy(s.bytes()).into_owned()).unwrap_or_default();
        return Ok(crate::koogallery::decrypt_access(&key, access));
    }
    let Some(enc) = access.get("password_encrypted").and_then(Value::as_str).map(str::to_owned) else { return Ok(access) };
    let plain = secrets(state, &i).await?.iter().find_map(|s| souk_isv::crypto::decrypt_password(s, &enc).ok());
    if let Some(obj) = access.as_object_mut() {
        obj.remove("password_encrypted");
        obj.insert("password".into(), plain.map_or(Value::Null, Value::String));
    }
    Ok(access)
}

/// An endpoint failing every delivery for this long is flagged to operators.
pub const FAILING_HOURS: i64 = 6;

/// Tells operators (once per failing spell, from any node) about endpoints that have failed
/// every delivery for [`FAILING_HOURS`]. Returns how many were flagged now.
pub async fn flag_failing_endpoints(state: &AppState) -> Result<usize> {
    let now = state.clock.now();
    let mut flagged = 0;
    for i in store::failing(&mut state.db.clone(), now - Duration::hours(FAILING_HOURS)).await? {
        if i.flagged_at.is_some() {
            continue;
        }
        let mut tx = state.db.begin().await?;
        if store::claim_flag(&mut tx, now, &i.product_id).await? {
            outbox::enqueue(
                &mut tx,
                now,
                "integration.failing",
                &i.product_id,
                &json!({ "product_id": i.product_id, "seller_org_id": i.seller_org_id, "endpoint": i.endpoint, "failing_since": i.failing_since }),
            )
            .await?;
            flagged += 1;
        }
        tx.commit().await?;
    }
    Ok(flagged)
}

/// Endpoints failing for [`FAILING_HOURS`] or more, for operators.
pub async fn failing_endpoints(state: &AppState, caller: &Caller) -> Result<Vec<Integration>> {
    caller.staff(souk_core::identity::StaffRole::Operator)?;
    Ok(store::failing(&mut state.db.clone(), state.clock.now() - Duration::hours(FAILING_HOURS)).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised_in_every_spelling() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal(&ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "100.128.0.1", "2001:4860:4860::8888", "::ffff:8.8.8.8"] {
            assert!(!is_internal(&ip.parse().unwrap()), "{ip}");
        }
    }

    /// The connection itself is guarded, not only the early check: a name resolving to
    /// loopback (as a rebinding name would on its second lookup) is never connected to.
    #[tokio::test]
    async fn the_sellers_client_connects_only_to_addresses_its_resolver_allowed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().route("/", axum::routing::post(|| async { "ok" }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = format!("http://localhost:{port}/");
        let refused = seller_client(Some(&[])).post(&url).send().await;
        let err = refused.expect_err("loopback through a name is refused");
        let chain = format!("{err:?}");
        assert!(chain.contains("private or loopback"), "{chain}");
        let by_name = seller_client(Some(&["localhost".to_owned()])).post(&url).send().await.unwrap();
        assert_eq!(by_name.text().await.unwrap(), "ok");
        let by_ip = seller_client(Some(&["127.0.0.1".to_owned(), "::1".to_owned()])).post(&url).send().await.unwrap();
        assert_eq!(by_ip.status(), 200);
        // Unguarded (a seller checking its own endpoint with `souk isv check`).
        assert_eq!(seller_client(None).post(&url).send().await.unwrap().status(), 200);
    }
}
