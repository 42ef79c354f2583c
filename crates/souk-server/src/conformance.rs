//! The conformance kit: drives a seller endpoint through a subscription's whole life with
//! synthetic events, without a purchase, and checks the answers the protocol requires. The
//! CLI (`souk isv check`) and the seller console ("test my endpoint") both run it.

use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};
use souk_isv::signature::{Secret, sign};

use crate::fulfillment::REQUEST_TIMEOUT_SECS;

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
    pub latency_ms: u128,
}

struct Sent {
    status: Option<u16>,
    body: Value,
    latency_ms: u128,
    error: Option<String>,
}

struct Kit<'a> {
    client: reqwest::Client,
    endpoint: &'a str,
    secret: &'a Secret,
    run: String,
    subscription: String,
    counter: u32,
}

impl Kit<'_> {
    fn event(&mut self, kind: &str, sequence: u64, extra: Value) -> (String, String) {
        self.counter += 1;
        let id = format!("evt_check_{}_{}", self.run, self.counter);
        let mut data = json!({
            "subscription_id": self.subscription, "product_id": "prd_conformance", "plan_id": "pln_standard",
            "plan_code": "standard", "buyer_org_id": "org_conformance", "quantity": 1, "trial": false,
            "state": if kind == "instance.create" { "pending_fulfillment" } else { "active" },
            "expires_at": chrono::Utc::now() + chrono::Duration::days(30),
        });
        if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        let body =
            json!({ "id": id, "type": kind, "sequence": sequence, "timestamp": chrono::Utc::now(), "test": true, "data": data });
        (id, body.to_string())
    }

    async fn send(&self, id: &str, body: &str, secret: &Secret, ts: i64) -> Sent {
        let started = Instant::now();
        let res = self
            .client
            .post(self.endpoint)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sign(&[secret], id, ts, body.as_bytes()))
            .body(body.to_owned())
            .send()
            .await;
        let latency_ms = started.elapsed().as_millis();
        match res {
            Err(e) => Sent { status: None, body: Value::Null, latency_ms, error: Some(e.to_string()) },
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.json::<Value>().await.unwrap_or(Value::Null);
                Sent { status: Some(status), body, latency_ms, error: None }
            }
        }
    }

    async fn lifecycle(&mut self, name: &'static str, kind: &str, sequence: u64, extra: Value) -> (Check, Sent) {
        let (id, body) = self.event(kind, sequence, extra);
        let sent = self.send(&id, &body, self.secret, chrono::Utc::now().timestamp()).await;
        let passed = sent.status.is_some_and(|s| s == 200 || s == 202);
        let detail = match (&sent.error, sent.status) {
            (Some(e), _) => e.clone(),
            (None, Some(s)) if passed => format!("{s}"),
            (None, Some(s)) => format!("answered {s}; expected 200 or 202"),
            (None, None) => "no answer".into(),
        };
        (Check { name, passed, detail, latency_ms: sent.latency_ms }, sent)
    }
}

/// Runs every check against `endpoint` with `secret`; `guard` is the operator's allow-list
/// when the server runs them (see [`crate::fulfillment::seller_client`]).
pub async fn run(endpoint: &str, secret: &Secret, guard: Option<&[String]>) -> Vec<Check> {
    let client = crate::fulfillment::seller_client(guard);
    let run = hex::encode(rand::random::<[u8; 4]>());
    let mut kit = Kit { client, endpoint, secret, subscription: format!("sub_conformance_{run}"), run, counter: 0 };
    let mut checks = Vec::new();

    let (mut create, first) = kit.lifecycle("create", "instance.create", 1, json!({ "order_id": "ord_conformance" })).await;
    let instance = first.body.get("instance_id").and_then(Value::as_str).map(str::to_owned);
    if create.passed && first.status == Some(200) && instance.is_none() {
        create.passed = false;
        create.detail = "200 without an instance_id".into();
    }
    checks.push(create);
    // The same subscription created again (a new event id): the same instance, not a second.
    let (mut dup, again) =
        kit.lifecycle("duplicate create", "instance.create", 1, json!({ "order_id": "ord_conformance" })).await;
    let again_instance = again.body.get("instance_id").and_then(Value::as_str).map(str::to_owned);
    if dup.passed && again_instance != instance {
        dup.passed = false;
        dup.detail =
            format!("answered instance {again_instance:?}, first {instance:?}: create must be idempotent per subscription");
    }
    checks.push(dup);
    let steps: [(&'static str, &str, Value); 5] = [
        ("renew", "instance.renew", json!({ "order_id": "ord_conformance_2", "periods": 1 })),
        ("change plan", "instance.change_plan", json!({ "plan_id": "pln_pro", "plan_code": "pro" })),
        ("suspend", "instance.suspend", json!({ "state": "expired", "reason": "expired" })),
        ("resume", "instance.resume", json!({})),
        ("release", "instance.release", json!({ "state": "released", "reason": "grace_ended" })),
    ];
    for (i, (name, kind, extra)) in steps.into_iter().enumerate() {
        let (c, _) = kit.lifecycle(name, kind, 2 + i as u64, extra).await;
        checks.push(c);
    }

    // A signature made with another secret must be refused.
    let (id, body) = kit.event("instance.renew", 99, json!({}));
    let forged = kit.send(&id, &body, &Secret::generate(), chrono::Utc::now().timestamp()).await;
    let refused = forged.status.is_some_and(|s| (400..500).contains(&s));
    checks.push(Check {
        name: "bad signature rejected",
        passed: refused,
        detail: match forged.status {
            Some(s) if refused => format!("{s}"),
            Some(s) => format!("answered {s} to a forged signature; expected 401 (verify every delivery)"),
            None => forged.error.unwrap_or_default(),
        },
        latency_ms: forged.latency_ms,
    });
    // A correct signature an hour old must be refused (replay protection).
    let (id, body) = kit.event("instance.renew", 99, json!({}));
    let stale = kit.send(&id, &body, secret, chrono::Utc::now().timestamp() - 3600).await;
    let refused = stale.status.is_some_and(|s| (400..500).contains(&s));
    checks.push(Check {
        name: "old timestamp rejected",
        passed: refused,
        detail: match stale.status {
            Some(s) if refused => format!("{s}"),
            Some(s) => format!("answered {s} to a signature an hour old; expected 401 (check webhook-timestamp)"),
            None => stale.error.unwrap_or_default(),
        },
        latency_ms: stale.latency_ms,
    });
    let slowest = checks.iter().map(|c| c.latency_ms).max().unwrap_or(0);
    let limit = u128::from(REQUEST_TIMEOUT_SECS) * 1000;
    checks.push(Check {
        name: "answers in time",
        passed: slowest < limit,
        detail: format!(
            "slowest answer {slowest} ms; the limit is {limit} ms (answer 202 and finish later if provisioning takes longer)"
        ),
        latency_ms: slowest,
    });
    checks
}

/// KooGallery calls must be answered within this (its request timeout).
pub const KOOGALLERY_TIMEOUT_SECS: u64 = 5;

/// The same checks in KooGallery's terms: `newInstance` twice for one order line (the same
/// instance), `queryInstance`, `refreshInstance`, `upgradeInstance`, `updateInstanceStatus`
/// FREEZE and UNFREEZE, `releaseInstance`, a forged signature and an old timestamp refused.
pub async fn run_koogallery(endpoint: &str, access_key: &str, guard: Option<&[String]>) -> Vec<Check> {
    use std::collections::BTreeMap;
    let client = crate::fulfillment::seller_client(guard);
    let run = hex::encode(rand::random::<[u8; 4]>());
    let order = format!("CHECK{run}");
    let send = |fields: BTreeMap<&'static str, Value>, key: String, ts: i64| {
        let client = client.clone();
        let endpoint = endpoint.to_owned();
        async move {
            let body = serde_json::to_string(&fields).unwrap_or_default();
            let nonce = hex::encode(rand::random::<[u8; 12]>());
            let sig = souk_isv::koogallery::sign(&key, body.as_bytes(), ts, &nonce);
            let started = Instant::now();
            let res = client
                .post(&endpoint)
                .query(&[("signature", sig.as_str()), ("timestamp", &ts.to_string()), ("nonce", nonce.as_str())])
                .header("content-type", "application/json;charset=utf8")
                .header("accept", "application/json")
                .body(body)
                .send()
                .await;
            let ms = started.elapsed().as_millis();
            match res {
                Ok(r) => (r.json::<Value>().await.unwrap_or(Value::Null), ms, None),
                Err(e) => (Value::Null, ms, Some(e.to_string())),
            }
        }
    };
    let now = || chrono::Utc::now().timestamp_millis();
    let base = |activity: &str| {
        let mut m: BTreeMap<&'static str, Value> = BTreeMap::new();
        m.insert("activity", json!(activity));
        m.insert("testFlag", json!("1"));
        m
    };
    let mut checks = Vec::new();
    let code = |v: &Value| v.get("resultCode").and_then(Value::as_str).unwrap_or("").to_owned();
    let outcome = |name: &'static str, v: &Value, ms: u128, err: Option<String>, ok: &[&str]| {
        let c = code(v);
        Check {
            name,
            passed: ok.contains(&c.as_str()),
            detail: err.unwrap_or_else(|| {
                if ok.contains(&c.as_str()) { c.clone() } else { format!("resultCode {c:?}; expected {}", ok.join(" or ")) }
            }),
            latency_ms: ms,
        }
    };

    let mut create = base("newInstance");
    create.insert("orderId", json!(order));
    create.insert("orderLineId", json!(format!("{order}-000001")));
    create.insert("businessId", json!(format!("{order}-b1")));
    let (first, ms, err) = send(create.clone(), access_key.to_owned(), now()).await;
    checks.push(outcome("newInstance", &first, ms, err, &["000000", "000004"]));
    let instance = first.get("instanceId").and_then(Value::as_str).unwrap_or_default().to_owned();
    create.insert("businessId", json!(format!("{order}-b2")));
    let (again, ms, err) = send(create, access_key.to_owned(), now()).await;
    let mut dup = outcome("newInstance again", &again, ms, err, &["000000", "000004"]);
    if dup.passed && again.get("instanceId").and_then(Value::as_str) != Some(instance.as_str()) {
        dup.passed = false;
        dup.detail = "a second instance for the same order line: newInstance must be idempotent".into();
    }
    checks.push(dup);
    let mut query = base("queryInstance");
    query.insert("instanceId", json!(instance));
    let (q, ms, err) = send(query, access_key.to_owned(), now()).await;
    checks.push(outcome("queryInstance", &q, ms, err, &["000000", "000004"]));
    let expire = (chrono::Utc::now() + chrono::Duration::days(30)).format("%Y%m%d%H%M%S").to_string();
    /// (check name, activity, extra fields)
    type Step = (&'static str, &'static str, Vec<(&'static str, Value)>);
    let steps: [Step; 5] = [
        (
            "refreshInstance",
            "refreshInstance",
            vec![
                ("scene", json!("RENEWAL")),
                ("orderId", json!(format!("{order}R"))),
                ("orderLineId", json!(format!("{order}R-000001"))),
                ("expireTime", json!(expire)),
            ],
        ),
        (
            "upgradeInstance",
            "upgradeInstance",
            vec![("orderId", json!(format!("{order}U"))), ("orderLineId", json!(format!("{order}U-000001")))],
        ),
        ("freeze", "updateInstanceStatus", vec![("status", json!("FREEZE"))]),
        ("unfreeze", "updateInstanceStatus", vec![("status", json!("UNFREEZE"))]),
        ("releaseInstance", "releaseInstance", vec![]),
    ];
    for (name, activity, extra) in steps {
        let mut f = base(activity);
        f.insert("instanceId", json!(instance));
        for (k, v) in extra {
            f.insert(k, v);
        }
        let (v, ms, err) = send(f, access_key.to_owned(), now()).await;
        checks.push(outcome(name, &v, ms, err, &["000000"]));
    }
    let mut probe = base("queryInstance");
    probe.insert("instanceId", json!(instance));
    let (forged, ms, err) = send(probe.clone(), format!("{access_key}-forged"), now()).await;
    let c = code(&forged);
    checks.push(Check {
        name: "bad signature rejected",
        passed: err.is_none() && !c.is_empty() && c != "000000" && c != "000004",
        detail: err.unwrap_or_else(|| format!("resultCode {c:?} (expected a refusal such as 000001)")),
        latency_ms: ms,
    });
    let (stale, ms, err) = send(probe, access_key.to_owned(), now() - 3_600_000).await;
    let c = code(&stale);
    checks.push(Check {
        name: "old timestamp rejected",
        passed: err.is_none() && !c.is_empty() && c != "000000" && c != "000004",
        detail: err.unwrap_or_else(|| format!("resultCode {c:?} (expected a refusal such as 000001)")),
        latency_ms: ms,
    });
    let slowest = checks.iter().map(|c| c.latency_ms).max().unwrap_or(0);
    let limit = u128::from(KOOGALLERY_TIMEOUT_SECS) * 1000;
    checks.push(Check {
        name: "answers in time",
        passed: slowest < limit,
        detail: format!("slowest {slowest} ms; KooGallery waits {limit} ms"),
        latency_ms: slowest,
    });
    checks
}
