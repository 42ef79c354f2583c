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

fn mock_order(order_id: &str) -> Option<Value> {
    let (order_type, charging, period) = match order_id {
        "MOCKPERIODYEARNEW" => ("NEW", "PERIOD", Some("year")),
        "MOCKONETIMENEW" => ("NEW", "ONE_TIME", None),
        "MOCKONDEMAND" => ("NEW", "ON_DEMAND", None),
        "MOCKONDEMANDPKG" => ("NEW", "ON_DEMAND_PKG", None),
        "MOCKPERIODDAYTRIAL" => ("TRIAL", "PERIOD", Some("day")),
        "MOCKMONTYTRIALTOFORMAL" => ("TRIAL_TO_FORMAL", "PERIOD", Some("month")),
        "MOCKMONTYUNSUBSCRIBE" => ("UNSUBSCRIBE", "PERIOD", Some("month")),
        "MOCKMONTYRENEW" => ("RENEW", "PERIOD", Some("month")),
        "MOCKMONTYCHANGE" => ("CHANGE", "PERIOD", Some("month")),
        _ => return None,
    };
    Some(json!({
        "orderId": order_id, "orderType": order_type, "createTime": "20260301000000",
        "orderLine": [{
            "orderLineId": format!("{order_id}-000001"), "chargingMode": charging, "expireTime": "20270301000000",
            "periodType": period, "periodNumber": 1, "currency": "CNY", "orderAmount": "99.00",
            "productInfo": [{"productId": "MOCKPRODUCT", "skuCode": "MOCKSKU", "linearValue": 1, "productName": "Mock product"}],
        }],
        "buyerInfo": {"customerId": "MOCKCUSTOMER", "customerName": "Mock customer", "userId": "MOCKUSER", "userName": "mock"},
        "extendParams": [],
    }))
}

fn mkt(code: &str, msg: &str, status: axum::http::StatusCode) -> axum::response::Response {
    use axum::response::IntoResponse;
    (status, axum::Json(json!({ "resultCode": code, "resultMsg": msg }))).into_response()
}

/// `GET /api/mkp-openapi-public/global/v1/order/query`: the order query KooGallery sellers call
/// to fetch an order's details (with the `MOCK…` debug orders), authenticated with an API key
/// of the seller's organization.
pub async fn order_query(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    crate::auth::MaybeCaller(caller): crate::auth::MaybeCaller,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let Some(crate::auth::Caller(crate::auth::Principal::ApiKey { key })) = caller else {
        return mkt("MKT.0154", "illegal token: use an API key of your organization", StatusCode::UNAUTHORIZED);
    };
    let Some(order_id) = q.get("orderId").map(|s| s.trim()).filter(|s| !s.is_empty()) else {
        return mkt("MKT.0100", "input check failed: orderId is required", StatusCode::BAD_REQUEST);
    };
    if let Some(o) = mock_order(order_id) {
        return axum::Json(json!({ "resultCode": "MKT.0000", "resultMsg": "success", "orderInfo": o })).into_response();
    }
    let mut db = state.db.clone();
    let order = match souk_store::orders::get_for_seller(&mut db, &key.org_id, order_id).await {
        Ok(Some(found)) => found,
        Ok(None) => return mkt("MKT.0101", "invalid parameter: no such order", StatusCode::BAD_REQUEST),
        Err(_) => return mkt("MKT.0999", "internal error", StatusCode::INTERNAL_SERVER_ERROR),
    };
    let Some(o) = order else { return mkt("MKT.0150", "not this seller's order", StatusCode::FORBIDDEN) };
    let sub = souk_store::orders::get_subscription(&mut db, &o.subscription_id).await.ok();
    let buyer_name = match o.buyer_org_id.parse::<souk_core::id::OrgId>() {
        Ok(id) => souk_store::orgs::get(&mut db, &id).await.map(|b| b.name).unwrap_or_default(),
        Err(_) => String::new(),
    };
    let (charging, period) = match o.plan_snapshot.get("billing").and_then(|b| b.get("type")).and_then(Value::as_str) {
        Some("periodic") => ("PERIOD", o.plan_snapshot["billing"].get("period").cloned()),
        Some("one_time") => ("ONE_TIME", None),
        _ => ("ON_DEMAND", None),
    };
    let amount = souk_core::money::Currency::parse(&o.currency)
        .map(|c| souk_core::money::Money::new(o.total_minor, c).major_string())
        .unwrap_or_default();
    let order_type = match (o.kind.as_str(), sub.as_ref().map(|s| s.state.as_str())) {
        ("renewal", _) => "RENEW",
        ("upgrade", _) => "CHANGE",
        _ => "NEW",
    };
    axum::Json(json!({
        "resultCode": "MKT.0000", "resultMsg": "success",
        "orderInfo": {
            "orderId": o.id, "orderType": order_type, "createTime": expire_time(o.created_at),
            "orderLine": [{
                "orderLineId": format!("{}-000001", o.id), "chargingMode": charging,
                "expireTime": sub.as_ref().and_then(|s| s.term_end).map(expire_time),
                "periodType": period, "periodNumber": o.periods, "currency": o.currency, "orderAmount": amount,
                "productInfo": [{
                    "productId": o.product_id, "skuCode": o.plan_snapshot.get("code"), "linearValue": o.quantity,
                    "productName": o.plan_snapshot.get("name"),
                }],
            }],
            "buyerInfo": { "customerId": o.buyer_org_id, "customerName": buyer_name },
            "extendParams": [],
        }
    }))
    .into_response()
}

/// `POST /api/mkp-openapi-public/global/v1/license/activate` and `…/license/heartbeat`: the
/// license-code 2.0 calls a KooGallery seller's software makes (`{"license": "…"}`), answered
/// with KooGallery's codes (`92020000` success, `92020005` no such code) and statuses.
async fn license_call(
    state: crate::AppState,
    caller: Option<crate::auth::Caller>,
    body: axum::body::Bytes,
    activate: bool,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let org = caller.as_ref().and_then(|c| match &c.0 {
        crate::auth::Principal::ApiKey { key } => Some(key.org_id.clone()),
        crate::auth::Principal::Account { .. } => None,
    });
    let (Some(caller), Some(org)) = (caller, org) else {
        return mkt("MKT.0154", "illegal token: use an API key of your organization", StatusCode::UNAUTHORIZED);
    };
    let license =
        serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("license").and_then(Value::as_str).map(str::to_owned));
    let Some(license) = license else {
        return mkt("MKT.0100", "input check failed: license is required", StatusCode::BAD_REQUEST);
    };
    match crate::licenses::check(&state, &caller, &org, &license, activate).await {
        Ok(v) => axum::Json(json!({
            "resultCode": "92020000", "resultMsg": "success", "license": v.license,
            "status": v.status.as_str().to_uppercase(), "expireTime": v.expires_at.map(expire_time),
        }))
        .into_response(),
        Err(e) if e.status() == StatusCode::NOT_FOUND => mkt("92020005", "no such license code", StatusCode::OK),
        Err(e) if e.status() == StatusCode::CONFLICT => {
            // Not alive: activation refused, the status says why.
            match crate::licenses::check(&state, &caller, &org, &license, false).await {
                Ok(v) => axum::Json(json!({
                    "resultCode": "92020001", "resultMsg": e.message(), "license": v.license,
                    "status": v.status.as_str().to_uppercase(), "expireTime": v.expires_at.map(expire_time),
                }))
                .into_response(),
                Err(_) => mkt("MKT.0999", "internal error", StatusCode::INTERNAL_SERVER_ERROR),
            }
        }
        Err(_) => mkt("MKT.0999", "internal error", StatusCode::INTERNAL_SERVER_ERROR),
    }
}

pub async fn license_activate(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    crate::auth::MaybeCaller(caller): crate::auth::MaybeCaller,
    body: axum::body::Bytes,
) -> axum::response::Response {
    license_call(state, caller, body, true).await
}

pub async fn license_heartbeat(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    crate::auth::MaybeCaller(caller): crate::auth::MaybeCaller,
    body: axum::body::Bytes,
) -> axum::response::Response {
    license_call(state, caller, body, false).await
}
