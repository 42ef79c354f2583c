//! KooGallery-compatible mode against a seller stub written from koogallery-protocol.md (its
//! own signature check and the document's encryption test vector), not from Souk's client code.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use chrono::Duration;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::both_backends;
use crate::catalog::{content, operator_with_agreement, publish, seller};
use crate::commerce::verified_buyer;
use crate::helpers::*;

both_backends!(
    a_koogallery_integration_works_unchanged,
    enterprise_authorization_change_checks_and_gateway_keys_in_koogallery_terms,
    koogallery_creates_give_up_after_three_hours_and_license_codes_are_refreshed,
);

const ACCESS_KEY: &str = "souk-test-access-key";
const SYNC_KEY: &str = "souk-test-sync-access-key";

#[derive(Default)]
struct Stub {
    /// (activity, body) of every call that passed the checks.
    calls: Vec<(String, Value)>,
    /// Calls refused, with why.
    refused: Vec<String>,
    nonces: HashSet<String>,
    /// order line → instance id.
    instances: HashMap<String, String>,
    queries: u32,
    /// Answer newInstance with 000000 and the instance ready at once.
    ready_at_once: bool,
    /// What changeInstanceCheck answers: allowed or refused.
    allow_change: bool,
    /// Answer every basic call with 000005 (internal error).
    failing: bool,
    /// authSync bodies that passed the header signature check.
    auth_syncs: Vec<Value>,
}

fn hmac_hex(key: &str, data: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    m.update(data);
    hex::encode(m.finalize().into_bytes())
}

async fn stub(State(s): State<Arc<Mutex<Stub>>>, Query(q): Query<HashMap<String, String>>, body: String) -> axum::Json<Value> {
    let mut s = s.lock().unwrap();
    let (sig, ts, nonce) = (
        q.get("signature").cloned().unwrap_or_default(),
        q.get("timestamp").cloned().unwrap_or_default(),
        q.get("nonce").cloned().unwrap_or_default(),
    );
    // The document's V2 formula, computed here independently.
    let inner = hmac_hex(ACCESS_KEY, body.as_bytes());
    let expected = hmac_hex(ACCESS_KEY, format!("{ACCESS_KEY}{nonce}{ts}{inner}").as_bytes());
    let now = chrono::Utc::now().timestamp_millis();
    let fresh = ts.parse::<i64>().is_ok_and(|t| (now - t).abs() <= 60_000);
    let sorted = serde_json::to_string(&serde_json::from_str::<BTreeMap<String, Value>>(&body).unwrap_or_default()).unwrap();
    if !sig.eq_ignore_ascii_case(&expected) || !fresh || !s.nonces.insert(nonce) || sorted != body {
        s.refused.push(body);
        return axum::Json(json!({"resultCode": "000001", "resultMsg": "authentication failed"}));
    }
    let v: Value = serde_json::from_str(&body).unwrap();
    let activity = v["activity"].as_str().unwrap_or_default().to_owned();
    s.calls.push((activity.clone(), v.clone()));
    if s.failing {
        return axum::Json(json!({"resultCode": "000005", "resultMsg": "internal error"}));
    }
    match activity.as_str() {
        "newInstance" => {
            let line = v["orderLineId"].as_str().unwrap().to_owned();
            // The guide: the first call's businessId becomes the instance id, the same ever after.
            let id = s.instances.entry(line).or_insert_with(|| v["businessId"].as_str().unwrap().to_owned()).clone();
            let code = if s.ready_at_once { "000000" } else { "000004" };
            axum::Json(json!({"resultCode": code, "resultMsg": "processing", "instanceId": id}))
        }
        "changeInstanceCheck" if !s.allow_change => {
            axum::Json(json!({"resultCode": "000002", "resultMsg": "this instance cannot take that plan"}))
        }
        "queryInstance" => {
            s.queries += 1;
            if s.queries < 2 && !s.ready_at_once {
                return axum::Json(json!({"resultCode": "000004", "resultMsg": "processing"}));
            }
            let id = v["instanceId"].as_str().unwrap();
            axum::Json(json!({
                "resultCode": "000000", "encryptType": "1",
                "info": [{"instanceId": id, "appInfo": {
                    "frontEndUrl": format!("https://{id}.kg.example/"), "adminUrl": format!("https://{id}.kg.example/admin"),
                    // The document's AES-256 test vector: "P@ssw0rd!".
                    "password": "abcdefghijklmnop64LVf8ASmrNrWiSSKVBVrg=="}}]
            }))
        }
        _ => axum::Json(json!({"resultCode": "000000", "resultMsg": "success"})),
    }
}

/// The joint-operation `authSync`, signed in headers with the sync APIs' own key.
async fn auth_sync(State(s): State<Arc<Mutex<Stub>>>, headers: axum::http::HeaderMap, body: String) -> axum::Json<Value> {
    let mut s = s.lock().unwrap();
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (sig, ts, nonce) = (h("x-sign"), h("x-timestamp"), h("x-nonce"));
    let inner = hmac_hex(SYNC_KEY, body.as_bytes());
    let expected = hmac_hex(SYNC_KEY, format!("{SYNC_KEY}{nonce}{ts}{inner}").as_bytes());
    if !sig.eq_ignore_ascii_case(&expected) || !s.nonces.insert(nonce) {
        s.refused.push(body);
        return axum::Json(json!({"resultCode": "000001", "resultMsg": "authentication failed"}));
    }
    s.auth_syncs.push(serde_json::from_str(&body).unwrap());
    axum::Json(json!({"resultCode": "000000", "resultMsg": "success"}))
}

/// Serves a stub at `http://ADDR/produce` (basic APIs) and `http://ADDR/produceAPI/v2/authSync`.
async fn start_stub(initial: Stub) -> (Arc<Mutex<Stub>>, String) {
    let state = Arc::new(Mutex::new(initial));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route("/produce", axum::routing::post(stub))
        .route("/produceAPI/v2/authSync", axum::routing::post(auth_sync))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (state, base)
}

fn activities(state: &Arc<Mutex<Stub>>) -> Vec<String> {
    state.lock().unwrap().calls.iter().map(|(a, _)| a.clone()).collect()
}

async fn a_koogallery_integration_works_unchanged(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (c, org) = seller(&app, &op, "kg@example.com", "cn").await;
    let product = publish(&app, &c, &op, &org, "saas", content("KG App", "Moved from KooGallery", "devops", 1000, false)).await;
    let state = Arc::new(Mutex::new(Stub::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/produce", listener.local_addr().unwrap());
    let router = axum::Router::new().route("/produce", axum::routing::post(stub)).with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let res = app
        .put_json(
            &c,
            &format!("/api/v1/orgs/{org}/products/{product}/integration"),
            json!({"endpoint": endpoint, "protocol": "koogallery", "access_key": ACCESS_KEY}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());

    let (buyer, borg) = verified_buyer(&app, &op, "buyer@example.com", "cn").await;
    app.post(
        &op,
        &format!("/api/v1/admin/wallets/{borg}/top-ups"),
        json!({"currency": "CNY", "amount_minor": 100_000, "reason": "t"}),
    )
    .await;
    let page: Value = app.get(&client(), &format!("/api/v1/storefront/cn/products/{product}")).await.json().await.unwrap();
    let plan = page["plans"][0]["id"].as_str().unwrap().to_owned();
    let sub = app.buy(&buyer, &borg, &product, &plan).await;
    let calls = || state.lock().unwrap().calls.iter().map(|(a, _)| a.clone()).collect::<Vec<_>>();
    let wait = |n: usize| {
        let calls = &calls;
        async move {
            for _ in 0..300 {
                if calls().len() >= n {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("waited for {n} calls, got {:?}", calls());
        }
    };
    // newInstance answers 000004; Souk polls queryInstance until the instance is ready.
    wait(1).await;
    let mut state_now = Value::Null;
    for _ in 0..300 {
        let orders: Value = app.get(&buyer, &format!("/api/v1/orgs/{borg}/orders")).await.json().await.unwrap();
        state_now = orders["items"][0]["state"].clone();
        if state_now == "fulfilling" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(state_now, "fulfilling", "000004: accepted, still provisioning");
    // Polls follow the delivery schedule (5 s, then 5 min), and never sooner than a minute.
    // The stub sees a call before the worker records its attempt: the clock jumps only once
    // that is recorded, or the next poll would be due 5 minutes after the jump instead.
    let recorded = || async {
        app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic LIKE 'instance.%' AND locked_by IS NOT NULL").await == 0
    };
    for n in [2, 3] {
        eventually("the last call's attempt recorded", recorded).await;
        app.clock.advance(Duration::seconds(400));
        wait(n).await;
    }
    let subs = || async {
        app.get(&buyer, &format!("/api/v1/orgs/{borg}/subscriptions")).await.json::<Value>().await.unwrap()["items"][0].clone()
    };
    for _ in 0..300 {
        if subs().await["state"] == "active" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let s = subs().await;
    assert_eq!(s["state"], "active");
    assert_eq!(s["access"]["password"], "P@ssw0rd!", "decrypted with the key derived as the Java sample does");
    assert!(s["access"]["url"].as_str().unwrap().ends_with(".kg.example/"));
    let first = state.lock().unwrap().calls[0].1.clone();
    assert_eq!(first["orderLineId"], format!("{}-000001", first["orderId"].as_str().unwrap()));
    assert_eq!(s["instance_id"], first["businessId"]);

    // Renewal and unsubscription, in KooGallery's words.
    app.post(&buyer, &format!("/api/v1/orgs/{borg}/subscriptions/{sub}/renew"), json!({"periods": 1})).await;
    wait(4).await;
    app.post(&buyer, &format!("/api/v1/orgs/{borg}/subscriptions/{sub}/unsubscribe"), json!({})).await;
    wait(5).await;
    assert_eq!(calls(), vec!["newInstance", "queryInstance", "queryInstance", "refreshInstance", "releaseInstance"]);
    {
        let st = state.lock().unwrap();
        let refresh = &st.calls[3].1;
        assert_eq!(refresh["scene"], "RENEWAL");
        assert_eq!(refresh["instanceId"], s["instance_id"]);
        assert_eq!(refresh["expireTime"].as_str().unwrap().len(), 14, "yyyyMMddHHmmss");
        assert!(st.refused.is_empty(), "every call signed as the document says: {:?}", st.refused);
    }
    let order_id = first["orderId"].as_str().unwrap().to_owned();

    // The seller's system fetches the order through the open API, with its API key.
    let key: Value = app
        .post(&c, &format!("/api/v1/orgs/{org}/api-keys"), json!({"name": "kg", "role": "member"}))
        .await
        .json()
        .await
        .unwrap();
    let token = key["token"].as_str().unwrap().to_owned();
    let query = |id: String, token: Option<String>| {
        let url = app.url(&format!("/api/mkp-openapi-public/global/v1/order/query?orderId={id}&orderLineId={id}-000001"));
        async move {
            let mut req = reqwest::Client::new().get(url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send().await.unwrap().json::<Value>().await.unwrap()
        }
    };
    let got = query(order_id.clone(), Some(token.clone())).await;
    assert_eq!(got["resultCode"], "MKT.0000", "{got}");
    let line = &got["orderInfo"]["orderLine"][0];
    assert_eq!(got["orderInfo"]["orderType"], "NEW");
    assert_eq!(
        (line["chargingMode"].as_str(), line["periodType"].as_str(), line["orderAmount"].as_str()),
        (Some("PERIOD"), Some("month"), Some("70.00"))
    );
    assert_eq!(line["productInfo"][0]["productId"], product.as_str());
    assert_eq!(got["orderInfo"]["buyerInfo"]["customerId"], borg.as_str());
    let mock = query("MOCKPERIODYEARNEW".into(), Some(token.clone())).await;
    assert_eq!(mock["orderInfo"]["orderLine"][0]["orderLineId"], "MOCKPERIODYEARNEW-000001");
    assert_eq!(query(order_id.clone(), None).await["resultCode"], "MKT.0154");
    let (other, other_org) = seller(&app, &op, "other-kg@example.com", "cn").await;
    let other_key: Value = app
        .post(&other, &format!("/api/v1/orgs/{other_org}/api-keys"), json!({"name": "kg", "role": "member"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(query(order_id, Some(other_key["token"].as_str().unwrap().to_owned())).await["resultCode"], "MKT.0150");
}

async fn enterprise_authorization_change_checks_and_gateway_keys_in_koogallery_terms(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (c, org) = seller(&app, &op, "kg-teams@example.com", "cn").await;
    let mut body = content("KG Teams", "Moved from KooGallery", "devops", 1000, false);
    let mut pro = body["plans"][0].clone();
    pro["code"] = json!("pro-monthly");
    pro["name"] = json!("Pro");
    pro["prices"] = json!([{"site": "intl", "amount_minor": 2000}, {"site": "cn", "amount_minor": 14000}]);
    body["plans"].as_array_mut().unwrap().push(pro);
    let product = publish(&app, &c, &op, &org, "saas", body).await;
    let (state, base) = start_stub(Stub { ready_at_once: true, allow_change: false, ..Stub::default() }).await;
    let integration = format!("/api/v1/orgs/{org}/products/{product}/integration");
    let res = app
        .put_json(
            &c,
            &integration,
            json!({"endpoint": format!("{base}/produce"), "protocol": "koogallery", "access_key": ACCESS_KEY,
                   "sync_url": base, "sync_access_key": SYNC_KEY, "change_check": true}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    let got: Value = res.json().await.unwrap();
    assert_eq!((got["change_check"].as_bool(), got["sync_key_set"].as_bool()), (Some(true), Some(true)));
    // KooGallery-only settings are refused for the native protocol.
    let res = app
        .put_json(&c, &integration, json!({"endpoint": format!("{base}/produce"), "protocol": "native", "change_check": true}))
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    // An enterprise buys it; its admin authorizes a member.
    let (corp, corp_org) = seller(&app, &op, "corp@example.com", "cn").await;
    let (_member, me) = app.user("member@example.com", "cn").await;
    let member_id = me["account"]["id"].as_str().unwrap().to_owned();
    app.post(&corp, &format!("/api/v1/orgs/{corp_org}/members"), json!({"email": "member@example.com", "role": "member"})).await;
    app.post(
        &op,
        &format!("/api/v1/admin/wallets/{corp_org}/top-ups"),
        json!({"currency": "CNY", "amount_minor": 100_000, "reason": "t"}),
    )
    .await;
    let page: Value = app.get(&client(), &format!("/api/v1/storefront/cn/products/{product}")).await.json().await.unwrap();
    let plan_id = |code: &str| {
        page["plans"].as_array().unwrap().iter().find(|p| p["code"] == code).unwrap()["id"].as_str().unwrap().to_owned()
    };
    let order: Value = app
        .post(
            &corp,
            &format!("/api/v1/orgs/{corp_org}/orders"),
            json!({"product_id": product, "plan_id": plan_id("standard-monthly")}),
        )
        .await
        .json()
        .await
        .unwrap();
    let sub = order["subscription_id"].as_str().unwrap().to_owned();
    let subs = format!("/api/v1/orgs/{corp_org}/subscriptions");
    eventually("provisioned", || async {
        app.get(&corp, &subs).await.json::<Value>().await.unwrap()["items"][0]["state"] == "active"
    })
    .await;
    let instance = app.get(&corp, &subs).await.json::<Value>().await.unwrap()["items"][0]["instance_id"].clone();
    let res = app.put_json(&corp, &format!("{subs}/{sub}/users/{member_id}"), json!({"role": "user"})).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    eventually("authSync received", || async { !state.lock().unwrap().auth_syncs.is_empty() }).await;
    {
        let st = state.lock().unwrap();
        let sync = &st.auth_syncs[0];
        assert_eq!(sync["flag"], 1, "1 = add");
        assert_eq!(sync["instanceId"], instance);
        assert_eq!(sync["tenantId"], corp_org.as_str());
        assert_eq!(sync["userList"][0]["userName"], "member@example.com");
        assert_eq!((sync["userList"][0]["role"].as_str(), sync["userList"][0]["enable"].as_str()), (Some("user"), Some("true")));
    }
    app.delete(&corp, &format!("{subs}/{sub}/users/{member_id}")).await;
    eventually("revoked: flag 0", || async { state.lock().unwrap().auth_syncs.get(1).is_some_and(|s| s["flag"] == 0) }).await;

    // The seller refuses the plan change: nothing is charged.
    let balance = || async {
        app.get(&corp, &format!("/api/v1/orgs/{corp_org}/wallet")).await.json::<Value>().await.unwrap()["balances"][0]
            ["amount_minor"]
            .as_i64()
            .unwrap()
    };
    let before = balance().await;
    let res = app.post(&corp, &format!("{subs}/{sub}/change-plan"), json!({"plan_id": plan_id("pro-monthly")})).await;
    assert_problem(res, StatusCode::CONFLICT, "change_refused").await;
    assert_eq!(balance().await, before);
    let check = state.lock().unwrap().calls.iter().find(|(a, _)| a == "changeInstanceCheck").unwrap().1.clone();
    assert_eq!(check["instanceId"], instance);
    assert_eq!(check["productInfo"]["skuCode"], "pro-monthly");
    // Allowed: the upgrade is paid and goes out as upgradeInstance.
    state.lock().unwrap().allow_change = true;
    let res = app.post(&corp, &format!("{subs}/{sub}/change-plan"), json!({"plan_id": plan_id("pro-monthly")})).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    assert!(balance().await < before);
    eventually("upgradeInstance", || async { activities(&state).contains(&"upgradeInstance".to_owned()) }).await;
    assert!(state.lock().unwrap().refused.is_empty(), "{:?}", state.lock().unwrap().refused);

    // The seller's system queries the order with an access key pair, signed as Huawei's gateway signs.
    let res = app.post(&c, &format!("/api/v1/orgs/{org}/gateway-keys"), json!({"name": ""})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = app.post(&c, &format!("/api/v1/orgs/{org}/gateway-keys"), json!({"name": "order sync"})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let key: Value = res.json().await.unwrap();
    let (ak, sk) = (key["access_key"].as_str().unwrap().to_owned(), key["secret_key"].as_str().unwrap().to_owned());
    let listed: Value = app.get(&c, &format!("/api/v1/orgs/{org}/gateway-keys")).await.json().await.unwrap();
    assert_eq!(listed["items"][0]["access_key"], ak.as_str());
    assert!(listed["items"][0]["secret_key"].is_null(), "shown once");
    let order_id = order["id"].as_str().unwrap().to_owned();
    let signed_query = |sk: String| {
        let url = app.url(&format!("/api/mkp-openapi-public/global/v1/order/query?orderId={order_id}"));
        let ak = ak.clone();
        async move {
            let parsed = url::Url::parse(&url).unwrap();
            let host = format!("{}:{}", parsed.host_str().unwrap(), parsed.port().unwrap());
            let date = chrono::Utc::now().format(souk_isv::apig::DATE_FORMAT).to_string();
            let headers = vec![("host".to_owned(), host.clone()), ("x-sdk-date".to_owned(), date.clone())];
            let r = souk_isv::apig::Request {
                method: "GET",
                path: parsed.path(),
                query: parsed.query().unwrap_or(""),
                headers: &headers,
                body: b"",
            };
            let auth = souk_isv::apig::authorization(&ak, &sk, &r, &["host", "x-sdk-date"]).unwrap();
            reqwest::Client::new()
                .get(url.clone())
                .header("host", host)
                .header("x-sdk-date", date)
                .header("authorization", auth)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let got = signed_query(sk.clone()).await;
    assert_eq!(got["resultCode"], "MKT.0000", "{got}");
    assert_eq!(got["orderInfo"]["orderId"], order_id.as_str());
    assert_eq!(signed_query("not-the-secret-key".into()).await["resultCode"], "MKT.0154");
    let res = app.delete(&c, &format!("/api/v1/orgs/{org}/gateway-keys/{ak}")).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(signed_query(sk).await["resultCode"], "MKT.0154", "revoked");
    // Another organization cannot list or revoke them.
    let res = app.get(&corp, &format!("/api/v1/orgs/{org}/gateway-keys")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // The console's form sets the same KooGallery settings; empty key fields keep the keys.
    let page_url = format!("/orgs/{org}/products/{product}/integration");
    let html = app.get(&c, &page_url).await.text().await.unwrap();
    assert!(html.contains(r#"value="koogallery" selected"#), "the current protocol is shown");
    let token = csrf(&html);
    let endpoint = format!("{base}/produce");
    let sync_url = format!("{base}/joint");
    let res = c
        .post(app.url(&page_url))
        .form(&[
            ("_csrf", token.as_str()),
            ("action", "save"),
            ("endpoint", endpoint.as_str()),
            ("protocol", "koogallery"),
            ("access_key", ""),
            ("sync_url", sync_url.as_str()),
            ("sync_access_key", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let got: Value = app.get(&c, &integration).await.json().await.unwrap();
    assert_eq!(got["protocol"], "koogallery");
    assert_eq!(got["sync_url"].as_str(), Some(sync_url.as_str()));
    assert_eq!((got["change_check"].as_bool(), got["sync_key_set"].as_bool()), (Some(false), Some(true)));
}

async fn koogallery_creates_give_up_after_three_hours_and_license_codes_are_refreshed(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (c, org) = seller(&app, &op, "kg-down@example.com", "cn").await;
    let saas = publish(&app, &c, &op, &org, "saas", content("KG Down", "Always failing", "devops", 1000, false)).await;
    let mut lic = content("KG Desktop", "Licensed", "devops", 1000, false);
    lic["license_source"] = json!("souk");
    let license = publish(&app, &c, &op, &org, "license", lic).await;
    let (failing, failing_base) = start_stub(Stub { failing: true, ..Stub::default() }).await;
    let (licensing, licensing_base) = start_stub(Stub::default()).await;
    for (product, base) in [(&saas, &failing_base), (&license, &licensing_base)] {
        let res = app
            .put_json(
                &c,
                &format!("/api/v1/orgs/{org}/products/{product}/integration"),
                json!({"endpoint": format!("{base}/produce"), "protocol": "koogallery", "access_key": ACCESS_KEY}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    }
    let (buyer, borg) = verified_buyer(&app, &op, "buyer@example.com", "cn").await;
    app.post(
        &op,
        &format!("/api/v1/admin/wallets/{borg}/top-ups"),
        json!({"currency": "CNY", "amount_minor": 100_000, "reason": "t"}),
    )
    .await;
    let buy = |product: String| {
        let (buyer, app) = (buyer.clone(), &app);
        let borg = borg.clone();
        async move {
            let page: Value =
                app.get(&client(), &format!("/api/v1/storefront/cn/products/{product}")).await.json().await.unwrap();
            let plan = page["plans"][0]["id"].as_str().unwrap().to_owned();
            let res =
                app.post(&buyer, &format!("/api/v1/orgs/{borg}/orders"), json!({"product_id": product, "plan_id": plan})).await;
            assert_eq!(res.status(), StatusCode::CREATED);
            res.json::<Value>().await.unwrap()
        }
    };

    // KooGallery retries a create hourly for 3 hours, not on the native 27-hour schedule.
    buy(saas.clone()).await;
    let creates = || failing.lock().unwrap().calls.len();
    eventually("the first newInstance", || async { creates() >= 1 }).await;
    // Each attempt's outcome is recorded before the clock moves on (the retry is timed from it).
    let recorded = || async {
        app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'instance.create' AND locked_by IS NOT NULL").await == 0
    };
    for n in 2..=4 {
        eventually("the attempt recorded", recorded).await;
        app.clock.advance(Duration::minutes(67));
        eventually("the next newInstance", || async { creates() >= n }).await;
    }
    eventually("the order failed after 3 hours", || async {
        app.count("SELECT COUNT(*) AS n FROM orders WHERE state = 'fulfillment_failed'").await == 1
    })
    .await;
    assert_eq!(creates(), 4, "attempts at 0, 1, 2 and 3 hours");

    // A license-code product: the codes are the product, no instance is created; a renewal
    // pushes each code's new expiry as refreshLicenseCode.
    let order = buy(license.clone()).await;
    let sub = order["subscription_id"].as_str().unwrap().to_owned();
    let subs = format!("/api/v1/orgs/{borg}/subscriptions");
    let mine = || async {
        let list: Value = app.get(&buyer, &subs).await.json().await.unwrap();
        list["items"].as_array().unwrap().iter().find(|s| s["id"] == sub.as_str()).cloned().unwrap()
    };
    eventually("active without a newInstance", || async { mine().await["state"] == "active" }).await;
    let code = mine().await["license_codes"][0].as_str().unwrap().to_owned();
    let res = app.post(&buyer, &format!("{subs}/{sub}/renew"), json!({"periods": 1})).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    eventually("refreshLicenseCode", || async { !licensing.lock().unwrap().calls.is_empty() }).await;
    let st = licensing.lock().unwrap();
    assert_eq!(st.calls.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(), vec!["refreshLicenseCode"]);
    let refresh = &st.calls[0].1;
    assert_eq!((refresh["scene"].as_str(), refresh["license"].as_str()), (Some("RENEWAL"), Some(code.as_str())));
    assert_eq!(refresh["expireTime"].as_str().unwrap().len(), 14);
    assert!(st.refused.is_empty());
}
