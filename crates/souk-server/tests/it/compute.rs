//! The machine-image purchase wizard, deployed through the simulated compute provider
//! (servers take 20 s of clock time to build; names containing `fail` fail to build, names
//! containing `refuse` are refused at once). The outbox workers of the app do the work.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::catalog::{content, operator_with_agreement, publish, seller};
use crate::commerce::verified_buyer;
use crate::helpers::*;

both_backends!(an_image_order_deploys_servers_and_a_provider_failure_refunds_in_full);

const SECRET: &str = "Str0ng!pass";

async fn an_image_order_deploys_servers_and_a_provider_failure_refunds_in_full(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (seller_c, seller_org) = seller(&app, &op, "images@example.com", "intl").await;
    let mut image = content("WordPress on Ubuntu", "A ready blog server", "devops", 1000, false);
    image["image"] = json!({"image_ref": "img-wordpress-6", "flavors": ["s6.large.2", "c7.xlarge.4"], "regions": ["cn-north-4"], "min_disk_gb": 40});
    let product = publish(&app, &seller_c, &op, &seller_org, "image", image).await;
    let page: Value = app.get(&client(), &format!("/api/v1/storefront/cn/products/{product}")).await.json().await.unwrap();
    let plan = page["plans"][0]["id"].as_str().unwrap().to_owned();
    let (buyer, org) = verified_buyer(&app, &op, "buyer@example.com", "cn").await;
    app.post(
        &op,
        &format!("/api/v1/admin/wallets/{org}/top-ups"),
        json!({"currency": "CNY", "amount_minor": 100_000, "reason": "t"}),
    )
    .await;
    let balance = || async {
        app.get(&buyer, &format!("/api/v1/orgs/{org}/wallet")).await.json::<Value>().await.unwrap()["balances"][0]["amount_minor"]
            .as_i64()
            .unwrap()
    };
    let orders = format!("/api/v1/orgs/{org}/orders");
    let deployment = |name: &str| {
        json!({
            "region": "cn-north-4", "flavor": "s6.large.2", "vpc": "vpc-default", "subnet": "subnet-a",
            "security_group": "sg-web", "public_ip_mbps": 5, "server_name": name, "admin_password": SECRET,
            "accept_agreement": true,
        })
    };
    let servers = || async { app.get(&buyer, &format!("/api/v1/orgs/{org}/servers")).await.json::<Value>().await.unwrap() };

    // The wizard's answers are checked before anything is charged or written.
    let mut weak = deployment("blog");
    weak["admin_password"] = json!("password");
    weak["flavor"] = json!("m1.huge");
    weak["accept_agreement"] = json!(false);
    let res = app.post(&buyer, &orders, json!({"product_id": product, "plan_id": plan, "quantity": 2, "deployment": weak})).await;
    let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for f in ["deployment.admin_password", "deployment.flavor", "deployment.accept_agreement"] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
    let res = app.post(&buyer, &orders, json!({"product_id": product, "plan_id": plan})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM orders").await, 0);
    assert_eq!(balance().await, 100_000);

    // Two servers with public IPs, a month at ¥70 each.
    let res = app
        .post(&buyer, &orders, json!({"product_id": product, "plan_id": plan, "quantity": 2, "deployment": deployment("blog")}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
    let order: Value = res.json().await.unwrap();
    let sub = order["subscription_id"].as_str().unwrap().to_owned();
    assert_eq!(balance().await, 100_000 - 14_000);
    // The provider takes the servers; the sealed password is erased once it has.
    eventually("servers handed to the provider", || async {
        servers().await["items"].as_array().unwrap().iter().all(|s| s["state"] == "creating")
    })
    .await;
    let list = servers().await;
    let names: Vec<&str> = list["items"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"blog-1") && names.contains(&"blog-2"));
    assert_eq!(list["next_cursor"], Value::Null);
    // A page at a time, newest first: each server once.
    let first: Value = app.get(&buyer, &format!("/api/v1/orgs/{org}/servers?limit=1")).await.json().await.unwrap();
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second: Value =
        app.get(&buyer, &format!("/api/v1/orgs/{org}/servers?limit=1&cursor={cursor}")).await.json().await.unwrap();
    assert_eq!([&first["items"][0]["id"], &second["items"][0]["id"]], [&list["items"][0]["id"], &list["items"][1]["id"]]);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM servers WHERE sealed_password IS NOT NULL").await, 0);
    app.clock.advance(Duration::seconds(30));
    eventually("servers running", || async {
        servers().await["items"].as_array().unwrap().iter().all(|s| s["state"] == "running" && s["public_ip"].is_string())
    })
    .await;
    eventually("subscription active", || async {
        let subs: Value = app.get(&buyer, &format!("/api/v1/orgs/{org}/subscriptions")).await.json().await.unwrap();
        subs["items"][0]["state"] == "active"
    })
    .await;
    let orders_list: Value = app.get(&buyer, &orders).await.json().await.unwrap();
    assert_eq!(orders_list["items"][0]["state"], "completed");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'compute.deployed'").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'instance.create'").await,
        0,
        "images are not the seller's to provision"
    );

    // A server that fails to build: the whole order fails, what was built is deleted, and the
    // buyer gets every cent back.
    let before = balance().await;
    let res = app
        .post(
            &buyer,
            &orders,
            json!({"product_id": product, "plan_id": plan, "periods": 3, "deployment": deployment("will-fail")}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let failing: Value = res.json().await.unwrap();
    assert_eq!(balance().await, before - 21_000);
    // A name the provider refuses outright fails at once.
    let res =
        app.post(&buyer, &orders, json!({"product_id": product, "plan_id": plan, "deployment": deployment("refuse-me")})).await;
    let refused: Value = res.json().await.unwrap();
    eventually("the refused one failed", || async {
        let list: Value = app.get(&buyer, &orders).await.json().await.unwrap();
        list["items"].as_array().unwrap().iter().any(|o| o["id"] == refused["id"] && o["state"] == "fulfillment_failed")
    })
    .await;
    app.clock.advance(Duration::seconds(30));
    eventually("the failing one failed", || async {
        let list: Value = app.get(&buyer, &orders).await.json().await.unwrap();
        list["items"].as_array().unwrap().iter().any(|o| o["id"] == failing["id"] && o["state"] == "fulfillment_failed")
    })
    .await;
    assert_eq!(balance().await, before, "refunded in full");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM refunds WHERE kind = 'fulfillment_failed'").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'order.fulfillment_failed'").await, 2);
    let list = servers().await;
    let state_of = |name: &str| {
        list["items"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()["state"].as_str().unwrap().to_owned()
    };
    assert_eq!(state_of("will-fail"), "failed");
    assert_eq!(state_of("refuse-me"), "failed");
    let failure = list["items"].as_array().unwrap().iter().find(|s| s["name"] == "will-fail").unwrap()["failure"].clone();
    assert!(failure.as_str().unwrap().contains("no capacity"), "{failure}");

    // Unsubscribing the running one deletes its servers.
    let res = app.post(&buyer, &format!("/api/v1/orgs/{org}/subscriptions/{sub}/unsubscribe"), json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    eventually("servers released", || async {
        servers().await["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["subscription_id"] == sub.as_str())
            .all(|s| s["state"] == "released")
    })
    .await;

    // The password was never written anywhere in clear.
    let leaks = app
        .count(
            "SELECT (SELECT COUNT(*) FROM outbox_events WHERE payload LIKE '%Str0ng!pass%')
                  + (SELECT COUNT(*) FROM audit_log WHERE summary LIKE '%Str0ng!pass%')
                  + (SELECT COUNT(*) FROM orders WHERE plan_snapshot LIKE '%Str0ng!pass%')
                  + (SELECT COUNT(*) FROM servers WHERE spec LIKE '%Str0ng!pass%') AS n",
        )
        .await;
    assert_eq!(leaks, 0);
}
