//! KooGallery-compatible mode (koogallery-protocol.md): a product whose seller chose it gets
//! the same lifecycle as KooGallery's SaaS V2.0 calls, so an existing KooGallery integration
//! works unchanged: `newInstance` (polling `queryInstance` after `000004`), `refreshInstance`,
//! `updateInstanceStatus`, `upgradeInstance`, `releaseInstance`, signed in the URL with the
//! product's access key, bodies with keys in ascending order.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use souk_isv::koogallery::{EncryptType, decrypt_field, sign};
use souk_store::fulfillment as store;
use souk_store::orders;
use souk_store::outbox::Event;

use crate::fulfillment::Deliverer;
use crate::workers::Failure;

/// How long to wait before asking again about an instance still being provisioned.
pub const POLL_SECS: i64 = 60;

fn expire_time(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d%H%M%S").to_string()
}

/// Posts one activity and returns the answer when its `resultCode` is `000000` (or `000004`).
async fn call(
    d: &Deliverer,
    event: &Event,
    sub: &orders::Subscription,
    endpoint: &url::Url,
    access_key: &str,
    fields: BTreeMap<&str, Value>,
) -> Result<Value, Failure> {
    // A BTreeMap serializes its keys in ascending order, as KooGallery signs bodies.
    let body = serde_json::to_string(&fields).map_err(|e| Failure::from(e.to_string()))?;
    let ts = Utc::now().timestamp_millis();
    let nonce = hex::encode(rand::random::<[u8; 12]>());
    let mut url = endpoint.clone();
    url.query_pairs_mut()
        .append_pair("signature", &sign(access_key, body.as_bytes(), ts, &nonce))
        .append_pair("timestamp", &ts.to_string())
        .append_pair("nonce", &nonce);
    let (_, text) = d.post_logged(event, sub, url, &body, &[("accept", "application/json".to_owned())]).await?;
    let answer: Value = serde_json::from_str(&text)
        .map_err(|_| Failure::from(format!("not JSON: {}", text.chars().take(200).collect::<String>())))?;
    match answer.get("resultCode").and_then(Value::as_str) {
        Some("000000") | Some("000004") => Ok(answer),
        Some(code) => {
            Err(Failure::from(format!("resultCode {code}: {}", answer.get("resultMsg").and_then(Value::as_str).unwrap_or(""))))
        }
        None => Err(Failure::from("the answer has no resultCode")),
    }
}

/// Delivers one event in KooGallery's terms.
pub async fn deliver(
    d: &Deliverer,
    event: &Event,
    sub: &orders::Subscription,
    endpoint: url::Url,
    access_key: &str,
) -> Result<(), Failure> {
    let state = d.state();
    let internal = |e: crate::error::Error| Failure::from(e.message());
    let p = &event.payload;
    let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
    let test_flag = json!(if p.get("test").and_then(Value::as_bool).unwrap_or(false) { "1" } else { "0" });
    let order_id = text("order_id").unwrap_or_default();
    let order_line = format!("{order_id}-000001");
    let (instance_id, _) = store::instance(&mut state.db.clone(), &sub.id).await.map_err(|e| Failure::from(e.to_string()))?;
    let instance = || instance_id.clone().ok_or_else(|| Failure::from("no instance yet: the create has not succeeded"));
    let mut f: BTreeMap<&str, Value> = BTreeMap::new();
    f.insert("testFlag", test_flag.clone());
    match event.topic.as_str() {
        "instance.create" => {
            let id = match &instance_id {
                // Answered 000004 before: ask whether it is ready.
                Some(id) => id.clone(),
                None => {
                    f.insert("activity", json!("newInstance"));
                    f.insert("orderId", json!(order_id));
                    f.insert("orderLineId", json!(order_line));
                    f.insert("businessId", json!(format!("{}-{}", event.id, event.attempts)));
                    let answer = call(d, event, sub, &endpoint, access_key, f.clone()).await?;
                    let id = answer
                        .get("instanceId")
                        .and_then(Value::as_str)
                        .ok_or_else(|| Failure::from("newInstance answered without instanceId"))?;
                    store::set_instance(&mut state.db.clone(), state.clock.now(), &sub.id, Some(id), None)
                        .await
                        .map_err(|e| Failure::from(e.to_string()))?;
                    if answer.get("resultCode").and_then(Value::as_str) == Some("000004") {
                        crate::subscriptions::fulfilling(state, &sub.id).await.map_err(internal)?;
                        return Err(Failure {
                            message: "processing (000004): will poll queryInstance".into(),
                            retry_after: Some(Duration::seconds(POLL_SECS)),
                        });
                    }
                    id.to_owned()
                }
            };
            let mut q: BTreeMap<&str, Value> = BTreeMap::new();
            q.insert("activity", json!("queryInstance"));
            q.insert("instanceId", json!(id));
            q.insert("testFlag", test_flag);
            let answer = call(d, event, sub, &endpoint, access_key, q).await?;
            let info = answer
                .get("info")
                .and_then(Value::as_array)
                .and_then(|i| i.iter().find(|x| x["instanceId"] == json!(id)))
                .cloned();
            let Some(info) = info.filter(|_| answer["resultCode"] == "000000") else {
                return Err(Failure {
                    message: "the instance is not ready yet".into(),
                    retry_after: Some(Duration::seconds(POLL_SECS)),
                });
            };
            let app = &info["appInfo"];
            // Kept as the seller encrypted them; decrypted only to show the buyer.
            let access = json!({
                "url": app.get("frontEndUrl"), "admin_url": app.get("adminUrl"), "memo": app.get("memo"),
                "username_kg": app.get("userName"), "password_kg": app.get("password"),
                "encrypt_type": answer.get("encryptType").cloned().unwrap_or(json!("1")),
            });
            let answer = souk_isv::answer::Answer { instance_id: Some(id.clone()), access: None };
            crate::subscriptions::provisioned(state, &sub.id, &answer, "seller").await.map_err(internal)?;
            store::set_instance(&mut state.db.clone(), state.clock.now(), &sub.id, Some(&id), Some(&access))
                .await
                .map_err(|e| Failure::from(e.to_string()))?;
            Ok(())
        }
        "instance.renew" => {
            let converted = p.get("converted_from_trial").and_then(Value::as_bool).unwrap_or(false);
            f.insert("activity", json!("refreshInstance"));
            f.insert("scene", json!(if converted { "TRIAL_TO_FORMAL" } else { "RENEWAL" }));
            f.insert("orderId", json!(order_id));
            f.insert("orderLineId", json!(order_line));
            f.insert("instanceId", json!(instance()?));
            f.insert("productId", json!(sub.product_id));
            let expires =
                p.get("expires_at").and_then(|v| serde_json::from_value::<DateTime<Utc>>(v.clone()).ok()).or(sub.term_end);
            f.insert("expireTime", json!(expires.map(expire_time).unwrap_or_default()));
            call(d, event, sub, &endpoint, access_key, f).await.map(|_| ())
        }
        "instance.change_plan" => {
            f.insert("activity", json!("upgradeInstance"));
            f.insert("instanceId", json!(instance()?));
            f.insert("orderId", json!(order_id));
            f.insert("orderLineId", json!(order_line));
            call(d, event, sub, &endpoint, access_key, f).await.map(|_| ())
        }
        "instance.suspend" | "instance.resume" => {
            f.insert("activity", json!("updateInstanceStatus"));
            f.insert("instanceId", json!(instance()?));
            f.insert("status", json!(if event.topic == "instance.suspend" { "FREEZE" } else { "UNFREEZE" }));
            call(d, event, sub, &endpoint, access_key, f).await.map(|_| ())
        }
        "instance.release" => {
            f.insert("activity", json!("releaseInstance"));
            f.insert("instanceId", json!(instance()?));
            call(d, event, sub, &endpoint, access_key, f).await.map(|_| ())
        }
        // authSync goes to the joint-operation sync APIs, not built yet: nothing to send here.
        _ => Ok(()),
    }
}

/// The buyer's view of KooGallery access details: `userName` and `password` decrypted.
pub fn decrypt_access(access_key: &str, mut access: Value) -> Value {
    let kind = access.get("encrypt_type").and_then(Value::as_str).and_then(EncryptType::parse).unwrap_or(EncryptType::Aes256);
    let field = |k: &str| access.get(k).and_then(Value::as_str).and_then(|v| decrypt_field(access_key, kind, v).ok());
    let (user, password) = (field("username_kg"), field("password_kg"));
    if let Some(obj) = access.as_object_mut() {
        for k in ["username_kg", "password_kg", "encrypt_type"] {
            obj.remove(k);
        }
        obj.insert("username".into(), user.map_or(Value::Null, Value::String));
        obj.insert("password".into(), password.map_or(Value::Null, Value::String));
    }
    access
}
