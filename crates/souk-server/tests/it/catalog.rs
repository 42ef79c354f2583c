//! The catalog end to end: onboarding with agreements, drafts and review with a
//! working-day SLA, listing, enforcement, and the storefront's search.

use chrono::Duration;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    seller_onboarding_needs_verification_and_agreements,
    a_product_goes_through_review_to_the_storefront,
    review_sla_skips_weekends_and_holidays,
    storefront_search_filters_and_sorts,
    shop_pages_are_published_only_when_approved,
    logos_and_screenshots_show_once_approved,
    a_sellers_product_list_shows_each_product_as_its_own_page_does,
);

/// An operator who has published the seller agreement.
pub(crate) async fn operator_with_agreement(app: &TestApp) -> Client {
    let (op, _) = app.operator("op@souk.test").await;
    let res = app
        .post(
            &op,
            "/api/v1/admin/agreements",
            json!({"kind": "seller-agreement", "title": "Seller agreement", "body": "Be honest."}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    op
}

pub(crate) async fn verified_enterprise(app: &TestApp, op: &Client, email: &str, site: &str) -> (Client, String) {
    let (c, _) = app.user(email, site).await;
    let org = app.enterprise(&c, &format!("{email} Ltd")).await;
    let part = reqwest::multipart::Part::bytes(PDF.to_vec()).file_name("licence.pdf");
    let up: Value = c
        .post(app.url(&format!("/api/v1/orgs/{org}/uploads")))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let v: Value = app
        .post(
            &c,
            &format!("/api/v1/orgs/{org}/verifications"),
            json!({
            "company_name": format!("{email} Ltd"), "registration_number": "REG-12345", "contact_name": "Pat",
            "contact_phone": "+14155550100", "contact_email": email, "document_ids": [up["id"]]}),
        )
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

pub(crate) async fn accept_all(app: &TestApp, c: &Client, org: &str) {
    let standing: Value = app.get(c, &format!("/api/v1/orgs/{org}/seller")).await.json().await.unwrap();
    for a in standing["agreements"].as_array().unwrap() {
        let id = a["agreement"]["id"].as_str().unwrap();
        let res = app.post(c, &format!("/api/v1/orgs/{org}/seller/agreements/{id}/accept"), json!({})).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }
}

/// A verified, approved seller.
pub(crate) async fn seller(app: &TestApp, op: &Client, email: &str, site: &str) -> (Client, String) {
    let (c, org) = verified_enterprise(app, op, email, site).await;
    accept_all(app, &c, &org).await;
    assert_eq!(app.post(&c, &format!("/api/v1/orgs/{org}/seller/apply"), json!({})).await.status(), StatusCode::CREATED);
    let res = app.post(op, &format!("/api/v1/admin/sellers/{org}/decision"), json!({"approve": true})).await;
    assert_eq!(res.status(), StatusCode::OK);
    (c, org)
}

pub(crate) fn content(name: &str, summary: &str, category: &str, intl_price: i64, trial: bool) -> Value {
    json!({
        "name": name, "summary": summary, "description": format!("# {name}\n\n{summary}"),
        "category": category, "tags": ["cloud"], "support_email": "help@seller.example",
        "sites": ["intl", "cn"],
        "plans": [{
            "code": "standard-monthly", "name": "Standard",
            "billing": {"type": "periodic", "period": "month"},
            "prices": [{"site": "intl", "amount_minor": intl_price}, {"site": "cn", "amount_minor": intl_price * 7}],
            "trial": if trial { json!({"days": 14}) } else { Value::Null },
        }],
    })
}

pub(crate) async fn create(app: &TestApp, c: &Client, org: &str, kind: &str, content: Value) -> String {
    let res = app.post(c, &format!("/api/v1/orgs/{org}/products"), json!({"kind": kind, "content": content})).await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
    res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn submit(app: &TestApp, c: &Client, org: &str, product: &str) -> Value {
    let res = app.post(c, &format!("/api/v1/orgs/{org}/products/{product}/submit"), json!({})).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

pub(crate) async fn approve(app: &TestApp, op: &Client, revision: &str) {
    let res = app.post(op, &format!("/api/v1/admin/reviews/products/{revision}/decision"), json!({"approve": true})).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
}

/// Creates, submits and approves a product; returns its id.
pub(crate) async fn publish(app: &TestApp, c: &Client, op: &Client, org: &str, kind: &str, content: Value) -> String {
    let id = create(app, c, org, kind, content).await;
    let rev = submit(app, c, org, &id).await;
    approve(app, op, rev["id"].as_str().unwrap()).await;
    id
}

async fn search(app: &TestApp, site: &str, query: &str) -> Value {
    let res = app.get(&client(), &format!("/api/v1/storefront/{site}/products?{query}")).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

fn names(result: &Value) -> Vec<String> {
    result["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_owned()).collect()
}

async fn seller_onboarding_needs_verification_and_agreements(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (c, _) = app.user("early@example.com", "intl").await;
    let unverified = app.enterprise(&c, "Early Ltd").await;
    assert_problem(
        app.post(&c, &format!("/api/v1/orgs/{unverified}/seller/apply"), json!({})).await,
        StatusCode::CONFLICT,
        "verification_required",
    )
    .await;

    let (c, org) = verified_enterprise(&app, &op, "acme@example.com", "intl").await;
    assert_problem(
        app.post(&c, &format!("/api/v1/orgs/{org}/seller/apply"), json!({})).await,
        StatusCode::CONFLICT,
        "agreements_not_accepted",
    )
    .await;
    accept_all(&app, &c, &org).await;
    let standing: Value = app.get(&c, &format!("/api/v1/orgs/{org}/seller")).await.json().await.unwrap();
    assert_eq!(standing["agreements"][0]["accepted"], true);
    assert_eq!(app.post(&c, &format!("/api/v1/orgs/{org}/seller/apply"), json!({})).await.status(), StatusCode::CREATED);
    assert_problem(
        app.post(&c, &format!("/api/v1/orgs/{org}/seller/apply"), json!({})).await,
        StatusCode::CONFLICT,
        "already_applied",
    )
    .await;
    // Not a seller yet: no products.
    let res = app.post(&c, &format!("/api/v1/orgs/{org}/products"), json!({"kind": "saas", "content": {}})).await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;

    let queue: Value = app.get(&op, "/api/v1/admin/sellers").await.json().await.unwrap();
    assert_eq!(queue["items"][0]["org_id"], org);
    let decision = format!("/api/v1/admin/sellers/{org}/decision");
    assert_problem(
        app.post(&op, &decision, json!({"approve": false})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let rejected: Value =
        app.post(&op, &decision, json!({"approve": false, "reason": "Licence expired"})).await.json().await.unwrap();
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(app.post(&c, &format!("/api/v1/orgs/{org}/seller/apply"), json!({})).await.status(), StatusCode::CREATED);
    let approved: Value = app.post(&op, &decision, json!({"approve": true})).await.json().await.unwrap();
    assert_eq!(approved["status"], "approved");
    let org_now: Value = app.get(&c, &format!("/api/v1/orgs/{org}")).await.json().await.unwrap();
    assert_eq!(org_now["is_seller"], true);

    // A new version in force must be accepted before anything new is submitted; one that
    // takes effect later does not block until then.
    let product = create(&app, &c, &org, "saas", content("Acme Monitor", "Uptime monitoring", "devops", 1500, false)).await;
    let later = (app.clock.now_utc() + Duration::days(10)).to_rfc3339();
    app.post(
        &op,
        "/api/v1/admin/agreements",
        json!({"kind": "seller-agreement", "title": "v2", "body": "Stricter.", "effective_at": later}),
    )
    .await;
    submit(&app, &c, &org, &product).await;
    app.post(&c, &format!("/api/v1/orgs/{org}/products/{product}/withdraw"), json!({})).await;
    app.clock.advance(Duration::days(11));
    app.put_json(
        &c,
        &format!("/api/v1/orgs/{org}/products/{product}/draft"),
        json!({"content": content("Acme Monitor", "Uptime monitoring", "devops", 1500, false)}),
    )
    .await;
    let res = app.post(&c, &format!("/api/v1/orgs/{org}/products/{product}/submit"), json!({})).await;
    assert_problem(res, StatusCode::CONFLICT, "agreements_not_accepted").await;
    accept_all(&app, &c, &org).await;
    submit(&app, &c, &org, &product).await;
    assert!(app.count("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'agreement.accepted'").await >= 2);
}

async fn a_product_goes_through_review_to_the_storefront(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (c, org) = seller(&app, &op, "acme@example.com", "intl").await;
    let base = |p: &str| format!("/api/v1/orgs/{org}/products/{p}");

    // A half-written draft saves; submitting it reports every gap.
    let product = create(&app, &c, &org, "saas", json!({"name": "Acme Monitor"})).await;
    let res = app.post(&c, &format!("{}/submit", base(&product)), json!({})).await;
    let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for f in ["summary", "description", "category", "sites", "plans"] {
        assert!(fields.contains(&f), "{f} not reported in {fields:?}");
    }

    let mut good = content("Acme Monitor", "Uptime monitoring for websites", "devops", 1500, true);
    let res = app.put_json(&c, &format!("{}/draft", base(&product)), json!({"content": good})).await;
    assert_eq!(res.status(), StatusCode::OK);
    // Content that is not an object (serde would read `[]` as an empty struct) changes nothing.
    let res = app.put_json(&c, &format!("{}/draft", base(&product)), json!({"content": []})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    let shop = format!("/api/v1/orgs/{org}/shop/draft");
    assert_problem(app.put_json(&c, &shop, json!({"content": []})).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    let rev1 = submit(&app, &c, &org, &product).await;
    assert_eq!(rev1["state"], "submitted");
    // Monday 09:00 + 3 working days = Thursday 09:00.
    assert_eq!(rev1["sla_due_at"], "2026-03-05T09:00:00Z");
    let res = app.put_json(&c, &format!("{}/draft", base(&product)), json!({"content": good})).await;
    assert_problem(res, StatusCode::CONFLICT, "revision_in_review").await;

    // The operator rejects with reasons per field.
    let queue: Value = app.get(&op, "/api/v1/admin/reviews/products").await.json().await.unwrap();
    assert_eq!(queue["items"][0]["revision"]["id"], rev1["id"]);
    assert_eq!(queue["items"][0]["sla_status"], "on_track");
    assert_eq!(queue["items"][0]["is_update"], false);
    let rev1_id = rev1["id"].as_str().unwrap();
    let res = app.post(&op, &format!("/api/v1/admin/reviews/products/{rev1_id}/start"), json!({})).await;
    assert_eq!(res.json::<Value>().await.unwrap()["state"], "in_review");
    let decision = format!("/api/v1/admin/reviews/products/{rev1_id}/decision");
    assert_problem(
        app.post(&op, &decision, json!({"approve": false, "reasons": []})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let res = app.post(&op, &decision, json!({"approve": false, "reasons": [{"field": "summary", "reason": "Say what is monitored"}, {"field": "plans[0].prices", "reason": "Price looks wrong"}]})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_problem(app.post(&op, &decision, json!({"approve": true})).await, StatusCode::CONFLICT, "already_decided").await;
    let apps: Value = app.get(&c, &format!("/api/v1/orgs/{org}/applications")).await.json().await.unwrap();
    assert_eq!(apps["items"][0]["state"], "rejected");
    assert_eq!(apps["items"][0]["reasons"][0]["field"], "summary");
    assert_eq!(search(&app, "intl", "q=monitor").await["total"], 0, "nothing is listed before approval");

    // The seller fixes it; the fix is a new revision.
    good["summary"] = json!("Uptime and latency monitoring for websites and APIs");
    let rev2: Value =
        app.put_json(&c, &format!("{}/draft", base(&product)), json!({"content": good})).await.json().await.unwrap();
    assert_eq!(rev2["number"], 2);
    let rev2 = submit(&app, &c, &org, &product).await;
    approve(&app, &op, rev2["id"].as_str().unwrap()).await;
    let found = search(&app, "intl", "q=latency").await;
    assert_eq!(names(&found), vec!["Acme Monitor"]);
    assert_eq!(found["items"][0]["from_price"]["display"], "$15.00");
    assert_eq!(search(&app, "cn", "q=monitor").await["items"][0]["from_price"]["display"], "¥105.00");
    let page: Value = app.get(&client(), &format!("/api/v1/storefront/intl/products/{product}")).await.json().await.unwrap();
    assert!(page["description_html"].as_str().unwrap().contains("<h1>Acme Monitor</h1>"));
    assert_eq!(page["plans"].as_array().unwrap().len(), 1);
    let plan_id = page["plans"][0]["id"].as_str().unwrap().to_owned();

    // A later edit is reviewed while the approved revision stays live.
    let mut edit = good.clone();
    edit["name"] = json!("Acme Monitor Pro");
    edit["plans"][0]["id"] = json!(plan_id);
    let mut yearly = edit["plans"][0].clone();
    yearly["id"] = Value::Null;
    yearly["code"] = json!("standard-yearly");
    yearly["billing"]["period"] = json!("year");
    edit["plans"].as_array_mut().unwrap().push(yearly);
    app.put_json(&c, &format!("{}/draft", base(&product)), json!({"content": edit})).await;
    let rev3 = submit(&app, &c, &org, &product).await;
    let queue: Value = app.get(&op, "/api/v1/admin/reviews/products").await.json().await.unwrap();
    assert_eq!(queue["items"][0]["is_update"], true);
    assert_eq!(names(&search(&app, "intl", "q=monitor").await), vec!["Acme Monitor"], "the old revision stays live");
    approve(&app, &op, rev3["id"].as_str().unwrap()).await;
    assert_eq!(names(&search(&app, "intl", "q=monitor").await), vec!["Acme Monitor Pro"]);
    let page: Value = app.get(&client(), &format!("/api/v1/storefront/intl/products/{product}")).await.json().await.unwrap();
    assert_eq!(page["plans"].as_array().unwrap().len(), 2);
    assert!(page["plans"].as_array().unwrap().iter().any(|p| p["id"] == plan_id.as_str()), "a kept plan keeps its id");

    // A plan left out of a revision is retired, never deleted.
    let mut fewer = edit.clone();
    let product_now: Value = app.get(&c, &base(&product)).await.json().await.unwrap();
    fewer["plans"] = json!([product_now["live"]["content"]["plans"][0]]);
    app.put_json(&c, &format!("{}/draft", base(&product)), json!({"content": fewer})).await;
    let rev4 = submit(&app, &c, &org, &product).await;
    approve(&app, &op, rev4["id"].as_str().unwrap()).await;
    let product_now: Value = app.get(&c, &base(&product)).await.json().await.unwrap();
    let plans = product_now["plans"].as_array().unwrap();
    assert_eq!(plans.len(), 2);
    assert_eq!(plans.iter().filter(|p| p["retired_at"].is_string()).count(), 1);
    // Plan ids of another product are refused.
    let other = create(&app, &c, &org, "saas", json!({})).await;
    let mut stolen = good.clone();
    stolen["plans"][0]["id"] = json!(plan_id);
    let res = app.put_json(&c, &format!("{}/draft", base(&other)), json!({"content": stolen})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    // The seller delists and relists; an operator suspends and reinstates; delists with a reason.
    app.post(&c, &format!("{}/delist", base(&product)), json!({})).await;
    assert_eq!(search(&app, "intl", "q=monitor").await["total"], 0);
    app.post(&c, &format!("{}/list", base(&product)), json!({})).await;
    assert_eq!(search(&app, "intl", "q=monitor").await["total"], 1);
    let enforce = format!("/api/v1/admin/sellers/{org}/enforcement");
    assert_eq!(
        app.post(&op, &enforce, json!({"action": "suspend", "reason": "Unpaid fees"})).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(search(&app, "intl", "q=monitor").await["total"], 0);
    assert_problem(
        app.post(&c, &format!("/api/v1/orgs/{org}/products"), json!({"kind": "saas"})).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    app.post(&op, &enforce, json!({"action": "reinstate", "reason": "Fees paid"})).await;
    assert_eq!(search(&app, "intl", "q=monitor").await["total"], 1);
    let res = app.post(&op, &enforce, json!({"action": "delist", "reason": "Misleading claims", "product_id": product})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(search(&app, "intl", "q=monitor").await["total"], 0);
    let p: Value = app.get(&c, &base(&product)).await.json().await.unwrap();
    assert_eq!(p["delisted_reason"], "Misleading claims");
    assert_problem(
        app.get(&client(), &format!("/api/v1/storefront/intl/products/{product}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Review steps are announced for the message center, in their transactions.
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'product.review_submitted'").await, 4);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'product.review_decided'").await, 4);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'seller.enforcement'").await, 3);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM enforcement_actions").await, 3);
}

async fn review_sla_skips_weekends_and_holidays(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (c, org) = seller(&app, &op, "acme@example.com", "intl").await;
    // Friday 10:00 UTC.
    app.clock.set(chrono::DateTime::parse_from_rfc3339("2026-03-06T10:00:00Z").unwrap().to_utc());
    let p1 = create(&app, &c, &org, "saas", content("First", "One", "devops", 100, false)).await;
    let r1 = submit(&app, &c, &org, &p1).await;
    assert_eq!(r1["sla_due_at"], "2026-03-11T10:00:00Z", "Friday + 3 working days = Wednesday");

    // Monday becomes a holiday: the next submission is due a day later.
    let res = app.put_json(&op, "/api/v1/admin/calendars/intl/2026-03-09", json!({"working": false})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let p2 = create(&app, &c, &org, "saas", content("Second", "Two", "devops", 100, false)).await;
    let r2 = submit(&app, &c, &org, &p2).await;
    assert_eq!(r2["sla_due_at"], "2026-03-12T10:00:00Z");
    let res = app.put_json(&c, "/api/v1/admin/calendars/intl/2026-03-09", json!({"working": false})).await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;

    // Over the weekend nothing is at risk; on Tuesday afternoon the first one is.
    app.clock.advance(Duration::days(2));
    assert_eq!(souk_server::catalog::warn_sla_at_risk(&app.state).await.unwrap(), 0);
    app.clock.set(chrono::DateTime::parse_from_rfc3339("2026-03-10T12:00:00Z").unwrap().to_utc());
    let queue: Value = app.get(&op, "/api/v1/admin/reviews/products").await.json().await.unwrap();
    let statuses: Vec<&str> = queue["items"].as_array().unwrap().iter().map(|i| i["sla_status"].as_str().unwrap()).collect();
    assert_eq!(statuses, vec!["at_risk", "on_track"], "ordered by deadline");
    assert_eq!(souk_server::catalog::warn_sla_at_risk(&app.state).await.unwrap(), 1);
    assert_eq!(souk_server::catalog::warn_sla_at_risk(&app.state).await.unwrap(), 0, "warned once");
    app.clock.set(chrono::DateTime::parse_from_rfc3339("2026-03-11T10:00:01Z").unwrap().to_utc());
    let queue: Value = app.get(&op, "/api/v1/admin/reviews/products").await.json().await.unwrap();
    assert_eq!(queue["items"][0]["sla_status"], "breached");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'product.review_sla_at_risk'").await, 1);
}

async fn storefront_search_filters_and_sorts(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (c, org) = seller(&app, &op, "acme@example.com", "cn").await;
    publish(&app, &c, &op, &org, "saas", content("大数据分析平台", "面向企业的数据分析与可视化", "data", 3000, true)).await;
    publish(&app, &c, &op, &org, "saas", content("Acme Monitor", "Uptime monitoring", "devops", 1500, false)).await;
    publish(&app, &c, &op, &org, "saas", content("数据库备份服务", "自动备份云数据库", "data", 800, false)).await;
    let mut image = content("CentOS Hardened Image", "A hardened server image", "infrastructure", 500, false);
    image["image"] =
        json!({"image_ref": "img-centos-hardened", "flavors": ["s6.large.2"], "regions": ["cn-north-4"], "min_disk_gb": 40});
    image["plans"][0]["billing"] = json!({"type": "one_time"});
    publish(&app, &c, &op, &org, "image", image).await;

    assert_eq!(names(&search(&app, "cn", "q=%E6%95%B0%E6%8D%AE").await).len(), 2, "数据 matches inside longer Chinese words");
    assert_eq!(names(&search(&app, "cn", "q=%E5%A4%87%E4%BB%BD").await), vec!["数据库备份服务"], "备份");
    assert_eq!(names(&search(&app, "cn", "q=uptime").await), vec!["Acme Monitor"]);
    assert_eq!(names(&search(&app, "cn", "q=UPTIME%20monitoring").await), vec!["Acme Monitor"], "all words, any case");
    assert_eq!(search(&app, "cn", "q=nothing-like-this").await["total"], 0);
    assert_eq!(names(&search(&app, "cn", "category=data&sort=price").await), vec!["数据库备份服务", "大数据分析平台"]);
    assert_eq!(names(&search(&app, "cn", "has_trial=true").await), vec!["大数据分析平台"]);
    assert_eq!(names(&search(&app, "cn", "kind=image").await), vec!["CentOS Hardened Image"]);
    // cn prices: 210.00, 105.00, 56.00, 35.00.
    assert_eq!(names(&search(&app, "cn", "sort=price_desc&per_page=2").await), vec!["大数据分析平台", "Acme Monitor"]);
    let page2 = search(&app, "cn", "sort=price_desc&per_page=2&page=2").await;
    assert_eq!(names(&page2), vec!["数据库备份服务", "CentOS Hardened Image"]);
    assert_eq!(page2["total"], 4);
    assert_eq!(
        names(&search(&app, "cn", "min_price=5000&max_price=11000&sort=price").await),
        vec!["数据库备份服务", "Acme Monitor"]
    );
    let cats: Value = app.get(&client(), "/api/v1/storefront/cn/categories").await.json().await.unwrap();
    assert_eq!(cats["items"][0]["name"], "开发运维与监控");
    for bad in ["sort=best", "kind=robot", "per_page=0", "min_price=-1", "page=x"] {
        let res = app.get(&client(), &format!("/api/v1/storefront/cn/products?{bad}")).await;
        assert_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
    }
    assert_problem(app.get(&client(), "/api/v1/storefront/mars/products").await, StatusCode::NOT_FOUND, "not_found").await;
}

async fn shop_pages_are_published_only_when_approved(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (c, org) = seller(&app, &op, "acme@example.com", "intl").await;
    let (other, other_org) = seller(&app, &op, "rival@example.com", "intl").await;
    let first = publish(&app, &c, &op, &org, "saas", content("Acme Monitor", "Uptime monitoring", "devops", 1500, false)).await;
    let second = publish(&app, &c, &op, &org, "saas", content("Acme Logs", "Log search", "devops", 900, false)).await;
    let rivals = publish(&app, &other, &op, &other_org, "saas", content("Rival Logs", "Logs too", "devops", 800, false)).await;
    let shop = format!("/api/v1/orgs/{org}/shop");
    let got: Value = app.get(&c, &shop).await.json().await.unwrap();
    assert!(got["live"].is_null() && got["open"].is_null());

    // Featuring someone else's product is refused at submission.
    let draft = |featured: Vec<&str>, banner: &str| json!({"content": {"banner": banner, "introduction": "We build **monitoring**.", "featured": featured, "contact_email": "shop@acme.example"}});
    assert_eq!(app.put_json(&c, &format!("{shop}/draft"), draft(vec![&rivals], "Acme")).await.status(), StatusCode::OK);
    let res = app.post(&c, &format!("{shop}/submit"), json!({})).await;
    let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "featured");

    app.put_json(&c, &format!("{shop}/draft"), draft(vec![&second], "Acme: cloud tools that stay up")).await;
    let submitted: Value = app.post(&c, &format!("{shop}/submit"), json!({})).await.json().await.unwrap();
    assert_eq!(submitted["state"], "submitted");
    assert_eq!(submitted["sla_due_at"], "2026-03-05T09:00:00Z", "3 working days");
    assert_problem(
        app.put_json(&c, &format!("{shop}/draft"), draft(vec![], "x")).await,
        StatusCode::CONFLICT,
        "revision_in_review",
    )
    .await;

    // The public page does not change before approval; the seller's preview shows the draft.
    let public = app.get(&client(), &format!("/shops/{org}")).await.text().await.unwrap();
    assert!(!public.contains("cloud tools that stay up"));
    let preview = app.get(&c, &format!("/orgs/{org}/shop/preview")).await.text().await.unwrap();
    assert!(preview.contains("cloud tools that stay up") && preview.contains("preview-banner"));
    assert!(preview.contains("<strong>monitoring</strong>"));
    assert_eq!(app.get(&other, &format!("/orgs/{org}/shop/preview")).await.status(), StatusCode::NOT_FOUND);

    let queue: Value = app.get(&op, "/api/v1/admin/reviews/shops").await.json().await.unwrap();
    let rev = queue["items"][0]["revision"]["id"].as_str().unwrap().to_owned();
    let decision = format!("/api/v1/admin/reviews/shops/{rev}/decision");
    assert_problem(
        app.post(&op, &decision, json!({"approve": false})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let res = app.post(&op, &decision, json!({"approve": false, "reasons": [{"field": "banner", "reason": "No slogans"}]})).await;
    assert_eq!(res.json::<Value>().await.unwrap()["state"], "rejected");
    app.put_json(&c, &format!("{shop}/draft"), draft(vec![&second], "Acme Cloud Tools")).await;
    let again: Value = app.post(&c, &format!("{shop}/submit"), json!({})).await.json().await.unwrap();
    let res = app
        .post(&op, &format!("/api/v1/admin/reviews/shops/{}/decision", again["id"].as_str().unwrap()), json!({"approve": true}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    let public = app.get(&client(), &format!("/shops/{org}")).await.text().await.unwrap();
    assert!(public.contains("Acme Cloud Tools"), "published on approval");
    let featured_at = public.find("Acme Logs").unwrap();
    let other_at = public.find("Acme Monitor").unwrap();
    assert!(featured_at < other_at, "featured products come first");
    let _ = first;
    let got: Value = app.get(&c, &shop).await.json().await.unwrap();
    assert_eq!(got["live"]["content"]["banner"], "Acme Cloud Tools");
    // A shop page left waiting is warned about once, like a product.
    app.put_json(&c, &format!("{shop}/draft"), draft(vec![], "Acme Cloud Tools 2")).await;
    app.post(&c, &format!("{shop}/submit"), json!({})).await;
    app.clock.advance(Duration::days(2) + Duration::hours(12));
    assert_eq!(souk_server::catalog::warn_sla_at_risk(&app.state).await.unwrap(), 1);
    assert_eq!(souk_server::catalog::warn_sla_at_risk(&app.state).await.unwrap(), 0);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'shop.review_sla_at_risk'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'shop.review_decided'").await, 2);
}

async fn upload(app: &TestApp, c: &Client, org: &str, name: &str, bytes: Vec<u8>) -> String {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned());
    let res = c
        .post(app.url(&format!("/api/v1/orgs/{org}/uploads")))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

async fn logos_and_screenshots_show_once_approved(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (c, org) = seller(&app, &op, "acme@example.com", "intl").await;
    let png = b"\x89PNG\r\n\x1a\n fake png body".to_vec();
    let logo = upload(&app, &c, &org, "logo.png", png.clone()).await;
    let shot = upload(&app, &c, &org, "shot.png", png.clone()).await;
    let pdf = upload(&app, &c, &org, "brochure.pdf", PDF.to_vec()).await;
    let product = create(&app, &c, &org, "saas", content("Acme Monitor", "Uptime monitoring", "devops", 1500, false)).await;
    let base = format!("/api/v1/orgs/{org}/products/{product}");

    let mut bad = content("Acme Monitor", "Uptime monitoring", "devops", 1500, false);
    bad["logo"] = json!(pdf);
    app.put_json(&c, &format!("{base}/draft"), json!({"content": bad})).await;
    let res = app.post(&c, &format!("{base}/submit"), json!({})).await;
    let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "logo", "a PDF is no logo");

    let mut good = content("Acme Monitor", "Uptime monitoring", "devops", 1500, false);
    good["logo"] = json!(logo);
    good["screenshots"] = json!([shot]);
    app.put_json(&c, &format!("{base}/draft"), json!({"content": good})).await;
    let media = format!("/media/products/{product}/{logo}");
    assert_eq!(app.get(&client(), &media).await.status(), StatusCode::NOT_FOUND, "not public before approval");
    let rev = submit(&app, &c, &org, &product).await;
    approve(&app, &op, rev["id"].as_str().unwrap()).await;

    let res = app.get(&client(), &media).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers().get("content-type").unwrap(), "image/png");
    assert_eq!(res.bytes().await.unwrap().as_ref(), png.as_slice());
    assert_eq!(
        app.get(&client(), &format!("/media/products/{product}/{pdf}")).await.status(),
        StatusCode::NOT_FOUND,
        "only what the product shows"
    );
    let page: Value = app.get(&client(), &format!("/api/v1/storefront/intl/products/{product}")).await.json().await.unwrap();
    assert_eq!(page["logo_url"], media);
    assert_eq!(page["screenshot_urls"].as_array().unwrap().len(), 1);
    // Another seller cannot use these uploads.
    let (other, other_org) = seller(&app, &op, "rival@example.com", "intl").await;
    let theirs = create(&app, &other, &other_org, "saas", json!({})).await;
    let mut stolen = content("Rival", "Copy", "devops", 100, false);
    stolen["logo"] = json!(logo);
    app.put_json(&other, &format!("/api/v1/orgs/{other_org}/products/{theirs}/draft"), json!({"content": stolen})).await;
    let res = app.post(&other, &format!("/api/v1/orgs/{other_org}/products/{theirs}/submit"), json!({})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}

/// The list is read in four statements for all products, each product's own page in three of
/// its own: both must show the same thing, whatever state each product is in.
async fn a_sellers_product_list_shows_each_product_as_its_own_page_does(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (c, org) = seller(&app, &op, "lister@example.com", "intl").await;
    let live = publish(&app, &c, &op, &org, "saas", content("Live Only", "Listed", "devops", 1000, false)).await;
    let edited = publish(&app, &c, &op, &org, "saas", content("Being Edited", "Listed", "devops", 2000, true)).await;
    let res = app
        .put_json(
            &c,
            &format!("/api/v1/orgs/{org}/products/{edited}/draft"),
            json!({"content": content("Being Edited v2", "Changed", "devops", 2500, true)}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    let draft = create(&app, &c, &org, "saas", content("Draft Only", "Not yet", "devops", 500, false)).await;
    let (other, other_org) = seller(&app, &op, "someone-else@example.com", "intl").await;
    publish(&app, &other, &op, &other_org, "saas", content("Not Mine", "Other", "devops", 100, false)).await;

    let list: Value = app.get(&c, &format!("/api/v1/orgs/{org}/products")).await.json().await.unwrap();
    let items = list["items"].as_array().unwrap();
    let mut pages = Vec::new();
    for id in [&draft, &edited, &live] {
        pages.push(app.get(&c, &format!("/api/v1/orgs/{org}/products/{id}")).await.json::<Value>().await.unwrap());
    }
    assert_eq!(items, &pages, "newest first, each as its own page shows it, and only this seller's");
    assert_eq!((items[0]["live"].is_null(), items[0]["open"]["state"].as_str()), (true, Some("draft")));
    assert_eq!(items[1]["live"]["content"]["name"], "Being Edited");
    assert_eq!(items[1]["open"]["content"]["name"], "Being Edited v2");
    assert_eq!((items[2]["open"].is_null(), items[2]["plans"].as_array().map(Vec::len)), (true, Some(1)));
}
