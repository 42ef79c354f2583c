//! Quotes and coupons: what a buyer is shown before ordering, to the cent.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::catalog::{content, operator_with_agreement, publish, seller};
use crate::helpers::*;

both_backends!(
    quotes_show_list_price_coupon_total_and_tax,
    a_wallet_that_covers_ten_buys_exactly_ten,
    a_subscription_lives_renews_upgrades_refunds_expires_and_is_released,
    fifty_concurrent_trial_requests_make_one_trial,
    downgrades_wait_for_renewal_trials_convert_or_expire_and_terms_are_per_product,
    sellers_test_their_own_products_with_coupons_within_a_yearly_quota,
    monthly_bills_add_up_on_the_sites_clock_and_export_as_csv,
    reminders_and_auto_renewal_happen_once_per_term
);

async fn quotes_show_list_price_coupon_total_and_tax(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (c, org) = seller(&app, &op, "acme@example.com", "intl").await;
    let product = publish(&app, &c, &op, &org, "saas", content("Acme Monitor", "Uptime monitoring", "devops", 1500, true)).await;
    let page: Value = app.get(&client(), &format!("/api/v1/storefront/cn/products/{product}")).await.json().await.unwrap();
    let plan = page["plans"][0]["id"].as_str().unwrap().to_owned();
    let (buyer, me) = app.user("buyer@example.com", "cn").await;
    let buyer_org = me["account"]["personal_org_id"].as_str().unwrap().to_owned();
    let quotes = format!("/api/v1/orgs/{buyer_org}/quotes");

    // ¥105.00 a month × 12, 6% VAT included.
    let q: Value =
        app.post(&buyer, &quotes, json!({"product_id": product, "plan_id": plan, "periods": 12})).await.json().await.unwrap();
    assert_eq!(q["currency"], "CNY");
    assert_eq!(q["list_minor"], 126_000);
    assert_eq!(q["coupon_discount_minor"], 0);
    assert_eq!(q["total_minor"], 126_000);
    assert_eq!(q["tax_included_minor"], 7_132, "126000 × 6 / 106 = 7132.08");
    assert_eq!(q["total_display"], "¥1260.00");

    let later = (app.clock.now_utc() + Duration::days(10)).to_rfc3339();
    let res = app
        .post(
            &op,
            "/api/v1/admin/coupons",
            json!({"code": "spring15", "percent_bp": 1500, "scope": "seller", "scope_id": org, "valid_until": later}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .post(&op, "/api/v1/admin/coupons", json!({"code": "SPRING15", "percent_bp": 100, "scope": "any", "valid_until": later}))
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    app.post(
        &op,
        "/api/v1/admin/coupons",
        json!({"code": "TENOFF", "amount_minor": 1000, "currency": "USD", "scope": "any", "valid_until": later}),
    )
    .await;
    app.post(&op, "/api/v1/admin/coupons", json!({"code": "OTHERSELLER", "percent_bp": 5000, "scope": "seller", "scope_id": "org_01jd0000000000000000000000", "valid_until": later})).await;
    assert_problem(
        app.post(
            &buyer,
            "/api/v1/admin/coupons",
            json!({"code": "MINE", "percent_bp": 10000, "scope": "any", "valid_until": later}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    let q: Value = app
        .post(&buyer, &quotes, json!({"product_id": product, "plan_id": plan, "periods": 12, "coupon_code": "Spring15"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(q["coupon_discount_minor"], 18_900);
    assert_eq!(q["total_minor"], 107_100);
    assert_eq!(q["tax_included_minor"], 6_062, "107100 × 6 / 106 = 6062.26");
    assert_eq!(q["coupon_code"], "SPRING15");

    for (coupon, why) in [("NOPE", "no such coupon"), ("TENOFF", "another currency"), ("OTHERSELLER", "does not apply")] {
        let res = app.post(&buyer, &quotes, json!({"product_id": product, "plan_id": plan, "coupon_code": coupon})).await;
        let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(body["errors"][0]["field"], "coupon_code");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(why), "{body}");
    }
    app.clock.advance(Duration::days(11));
    let res = app.post(&buyer, &quotes, json!({"product_id": product, "plan_id": plan, "coupon_code": "SPRING15"})).await;
    let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("expired"));

    for bad in [
        json!({"product_id": product, "plan_id": plan, "periods": 0}),
        json!({"product_id": product, "plan_id": plan, "periods": 37}),
        json!({"product_id": product, "plan_id": plan, "quantity": 3}),
        json!({"product_id": product, "plan_id": "pln_01jd0000000000000000000000"}),
        json!({"product_id": "prd_01jd0000000000000000000000", "plan_id": plan}),
    ] {
        assert_problem(app.post(&buyer, &quotes, bad).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
}

/// A verified buyer (`buyer@example.com`) on the cn site with `amount_minor` CNY in its wallet.
pub(crate) async fn funded_buyer(app: &TestApp, op: &reqwest::Client, amount_minor: i64) -> (reqwest::Client, String) {
    let (buyer, org) = verified_buyer(app, op, "buyer@example.com", "cn").await;
    app.post(
        op,
        &format!("/api/v1/admin/wallets/{org}/top-ups"),
        json!({"currency": "CNY", "amount_minor": amount_minor, "reason": "t"}),
    )
    .await;
    (buyer, org)
}

/// A signed-in person whose real-name verification an operator approved.
pub(crate) async fn verified_buyer(app: &TestApp, op: &reqwest::Client, email: &str, site: &str) -> (reqwest::Client, String) {
    let (c, me) = app.user(email, site).await;
    let org = me["account"]["personal_org_id"].as_str().unwrap().to_owned();
    let v: Value = app
        .post(&c, &format!("/api/v1/orgs/{org}/verifications"), json!({"real_name": "Bea Buyer", "id_number": "ID-7654321"}))
        .await
        .json()
        .await
        .unwrap();
    let res = app
        .post(op, &format!("/api/v1/admin/verifications/{}/decision", v["id"].as_str().unwrap()), json!({"approve": true}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    (c, org)
}

async fn a_wallet_that_covers_ten_buys_exactly_ten(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (c, org) = seller(&app, &op, "acme@example.com", "intl").await;
    let product = publish(&app, &c, &op, &org, "saas", content("Acme Monitor", "Uptime monitoring", "devops", 1500, false)).await;
    let page: Value = app.get(&client(), &format!("/api/v1/storefront/cn/products/{product}")).await.json().await.unwrap();
    let plan = page["plans"][0]["id"].as_str().unwrap().to_owned();

    // Unverified buyers cannot buy.
    let (unverified, me) = app.user("new@example.com", "cn").await;
    let unverified_org = me["account"]["personal_org_id"].as_str().unwrap().to_owned();
    let res = app
        .post(&unverified, &format!("/api/v1/orgs/{unverified_org}/orders"), json!({"product_id": product, "plan_id": plan}))
        .await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;

    let (buyer, buyer_org) = verified_buyer(&app, &op, "buyer@example.com", "cn").await;
    let orders = format!("/api/v1/orgs/{buyer_org}/orders");
    let with_key = |key: &'static str, body: Value| {
        let (c, url) = (buyer.clone(), app.url(&orders));
        async move { c.post(url).header("Idempotency-Key", key).json(&body).send().await.unwrap() }
    };
    let res = app.post(&buyer, &orders, json!({"product_id": product, "plan_id": plan})).await;
    assert_problem(res, StatusCode::PAYMENT_REQUIRED, "insufficient_funds").await;
    // ¥105.00 a month: top up exactly ten of them.
    app.post(
        &op,
        &format!("/api/v1/admin/wallets/{buyer_org}/top-ups"),
        json!({"currency": "CNY", "amount_minor": 10 * 10_500, "reason": "test"}),
    )
    .await;

    let mut tasks = Vec::new();
    for i in 0..100 {
        let (c, url, body) = (buyer.clone(), app.url(&orders), json!({"product_id": product, "plan_id": plan}));
        tasks.push(tokio::spawn(async move {
            let res = c.post(url).header("Idempotency-Key", format!("buy-{i}")).json(&body).send().await.unwrap();
            (res.status(), res.text().await.unwrap())
        }));
    }
    let mut created = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            StatusCode::PAYMENT_REQUIRED => {}
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created, 10, "exactly what the wallet covers");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM orders").await, 10);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM subscriptions").await, 10, "no subscription without its order");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'instance.create'").await, 10);
    let wallet: Value = app.get(&buyer, &format!("/api/v1/orgs/{buyer_org}/wallet")).await.json().await.unwrap();
    assert_eq!(wallet["balances"][0]["amount_minor"], 0);
    let ledger_sum: i64 = wallet["ledger"].as_array().unwrap().iter().map(|e| e["delta_minor"].as_i64().unwrap()).sum();
    assert_eq!(ledger_sum, 0, "the ledger balances");

    // A replayed key makes no second order; the same key for another purchase is refused.
    let list: Value = app.get(&buyer, &orders).await.json().await.unwrap();
    app.post(
        &op,
        &format!("/api/v1/admin/wallets/{buyer_org}/top-ups"),
        json!({"currency": "CNY", "amount_minor": 100_000, "reason": "test"}),
    )
    .await;
    let first = with_key("once", json!({"product_id": product, "plan_id": plan})).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = with_key("once", json!({"product_id": product, "plan_id": plan})).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers().get("idempotency-replayed").unwrap(), "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    // The order keeps its key itself, in its own transaction: the generic layer's two
    // commits (its claim and its saved response) are not spent on it.
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM idempotency_keys").await, 0);
    let bad_key = with_key("", json!({"product_id": product, "plan_id": plan})).await;
    assert_problem(bad_key, StatusCode::BAD_REQUEST, "invalid_idempotency_key").await;
    // Retries sent at once: one order, which every one of them gets (they wait for the first's
    // commit rather than being told to come back).
    let together: Vec<_> = (0..5)
        .map(|_| {
            let (c, url, body) = (buyer.clone(), app.url(&orders), json!({"product_id": product, "plan_id": plan}));
            tokio::spawn(async move {
                let res = c.post(url).header("Idempotency-Key", "together").json(&body).send().await.unwrap();
                (res.status(), res.json::<Value>().await.unwrap()["id"].clone())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in together {
        answers.push(t.await.unwrap());
    }
    assert_eq!(answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count(), 1, "{answers:?}");
    assert_eq!(answers.iter().filter(|(s, _)| *s == StatusCode::OK).count(), 4, "{answers:?}");
    assert!(answers.iter().all(|(_, id)| *id == answers[0].1 && id.is_string()), "{answers:?}");
    let other = with_key("once", json!({"product_id": product, "plan_id": plan, "periods": 2})).await;
    assert_problem(other, StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused").await;
    // Also when that other purchase could not be made at all.
    let unknown_plan = with_key("once", json!({"product_id": product, "plan_id": "pln_01aaaaaaaaaaaaaaaaaaaaaaaa"})).await;
    assert_problem(unknown_plan, StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused").await;
    // A retry is answered with its order even once the purchase could no longer be made:
    // here the product was delisted since.
    app.post(&c, &format!("/api/v1/orgs/{org}/products/{product}/delist"), json!({})).await;
    let fresh = with_key("after-delisting", json!({"product_id": product, "plan_id": plan})).await;
    assert_problem(fresh, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let retry = with_key("once", json!({"product_id": product, "plan_id": plan})).await;
    assert_eq!(retry.status(), StatusCode::OK);
    assert_eq!(retry.headers().get("idempotency-replayed").unwrap(), "true");
    assert_eq!(retry.json::<Value>().await.unwrap()["id"], first["id"]);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM orders").await, 12);
    assert_eq!(list["items"].as_array().unwrap().len(), 10);
    let sales: Value = app.get(&c, &format!("/api/v1/orgs/{org}/sales")).await.json().await.unwrap();
    assert_eq!(sales["items"].as_array().unwrap().len(), 12);
    assert_eq!(sales["items"][0]["total_minor"], 10_500);
}

async fn a_subscription_lives_renews_upgrades_refunds_expires_and_is_released(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (seller_c, seller_org) = seller(&app, &op, "acme@example.com", "intl").await;
    let mut two_plans = content("Acme Monitor", "Uptime monitoring", "devops", 1000, false);
    let mut pro = two_plans["plans"][0].clone();
    pro["code"] = json!("pro-monthly");
    pro["name"] = json!("Pro");
    pro["prices"] = json!([{"site": "intl", "amount_minor": 2000}, {"site": "cn", "amount_minor": 14000}]);
    two_plans["plans"].as_array_mut().unwrap().push(pro);
    let product = publish(&app, &seller_c, &op, &seller_org, "saas", two_plans).await;
    let page: Value = app.get(&client(), &format!("/api/v1/storefront/cn/products/{product}")).await.json().await.unwrap();
    let plan_id = |code: &str| {
        page["plans"].as_array().unwrap().iter().find(|p| p["code"] == code).unwrap()["id"].as_str().unwrap().to_owned()
    };
    let (standard, pro) = (plan_id("standard-monthly"), plan_id("pro-monthly"));
    let (buyer, org) = verified_buyer(&app, &op, "buyer@example.com", "cn").await;
    app.post(
        &op,
        &format!("/api/v1/admin/wallets/{org}/top-ups"),
        json!({"currency": "CNY", "amount_minor": 1_000_000, "reason": "test"}),
    )
    .await;
    let balance = || async {
        app.get(&buyer, &format!("/api/v1/orgs/{org}/wallet")).await.json::<Value>().await.unwrap()["balances"][0]["amount_minor"]
            .as_i64()
            .unwrap()
    };
    let subs = format!("/api/v1/orgs/{org}/subscriptions");
    let buy = |plan: String, periods: u32| {
        let (c, url) = (buyer.clone(), app.url(&format!("/api/v1/orgs/{org}/orders")));
        let product = product.clone();
        async move {
            let res =
                c.post(url).json(&json!({"product_id": product, "plan_id": plan, "periods": periods})).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::CREATED);
            res.json::<Value>().await.unwrap()["subscription_id"].as_str().unwrap().to_owned()
        }
    };
    let fulfil = |sub: String| {
        let (c, url) = (seller_c.clone(), app.url(&format!("/api/v1/orgs/{seller_org}/sales/subscriptions/{sub}/fulfilled")));
        async move {
            let res = c.post(url).json(&json!({})).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            res.json::<Value>().await.unwrap()
        }
    };

    // Buy three months of Standard (¥70 a month) on Monday 2 March; the seller provisions it.
    let a = buy(standard.clone(), 3).await;
    let sub: Value = app.get(&buyer, &subs).await.json().await.unwrap();
    assert_eq!(sub["items"][0]["state"], "pending_fulfillment");
    assert_eq!(fulfil(a.clone()).await["state"], "active");
    assert_eq!(balance().await, 1_000_000 - 21_000);

    // Renew a month the next day: the term now ends 2 July.
    app.clock.advance(Duration::days(1));
    let renewed: Value = app.post(&buyer, &format!("{subs}/{a}/renew"), json!({"periods": 1})).await.json().await.unwrap();
    assert_eq!(renewed["term_end"], "2026-07-02T09:00:00Z");
    assert_eq!(balance().await, 1_000_000 - 28_000);

    // On 12 March, upgrade to Pro (¥140): 112 days left at ¥70 more per 30 days = ¥261.33.
    app.clock.set(chrono::DateTime::parse_from_rfc3339("2026-03-12T09:00:00Z").unwrap().to_utc());
    let up: Value = app.post(&buyer, &format!("{subs}/{a}/change-plan"), json!({"plan_id": pro})).await.json().await.unwrap();
    assert_eq!(up["charged_minor"], 26_133);
    assert_eq!(up["subscription"]["plan_id"], pro);
    assert_eq!(up["outcome"], "upgraded");
    // Back to Standard: cheaper, so it waits for the renewal; nothing is charged or refunded.
    let down: Value =
        app.post(&buyer, &format!("{subs}/{a}/change-plan"), json!({"plan_id": standard})).await.json().await.unwrap();
    assert_eq!(down["outcome"], "scheduled");
    assert_eq!(down["effective_at"], "2026-07-02T09:00:00Z");
    assert_eq!(down["subscription"]["plan_id"], pro);
    assert_eq!(down["subscription"]["next_plan_id"], standard);
    // Choosing the current plan again cancels the scheduled change.
    let kept: Value = app.post(&buyer, &format!("{subs}/{a}/change-plan"), json!({"plan_id": pro})).await.json().await.unwrap();
    assert_eq!(kept["subscription"]["next_plan_id"], Value::Null);
    assert_eq!(balance().await, 1_000_000 - 28_000 - 26_133);

    // Outside the five-day window: the three whole months not yet begun, at the Pro price.
    let preview: Value = app.get(&buyer, &format!("{subs}/{a}/refund-preview")).await.json().await.unwrap();
    assert_eq!(preview["kind"], "unused_periods");
    assert_eq!(preview["amount_minor"], 42_000);
    let refund: Value = app.post(&buyer, &format!("{subs}/{a}/unsubscribe"), json!({})).await.json().await.unwrap();
    assert_eq!(refund["amount_minor"], 42_000);
    assert_eq!(balance().await, 1_000_000 - 28_000 - 26_133 + 42_000);
    assert_problem(
        app.post(&buyer, &format!("{subs}/{a}/unsubscribe"), json!({})).await,
        StatusCode::CONFLICT,
        "illegal_transition",
    )
    .await;

    // Inside the window: everything back.
    let before = balance().await;
    let b2 = buy(standard.clone(), 1).await;
    app.clock.advance(Duration::days(1));
    let refund: Value = app.post(&buyer, &format!("{subs}/{b2}/unsubscribe"), json!({})).await.json().await.unwrap();
    assert_eq!(refund["kind"], "no_reason");
    assert_eq!(refund["amount_minor"], 7_000);
    assert_eq!(balance().await, before, "refunded to the cent");

    // A month that runs out: expired (service suspended), grace, then released.
    let c = buy(standard.clone(), 1).await;
    fulfil(c.clone()).await;
    let d = buy(standard.clone(), 1).await;
    fulfil(d.clone()).await;
    app.clock.advance(Duration::days(31));
    // Sessions last 14 days; the buyer signs in again after the month.
    let signin = || app.post(&buyer, "/api/v1/auth/signin", json!({"email": "buyer@example.com", "password": PASSWORD}));
    assert_eq!(signin().await.status(), StatusCode::OK);
    assert_eq!(souk_server::subscriptions::tick(&app.state).await.unwrap(), (2, 0));
    assert_eq!(souk_server::subscriptions::tick(&app.state).await.unwrap(), (0, 0), "each step happens once");
    let renewed: Value = app.post(&buyer, &format!("{subs}/{d}/renew"), json!({"periods": 1})).await.json().await.unwrap();
    assert_eq!(renewed["state"], "active", "renewing in grace resumes the service");
    app.clock.advance(Duration::days(14));
    assert_eq!(souk_server::subscriptions::tick(&app.state).await.unwrap(), (0, 0), "still in grace");
    app.clock.advance(Duration::days(2));
    assert_eq!(signin().await.status(), StatusCode::OK);
    let (expired, released) = souk_server::subscriptions::tick(&app.state).await.unwrap();
    assert_eq!(released, 1, "released after 15 days of grace");
    assert_eq!(expired, 0, "the renewed one runs until 13 May");
    let list: Value = app.get(&buyer, &subs).await.json().await.unwrap();
    let state_of = |id: &str| {
        list["items"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap()["state"].as_str().unwrap().to_owned()
    };
    assert_eq!(state_of(&c), "released");
    assert_eq!(state_of(&d), "active");
    assert_problem(app.post(&buyer, &format!("{subs}/{c}/renew"), json!({})).await, StatusCode::CONFLICT, "illegal_transition")
        .await;

    // Each transition was announced for the seller's system.
    for (topic, n) in [
        ("instance.create", 4),
        ("instance.renew", 2),
        ("instance.change_plan", 1),
        ("instance.suspend", 2),
        ("instance.resume", 1),
        ("instance.release", 3),
    ] {
        let got = app
            .count(match topic {
                "instance.create" => "SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'instance.create'",
                "instance.renew" => "SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'instance.renew'",
                "instance.change_plan" => "SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'instance.change_plan'",
                "instance.suspend" => "SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'instance.suspend'",
                "instance.resume" => "SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'instance.resume'",
                _ => "SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'instance.release'",
            })
            .await;
        assert_eq!(got, n, "{topic}");
    }
    let ledger_ok = app.count("SELECT CAST(COALESCE(SUM(delta_minor), 0) AS BIGINT) AS n FROM wallet_ledger").await;
    assert_eq!(ledger_ok, balance().await, "the ledger adds up to the balance");
}

async fn fifty_concurrent_trial_requests_make_one_trial(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (c, org) = seller(&app, &op, "acme@example.com", "intl").await;
    let mut with_yearly = content("Acme Monitor", "Uptime monitoring", "devops", 1500, true);
    let mut yearly = with_yearly["plans"][0].clone();
    yearly["code"] = json!("yearly");
    yearly["billing"]["period"] = json!("year");
    yearly["trial"] = Value::Null;
    with_yearly["plans"].as_array_mut().unwrap().push(yearly);
    let product = publish(&app, &c, &op, &org, "saas", with_yearly).await;
    let page: Value = app.get(&client(), &format!("/api/v1/storefront/cn/products/{product}")).await.json().await.unwrap();
    let find = |code: &str| {
        page["plans"].as_array().unwrap().iter().find(|p| p["code"] == code).unwrap()["id"].as_str().unwrap().to_owned()
    };
    let (plan, no_trial) = (find("standard-monthly"), find("yearly"));

    let (unverified, me) = app.user("new@example.com", "cn").await;
    let uorg = me["account"]["personal_org_id"].as_str().unwrap().to_owned();
    let res =
        app.post(&unverified, &format!("/api/v1/orgs/{uorg}/trials"), json!({"product_id": product, "plan_id": plan})).await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;

    let (buyer, borg) = verified_buyer(&app, &op, "buyer@example.com", "cn").await;
    let trials = format!("/api/v1/orgs/{borg}/trials");
    let res = app.post(&buyer, &trials, json!({"product_id": product, "plan_id": no_trial})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (c, url, body) = (buyer.clone(), app.url(&trials), json!({"product_id": product, "plan_id": plan}));
        tasks.push(tokio::spawn(async move { c.post(url).json(&body).send().await.unwrap().status() }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 1, "one trial per buyer and product, ever");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM trials").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM subscriptions").await, 1, "no subscription left behind by the refused ones");
    let subs: Value = app.get(&buyer, &format!("/api/v1/orgs/{borg}/subscriptions")).await.json().await.unwrap();
    assert_eq!(subs["items"][0]["term_end"], "2026-03-16T09:00:00Z", "14 days");
}

async fn reminders_and_auto_renewal_happen_once_per_term(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (c, org) = seller(&app, &op, "acme@example.com", "intl").await;
    let product = publish(&app, &c, &op, &org, "saas", content("Acme Monitor", "Uptime monitoring", "devops", 1500, false)).await;
    let page: Value = app.get(&client(), &format!("/api/v1/storefront/cn/products/{product}")).await.json().await.unwrap();
    let plan = page["plans"][0]["id"].as_str().unwrap().to_owned();
    let (buyer, borg) = verified_buyer(&app, &op, "buyer@example.com", "cn").await;
    // Enough for the purchase and one renewal (¥105.00 each), not a second.
    app.post(
        &op,
        &format!("/api/v1/admin/wallets/{borg}/top-ups"),
        json!({"currency": "CNY", "amount_minor": 21_000, "reason": "test"}),
    )
    .await;
    let sub = app.buy(&buyer, &borg, &product, &plan).await;
    app.post(&c, &format!("/api/v1/orgs/{org}/sales/subscriptions/{sub}/fulfilled"), json!({})).await;
    let res: Value = app
        .post(&buyer, &format!("/api/v1/orgs/{borg}/subscriptions/{sub}/auto-renew"), json!({"enabled": true}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(res["auto_renew"], true);
    let notices = || souk_server::subscriptions::notices(&app.state);

    // The term ends 2 April 09:00.
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
    app.clock.set(at("2026-03-25T08:00:00Z"));
    assert_eq!(notices().await.unwrap(), (0, 0, 0), "more than 7 days ahead");
    app.clock.set(at("2026-03-26T09:00:00Z"));
    assert_eq!(notices().await.unwrap(), (1, 0, 0), "the 7-day reminder");
    assert_eq!(notices().await.unwrap(), (0, 0, 0), "sent once");
    app.clock.set(at("2026-03-30T10:00:00Z"));
    assert_eq!(notices().await.unwrap(), (1, 1, 0), "the 3-day reminder, and the renewal");
    app.post(&buyer, "/api/v1/auth/signin", json!({"email": "buyer@example.com", "password": PASSWORD})).await;
    let list: Value = app.get(&buyer, &format!("/api/v1/orgs/{borg}/subscriptions")).await.json().await.unwrap();
    assert_eq!(list["items"][0]["term_end"], "2026-05-02T09:00:00Z", "paid a month more from the wallet");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM orders WHERE kind = 'renewal'").await, 1);

    // Next term: the wallet is empty; the failure is reported once, and the term runs out.
    app.clock.set(at("2026-04-30T10:00:00Z"));
    let (reminders, renewed, failed) = notices().await.unwrap();
    assert_eq!((reminders, renewed, failed), (2, 0, 1), "7- and 3-day reminders caught up; renewal failed");
    assert_eq!(notices().await.unwrap(), (0, 0, 0));
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'subscription.auto_renew_failed'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'subscription.expiry_reminder'").await, 4);
}

async fn downgrades_wait_for_renewal_trials_convert_or_expire_and_terms_are_per_product(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (seller_c, seller_org) = seller(&app, &op, "acme@example.com", "intl").await;
    // 3 days of grace, no no-reason refunds, a 14-day trial on Standard (¥70), and Pro (¥140).
    let mut terms = content("Acme Monitor", "Uptime monitoring", "devops", 1000, true);
    terms["grace_days"] = json!(3);
    terms["no_reason_days"] = json!(0);
    let mut pro = terms["plans"][0].clone();
    pro["code"] = json!("pro-monthly");
    pro["trial"] = Value::Null;
    pro["prices"] = json!([{"site": "intl", "amount_minor": 2000}, {"site": "cn", "amount_minor": 14000}]);
    terms["plans"].as_array_mut().unwrap().push(pro);
    let product = publish(&app, &seller_c, &op, &seller_org, "saas", terms).await;
    let page: Value = app.get(&client(), &format!("/api/v1/storefront/cn/products/{product}")).await.json().await.unwrap();
    let plan_id = |code: &str| {
        page["plans"].as_array().unwrap().iter().find(|p| p["code"] == code).unwrap()["id"].as_str().unwrap().to_owned()
    };
    let (standard, pro) = (plan_id("standard-monthly"), plan_id("pro-monthly"));
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
    let subs = format!("/api/v1/orgs/{org}/subscriptions");
    let fulfil = |sub: String| {
        let (c, url) = (seller_c.clone(), app.url(&format!("/api/v1/orgs/{seller_org}/sales/subscriptions/{sub}/fulfilled")));
        async move { assert_eq!(c.post(url).json(&json!({})).send().await.unwrap().status(), StatusCode::OK) }
    };

    // A trial, converted to paid by auto-renewal when it is about to end.
    let trial: Value = app
        .post(&buyer, &format!("/api/v1/orgs/{org}/trials"), json!({"product_id": product, "plan_id": standard}))
        .await
        .json()
        .await
        .unwrap();
    let t = trial["id"].as_str().unwrap().to_owned();
    assert_eq!(trial["trial"], true);
    assert_eq!(
        (trial["grace_days"].as_i64(), trial["no_reason_days"].as_i64()),
        (Some(3), Some(0)),
        "sold under the product's terms"
    );
    fulfil(t.clone()).await;
    let preview: Value = app.get(&buyer, &format!("{subs}/{t}/refund-preview")).await.json().await.unwrap();
    assert_eq!((preview["kind"].as_str(), preview["amount_minor"].as_i64()), (Some("none"), Some(0)), "a trial paid nothing");
    app.post(&buyer, &format!("{subs}/{t}/auto-renew"), json!({"enabled": true})).await;
    app.clock.advance(Duration::days(12));
    app.post(&buyer, "/api/v1/auth/signin", json!({"email": "buyer@example.com", "password": PASSWORD})).await;
    assert_eq!(souk_server::subscriptions::notices(&app.state).await.unwrap().1, 1, "converted");
    let converted: Value = app.get(&buyer, &subs).await.json().await.unwrap();
    let converted = converted["items"].as_array().unwrap().iter().find(|s| s["id"] == t.as_str()).unwrap().clone();
    assert_eq!(converted["trial"], false);
    assert_eq!(converted["state"], "active");
    assert_eq!(converted["term_end"], "2026-04-14T09:00:00Z", "a month paid from the conversion on 14 March");
    assert_eq!(balance().await, 100_000 - 7_000);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM orders WHERE kind = 'new'").await, 1);

    // No no-reason window on this product: unsubscribing the day after buying refunds the
    // whole months not yet begun (none of a one-month term), not everything.
    let order: Value = app
        .post(&buyer, &format!("/api/v1/orgs/{org}/orders"), json!({"product_id": product, "plan_id": pro, "periods": 2}))
        .await
        .json()
        .await
        .unwrap();
    let p = order["subscription_id"].as_str().unwrap().to_owned();
    fulfil(p.clone()).await;
    app.clock.advance(Duration::days(1));
    let preview: Value = app.get(&buyer, &format!("{subs}/{p}/refund-preview")).await.json().await.unwrap();
    assert_eq!(preview["kind"], "unused_periods");
    assert_eq!(preview["amount_minor"], 14_000, "the second month, not begun");

    // Downgrade Pro to Standard: nothing now; the renewal is priced at Standard and switches plan.
    let before = balance().await;
    let down: Value =
        app.post(&buyer, &format!("{subs}/{p}/change-plan"), json!({"plan_id": standard})).await.json().await.unwrap();
    assert_eq!(down["outcome"], "scheduled");
    assert_eq!(balance().await, before);
    let renewed: Value = app.post(&buyer, &format!("{subs}/{p}/renew"), json!({"periods": 1})).await.json().await.unwrap();
    assert_eq!(renewed["plan_id"], standard);
    assert_eq!(renewed["next_plan_id"], Value::Null);
    assert_eq!(balance().await, before - 7_000, "renewed at the Standard price");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'instance.change_plan'").await, 1);

    // A trial left alone expires at its end and is released after the product's 3 days of grace.
    let (other, other_org) = verified_buyer(&app, &op, "other@example.com", "cn").await;
    let trial: Value = app
        .post(&other, &format!("/api/v1/orgs/{other_org}/trials"), json!({"product_id": product, "plan_id": standard}))
        .await
        .json()
        .await
        .unwrap();
    let t2 = trial["id"].as_str().unwrap().to_owned();
    fulfil(t2.clone()).await;
    app.clock.advance(Duration::days(14));
    souk_server::subscriptions::tick(&app.state).await.unwrap();
    let state = || async { souk_store::orders::get_subscription(&mut app.db.clone(), &t2).await.unwrap().state };
    assert_eq!(state().await, "expired", "the trial ended: in grace");
    app.clock.advance(Duration::days(2));
    souk_server::subscriptions::tick(&app.state).await.unwrap();
    assert_eq!(state().await, "expired", "still in the 3-day grace");
    app.clock.advance(Duration::days(2));
    souk_server::subscriptions::tick(&app.state).await.unwrap();
    assert_eq!(state().await, "released", "released after 3 days, not the default 15");
}

async fn sellers_test_their_own_products_with_coupons_within_a_yearly_quota(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (seller_c, seller_org) = seller(&app, &op, "acme@example.com", "cn").await;
    let product =
        publish(&app, &seller_c, &op, &seller_org, "saas", content("Acme Monitor", "Uptime", "devops", 1500, false)).await;
    let (other_c, other_org) = seller(&app, &op, "rival@example.com", "cn").await;
    let rival = publish(&app, &other_c, &op, &other_org, "saas", content("Rival Monitor", "Uptime", "devops", 1500, false)).await;
    let test_coupons = format!("/api/v1/orgs/{seller_org}/test-coupons");

    // ¥1,000 a year: ¥600, then ¥500 does not fit.
    let res = app.post(&seller_c, &test_coupons, json!({"product_id": product, "amount_minor": 60_000})).await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
    let coupon: Value = res.json().await.unwrap();
    let code = coupon["code"].as_str().unwrap().to_owned();
    assert!(code.starts_with("TEST-"));
    let res = app.post(&seller_c, &test_coupons, json!({"product_id": product, "amount_minor": 50_000})).await;
    let body = assert_problem(res, StatusCode::CONFLICT, "test_coupon_quota_exceeded").await;
    assert!(body["detail"].as_str().unwrap().contains("¥400.00"), "{body}");
    let res = app.post(&seller_c, &test_coupons, json!({"product_id": rival, "amount_minor": 100})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    // Ten requests for ¥50 at once against the ¥400 left: exactly eight fit.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (c, url) = (seller_c.clone(), app.url(&test_coupons));
        let body = json!({"product_id": product, "amount_minor": 5_000});
        tasks.push(tokio::spawn(async move { c.post(url).json(&body).send().await.unwrap().status() }));
    }
    let mut issued = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => issued += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(issued, 8);
    let list: Value = app.get(&seller_c, &test_coupons).await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 9);
    assert_eq!(list["remaining"]["amount_minor"], 0);
    assert_eq!(list["quota"]["amount_minor"], 100_000);

    // Only the seller can use it; its purchase reaches its system marked as a test.
    let plan = {
        let page: Value = app.get(&client(), &format!("/api/v1/storefront/cn/products/{product}")).await.json().await.unwrap();
        page["plans"][0]["id"].as_str().unwrap().to_owned()
    };
    let (buyer, borg) = verified_buyer(&app, &op, "buyer@example.com", "cn").await;
    let res = app
        .post(
            &buyer,
            &format!("/api/v1/orgs/{borg}/quotes"),
            json!({"product_id": product, "plan_id": plan, "coupon_code": code}),
        )
        .await;
    let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("another organization"));
    app.post(
        &op,
        &format!("/api/v1/admin/wallets/{seller_org}/top-ups"),
        json!({"currency": "CNY", "amount_minor": 10_000, "reason": "t"}),
    )
    .await;
    let res = app
        .post(
            &seller_c,
            &format!("/api/v1/orgs/{seller_org}/orders"),
            json!({"product_id": product, "plan_id": plan, "coupon_code": code}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
    let order: Value = res.json().await.unwrap();
    assert_eq!(order["total_minor"], 0, "the ¥600 coupon covers the whole ¥105.00");
    let event = app
        .count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'instance.create' AND payload LIKE '%\"test\":true%'")
        .await;
    assert_eq!(event, 1);
}

async fn monthly_bills_add_up_on_the_sites_clock_and_export_as_csv(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (seller_c, seller_org) = seller(&app, &op, "acme@example.com", "intl").await;
    let product =
        publish(&app, &seller_c, &op, &seller_org, "saas", content("Acme Monitor", "Uptime", "devops", 1000, false)).await;
    let page: Value = app.get(&client(), &format!("/api/v1/storefront/cn/products/{product}")).await.json().await.unwrap();
    let plan = page["plans"][0]["id"].as_str().unwrap().to_owned();
    let (buyer, org) = verified_buyer(&app, &op, "buyer@example.com", "cn").await;
    app.post(
        &op,
        &format!("/api/v1/admin/wallets/{org}/top-ups"),
        json!({"currency": "CNY", "amount_minor": 100_000, "reason": "t"}),
    )
    .await;
    let orders = format!("/api/v1/orgs/{org}/orders");
    let buy = |periods: u32| {
        let (c, url, body) =
            (buyer.clone(), app.url(&orders), json!({"product_id": product, "plan_id": plan, "periods": periods}));
        async move { c.post(url).json(&body).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    // March (Beijing time): three months at ¥70, then a renewal of one.
    let first = buy(3).await;
    let sub = first["subscription_id"].as_str().unwrap().to_owned();
    app.post(&seller_c, &format!("/api/v1/orgs/{seller_org}/sales/subscriptions/{sub}/fulfilled"), json!({})).await;
    app.clock.advance(Duration::days(1));
    app.post(&buyer, &format!("/api/v1/orgs/{org}/subscriptions/{sub}/renew"), json!({"periods": 1})).await;
    // 31 March 17:00 UTC is 1 April 01:00 in Beijing: April's bill. Bought, then returned.
    app.clock.set(chrono::DateTime::parse_from_rfc3339("2026-03-31T17:00:00Z").unwrap().to_utc());
    for (c, email) in [(&buyer, "buyer@example.com"), (&seller_c, "acme@example.com")] {
        app.post(c, "/api/v1/auth/signin", json!({"email": email, "password": PASSWORD})).await;
    }
    let second = buy(1).await;
    let sub2 = second["subscription_id"].as_str().unwrap();
    let refund: Value =
        app.post(&buyer, &format!("/api/v1/orgs/{org}/subscriptions/{sub2}/unsubscribe"), json!({})).await.json().await.unwrap();
    assert_eq!(refund["amount_minor"], 7_000);

    let bill = |month: &str| {
        let (c, url) = (buyer.clone(), app.url(&format!("/api/v1/orgs/{org}/bills?month={month}")));
        async move { c.get(url).send().await.unwrap().json::<Value>().await.unwrap()["items"][0].clone() }
    };
    let march = bill("2026-03").await;
    assert_eq!(march["currency"], "CNY");
    assert_eq!(march["from"], "2026-02-28T16:00:00Z");
    let sums = |b: &Value| {
        ["opening_minor", "top_ups_minor", "charges_minor", "refunds_minor", "closing_minor"].map(|k| b[k].as_i64().unwrap())
    };
    assert_eq!(sums(&march), [0, 100_000, 28_000, 0, 72_000]);
    let kinds: Vec<&str> = march["lines"].as_array().unwrap().iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["top_up", "purchase", "renewal"]);
    assert_eq!(march["lines"][1]["product_id"], product.as_str());
    assert_eq!(march["lines"][1]["plan_name"], "Standard");
    let april = bill("2026-04").await;
    assert_eq!(sums(&april), [72_000, 0, 7_000, 7_000, 72_000], "opens where March closed");
    let may = bill("2026-05").await;
    assert_eq!(sums(&may), [72_000, 0, 0, 0, 72_000], "a quiet month");
    let current = app.get(&buyer, &format!("/api/v1/orgs/{org}/bills")).await.json::<Value>().await.unwrap();
    assert_eq!(current["items"][0]["month"], "2026-04", "the current month on the site's clock");

    let res = app.get(&buyer, march["csv_url"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = res.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0], "time,type,reference,product_id,plan,amount,currency,balance_after");
    assert!(rows[2].starts_with("2026-03-02T17:00:00+08:00,purchase,ord_"), "{}", rows[2]);
    assert!(rows[2].ends_with(",Standard,-210.00,CNY,790.00"), "{}", rows[2]);
    assert_problem(
        app.get(&buyer, &format!("/api/v1/orgs/{org}/bills?month=2026-13")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(app.get(&buyer, &format!("/api/v1/orgs/{org}/bills/2026-03/USD.csv")).await.status(), StatusCode::NOT_FOUND);

    // The seller's sales, filtered.
    let sales = |query: &str| {
        let (c, url) = (seller_c.clone(), app.url(&format!("/api/v1/orgs/{seller_org}/sales?{query}")));
        async move { c.get(url).send().await.unwrap() }
    };
    let count = |v: Value| v["items"].as_array().unwrap().len();
    assert_eq!(count(sales("").await.json().await.unwrap()), 3);
    assert_eq!(count(sales("state=refunded").await.json().await.unwrap()), 1);
    assert_eq!(count(sales("kind=renewal").await.json().await.unwrap()), 1);
    assert_eq!(count(sales(&format!("product_id={product}&from=2026-03-31T00:00:00Z")).await.json().await.unwrap()), 1);
    assert_eq!(count(sales("to=2026-03-03T00:00:00Z").await.json().await.unwrap()), 1);
    assert_problem(sales("state=lost").await, StatusCode::BAD_REQUEST, "invalid_query").await;
    let page1: Value = sales("limit=2").await.json().await.unwrap();
    assert_eq!(count(page1.clone()), 2);
    let page2: Value = sales(&format!("limit=2&cursor={}", page1["next_cursor"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(count(page2.clone()), 1);
    assert_eq!(page2["next_cursor"], Value::Null);
}
