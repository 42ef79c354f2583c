use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    every_post_answers_bad_input_with_a_problem,
    idempotency_keys_replay_and_refuse_reuse,
    audit_log_pages_with_a_cursor,
    openapi_docs_health_and_metrics,
    unknown_routes_and_methods_are_problems,
);

/// Fills the path's placeholders with ids the caller may use.
fn fill(path: &str, org: &str, me: &str) -> String {
    path.replace("{org_id}", org)
        .replace("{account_id}", me)
        .replace("{key_id}", "key_01jd0000000000000000000000")
        .replace("{upload_id}", "upl_01jd0000000000000000000000")
        .replace("{verification_id}", "ver_01jd0000000000000000000000")
}

async fn every_post_answers_bad_input_with_a_problem(b: Backend) {
    let app = spawn_app(b).await;
    let (c, me) = app.operator("op@example.com").await;
    let org = app.enterprise(&c, "Acme").await;
    let me_id = me["account"]["id"].as_str().unwrap().to_owned();
    let doc: Value = app.get(&c, "/api/openapi.json").await.json().await.unwrap();
    let before = app.count("SELECT COUNT(*) AS n FROM audit_log").await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["post", "patch"] {
            if item.get(method).is_none() || path.ends_with("/signout") {
                continue;
            }
            let url = app.url(&fill(path, &org, &me_id));
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let cases: Vec<(&str, Vec<u8>, &str)> = vec![
                ("malformed", b"{\"email\": ".to_vec(), "application/json"),
                ("wrong types", br#"{"email": 5, "name": [], "password": {}, "site": 1, "approve": "yes", "role": 7}"#.to_vec(), "application/json"),
                ("unknown enum", br#"{"email": "a@b.co", "name": "x", "password": "0123456789", "site": "mars", "role": "god", "approve": false}"#.to_vec(), "application/json"),
                ("not json", b"email=a".to_vec(), "text/plain"),
                ("empty", Vec::new(), "application/json"),
                // serde reads a struct from an array of its fields (an empty one from `[]`).
                ("an array", b"[]".to_vec(), "application/json"),
                ("oversize", vec![b' '; 7 * 1024 * 1024], "application/json"),
            ];
            for (case, body, ct) in cases {
                let res = c.request(m.clone(), &url).header("content-type", ct).body(body).send().await.unwrap();
                let status = res.status();
                assert!(status.is_client_error(), "{method} {path} [{case}] answered {status}");
                assert_eq!(
                    res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).as_deref(),
                    Some("application/problem+json"),
                    "{method} {path} [{case}]"
                );
                let body: Value = res.json().await.unwrap();
                assert!(body["code"].is_string() && body["detail"].is_string(), "{method} {path} [{case}]: {body}");
                if case == "oversize" {
                    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{method} {path}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 60, "only {checked} cases ran: the OpenAPI document lost endpoints");
    // Nothing was written by any of it.
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_log").await, before);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM accounts").await, 1);
}

async fn idempotency_keys_replay_and_refuse_reuse(b: Backend) {
    let app = spawn_app(b).await;
    let (c, _) = app.user("ann@example.com", "intl").await;
    let send = |name: &str, key: &str| {
        c.post(app.url("/api/v1/orgs")).header("Idempotency-Key", key).json(&json!({"name": name})).send()
    };
    let first = send("Acme", "k-1").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = send("Acme", "k-1").await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers().get("idempotency-replayed").unwrap(), "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM orgs WHERE kind = 'enterprise'").await, 1);

    assert_problem(send("Other", "k-1").await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused").await;
    assert_eq!(send("Other", "k-2").await.unwrap().status(), StatusCode::CREATED);
    assert_problem(send("Bad", "").await.unwrap(), StatusCode::BAD_REQUEST, "invalid_idempotency_key").await;

    // Keys belong to the caller: another account's identical key is its own.
    let (c2, _) = app.user("bob@example.com", "intl").await;
    let res =
        c2.post(app.url("/api/v1/orgs")).header("Idempotency-Key", "k-1").json(&json!({"name": "Acme"})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().get("idempotency-replayed").is_none());
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM orgs WHERE kind = 'enterprise'").await, 3);

    // A validation failure is saved too: the same request gets the same answer.
    let bad1 = send("", "k-3").await.unwrap();
    assert_eq!(bad1.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let bad2 = send("", "k-3").await.unwrap();
    assert_eq!(bad2.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad2.headers().get("idempotency-replayed").unwrap(), "true");

    // A process that died mid-request left its claim: the key is in flight for a minute, then
    // a retry of the same request takes it over, once.
    use souk_core::clock::Clock as _;
    use souk_store::idempotency::{Lookup, begin};
    let stale = souk_server::idempotency::IN_FLIGHT_STALE;
    let t0 = app.clock.now();
    let mut db = app.db.clone();
    assert!(matches!(begin(&mut db, t0, t0 - stale, "s", "died", "h").await.unwrap(), Lookup::New));
    let t1 = t0 + chrono::Duration::seconds(59);
    assert!(matches!(begin(&mut db, t1, t1 - stale, "s", "died", "h").await.unwrap(), Lookup::InFlight { .. }));
    let t2 = t0 + chrono::Duration::seconds(61);
    assert!(matches!(begin(&mut db, t2, t2 - stale, "s", "died", "other body").await.unwrap(), Lookup::InFlight { .. }));
    assert!(matches!(begin(&mut db, t2, t2 - stale, "s", "died", "h").await.unwrap(), Lookup::New), "taken over");
    assert!(matches!(begin(&mut db, t2, t2 - stale, "s", "died", "h").await.unwrap(), Lookup::InFlight { .. }), "once");
}

async fn audit_log_pages_with_a_cursor(b: Backend) {
    let app = spawn_app(b).await;
    let (op, _) = app.operator("op@example.com").await;
    for i in 0..4 {
        app.enterprise(&op, &format!("Org {i}")).await;
    }
    let total = app.count("SELECT COUNT(*) AS n FROM audit_log").await as usize;
    let mut seen = Vec::new();
    let mut url = "/api/v1/admin/audit?limit=2".to_owned();
    loop {
        let page: Value = app.get(&op, &url).await.json().await.unwrap();
        for e in page["items"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cur) => url = format!("/api/v1/admin/audit?limit=2&cursor={cur}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), total);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first, no repeats");
    assert_problem(app.get(&op, "/api/v1/admin/audit?limit=0").await, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_problem(app.get(&op, "/api/v1/admin/audit?limit=many").await, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_problem(app.get(&op, "/api/v1/admin/audit?cursor=bm9wZQ!").await, StatusCode::BAD_REQUEST, "invalid_cursor").await;
    // Only operators read it.
    let (user, _) = app.user("ann@example.com", "intl").await;
    assert_problem(app.get(&user, "/api/v1/admin/audit").await, StatusCode::FORBIDDEN, "forbidden").await;
}

async fn openapi_docs_health_and_metrics(b: Backend) {
    let app = spawn_app(b).await;
    let c = client();
    let doc: Value = app.get(&c, "/api/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for p in ["/api/v1/auth/signup", "/api/v1/orgs/{org_id}/members", "/api/v1/admin/verifications/{verification_id}/decision"] {
        assert!(doc["paths"].get(p).is_some(), "{p} missing");
    }
    assert!(doc["components"]["schemas"].get("Problem").is_some());
    let docs = app.get(&c, "/api/docs").await.text().await.unwrap();
    assert!(docs.contains("/assets/swagger-ui/swagger-ui-bundle.js"));
    let js = app.get(&c, "/assets/swagger-ui/swagger-ui-bundle.js").await;
    assert_eq!(js.status(), 200);
    assert!(js.bytes().await.unwrap().len() > 100_000, "the viewer is served from the binary");

    let health: Value = app.get(&c, "/healthz").await.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let res = app.get(&c, "/healthz").await;
    assert!(res.headers().get("x-request-id").is_some(), "every response carries a request id");
    let metrics = app.get(&c, "/metrics").await.text().await.unwrap();
    assert!(metrics.contains("souk_http_requests_total"), "{metrics}");
}

async fn unknown_routes_and_methods_are_problems(b: Backend) {
    let app = spawn_app(b).await;
    let c = client();
    assert_problem(app.get(&c, "/api/v1/nothing-here").await, StatusCode::NOT_FOUND, "not_found").await;
    let res = c.delete(app.url("/api/v1/auth/signup")).send().await.unwrap();
    assert_problem(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    assert_problem(app.get(&c, "/api/v1/me").await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let res = app.get(&c, "/no-such-page").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.text().await.unwrap().contains("<html"));
}
