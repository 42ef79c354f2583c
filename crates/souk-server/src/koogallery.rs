//! KooGallery-compatible mode (koogallery-protocol.md): a product whose seller chose it gets
//! the same lifecycle as KooGallery's SaaS V2.0 calls, so an existing KooGallery integration
//! works unchanged: `newInstance` (polling `queryInstance` after `000004`), `refreshInstance`,
//! `updateInstanceStatus`, `upgradeInstance`, `releaseInstance`, `changeInstanceCheck` before a
//! plan change, `refreshLicenseCode` for license codes, and enterprise user authorization as
//! `authSync` to the seller's joint-operation sync APIs; signed with the product's access key,
//! bodies with keys in ascending order, retried on KooGallery's own cadence. The open APIs a
//! KooGallery seller calls back are here too, authenticated by an API key or by the Huawei
//! API-gateway signature (`gateway`).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use souk_core::outbox::RetryPolicy;
use souk_isv::koogallery::{EncryptType, decrypt_field, sign};
use souk_store::fulfillment::{self as store, Integration};
use souk_store::orders;
use souk_store::outbox::Event;

use crate::AppState;
use crate::error::{Error, Result};
use crate::fulfillment::Deliverer;
use crate::workers::Failure;
use souk_core::id::OrgId;

/// How long to wait before asking again about an instance still being provisioned.
pub const POLL_SECS: i64 = 60;
/// KooGallery's request timeout for calls to sellers.
pub const TIMEOUT_SECS: u64 = 5;

fn expire_time(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d%H%M%S").to_string()
}

/// A body with its keys in ascending order, as KooGallery signs bodies.
fn sorted_body(fields: &BTreeMap<&str, Value>) -> std::result::Result<String, Failure> {
    serde_json::to_string(fields).map_err(|e| Failure::from(e.to_string()))
}

/// The V2 signature's query (or header) values for `body`: (signature, timestamp, nonce).
fn signed(access_key: &str, body: &str) -> (String, String, String) {
    let ts = Utc::now().timestamp_millis();
    let nonce = hex::encode(rand::random::<[u8; 12]>());
    (sign(access_key, body.as_bytes(), ts, &nonce), ts.to_string(), nonce)
}

fn signed_url(endpoint: &url::Url, access_key: &str, body: &str) -> url::Url {
    let (signature, ts, nonce) = signed(access_key, body);
    let mut url = endpoint.clone();
    url.query_pairs_mut().append_pair("signature", &signature).append_pair("timestamp", &ts).append_pair("nonce", &nonce);
    url
}

/// The answer when its `resultCode` is `000000` (or `000004`), else why not.
fn accepted(text: &str) -> std::result::Result<Value, Failure> {
    let answer: Value = serde_json::from_str(text)
        .map_err(|_| Failure::from(format!("not JSON: {}", text.chars().take(200).collect::<String>())))?;
    match answer.get("resultCode").and_then(Value::as_str) {
        Some("000000") | Some("000004") => Ok(answer),
        Some(code) => {
            Err(Failure::from(format!("resultCode {code}: {}", answer.get("resultMsg").and_then(Value::as_str).unwrap_or(""))))
        }
        None => Err(Failure::from("the answer has no resultCode")),
    }
}

/// Posts one activity to the product's URL, logged as a delivery attempt.
async fn call(
    d: &Deliverer,
    event: &Event,
    sub: &orders::Subscription,
    endpoint: &url::Url,
    access_key: &str,
    fields: BTreeMap<&str, Value>,
) -> std::result::Result<Value, Failure> {
    let body = sorted_body(&fields)?;
    let url = signed_url(endpoint, access_key, &body);
    let (_, text) = d.post_logged(event, sub, url, &body, &[("accept", "application/json".to_owned())]).await?;
    accepted(&text)
}

/// KooGallery's cadence for an event: creates and upgrades hourly for 3 h, the rest for 1 h.
fn policy(topic: &str) -> RetryPolicy {
    match topic {
        "instance.create" | "instance.change_plan" => RetryPolicy::koogallery_provisioning(),
        _ => RetryPolicy::koogallery_lifecycle(),
    }
}

/// Delivers one event in KooGallery's terms, retried on KooGallery's cadence.
pub async fn deliver(
    d: &Deliverer,
    event: &Event,
    sub: &orders::Subscription,
    integration: &Integration,
    endpoint: url::Url,
    access_key: &str,
    codes: &[String],
) -> std::result::Result<(), Failure> {
    deliver_event(d, event, sub, integration, endpoint, access_key, codes).await.map_err(|f| f.with_policy(policy(&event.topic)))
}

async fn deliver_event(
    d: &Deliverer,
    event: &Event,
    sub: &orders::Subscription,
    integration: &Integration,
    endpoint: url::Url,
    access_key: &str,
    codes: &[String],
) -> std::result::Result<(), Failure> {
    let state = d.state();
    let internal = |e: crate::error::Error| Failure::from(e.message());
    let db_err = |e: souk_store::StoreError| Failure::from(e.to_string());
    let p = &event.payload;
    let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
    let test_flag = json!(if p.get("test").and_then(Value::as_bool).unwrap_or(false) { "1" } else { "0" });
    let order_id = text("order_id").unwrap_or_default();
    let order_line = format!("{order_id}-000001");
    let mut db = state.db.clone();
    let instance_id = sub.instance_id.clone();
    // License 2.0: the marketplace's codes are the product; the seller's software activates
    // them with Souk, and there is no instance to create, freeze or release.
    let license_only = instance_id.is_none() && !codes.is_empty();
    let instance = || instance_id.clone().ok_or_else(|| Failure::from("no instance yet: the create has not succeeded"));
    let mut f: BTreeMap<&str, Value> = BTreeMap::new();
    f.insert("testFlag", test_flag.clone());
    let expires = p.get("expires_at").and_then(|v| serde_json::from_value::<DateTime<Utc>>(v.clone()).ok()).or(sub.term_end);
    match event.topic.as_str() {
        "instance.create" if license_only => {
            let answer = souk_isv::answer::Answer::default();
            crate::subscriptions::provisioned(state, sub, &answer, "souk").await.map_err(internal)?;
            Ok(())
        }
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
                    store::set_instance(&mut db, state.clock.now(), &sub.id, Some(id), None).await.map_err(db_err)?;
                    if answer.get("resultCode").and_then(Value::as_str) == Some("000004") {
                        crate::subscriptions::fulfilling(state, &sub.id).await.map_err(internal)?;
                        return Err(Failure::poll("processing (000004): will poll queryInstance", Duration::seconds(POLL_SECS)));
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
                return Err(Failure::poll("the instance is not ready yet", Duration::seconds(POLL_SECS)));
            };
            let app = &info["appInfo"];
            // Kept as the seller encrypted them; decrypted only to show the buyer.
            let access = json!({
                "url": app.get("frontEndUrl"), "admin_url": app.get("adminUrl"), "memo": app.get("memo"),
                "username_kg": app.get("userName"), "password_kg": app.get("password"),
                "encrypt_type": answer.get("encryptType").cloned().unwrap_or(json!("1")),
            });
            let answer = souk_isv::answer::Answer { instance_id: Some(id.clone()), access: None };
            crate::subscriptions::provisioned(state, sub, &answer, "seller").await.map_err(internal)?;
            store::set_instance(&mut db, state.clock.now(), &sub.id, Some(&id), Some(&access)).await.map_err(db_err)?;
            Ok(())
        }
        "instance.renew" if license_only => {
            // Each code's new expiry pushed to the seller (its software may cache it).
            for code in codes {
                let mut r = f.clone();
                r.insert("activity", json!("refreshLicenseCode"));
                r.insert("scene", json!("RENEWAL"));
                r.insert("orderId", json!(order_id));
                r.insert("orderLineId", json!(order_line));
                r.insert("license", json!(code));
                r.insert("expireTime", json!(expires.map(expire_time).unwrap_or_default()));
                call(d, event, sub, &endpoint, access_key, r).await?;
            }
            Ok(())
        }
        // A code's status follows the subscription; the seller's software reads it.
        "instance.change_plan" | "instance.suspend" | "instance.resume" | "instance.release" if license_only => Ok(()),
        "instance.renew" => {
            let converted = p.get("converted_from_trial").and_then(Value::as_bool).unwrap_or(false);
            f.insert("activity", json!("refreshInstance"));
            f.insert("scene", json!(if converted { "TRIAL_TO_FORMAL" } else { "RENEWAL" }));
            f.insert("orderId", json!(order_id));
            f.insert("orderLineId", json!(order_line));
            f.insert("instanceId", json!(instance()?));
            f.insert("productId", json!(sub.product_id));
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
        "authorization.sync" => auth_sync(d, event, sub, integration, instance_id.as_deref(), test_flag).await,
        "license.issue" => {
            Err(Failure::from("KooGallery's protocol has no call asking the seller for license codes: use the native protocol"))
        }
        _ => Ok(()),
    }
}

/// Enterprise user authorization as the joint-operation `authSync` call, signed in headers
/// (`x-sign`, `x-timestamp`, `x-nonce`, the V2 formula) with the sync APIs' key. Without a
/// sync URL the seller takes no authorization from Souk, and nothing is sent.
async fn auth_sync(
    d: &Deliverer,
    event: &Event,
    sub: &orders::Subscription,
    integration: &Integration,
    instance_id: Option<&str>,
    test_flag: Value,
) -> std::result::Result<(), Failure> {
    let Some(base) = integration.sync_url.as_deref() else { return Ok(()) };
    let state = d.state();
    let url = url::Url::parse(&format!("{}/produceAPI/v2/authSync", base.trim_end_matches('/')))
        .map_err(|e| Failure::from(format!("the sync URL: {e}")))?;
    let key = crate::fulfillment::sync_key(state, integration)
        .await
        .map_err(|e| Failure::from(e.message()))?
        .ok_or_else(|| Failure::from("no access key to sign the sync with"))?;
    let p = &event.payload;
    let flag = match p.get("flag").and_then(Value::as_str) {
        Some("delete") => 0,
        Some("add") => 1,
        _ => 2,
    };
    let users: Vec<Value> = p
        .get("users")
        .and_then(Value::as_array)
        .map(|us| {
            us.iter()
                .map(|u| {
                    json!({
                        "userName": u.get("email"), "name": u.get("name"), "email": u.get("email"), "orgCode": sub.buyer_org_id,
                        "role": u.get("role"),
                        "enable": if u.get("enabled").and_then(Value::as_bool).unwrap_or(true) { "true" } else { "false" },
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let now = Utc::now();
    let mut f: BTreeMap<&str, Value> = BTreeMap::new();
    f.insert("instanceId", json!(instance_id.unwrap_or_default()));
    f.insert("tenantId", json!(sub.buyer_org_id));
    f.insert("appId", json!(sub.product_id));
    f.insert("userList", json!(users));
    f.insert("currentSyncTime", json!(expire_time(event.created_at)));
    f.insert("flag", json!(flag));
    f.insert("testFlag", test_flag);
    f.insert("timeStamp", json!(now.timestamp_millis().to_string()));
    let body = sorted_body(&f)?;
    let (signature, ts, nonce) = signed(&key, &body);
    let headers = [("accept", "application/json".to_owned()), ("x-sign", signature), ("x-timestamp", ts), ("x-nonce", nonce)];
    let (_, text) = d.post_logged(event, sub, url, &body, &headers).await?;
    accepted(&text).map(|_| ())
}

/// Asks a KooGallery seller whether an instance may change to a plan (`changeInstanceCheck`),
/// when its integration says the seller answers it. Only `000000` allows the change. Unlike
/// deliveries this is asked during the buyer's request: it is a question with no effect, and
/// the buyer must hear the answer before paying; it runs before the change's transaction.
pub async fn change_check(state: &AppState, sub: &orders::Subscription, plan_code: &str, plan_name: &str) -> Result<()> {
    let Some(i) = store::get(&mut state.db.clone(), &sub.product_id).await? else { return Ok(()) };
    if i.protocol != "koogallery" || !i.change_check {
        return Ok(());
    }
    let instance_id = sub.instance_id.clone();
    let Some(instance_id) = instance_id else { return Ok(()) };
    let key = crate::fulfillment::current_secret(state, &sub.product_id)
        .await?
        .map(|s| String::from_utf8_lossy(s.bytes()).into_owned())
        .unwrap_or_default();
    let mut f: BTreeMap<&str, Value> = BTreeMap::new();
    f.insert("activity", json!("changeInstanceCheck"));
    f.insert("instanceId", json!(instance_id));
    f.insert(
        "productInfo",
        json!({ "productId": sub.product_id, "skuCode": plan_code, "linearValue": sub.quantity, "productName": plan_name }),
    );
    f.insert("testFlag", json!("0"));
    let unavailable = |why: String| {
        Error::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "seller_unavailable",
            format!("the seller's system could not confirm the change ({why}); try again later"),
        )
    };
    let body = sorted_body(&f).map_err(|e| unavailable(e.message))?;
    let endpoint = url::Url::parse(&i.endpoint).map_err(|e| unavailable(e.to_string()))?;
    crate::fulfillment::check_destination(&endpoint, &state.config.outbound_allow).await.map_err(unavailable)?;
    let res = crate::fulfillment::seller_client(Some(&state.config.outbound_allow))
        .post(signed_url(&endpoint, &key, &body))
        .timeout(std::time::Duration::from_secs(TIMEOUT_SECS))
        .header("content-type", "application/json;charset=utf8")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let text = res.text().await.map_err(|e| unavailable(e.to_string()))?;
    let answer: Value = serde_json::from_str(&text).map_err(|_| unavailable("its answer is not JSON".into()))?;
    match answer.get("resultCode").and_then(Value::as_str) {
        Some("000000") => Ok(()),
        code => Err(Error::conflict(
            "change_refused",
            format!(
                "the seller's system does not allow this change ({}: {})",
                code.unwrap_or("no resultCode"),
                answer.get("resultMsg").and_then(Value::as_str).unwrap_or("")
            ),
        )),
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

/// The largest body the open APIs read.
const OPEN_API_BODY: usize = 64 * 1024;

/// The seller organization calling an open API, by the Huawei API-gateway signature (an
/// access key pair of its own) or by an API key of its organization; with the body read.
async fn open_api_caller(
    state: &AppState,
    req: axum::extract::Request,
) -> std::result::Result<(OrgId, axum::http::request::Parts, axum::body::Bytes), axum::response::Response> {
    use axum::http::StatusCode;
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, OPEN_API_BODY)
        .await
        .map_err(|_| mkt("MKT.0100", "input check failed: the body is too large", StatusCode::PAYLOAD_TOO_LARGE))?;
    match crate::gateway::authenticate(state, parts.method.as_str(), &parts.uri, &parts.headers, &body).await {
        Ok(Some(org)) => return Ok((org, parts, body)),
        Ok(None) => {}
        Err(crate::gateway::Refused::Credentials(why)) => {
            return Err(mkt("MKT.0154", &format!("illegal token: {why}"), StatusCode::UNAUTHORIZED));
        }
        Err(crate::gateway::Refused::Internal(e)) => {
            tracing::error!(error = %e.message(), "gateway signature check failed");
            return Err(mkt("MKT.0999", "internal error", StatusCode::INTERNAL_SERVER_ERROR));
        }
    }
    match crate::auth::authenticate(state, &parts.headers).await {
        Ok(Some(crate::auth::Caller(crate::auth::Principal::ApiKey { key }))) => Ok((key.org_id, parts, body)),
        _ => Err(mkt(
            "MKT.0154",
            "illegal token: sign with an access key pair (SDK-HMAC-SHA256) or use an API key of your organization",
            StatusCode::UNAUTHORIZED,
        )),
    }
}

/// `GET /api/mkp-openapi-public/global/v1/order/query`: the order query KooGallery sellers call
/// to fetch an order's details (with the `MOCK…` debug orders), authenticated with an API key
/// of the seller's organization.
pub async fn order_query(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let (seller, parts, _) = match open_api_caller(&state, req).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let q: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let Some(order_id) = q.get("orderId").map(|s| s.trim()).filter(|s| !s.is_empty()) else {
        return mkt("MKT.0100", "input check failed: orderId is required", StatusCode::BAD_REQUEST);
    };
    if let Some(o) = mock_order(order_id) {
        return axum::Json(json!({ "resultCode": "MKT.0000", "resultMsg": "success", "orderInfo": o })).into_response();
    }
    let mut db = state.db.clone();
    let order = match souk_store::orders::get_for_seller(&mut db, &seller, order_id).await {
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
async fn license_call(state: crate::AppState, req: axum::extract::Request, activate: bool) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let (org, _, body) = match open_api_caller(&state, req).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let license =
        serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("license").and_then(Value::as_str).map(str::to_owned));
    let Some(license) = license else {
        return mkt("MKT.0100", "input check failed: license is required", StatusCode::BAD_REQUEST);
    };
    match crate::licenses::check_for(&state, &org, &license, activate).await {
        Ok(v) => axum::Json(json!({
            "resultCode": "92020000", "resultMsg": "success", "license": v.license,
            "status": v.status.as_str().to_uppercase(), "expireTime": v.expires_at.map(expire_time),
        }))
        .into_response(),
        Err(e) if e.status() == StatusCode::NOT_FOUND => mkt("92020005", "no such license code", StatusCode::OK),
        Err(e) if e.status() == StatusCode::CONFLICT => {
            // Not alive: activation refused, the status says why.
            match crate::licenses::check_for(&state, &org, &license, false).await {
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
    req: axum::extract::Request,
) -> axum::response::Response {
    license_call(state, req, true).await
}

/// `POST /api/mkp-openapi-public/global/v2/license/heartbeat`: the batch form,
/// `{"licenses": ["…", …]}` (at most 100), answered with each code's result in `licenses`.
pub async fn license_heartbeat_batch(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let (org, _, body) = match open_api_caller(&state, req).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let codes: Option<Vec<String>> = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.get("licenses").and_then(Value::as_array).map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_owned)).collect())
    });
    let Some(codes) = codes.filter(|c| !c.is_empty() && c.len() <= 100) else {
        return mkt("MKT.0100", "input check failed: licenses is a list of 1 to 100 codes", StatusCode::BAD_REQUEST);
    };
    let mut out = Vec::with_capacity(codes.len());
    for code in codes {
        out.push(match crate::licenses::check_for(&state, &org, &code, false).await {
            Ok(v) => json!({
                "license": v.license, "resultCode": "92020000",
                "status": v.status.as_str().to_uppercase(), "expireTime": v.expires_at.map(expire_time),
            }),
            Err(e) if e.status() == StatusCode::NOT_FOUND => json!({ "license": code, "resultCode": "92020005" }),
            Err(_) => return mkt("MKT.0999", "internal error", StatusCode::INTERNAL_SERVER_ERROR),
        });
    }
    axum::Json(json!({ "resultCode": "92020000", "resultMsg": "success", "licenses": out })).into_response()
}

pub async fn license_heartbeat(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    req: axum::extract::Request,
) -> axum::response::Response {
    license_call(state, req, false).await
}
