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

both_backends!(a_koogallery_integration_works_unchanged);

const ACCESS_KEY: &str = "souk-test-access-key";

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
    match activity.as_str() {
        "newInstance" => {
            let line = v["orderLineId"].as_str().unwrap().to_owned();
            // The guide: the first call's businessId becomes the instance id, the same ever after.
            let id = s.instances.entry(line).or_insert_with(|| v["businessId"].as_str().unwrap().to_owned()).clone();
            axum::Json(json!({"resultCode": "000004", "resultMsg": "processing", "instanceId": id}))
        }
        "queryInstance" => {
            s.queries += 1;
            if s.queries < 2 {
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
    let order: Value = app
        .post(&buyer, &format!("/api/v1/orgs/{borg}/orders"), json!({"product_id": product, "plan_id": plan}))
        .await
        .json()
        .await
        .unwrap();
    let sub = order["subscription_id"].as_str().unwrap().to_owned();
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
    for n in [2, 3] {
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
