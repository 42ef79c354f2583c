//! A reference seller: a small, working implementation of the seller's side, built on this
//! SDK. `souk isv demo` serves it. It verifies every delivery, keeps its instances in memory,
//! answers `instance.create` idempotently (the same subscription always gets the same
//! instance, the same event id the same answer), and can be told to fail or be slow so Souk's
//! retries can be watched.
//!
//! Routes: `POST /` (deliveries), `GET /instances` (what it holds), `POST /control`
//! (`{"fail_next": n, "fail_all": bool, "delay_ms": n}`), `GET /received` (event ids in the
//! order they were accepted).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::answer::{Access, Answer};
use crate::crypto::encrypt_password;
use crate::event::Event;
use crate::signature::{Headers, Secret, TOLERANCE_SECS, verify};

#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    pub instance_id: String,
    pub subscription_id: String,
    pub plan_id: String,
    /// `active`, `suspended`, `released`.
    pub state: String,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_sequence: u64,
    /// Members of the buyer enterprise allowed in: account id → role.
    pub users: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Behaviour {
    /// Answer the next n deliveries with 503.
    #[serde(default)]
    pub fail_next: u32,
    /// Answer every delivery with 503 until told otherwise.
    #[serde(default)]
    pub fail_all: bool,
    /// Wait this long before answering.
    #[serde(default)]
    pub delay_ms: u64,
    /// Answer the next n creates with 202 (accepted, still provisioning).
    #[serde(default)]
    pub in_progress_next: u32,
}

#[derive(Default)]
struct Inner {
    instances: HashMap<String, Instance>,
    answers: HashMap<String, (u16, serde_json::Value)>,
    received: Vec<(String, String, u64)>,
    behaviour: Behaviour,
    /// KooGallery mode: nonces seen, and order line → subscription key of the instance.
    nonces: std::collections::HashSet<String>,
}

/// The reference seller's state; clone it to share.
#[derive(Clone)]
pub struct Seller {
    secrets: Arc<Vec<Secret>>,
    /// KooGallery-compatible mode: the access key (calls signed in the URL, KooGallery activities).
    access_key: Option<Arc<String>>,
    inner: Arc<Mutex<Inner>>,
}

impl Seller {
    /// A seller accepting signatures made with any of `secrets` (two during a rotation).
    pub fn new(secrets: Vec<Secret>) -> Self {
        Self { secrets: Arc::new(secrets), access_key: None, inner: Arc::default() }
    }

    /// A seller speaking KooGallery's SaaS V2.0 calls, signed with `access_key`.
    pub fn koogallery(access_key: &str) -> Self {
        Self { secrets: Arc::new(Vec::new()), access_key: Some(Arc::new(access_key.to_owned())), inner: Arc::default() }
    }

    /// Handles one KooGallery call: the answer's JSON (always HTTP 200, as KooGallery does).
    pub fn handle_koogallery(&self, query: &HashMap<String, String>, body: &[u8], now_ms: i64) -> serde_json::Value {
        use serde_json::json;
        let key = self.access_key.as_deref().map(String::as_str).unwrap_or_default();
        let q = |k: &str| query.get(k).map(String::as_str).unwrap_or("");
        let mut inner = self.lock();
        if let Err(e) = crate::koogallery::verify(key, body, q("signature"), q("timestamp"), q("nonce"), now_ms) {
            return json!({ "resultCode": "000001", "resultMsg": e.to_string() });
        }
        if !inner.nonces.insert(q("nonce").to_owned()) {
            return json!({ "resultCode": "000001", "resultMsg": "nonce seen before" });
        }
        if inner.behaviour.fail_all || inner.behaviour.fail_next > 0 {
            inner.behaviour.fail_next = inner.behaviour.fail_next.saturating_sub(1);
            return json!({ "resultCode": "000005", "resultMsg": "told to fail" });
        }
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
            return json!({ "resultCode": "000002", "resultMsg": "not JSON" });
        };
        let text = |k: &str| v.get(k).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
        let activity = text("activity");
        let find =
            |inner: &Inner, id: &str| inner.instances.values().find(|i| i.instance_id == id).map(|i| i.subscription_id.clone());
        let answer = match activity.as_str() {
            "newInstance" => {
                // The same order line always gets the same instance: the first businessId.
                let line = format!("{}/{}", text("orderId"), text("orderLineId"));
                let business = text("businessId");
                let inst = inner.instances.entry(line.clone()).or_insert_with(|| Instance {
                    instance_id: business,
                    subscription_id: line,
                    plan_id: String::new(),
                    state: "active".into(),
                    expires_at: None,
                    last_sequence: 0,
                    users: Default::default(),
                });
                json!({ "resultCode": "000000", "resultMsg": "success", "instanceId": inst.instance_id })
            }
            "queryInstance" => {
                let ids: Vec<String> = text("instanceId").split(',').map(str::to_owned).collect();
                let info: Vec<serde_json::Value> = ids
                    .iter()
                    .filter(|id| find(&inner, id).is_some())
                    .map(|id| {
                        let iv: String = (0..16).map(|_| char::from(b'a' + rand::random::<u8>() % 26)).collect();
                        json!({ "instanceId": id, "appInfo": {
                            "frontEndUrl": format!("https://{id}.seller.example/"), "adminUrl": format!("https://{id}.seller.example/admin"),
                            "userName": crate::koogallery::encrypt_field(key, crate::koogallery::EncryptType::Aes256, &iv, "admin").unwrap_or_default(),
                            "password": crate::koogallery::encrypt_field(key, crate::koogallery::EncryptType::Aes256, &iv, &format!("pw-{id}")).unwrap_or_default(),
                        }})
                    })
                    .collect();
                if info.is_empty() {
                    json!({ "resultCode": "000003", "resultMsg": "instance not found" })
                } else {
                    json!({ "resultCode": "000000", "resultMsg": "success", "encryptType": "1", "info": info })
                }
            }
            "refreshInstance" | "updateInstanceStatus" | "releaseInstance" | "upgradeInstance" | "changeInstanceCheck" => {
                match find(&inner, &text("instanceId")) {
                    None => json!({ "resultCode": "000003", "resultMsg": "instance not found" }),
                    Some(line) => {
                        if let Some(inst) = inner.instances.get_mut(&line) {
                            match (activity.as_str(), text("status").as_str()) {
                                ("updateInstanceStatus", "FREEZE") => inst.state = "suspended".into(),
                                ("updateInstanceStatus", _) => inst.state = "active".into(),
                                ("releaseInstance", _) => inst.state = "released".into(),
                                _ => {}
                            }
                        }
                        json!({ "resultCode": "000000", "resultMsg": "success" })
                    }
                }
            }
            other => json!({ "resultCode": "000002", "resultMsg": format!("unknown activity {other:?}") }),
        };
        if answer["resultCode"] == "000000" {
            inner.received.push((text("businessId"), activity, 0));
        }
        answer
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn instances(&self) -> Vec<Instance> {
        let mut v: Vec<Instance> = self.lock().instances.values().cloned().collect();
        v.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        v
    }

    /// (event id, type, sequence) of every delivery accepted, in order.
    pub fn received(&self) -> Vec<(String, String, u64)> {
        self.lock().received.clone()
    }

    pub fn set_behaviour(&self, b: Behaviour) {
        self.lock().behaviour = b;
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/", post(deliver))
            .route("/instances", get(|State(s): State<Seller>| async move { Json(s.instances()) }))
            .route("/received", get(|State(s): State<Seller>| async move { Json(s.received()) }))
            .route(
                "/control",
                post(|State(s): State<Seller>, Json(b): Json<Behaviour>| async move {
                    s.set_behaviour(b);
                    StatusCode::NO_CONTENT
                }),
            )
            .with_state(self.clone())
    }

    /// Handles one delivery: (status, body).
    pub fn handle(&self, headers: &HeaderMap, body: &[u8], now: i64) -> (StatusCode, serde_json::Value) {
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
        let h =
            Headers { id: header("webhook-id"), timestamp: header("webhook-timestamp"), signature: header("webhook-signature") };
        let secrets: Vec<&Secret> = self.secrets.iter().collect();
        if let Err(e) = verify(&h, body, &secrets, now, TOLERANCE_SECS) {
            return (StatusCode::UNAUTHORIZED, serde_json::json!({ "error": e.to_string() }));
        }
        let event: Event = match serde_json::from_slice(body) {
            Ok(e) => e,
            Err(e) => return (StatusCode::BAD_REQUEST, serde_json::json!({ "error": e.to_string() })),
        };
        let mut inner = self.lock();
        if inner.behaviour.fail_all || inner.behaviour.fail_next > 0 {
            inner.behaviour.fail_next = inner.behaviour.fail_next.saturating_sub(1);
            return (StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({ "error": "told to fail" }));
        }
        if let Some((status, answer)) = inner.answers.get(&event.id) {
            return (StatusCode::from_u16(*status).unwrap_or(StatusCode::OK), answer.clone());
        }
        let sub = event.data.subscription_id.clone();
        if event.is("instance.create") && inner.behaviour.in_progress_next > 0 {
            inner.behaviour.in_progress_next -= 1;
            return (StatusCode::ACCEPTED, crate::answer::in_progress());
        }
        let (status, answer) = if event.is("license.issue") {
            let n = event.data.license_quantity.unwrap_or(1);
            let codes: Vec<String> = (0..n).map(|i| format!("REF-{}-{}", event.id.trim_start_matches("evt_"), i + 1)).collect();
            (StatusCode::OK, serde_json::json!({ "license_codes": codes }))
        } else if event.is("instance.create") {
            let n = inner.instances.len() + 1;
            let primary = &self.secrets[0];
            let inst = inner.instances.entry(sub.clone()).or_insert_with(|| Instance {
                instance_id: format!("inst-{n:04}"),
                subscription_id: sub.clone(),
                plan_id: event.data.plan_id.clone(),
                state: "active".into(),
                expires_at: event.data.expires_at,
                last_sequence: event.sequence,
                users: Default::default(),
            });
            let id = inst.instance_id.clone();
            let answer = Answer {
                instance_id: Some(id.clone()),
                access: Some(Access {
                    url: Some(format!("https://{id}.seller.example/")),
                    admin_url: Some(format!("https://{id}.seller.example/admin")),
                    username: Some("admin".into()),
                    password_encrypted: Some(encrypt_password(primary, &format!("pw-{id}"))),
                }),
            };
            (StatusCode::OK, serde_json::to_value(answer).unwrap_or_default())
        } else {
            match inner.instances.get_mut(&sub) {
                None => (StatusCode::NOT_FOUND, serde_json::json!({ "error": "no instance for this subscription" })),
                Some(inst) => {
                    match event.kind.as_str() {
                        "instance.renew" => inst.expires_at = event.data.expires_at.or(inst.expires_at),
                        "instance.change_plan" => inst.plan_id = event.data.plan_id.clone(),
                        "instance.suspend" => inst.state = "suspended".into(),
                        "instance.resume" => inst.state = "active".into(),
                        "instance.release" => inst.state = "released".into(),
                        // Repeated adds and deletes change nothing the second time.
                        "authorization.sync" => {
                            for u in event.data.users.iter().flatten() {
                                if event.data.flag.as_deref() == Some("delete") || !u.enabled {
                                    inst.users.remove(&u.account_id);
                                } else {
                                    inst.users.insert(u.account_id.clone(), u.role.clone());
                                }
                            }
                        }
                        _ => {}
                    }
                    inst.last_sequence = event.sequence;
                    (StatusCode::OK, serde_json::json!({ "instance_id": inst.instance_id }))
                }
            }
        };
        if status.is_success() {
            inner.received.push((event.id.clone(), event.kind.clone(), event.sequence));
        }
        inner.answers.insert(event.id, (status.as_u16(), answer.clone()));
        (status, answer)
    }
}

async fn deliver(
    State(s): State<Seller>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let delay = s.lock().behaviour.delay_ms;
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    if s.access_key.is_some() {
        return Json(s.handle_koogallery(&query, &body, chrono::Utc::now().timestamp_millis())).into_response();
    }
    let (status, answer) = s.handle(&headers, &body, chrono::Utc::now().timestamp());
    (status, Json(answer)).into_response()
}

/// Serves the reference seller on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, seller: Seller) -> std::io::Result<()> {
    axum::serve(listener, seller.router()).await
}
