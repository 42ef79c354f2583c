//! License-code products: a code per unit, from Souk or from the seller's pool, never given
//! twice even under 100 concurrent orders; the seller's software checks and activates them.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::catalog::{content, operator_with_agreement, publish, seller};
use crate::commerce::funded_buyer;
use crate::helpers::*;

both_backends!(
    pool_codes_are_never_given_twice_under_a_hundred_concurrent_orders,
    souk_generates_codes_sellers_check_and_activate_them,
    sellers_systems_issue_codes_when_asked,
    large_uploads_are_imported_in_chunks_exactly_once,
    subscriptions_are_listed_a_page_at_a_time_with_their_codes,
);

/// Every page of the buyer's subscription list, following `next_cursor` to the end.
async fn subscription_pages(app: &TestApp, buyer: &reqwest::Client, org: &str, query: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut url = format!("/api/v1/orgs/{org}/subscriptions?{query}");
    loop {
        let res = app.get(buyer, &url).await;
        assert_eq!(res.status(), StatusCode::OK);
        let page: Value = res.json().await.unwrap();
        pages.push(page["items"].as_array().unwrap().clone());
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("/api/v1/orgs/{org}/subscriptions?{query}&cursor={cursor}"),
            None => return pages,
        }
    }
}

async fn license_product(
    app: &TestApp,
    op: &reqwest::Client,
    source: &str,
    one_time: bool,
) -> (reqwest::Client, String, String, String) {
    let (c, org) = seller(app, op, &format!("{source}@example.com"), "cn").await;
    let mut body = content(&format!("Desktop Suite {source}"), "Licensed software", "devops", 1000, false);
    body["license_source"] = json!(source);
    if one_time {
        body["plans"][0]["billing"] = json!({"type": "one_time"});
    }
    let product = publish(app, &c, op, &org, "license", body).await;
    let page: Value = app.get(&client(), &format!("/api/v1/storefront/cn/products/{product}")).await.json().await.unwrap();
    let plan = page["plans"][0]["id"].as_str().unwrap().to_owned();
    (c, org, product, plan)
}

async fn pool_codes_are_never_given_twice_under_a_hundred_concurrent_orders(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (seller_c, seller_org, product, plan) = license_product(&app, &op, "pool", false).await;
    let pool = format!("/api/v1/orgs/{seller_org}/products/{product}/license-pool");
    let mut csv = String::from("code\n");
    for i in 0..100 {
        csv.push_str(&format!("POOL-{i:04}\n"));
    }
    csv.push_str("POOL-0007\nnot a code\n");
    // The file is checked at once; its codes go into the pool in the background.
    let imported = |csv: String| {
        let (c, app, pool) = (seller_c.clone(), &app, pool.clone());
        async move {
            let res = app.post(&c, &pool, json!({"csv": csv})).await;
            assert_eq!(res.status(), StatusCode::ACCEPTED);
            let started: Value = res.json().await.unwrap();
            let url = format!("{pool}/imports/{}", started["id"].as_str().unwrap());
            eventually("the import is done", || async {
                app.get(&c, &url).await.json::<Value>().await.unwrap()["status"] == "done"
            })
            .await;
            let report: Value = app.get(&c, &url).await.json().await.unwrap();
            (started, report)
        }
    };
    let (started, report) = imported(csv).await;
    assert_eq!(started["errors"][0]["line"], 103, "refused rows are reported at once");
    assert_eq!((started["total"].as_i64(), started["processed"].as_i64()), (Some(100), Some(0)));
    assert_eq!((report["added"].as_u64(), report["duplicates"].as_u64()), (Some(100), Some(1)), "{report}");
    assert_eq!(report["processed"], 100);
    let (_, again) = imported("POOL-0001\nPOOL-0002\n".into()).await;
    assert_eq!((again["added"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(2)));
    let stock: Value = app.get(&seller_c, &pool).await.json().await.unwrap();
    assert_eq!((stock["available"].as_i64(), stock["imports"].as_array().map(Vec::len)), (Some(100), Some(2)));

    let (buyer, org) = funded_buyer(&app, &op, 1_000_000).await;
    let orders = app.url(&format!("/api/v1/orgs/{org}/orders"));
    let mut tasks = Vec::new();
    for _ in 0..101 {
        let (c, url, body) = (buyer.clone(), orders.clone(), json!({"product_id": product, "plan_id": plan}));
        tasks.push(tokio::spawn(async move { c.post(url).json(&body).send().await.unwrap().status() }));
    }
    let (mut created, mut sold_out) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => sold_out += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((created, sold_out), (100, 1), "a hundred codes, a hundred orders");
    let pages = subscription_pages(&app, &buyer, &org, "limit=30").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [30, 30, 30, 10]);
    let mut codes: Vec<String> = pages
        .iter()
        .flatten()
        .map(|s| {
            let c = s["license_codes"].as_array().unwrap();
            assert_eq!(c.len(), 1, "one code per unit");
            c[0].as_str().unwrap().to_owned()
        })
        .collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), 100, "no code given twice");
    // The subscriptions page shows twenty at a time, with a link to older ones.
    let html = app.get(&buyer, "/subscriptions").await.text().await.unwrap();
    assert_eq!(html.matches("class=\"license-code\"").count(), 20, "one page");
    let newest: Vec<&str> = pages[0][..20].iter().map(|s| s["license_codes"][0].as_str().unwrap()).collect();
    assert!(newest.iter().all(|c| html.contains(*c)), "the newest twenty first");
    let older = html.split("href=\"?before=").nth(1).and_then(|r| r.split('"').next()).expect("a link to older ones");
    let html = app.get(&buyer, &format!("/subscriptions?before={older}")).await.text().await.unwrap();
    let next: Vec<&str> = pages[0][20..].iter().chain(&pages[1][..10]).map(|s| s["license_codes"][0].as_str().unwrap()).collect();
    assert!(next.iter().all(|c| html.contains(*c)), "then the next twenty");
    assert_eq!(html.matches("class=\"license-code\"").count(), 20);

    let wallet: Value = app.get(&buyer, &format!("/api/v1/orgs/{org}/wallet")).await.json().await.unwrap();
    assert_eq!(wallet["balances"][0]["amount_minor"], 1_000_000 - 100 * 7_000, "the refused order cost nothing");
    let stock: Value = app.get(&seller_c, &pool).await.json().await.unwrap();
    assert_eq!((stock["available"].as_i64(), stock["assigned"].as_i64()), (Some(0), Some(100)));
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'license.pool_low'").await, 1, "warned once");
    let page_url = format!("/orgs/{seller_org}/products/{product}/license-pool");
    let page = app.get(&seller_c, &page_url).await.text().await.unwrap();
    assert!(page.contains("id=\"pool-available\">0<"), "{page}");

    // The console takes a CSV file; the page follows the import until it is done.
    let token = csrf(&page);
    let form = reqwest::multipart::Form::new().text("_csrf", token).text("csv", "").part(
        "file",
        reqwest::multipart::Part::bytes(b"code\nFILE-1\nFILE-2\nFILE-2\nbad code\n".to_vec()).file_name("codes.csv"),
    );
    let res = seller_c.post(app.url(&page_url)).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "redirected to the import");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("?import=imp_"), "{location}");
    let report_url = app.url(&location);
    eventually("the page shows the import done", || async {
        let html = seller_c.get(&report_url).send().await.unwrap().text().await.unwrap();
        html.contains("data-status=\"done\"") && html.contains("id=\"pool-available\">2<")
    })
    .await;
    let html = seller_c.get(&report_url).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("id=\"pool-added\">2<") && html.contains("id=\"pool-errors\""), "{html}");
    assert!(!html.contains("http-equiv=\"refresh\""), "no refreshing once done");
}

async fn souk_generates_codes_sellers_check_and_activate_them(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (seller_c, seller_org, product, plan) = license_product(&app, &op, "souk", true).await;
    let (buyer, org) = funded_buyer(&app, &op, 100_000).await;
    let res = app
        .post(&buyer, &format!("/api/v1/orgs/{org}/orders"), json!({"product_id": product, "plan_id": plan, "quantity": 3}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let sub = res.json::<Value>().await.unwrap()["subscription_id"].as_str().unwrap().to_owned();
    let subs: Value = app.get(&buyer, &format!("/api/v1/orgs/{org}/subscriptions")).await.json().await.unwrap();
    let codes: Vec<String> =
        subs["items"][0]["license_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(codes.len(), 3, "three units, three codes");
    assert!(codes.iter().all(|c| c.len() == 29 && c.matches('-').count() == 4));
    let event = app
        .count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'instance.create' AND payload LIKE '%license_codes%'")
        .await;
    assert_eq!(event, 1, "the seller's system is told the codes");
    let page = app.get(&buyer, "/subscriptions").await.text().await.unwrap();
    assert!(codes.iter().all(|c| page.contains(c.as_str())), "the buyer sees the codes on the subscription page");

    // The seller's software checks and activates a code with its own organization's key.
    let key: Value = app
        .post(&seller_c, &format!("/api/v1/orgs/{seller_org}/api-keys"), json!({"name": "licensing", "role": "member"}))
        .await
        .json()
        .await
        .unwrap();
    let software = reqwest::Client::builder()
        .default_headers(
            [(reqwest::header::AUTHORIZATION, format!("Bearer {}", key["token"].as_str().unwrap()).parse().unwrap())]
                .into_iter()
                .collect(),
        )
        .build()
        .unwrap();
    let licenses = format!("/api/v1/orgs/{seller_org}/licenses");
    let checked: Value =
        app.post(&software, &format!("{licenses}/check"), json!({"license": codes[0]})).await.json().await.unwrap();
    assert_eq!(checked["status"], "alive");
    assert_eq!(checked["subscription_id"], sub.as_str());
    let activated: Value =
        app.post(&software, &format!("{licenses}/activate"), json!({"license": codes[0]})).await.json().await.unwrap();
    assert_eq!(activated["activations"], 1);
    assert!(activated["activated_at"].is_string());
    let res = app.post(&software, &format!("{licenses}/check"), json!({"license": "NOPE-NOPE"})).await;
    assert_problem(res, StatusCode::NOT_FOUND, "no_such_license").await;

    // The same codes through KooGallery's license 2.0 calls.
    let kg = |path: &str| app.url(&format!("/api/mkp-openapi-public/global/v1/license/{path}"));
    let beat: Value =
        software.post(kg("heartbeat")).json(&json!({"license": codes[2]})).send().await.unwrap().json().await.unwrap();
    assert_eq!((beat["resultCode"].as_str(), beat["status"].as_str()), (Some("92020000"), Some("ALIVE")), "{beat}");
    let none: Value = software.post(kg("activate")).json(&json!({"license": "NOPE"})).send().await.unwrap().json().await.unwrap();
    assert_eq!(none["resultCode"], "92020005");
    let anon: Value = reqwest::Client::new()
        .post(kg("heartbeat"))
        .json(&json!({"license": codes[2]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(anon["resultCode"], "MKT.0154");
    // The v2 batch heartbeat: each code's own result.
    let batch: Value = software
        .post(app.url("/api/mkp-openapi-public/global/v2/license/heartbeat"))
        .json(&json!({"licenses": [codes[0], "NOPE"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(batch["resultCode"], "92020000", "{batch}");
    assert_eq!(
        (batch["licenses"][0]["license"].as_str(), batch["licenses"][0]["status"].as_str()),
        (Some(codes[0].as_str()), Some("ALIVE"))
    );
    assert_eq!(batch["licenses"][1]["resultCode"], "92020005");

    // Another seller cannot look the code up.
    let (rival, rival_org) = seller(&app, &op, "rival@example.com", "cn").await;
    let res = app.post(&rival, &format!("/api/v1/orgs/{rival_org}/licenses/check"), json!({"license": codes[0]})).await;
    assert_problem(res, StatusCode::NOT_FOUND, "no_such_license").await;

    // Unsubscribed: the codes are released and can no longer be activated.
    app.post(&buyer, &format!("/api/v1/orgs/{org}/subscriptions/{sub}/unsubscribe"), json!({})).await;
    let checked: Value =
        app.post(&software, &format!("{licenses}/check"), json!({"license": codes[1]})).await.json().await.unwrap();
    assert_eq!(checked["status"], "released");
    let res = app.post(&software, &format!("{licenses}/activate"), json!({"license": codes[1]})).await;
    assert_problem(res, StatusCode::CONFLICT, "license_not_alive").await;
    let refused: Value =
        software.post(kg("activate")).json(&json!({"license": codes[1]})).send().await.unwrap().json().await.unwrap();
    assert_eq!((refused["resultCode"].as_str(), refused["status"].as_str()), (Some("92020001"), Some("RELEASED")));
}

async fn sellers_systems_issue_codes_when_asked(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (seller_c, seller_org, product, plan) = license_product(&app, &op, "seller", true).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/", listener.local_addr().unwrap());
    let settings: Value = app
        .put_json(&seller_c, &format!("/api/v1/orgs/{seller_org}/products/{product}/integration"), json!({"endpoint": endpoint}))
        .await
        .json()
        .await
        .unwrap();
    let secret = souk_isv::signature::Secret::parse(settings["secret"].as_str().unwrap()).unwrap();
    let reference = souk_isv::reference::Seller::new(vec![secret]);
    tokio::spawn(souk_isv::reference::serve(listener, reference.clone()));
    let (buyer, org) = funded_buyer(&app, &op, 100_000).await;
    let res = app
        .post(&buyer, &format!("/api/v1/orgs/{org}/orders"), json!({"product_id": product, "plan_id": plan, "quantity": 2}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let mut codes = Vec::new();
    for _ in 0..300 {
        let subs: Value = app.get(&buyer, &format!("/api/v1/orgs/{org}/subscriptions")).await.json().await.unwrap();
        codes = subs["items"][0]["license_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
        if codes.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(codes.len(), 2, "two units, two codes from the seller's system");
    assert!(codes.iter().all(|c| c.starts_with("REF-")));
    let kinds: Vec<String> = reference.received().into_iter().map(|(_, k, _)| k).collect();
    assert_eq!(kinds, vec!["instance.create", "license.issue"], "asked after the create, in order");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM license_codes WHERE source = 'seller'").await, 2);
}

async fn large_uploads_are_imported_in_chunks_exactly_once(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (seller_c, seller_org, product, _) = license_product(&app, &op, "pool", false).await;
    let pool = format!("/api/v1/orgs/{seller_org}/products/{product}/license-pool");
    let csv: String = (0..1234).map(|i| format!("BIG-{i:05}\n")).collect();
    let res = app.post(&seller_c, &pool, json!({"csv": csv})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    // Two more nodes' workers race the server's own for the same import.
    let racers: Vec<_> = (0..2)
        .map(|_| {
            let w = souk_server::licenses::import_worker(&app.state);
            tokio::spawn(async move {
                for _ in 0..20 {
                    w.tick().await.unwrap();
                }
            })
        })
        .collect();
    for r in racers {
        r.await.unwrap();
    }
    let url = format!("{pool}/imports/{id}");
    eventually("done", || async { app.get(&seller_c, &url).await.json::<Value>().await.unwrap()["status"] == "done" }).await;
    let report: Value = app.get(&seller_c, &url).await.json().await.unwrap();
    assert_eq!(
        (report["processed"].as_i64(), report["added"].as_i64(), report["duplicates"].as_i64()),
        (Some(1234), Some(1234), Some(0))
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM license_codes WHERE code LIKE 'BIG-%'").await, 1234);
    // Another organization cannot see the import.
    let (other, other_org) = seller(&app, &op, "other-pool@example.com", "cn").await;
    let res = app.get(&other, &format!("/api/v1/orgs/{other_org}/products/{product}/license-pool/imports/{id}")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

async fn subscriptions_are_listed_a_page_at_a_time_with_their_codes(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (_, _, product, plan) = license_product(&app, &op, "souk", true).await;
    let (buyer, org) = funded_buyer(&app, &op, 1_000_000).await;
    let mut bought = Vec::new();
    for quantity in 1..=5 {
        let order = json!({"product_id": product, "plan_id": plan, "quantity": quantity});
        let res = app.post(&buyer, &format!("/api/v1/orgs/{org}/orders"), order).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        bought.push((res.json::<Value>().await.unwrap()["subscription_id"].as_str().unwrap().to_owned(), quantity));
    }

    // Pages of two: newest first, each subscription once, with all its codes (a code is a
    // row of the join, so a page boundary must not cut a subscription's codes off).
    let pages = subscription_pages(&app, &buyer, &org, "limit=2").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    let listed: Vec<(String, usize)> = pages
        .iter()
        .flatten()
        .map(|s| (s["id"].as_str().unwrap().to_owned(), s["license_codes"].as_array().unwrap().len()))
        .collect();
    bought.reverse();
    assert_eq!(listed, bought, "newest first, one code per unit");

    // Filters, and what the list refuses.
    let list = |query: &str| {
        let (c, url) = (buyer.clone(), app.url(&format!("/api/v1/orgs/{org}/subscriptions?{query}")));
        async move { c.get(url).send().await.unwrap() }
    };
    let items = |v: Value| v["items"].as_array().unwrap().len();
    assert_eq!(items(list(&format!("product_id={product}")).await.json().await.unwrap()), 5);
    assert_eq!(items(list("product_id=prd_none").await.json().await.unwrap()), 0);
    let state = pages[0][0]["state"].as_str().unwrap().to_owned();
    assert_eq!(items(list(&format!("state={state}")).await.json().await.unwrap()), 5);
    assert_eq!(items(list("state=cancelled").await.json().await.unwrap()), 0);
    assert_problem(list("state=lost").await, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_problem(list("limit=0").await, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_problem(list("limit=101").await, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_problem(list("cursor=!!!").await, StatusCode::BAD_REQUEST, "invalid_cursor").await;
    assert_eq!(list("color=red").await.status(), StatusCode::BAD_REQUEST, "unknown filters are refused");
}
