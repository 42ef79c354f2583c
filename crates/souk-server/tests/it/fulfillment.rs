//! The fulfillment engine against the reference seller (`souk_isv::reference`), over real
//! HTTP: signed deliveries, provisioning from the answer, order per subscription, retries on
//! the delivery schedule, the delivery log, redelivery, and giving up with a full refund.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};
use souk_isv::reference::{Behaviour, Seller};
use souk_isv::signature::Secret;
use souk_store::Conn;

use crate::both_backends;
use crate::catalog::{content, operator_with_agreement, publish, seller};
use crate::commerce::verified_buyer;
use crate::helpers::*;

both_backends!(
    purchases_provision_through_the_reference_seller_in_order_despite_an_outage,
    a_seller_that_never_answers_fails_the_order_and_the_buyer_is_refunded,
    sellers_set_up_and_test_their_endpoint_from_the_console_and_buyers_see_access,
    enterprise_admins_authorize_members_and_the_seller_is_told_in_order,
    a_create_accepted_with_202_is_asked_again_until_provisioned,
    a_buyer_waits_for_its_subscription_to_change_instead_of_polling,
    a_seller_failing_half_its_requests_some_by_timeout_gets_every_event_once_in_order,
    two_nodes_under_load_deliver_each_event_once_and_run_each_scheduled_step_once
);

/// A verified buyer on the cn site with `amount_minor` CNY in its wallet, and the product's
/// first plan.
async fn funded_buyer(
    app: &TestApp,
    op: &reqwest::Client,
    product: &str,
    amount_minor: i64,
) -> (reqwest::Client, String, String) {
    let (buyer, org) = crate::commerce::funded_buyer(app, op, amount_minor).await;
    let page: Value = app.get(&client(), &format!("/api/v1/storefront/cn/products/{product}")).await.json().await.unwrap();
    (buyer, org, page["plans"][0]["id"].as_str().unwrap().to_owned())
}

/// A listed product whose deliveries go to a reference seller on this machine.
async fn integrated_product(app: &TestApp, op: &reqwest::Client, name: &str) -> (reqwest::Client, String, String, Seller) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (c, org, product, reference) = integrated_product_at(app, op, name, &listener).await;
    tokio::spawn(souk_isv::reference::serve(listener, reference.clone()));
    (c, org, product, reference)
}

/// A listed product whose deliveries go to `listener`, and a reference seller holding its
/// secret (for whatever serves the listener).
async fn integrated_product_at(
    app: &TestApp,
    op: &reqwest::Client,
    name: &str,
    listener: &tokio::net::TcpListener,
) -> (reqwest::Client, String, String, Seller) {
    let (c, org) = seller(app, op, &format!("{}@example.com", name.to_lowercase()), "cn").await;
    let product = publish(app, &c, op, &org, "saas", content(name, "Uptime", "devops", 1000, false)).await;
    let endpoint = format!("http://{}/", listener.local_addr().unwrap());
    let res =
        app.put_json(&c, &format!("/api/v1/orgs/{org}/products/{product}/integration"), json!({"endpoint": endpoint})).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    let settings: Value = res.json().await.unwrap();
    let secret = Secret::parse(settings["secret"].as_str().expect("the first answer shows the secret")).unwrap();
    let again: Value = app.get(&c, &format!("/api/v1/orgs/{org}/products/{product}/integration")).await.json().await.unwrap();
    assert_eq!(again["secret"], Value::Null, "a secret is shown once");
    (c, org, product, Seller::new(vec![secret]))
}

async fn purchases_provision_through_the_reference_seller_in_order_despite_an_outage(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (seller_c, seller_org, product, reference) = integrated_product(&app, &op, "Acme").await;
    let (buyer, org, plan) = funded_buyer(&app, &op, &product, 100_000).await;
    let subs = format!("/api/v1/orgs/{org}/subscriptions");
    let subscription = || async { app.get(&buyer, &subs).await.json::<Value>().await.unwrap()["items"][0].clone() };

    let sub = app.buy(&buyer, &org, &product, &plan).await;
    eventually("provisioned by the seller", || async { subscription().await["state"] == "active" }).await;
    let s = subscription().await;
    assert_eq!(s["instance_id"], "inst-0001");
    assert_eq!(s["access"]["username"], "admin");
    assert_eq!(s["access"]["password"], "pw-inst-0001", "decrypted for the buyer");
    let one: Value = app.get(&buyer, &format!("{subs}/{sub}")).await.json().await.unwrap();
    assert_eq!(one, s, "one subscription reads as it does in the list");
    let res = app.get(&buyer, &format!("{subs}/sub_0000000000000000000000000")).await;
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM subscriptions WHERE access LIKE '%pw-inst%'").await,
        0,
        "never stored in clear"
    );
    let orders: Value = app.get(&buyer, &format!("/api/v1/orgs/{org}/orders")).await.json().await.unwrap();
    assert_eq!(orders["items"][0]["state"], "completed");
    let log: Value = app.get(&seller_c, &format!("/api/v1/orgs/{seller_org}/deliveries")).await.json().await.unwrap();
    let create: Value = serde_json::from_str(log["items"][0]["request_body"].as_str().unwrap()).unwrap();
    assert_eq!(create["type"], "instance.create");
    assert_eq!(create["data"]["plan_id"], plan.as_str());
    assert_eq!(create["data"]["plan_code"], "standard-monthly", "the plan as it was bought");

    // The seller goes down. The renewal and the unsubscription wait, retried on the schedule,
    // and arrive after it comes back, in order.
    reference.set_behaviour(Behaviour { fail_all: true, ..Behaviour::default() });
    app.post(&buyer, &format!("{subs}/{sub}/renew"), json!({"periods": 1})).await;
    let failed = || async {
        let log: Value =
            app.get(&seller_c, &format!("/api/v1/orgs/{seller_org}/deliveries?ok=false")).await.json().await.unwrap();
        log["items"].as_array().unwrap().len()
    };
    // The attempt is recorded before the clock jumps a day (past its lease).
    let recorded = || async {
        app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic LIKE 'instance.%' AND locked_by IS NOT NULL").await == 0
    };
    eventually("a failed attempt", || async { failed().await >= 1 && recorded().await }).await;
    app.clock.advance(Duration::days(1));
    app.post(&buyer, &format!("{subs}/{sub}/unsubscribe"), json!({})).await;
    // The first retry (5 s after the failure) is long due after the jump: it is made without
    // moving the clock again. Waiting for it before reading the count keeps it from landing
    // between the read and the next jump, which would leave that jump nothing to retry.
    eventually("the first retry", || async { failed().await >= 2 && recorded().await }).await;
    let before = failed().await;
    app.clock.advance(Duration::seconds(300 + 60));
    eventually("the retry 5 minutes later", || async { failed().await > before }).await;
    let log: Value = app.get(&seller_c, &format!("/api/v1/orgs/{seller_org}/deliveries?ok=false")).await.json().await.unwrap();
    let latest = &log["items"][0];
    assert_eq!(latest["topic"], "instance.renew", "the release waits behind the renewal");
    assert_eq!(latest["status"], 503);
    assert_eq!(latest["event_status"], "pending");
    assert!(latest["next_retry_at"].is_string());
    assert!(latest["request_body"].as_str().unwrap().contains("\"sequence\":2"));
    assert!(reference.received().iter().all(|(_, kind, _)| kind == "instance.create"), "nothing out of order");

    let failing = "SELECT COUNT(*) AS n FROM integrations WHERE failing_since IS NOT NULL";
    assert_eq!(app.count(failing).await, 1, "the endpoint is marked failing");

    reference.set_behaviour(Behaviour::default());
    app.clock.advance(Duration::seconds(1800 + 360));
    eventually("everything delivered", || async { reference.received().len() == 3 }).await;
    eventually("a success clears the mark", || async { app.count(failing).await == 0 }).await;
    let got: Vec<(String, u64)> = reference.received().into_iter().map(|(_, kind, seq)| (kind, seq)).collect();
    assert_eq!(got, vec![("instance.create".into(), 1), ("instance.renew".into(), 2), ("instance.release".into(), 3)]);
    assert_eq!(reference.instances()[0].state, "released");

    // Redelivering the create gets the same instance: sellers answer idempotently.
    let log: Value = app.get(&seller_c, &format!("/api/v1/orgs/{seller_org}/deliveries?ok=true")).await.json().await.unwrap();
    let create = log["items"].as_array().unwrap().iter().find(|d| d["topic"] == "instance.create").unwrap()["event_id"].clone();
    let res = app
        .post(&seller_c, &format!("/api/v1/orgs/{seller_org}/deliveries/{}/redeliver", create.as_str().unwrap()), json!({}))
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    eventually("redelivered", || async {
        let log: Value = app
            .get(&seller_c, &format!("/api/v1/orgs/{seller_org}/deliveries?event_id={}", create.as_str().unwrap()))
            .await
            .json()
            .await
            .unwrap();
        log["items"].as_array().unwrap().len() == 2 && log["items"][0]["event_status"] == "done"
    })
    .await;
    assert_eq!(reference.instances().len(), 1);
    // The attempts go on numbering after the first delivery's (the redelivery restarts the
    // retry count, not the history).
    let attempts: Vec<(i64, String)> = app
        .db
        .clone()
        .fetch_all(
            souk_store::q("SELECT attempt, outcome FROM outbox_attempts WHERE event_id = $1 ORDER BY attempt")
                .bind(create.as_str().unwrap()),
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<i64>("attempt").unwrap(), r.get::<String>("outcome").unwrap()))
        .collect();
    assert_eq!(attempts, vec![(1, "ok".to_owned()), (2, "ok".to_owned())]);

    // Another seller cannot see this one's log or redeliver its events.
    let (other, other_org, _, _) = integrated_product(&app, &op, "Rival").await;
    let theirs: Value = app.get(&other, &format!("/api/v1/orgs/{other_org}/deliveries")).await.json().await.unwrap();
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0);
    let res =
        app.post(&other, &format!("/api/v1/orgs/{other_org}/deliveries/{}/redeliver", create.as_str().unwrap()), json!({})).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

async fn a_seller_that_never_answers_fails_the_order_and_the_buyer_is_refunded(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (_seller_c, _seller_org, product, reference) = integrated_product(&app, &op, "Flaky").await;
    reference.set_behaviour(Behaviour { fail_all: true, ..Behaviour::default() });
    let (buyer, org, plan) = funded_buyer(&app, &op, &product, 10_000).await;
    let res = app.post(&buyer, &format!("/api/v1/orgs/{org}/orders"), json!({"product_id": product, "plan_id": plan})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let attempts = || app.count("SELECT COUNT(*) AS n FROM deliveries");
    eventually("the first attempt", || async { attempts().await >= 1 }).await;
    // Through the whole schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
    // Each attempt's outcome is recorded before the clock moves on (the retry is timed from it).
    let recorded = || async {
        app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'instance.create' AND locked_by IS NOT NULL").await == 0
    };
    for step in souk_core::outbox::SELLER_SCHEDULE {
        eventually("the attempt recorded", recorded).await;
        let before = attempts().await;
        app.clock.advance(Duration::seconds(step + step / 5 + 1));
        eventually("the next attempt", || async { attempts().await > before }).await;
    }
    eventually("the order failed", || async {
        app.count("SELECT COUNT(*) AS n FROM orders WHERE state = 'fulfillment_failed'").await == 1
    })
    .await;
    assert_eq!(attempts().await, 8);
    app.post(&buyer, "/api/v1/auth/signin", json!({"email": "buyer@example.com", "password": PASSWORD})).await;
    let wallet: Value = app.get(&buyer, &format!("/api/v1/orgs/{org}/wallet")).await.json().await.unwrap();
    assert_eq!(wallet["balances"][0]["amount_minor"], 10_000, "refunded in full");
    let subs: Value = app.get(&buyer, &format!("/api/v1/orgs/{org}/subscriptions")).await.json().await.unwrap();
    assert_eq!(subs["items"][0]["state"], "cancelled");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'order.fulfillment_failed'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'instance.create' AND status = 'dead'").await, 1);

    // Failing for more than 6 hours: operators are told, once per failing spell.
    assert_eq!(souk_server::fulfillment::flag_failing_endpoints(&app.state).await.unwrap(), 1);
    assert_eq!(souk_server::fulfillment::flag_failing_endpoints(&app.state).await.unwrap(), 0);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'integration.failing'").await, 1);
    app.post(&op, "/api/v1/auth/signin", json!({"email": "op@souk.test", "password": PASSWORD})).await;
    let failing: Value = app.get(&op, "/api/v1/admin/integrations/failing").await.json().await.unwrap();
    assert_eq!(failing["items"][0]["product_id"], product.as_str(), "{failing}");
    assert_eq!(app.get(&buyer, "/api/v1/admin/integrations/failing").await.status(), StatusCode::FORBIDDEN);
    let page = app.get(&op, "/admin/integrations").await.text().await.unwrap();
    assert!(page.contains(product.as_str()), "{page}");

    // Private addresses are refused unless the operator allows them.
    let url = url::Url::parse("http://10.1.2.3/hook").unwrap();
    let refused = souk_server::fulfillment::check_destination(&url, &[]).await.unwrap_err();
    assert!(refused.contains("private"), "{refused}");
    for blocked in ["http://127.0.0.1:9/", "http://localhost:9/", "http://[::1]:9/", "http://169.254.169.254/latest"] {
        assert!(souk_server::fulfillment::check_destination(&url::Url::parse(blocked).unwrap(), &[]).await.is_err(), "{blocked}");
    }
    assert!(souk_server::fulfillment::check_destination(&url, &["10.1.2.3".into()]).await.is_ok());
}

async fn sellers_set_up_and_test_their_endpoint_from_the_console_and_buyers_see_access(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (seller_c, org) = seller(&app, &op, "console@example.com", "cn").await;
    let product = publish(&app, &seller_c, &op, &org, "saas", content("Console", "Uptime", "devops", 1000, false)).await;
    seller_c.get(app.url("/lang/en")).send().await.unwrap();
    let page_url = format!("/orgs/{org}/products/{product}/integration");
    let html = app.get(&seller_c, &page_url).await.text().await.unwrap();
    let token = csrf(&html);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/", listener.local_addr().unwrap());
    let html = seller_c
        .post(app.url(&page_url))
        .form(&[("_csrf", token.as_str()), ("action", "save"), ("endpoint", endpoint.as_str())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = html.find("id=\"signing-secret\">").expect("the secret, shown once") + 20;
    let secret = Secret::parse(html[at..].split('<').next().unwrap()).unwrap();
    let reference = Seller::new(vec![secret]);
    tokio::spawn(souk_isv::reference::serve(listener, reference.clone()));
    let html = seller_c
        .post(app.url(&page_url))
        .form(&[("_csrf", token.as_str()), ("action", "test")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(html.matches(">pass<").count(), 10, "{html}");
    assert!(!html.contains("FAIL"));
    assert!(!app.get(&seller_c, &page_url).await.text().await.unwrap().contains("signing-secret"), "shown once");

    let (buyer, borg) = verified_buyer(&app, &op, "buyer@example.com", "cn").await;
    buyer.get(app.url("/lang/en")).send().await.unwrap();
    app.post(
        &op,
        &format!("/api/v1/admin/wallets/{borg}/top-ups"),
        json!({"currency": "CNY", "amount_minor": 10_000, "reason": "t"}),
    )
    .await;
    let page: Value = app.get(&client(), &format!("/api/v1/storefront/cn/products/{product}")).await.json().await.unwrap();
    let plan = page["plans"][0]["id"].as_str().unwrap().to_owned();
    app.post(&buyer, &format!("/api/v1/orgs/{borg}/orders"), json!({"product_id": product, "plan_id": plan})).await;
    eventually("provisioned", || async {
        app.get(&buyer, "/subscriptions").await.text().await.unwrap().contains("access-password")
    })
    .await;
    let html = app.get(&buyer, "/subscriptions").await.text().await.unwrap();
    // inst-0001 is the conformance check's synthetic subscription.
    assert!(html.contains("pw-inst-0002") && html.contains("https://inst-0002.seller.example/"), "{html}");
    let log = app.get(&seller_c, &format!("/orgs/{org}/deliveries")).await.text().await.unwrap();
    assert!(log.contains("instance.create") && log.contains(">200<"), "{log}");
}

async fn enterprise_admins_authorize_members_and_the_seller_is_told_in_order(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (_seller_c, _seller_org, product, reference) = integrated_product(&app, &op, "Teamware").await;
    // A verified enterprise buys it; it has a second member.
    let (corp, corp_org) = seller(&app, &op, "corp@example.com", "cn").await;
    let (_member, me) = app.user("member@example.com", "cn").await;
    let member_id = me["account"]["id"].as_str().unwrap().to_owned();
    let res = app
        .post(&corp, &format!("/api/v1/orgs/{corp_org}/members"), json!({"email": "member@example.com", "role": "member"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    app.post(
        &op,
        &format!("/api/v1/admin/wallets/{corp_org}/top-ups"),
        json!({"currency": "CNY", "amount_minor": 10_000, "reason": "t"}),
    )
    .await;
    let page: Value = app.get(&client(), &format!("/api/v1/storefront/cn/products/{product}")).await.json().await.unwrap();
    let plan = page["plans"][0]["id"].as_str().unwrap().to_owned();
    let sub = app.buy(&corp, &corp_org, &product, &plan).await;
    let users = format!("/api/v1/orgs/{corp_org}/subscriptions/{sub}/users");

    // Granted straight away, even before provisioning: the sync waits behind the create.
    let res = app.put_json(&corp, &format!("{users}/{member_id}"), json!({"role": "user"})).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    eventually("the seller knows the member", || async {
        reference.instances().first().is_some_and(|i| i.users.get(&member_id).map(String::as_str) == Some("user"))
    })
    .await;
    let kinds: Vec<String> = reference.received().into_iter().map(|(_, k, _)| k).collect();
    assert_eq!(kinds, vec!["instance.create", "authorization.sync"]);
    app.put_json(&corp, &format!("{users}/{member_id}"), json!({"role": "admin"})).await;
    eventually("promoted", || async { reference.instances()[0].users.get(&member_id).map(String::as_str) == Some("admin") })
        .await;
    eventually("delivery state shown", || async {
        let list: Value = app.get(&corp, &users).await.json().await.unwrap();
        list["items"][0]["sync_status"] == "done" && list["items"][0]["role"] == "admin"
    })
    .await;
    let res = app.delete(&corp, &format!("{users}/{member_id}")).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    eventually("revoked at the seller", || async { reference.instances()[0].users.is_empty() }).await;
    let list: Value = app.get(&corp, &users).await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 0);

    // Only members, only enterprises, only the buyer.
    let (_, stranger) = app.user("stranger@example.com", "cn").await;
    let res =
        app.put_json(&corp, &format!("{users}/{}", stranger["account"]["id"].as_str().unwrap()), json!({"role": "user"})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = app.put_json(&corp, &format!("{users}/{member_id}"), json!({"role": "owner"})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let (buyer, borg) = verified_buyer(&app, &op, "person@example.com", "cn").await;
    app.post(
        &op,
        &format!("/api/v1/admin/wallets/{borg}/top-ups"),
        json!({"currency": "CNY", "amount_minor": 10_000, "reason": "t"}),
    )
    .await;
    let mine = app.buy(&buyer, &borg, &product, &plan).await;
    let res = app.get(&buyer, &format!("/api/v1/orgs/{borg}/subscriptions/{mine}/users")).await;
    assert_problem(res, StatusCode::CONFLICT, "not_enterprise").await;
    let res = app.get(&buyer, &format!("/api/v1/orgs/{borg}/subscriptions/{sub}/users")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "another organization's subscription");
}

async fn a_create_accepted_with_202_is_asked_again_until_provisioned(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (_seller_c, _seller_org, product, reference) = integrated_product(&app, &op, "Slowprov").await;
    reference.set_behaviour(Behaviour { in_progress_next: 2, ..Behaviour::default() });
    let (buyer, org, plan) = funded_buyer(&app, &op, &product, 10_000).await;
    app.post(&buyer, &format!("/api/v1/orgs/{org}/orders"), json!({"product_id": product, "plan_id": plan})).await;
    let order_state = || async {
        let o: Value = app.get(&buyer, &format!("/api/v1/orgs/{org}/orders")).await.json().await.unwrap();
        o["items"][0]["state"].as_str().unwrap().to_owned()
    };
    eventually("accepted, still provisioning", || async { order_state().await == "fulfilling" }).await;
    let deliveries = || app.count("SELECT COUNT(*) AS n FROM deliveries");
    // Asked again after the poll interval (and the schedule's delay), until the seller answers 200.
    for step in [65, 340] {
        let before = deliveries().await;
        app.clock.advance(Duration::seconds(step));
        eventually("asked again", || async { deliveries().await > before }).await;
    }
    eventually("provisioned", || async { order_state().await == "completed" }).await;
    assert_eq!(reference.instances().len(), 1, "one instance for all the asking");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM deliveries WHERE status = 202").await, 2);
}

async fn a_buyer_waits_for_its_subscription_to_change_instead_of_polling(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (_seller_c, _seller_org, product, reference) = integrated_product(&app, &op, "Waitprov").await;
    reference.set_behaviour(Behaviour { in_progress_next: 1, ..Behaviour::default() });
    let (buyer, org, plan) = funded_buyer(&app, &op, &product, 10_000).await;
    let sub = app.buy(&buyer, &org, &product, &plan).await;
    let path = format!("/api/v1/orgs/{org}/subscriptions/{sub}");
    // The 202 recorded and the event put off for the next ask, before the clock moves below.
    eventually("accepted, still provisioning", || async {
        app.count("SELECT COUNT(*) AS n FROM deliveries WHERE status = 202").await == 1
            && app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic LIKE 'instance.%' AND locked_by IS NOT NULL").await
                == 0
    })
    .await;
    let res = app.get(&buyer, &path).await;
    assert_eq!(res.status(), StatusCode::OK);
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["instance_id"], Value::Null);
    let conditional = |etag: &str, wait: Option<u64>| {
        let mut r = buyer.get(app.url(&path)).header("if-none-match", etag);
        if let Some(w) = wait {
            r = r.header("prefer", format!("wait={w}"));
        }
        r.send()
    };

    // A conditional read of what the buyer has: 304 at once, and 304 after a wait that saw no change.
    let res = conditional(&etag, None).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(res.headers()["etag"].to_str().unwrap(), etag);
    let t = std::time::Instant::now();
    let res = conditional(&etag, Some(1)).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(res.headers()["preference-applied"], "wait=1");
    assert!(t.elapsed() >= std::time::Duration::from_millis(900), "it waited");
    // Another tag: the subscription at once.
    let res = conditional("\"other\"", Some(30)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), first);

    // Waiting, the buyer gets the subscription as soon as the seller provisions it (the clock
    // moves so that the seller is asked again).
    let waiting = tokio::spawn(conditional(&etag, Some(30)));
    app.clock.advance(Duration::seconds(65));
    let res = waiting.await.unwrap().unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let provisioned_tag = res.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(provisioned_tag, etag);
    let now: Value = res.json().await.unwrap();
    assert_eq!(now["state"], "active");
    assert!(now["instance_id"].is_string());

    // A change this server commits wakes a watcher of the subscription; a change committed
    // elsewhere (another node's pool, here) is seen by a waiting read when it looks again.
    let watch = app.db.watch(&sub);
    let res = app.post(&buyer, &format!("{path}/auto-renew"), json!({"enabled": false})).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    tokio::time::timeout(std::time::Duration::from_secs(10), watch.changed()).await.expect("woken by the commit");
    let tag: String = conditional(&provisioned_tag, None).await.unwrap().headers()["etag"].to_str().unwrap().to_owned();
    let waiting = tokio::spawn(conditional(&tag, Some(30)));
    let other_node = app.testdb.connect().await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    souk_store::Conn::execute(
        &mut other_node.clone(),
        souk_store::q("UPDATE subscriptions SET auto_renew = $1 WHERE id = $2").bind(true).bind(sub.as_str()),
    )
    .await
    .unwrap();
    let res = waiting.await.unwrap().unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["auto_renew"], true);
    other_node.close().await;
}

/// In front of the reference seller: of every four requests, the second is answered 503 and
/// the fourth is handled but answered only after the delivery timeout (so Souk retries what
/// the seller already did). Records each subscription's sequence numbers in the order the
/// seller first accepted them.
#[derive(Clone)]
struct HalfFailing {
    seller: Seller,
    requests: std::sync::Arc<std::sync::atomic::AtomicU64>,
    accepted: std::sync::Arc<std::sync::Mutex<Accepted>>,
}

/// The event ids accepted, and each (subscription, sequence) in the order first accepted.
type Accepted = (std::collections::HashSet<String>, Vec<(String, u64)>);

async fn half_failing(
    axum::extract::State(h): axum::extract::State<HalfFailing>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, String) {
    let k = h.requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if k % 4 == 1 {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "{}".into());
    }
    let (status, answer) = h.seller.handle(&headers, &body, chrono::Utc::now().timestamp());
    if status.is_success() {
        let v: Value = serde_json::from_slice(&body).unwrap();
        let mut a = h.accepted.lock().unwrap();
        if a.0.insert(v["id"].as_str().unwrap().to_owned()) {
            a.1.push((v["data"]["subscription_id"].as_str().unwrap().to_owned(), v["sequence"].as_u64().unwrap()));
        }
    }
    if k % 4 == 3 {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    }
    (axum::http::StatusCode::from_u16(status.as_u16()).unwrap(), answer.to_string())
}

async fn a_seller_failing_half_its_requests_some_by_timeout_gets_every_event_once_in_order(b: Backend) {
    let app = spawn_app_with(b, |c| c.seller_timeout = std::time::Duration::from_millis(300)).await;
    let op = operator_with_agreement(&app).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_seller_c, _seller_org, product, reference) = integrated_product_at(&app, &op, "Halfway", &listener).await;
    let proxy = HalfFailing { seller: reference.clone(), requests: Default::default(), accepted: Default::default() };
    let router = axum::Router::new().route("/", axum::routing::post(half_failing)).with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let (buyer, org, plan) = funded_buyer(&app, &op, &product, 100_000).await;
    let subs_path = format!("/api/v1/orgs/{org}/subscriptions");

    // Until every seller delivery is done: wait for what is in flight to be recorded, then
    // move the clock past the next retry (5 s, 5 min, 30 min, … with 10% jitter).
    let settle = || async {
        for _ in 0..40 {
            eventually("in-flight deliveries recorded", || async {
                app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic LIKE 'instance.%' AND locked_by IS NOT NULL").await
                    == 0
            })
            .await;
            if app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic LIKE 'instance.%' AND status <> 'done'").await == 0
            {
                return;
            }
            app.clock.advance(Duration::seconds(7200));
            // Longer than the worker's poll (500 ms): it finds what came due before the next jump.
            tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        }
        panic!("seller deliveries still not done");
    };
    let mut subs = Vec::new();
    for _ in 0..4 {
        subs.push(app.buy(&buyer, &org, &product, &plan).await);
    }
    settle().await;
    app.post(&buyer, "/api/v1/auth/signin", json!({"email": "buyer@example.com", "password": PASSWORD})).await;
    for sub in &subs {
        let res = app.post(&buyer, &format!("{subs_path}/{sub}/renew"), json!({"periods": 1})).await;
        assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    }
    for sub in &subs {
        let res = app.post(&buyer, &format!("{subs_path}/{sub}/unsubscribe"), json!({})).await;
        assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    }
    settle().await;

    assert!(proxy.requests.load(std::sync::atomic::Ordering::SeqCst) >= 16, "failures were retried");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic LIKE 'instance.%' AND status = 'dead'").await, 0);
    let timeouts = app.count("SELECT COUNT(*) AS n FROM deliveries WHERE error LIKE 'no answer within%'").await;
    let refused = app.count("SELECT COUNT(*) AS n FROM deliveries WHERE status = 503").await;
    assert!(timeouts >= 1 && refused >= 1, "{timeouts} timeouts, {refused} 503s");
    let accepted = proxy.accepted.lock().unwrap().1.clone();
    assert_eq!(accepted.len(), 12, "each event accepted once: {accepted:?}");
    for sub in &subs {
        let seq: Vec<u64> = accepted.iter().filter(|(s, _)| s == sub).map(|(_, n)| *n).collect();
        assert_eq!(seq, vec![1, 2, 3], "{sub} in order");
    }
    let instances = reference.instances();
    assert_eq!(instances.len(), 4, "one instance per subscription, whatever was retried");
    assert!(instances.iter().all(|i| i.state == "released" && i.last_sequence == 3), "{instances:?}");
}

async fn two_nodes_under_load_deliver_each_event_once_and_run_each_scheduled_step_once(b: Backend) {
    let app = spawn_app(b).await;
    let node2 = spawn_node(app.testdb.clone(), app.clock.clone()).await;
    let op = operator_with_agreement(&app).await;
    let (_seller_c, _seller_org, product, reference) = integrated_product(&app, &op, "Twin").await;
    let (buyer, org, plan) = funded_buyer(&app, &op, &product, 1_000_000).await;

    // 24 purchases at once, half through each node: both nodes' delivery workers compete.
    const N: i64 = 24;
    let orders = (0..N).map(|i| {
        let url = if i % 2 == 0 {
            app.url(&format!("/api/v1/orgs/{org}/orders"))
        } else {
            node2.url(&format!("/api/v1/orgs/{org}/orders"))
        };
        let (c, body) = (buyer.clone(), json!({"product_id": product, "plan_id": plan}));
        async move { c.post(url).json(&body).send().await.unwrap().status() }
    });
    let statuses = futures_util::future::join_all(orders).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED), "{statuses:?}");
    let pending = || app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic LIKE 'instance.%' AND status <> 'done'");
    eventually("every purchase provisioned", || async { pending().await == 0 && reference.instances().len() == N as usize })
        .await;

    // A month later, both nodes run the scheduler at the same moment: each subscription
    // expires once, and its suspension is sent once.
    app.clock.advance(Duration::days(31));
    let (one, two) = tokio::join!(souk_server::subscriptions::tick(&app.state), souk_server::subscriptions::tick(&node2.state));
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!(one.0 + two.0, N as usize, "expired once each: {one:?} {two:?}");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'instance.suspend'").await, N);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'subscription.expired'").await, N);
    eventually("every suspension delivered", || async { pending().await == 0 }).await;
    assert!(reference.instances().iter().all(|i| i.state == "suspended"));

    // Nothing was sent twice: one attempt per event, all of them answered.
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM deliveries").await, 2 * N);
    assert_eq!(app.count("SELECT COUNT(*) - COUNT(DISTINCT event_id) AS n FROM deliveries").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_attempts WHERE event_id IN (SELECT id FROM outbox_events WHERE topic LIKE 'instance.%')").await, 2 * N);
}
