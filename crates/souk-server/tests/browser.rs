//! The browser test: a person signs up, signs in, creates an enterprise organization and
//! submits its verification with a document; an operator approves it; the person sees the
//! organization verified. Headless Chromium, driven through chromedriver.
//!
//! Needs `chromedriver` and `chromium` (Debian: chromium, chromium-driver; `.ci/run`
//! installs them). Without them the test fails on CI and is skipped, loudly, elsewhere.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use souk_core::clock::MockClock;
use souk_core::identity::{Email, Name, Password, StaffRole};
use souk_core::site::{Lang, Site};
use souk_server::{AppState, ServerConfig};
use souk_store::{DatabaseUrl, Db};

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find_binary(env: &str, candidates: &[&str]) -> Option<String> {
    if let Ok(p) = std::env::var(env) {
        return Some(p);
    }
    candidates.iter().find(|c| std::path::Path::new(c).exists()).map(|c| (*c).to_owned())
}

async fn start_browser(profile: &std::path::Path) -> Option<(Driver, Client)> {
    souk_server::tls_init();
    let required = std::env::var("CI").is_ok() || std::env::var("SOUK_REQUIRE_BROWSER").is_ok();
    let driver = find_binary("SOUK_CHROMEDRIVER", &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
    let chromium = find_binary("SOUK_CHROMIUM", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
    let (Some(driver), Some(chromium)) = (driver, chromium) else {
        assert!(!required, "chromium and chromedriver are required on CI (apt-get install chromium chromium-driver)");
        eprintln!("SKIPPED: browser test needs chromium and chromedriver (apt-get install chromium chromium-driver)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(driver).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let driver = Driver(child);
    let caps = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1280,1000", format!("--user-data-dir={}", profile.display())]
        }
    });
    let caps: serde_json::Map<String, serde_json::Value> = caps.as_object().unwrap().clone();
    for _ in 0..100 {
        match ClientBuilder::rustls().unwrap().capabilities(caps.clone()).connect(&format!("http://127.0.0.1:{port}")).await {
            Ok(c) => return Some((driver, c)),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("chromedriver did not start");
}

/// Finds an element, waiting for the page that has it to load.
async fn find(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css(css)).await {
        Ok(el) => el,
        Err(_) => panic!("no {css} in {}: {}", c.current_url().await.unwrap(), c.source().await.unwrap_or_default()),
    }
}

async fn fill(c: &Client, css: &str, text: &str) {
    let el = find(c, css).await;
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    find(c, css).await.click().await.unwrap();
}

/// Clicks something that loads a new page and waits until that page has loaded, so the
/// next lookup cannot find an element of the page being left.
async fn go(c: &Client, css: &str) {
    c.execute("window.__soukOldPage = true; return true;", vec![]).await.unwrap();
    click(c, css).await;
    for _ in 0..200 {
        let done = c
            .execute("return window.__soukOldPage === undefined && document.readyState === 'complete';", vec![])
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("clicking {css} did not load a page");
}

async fn source(c: &Client) -> String {
    c.source().await.unwrap()
}

async fn sign_in(c: &Client, base: &str, email: &str, password: &str) {
    c.goto(&format!("{base}/signin")).await.unwrap();
    fill(c, "#f-email", email).await;
    fill(c, "#f-password", password).await;
    go(c, "#signin-submit").await;
    find(c, "form[action='/signout']").await;
    assert!(source(c).await.contains(email), "signed in as {email}");
}

async fn sign_out(c: &Client) {
    go(c, "form[action='/signout'] button").await;
    find(c, "a[href='/signup']").await;
}

/// Serves a fresh SQLite marketplace with an operator `op@souk.test`; returns its URL.
async fn start_app(dir: &std::path::Path, password: &str) -> (String, AppState, tokio::sync::watch::Sender<bool>) {
    let db = Db::connect(&DatabaseUrl::sqlite_file(&dir.join("souk.db"))).await.unwrap();
    db.migrate().await.unwrap();
    let clock = Arc::new(MockClock::at(chrono::Utc::now()));
    let state = AppState::new(db.clone(), clock, ServerConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(souk_server::serve(state.clone(), listener, rx));
    souk_server::identity::create_account(
        &state,
        &Email::parse("e", "op@souk.test").unwrap(),
        &Name::parse("n", "Olivia Operator", 80).unwrap(),
        &Password::parse("p", password).unwrap(),
        Site::Intl,
        Lang::En,
        Some(StaffRole::Operator),
        None,
    )
    .await
    .unwrap();
    (base, state, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_verify_and_get_approved_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_driver, c)) = start_browser(&dir.path().join("profile")).await else { return };
    let password = "browser test password";
    let (base, _state, _stop) = start_app(dir.path(), password).await;

    // Sign up through the form: first with a mistake, then right.
    c.goto(&format!("{base}/signup")).await.unwrap();
    fill(&c, "#f-email", "ann@example.com").await;
    fill(&c, "#f-name", "Ann Example").await;
    fill(&c, "#f-password", "short").await;
    go(&c, "#signup-submit").await;
    assert!(
        c.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("#e-password")).await.is_ok(),
        "the password error is shown beside the field"
    );
    fill(&c, "#f-password", password).await;
    go(&c, "#signup-submit").await;
    find(&c, "form[action='/signout']").await;
    let after = source(&c).await;
    assert!(after.contains("ann@example.com"), "signed in after sign-up: {after}");

    // Sign out and in again.
    sign_out(&c).await;
    sign_in(&c, &base, "ann@example.com", password).await;

    // Create an enterprise organization and submit its verification with a document.
    c.goto(&format!("{base}/orgs")).await.unwrap();
    fill(&c, "#f-name", "Acme Cloud").await;
    go(&c, "form[action='/orgs'] button[type=submit]").await;
    find(&c, "p.subnav a[href$='/verification']").await;
    let org_url = c.current_url().await.unwrap().to_string();
    assert!(org_url.contains("/orgs/org_"), "landed on the new org: {org_url}");
    c.goto(&format!("{org_url}/verification")).await.unwrap();
    fill(&c, "#f-company_name", "Acme Cloud Ltd").await;
    fill(&c, "#f-registration_number", "91110000MA01ABCD2X").await;
    fill(&c, "#f-contact_name", "Ann Example").await;
    fill(&c, "#f-contact_phone", "+8613800000000").await;
    fill(&c, "#f-contact_email", "ann@example.com").await;
    let pdf = dir.path().join("licence.pdf");
    std::fs::write(&pdf, b"%PDF-1.4\n%%EOF\n").unwrap();
    find(&c, "#f-documents").await.send_keys(pdf.to_str().unwrap()).await.unwrap();
    go(&c, "#verification-submit").await;
    find(&c, "table").await;
    let status = find(&c, "#verification-status").await.text().await.unwrap();
    assert_eq!(status, "Waiting for review");
    sign_out(&c).await;

    // The operator approves it from the queue.
    sign_in(&c, &base, "op@souk.test", password).await;
    c.goto(&format!("{base}/admin/verifications")).await.unwrap();
    assert!(source(&c).await.contains("Acme Cloud Ltd"));
    go(&c, "#queue a.button").await;
    find(&c, "#approve").await;
    assert!(source(&c).await.contains("licence.pdf"), "the document is listed for review");
    go(&c, "#approve").await;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath("//span[@id='decision-status' and text()='approved']"))
        .await
        .unwrap();
    let decided = find(&c, "#decision-status").await.text().await.unwrap();
    assert_eq!(decided, "approved");
    let shot = c.screenshot().await.unwrap();
    let _ = std::fs::write(std::env::temp_dir().join("souk-browser-review.png"), shot);
    sign_out(&c).await;

    // The seller sees the organization verified.
    sign_in(&c, &base, "ann@example.com", password).await;
    c.goto(&format!("{org_url}/verification")).await.unwrap();
    let status = find(&c, "#verification-status").await.text().await.unwrap();
    assert_eq!(status, "Verified");
    c.close().await.unwrap();
}

/// Sets up, through the API, a verified enterprise of `email` and a published agreement.
async fn verified_enterprise(base: &str, email: &str, password: &str) -> String {
    let api = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let post = |path: &str, body: serde_json::Value| api.post(format!("{base}{path}")).json(&body).send();
    post("/api/v1/auth/signup", json!({"email": email, "name": "Sam Seller", "password": password, "site": "intl"}))
        .await
        .unwrap();
    post("/api/v1/auth/signin", json!({"email": email, "password": password})).await.unwrap();
    let org: serde_json::Value = post("/api/v1/orgs", json!({"name": "Sam's Software"})).await.unwrap().json().await.unwrap();
    let org = org["id"].as_str().unwrap().to_owned();
    let part = reqwest::multipart::Part::bytes(b"%PDF-1.4\n%%EOF\n".to_vec()).file_name("licence.pdf");
    let up: serde_json::Value = api
        .post(format!("{base}/api/v1/orgs/{org}/uploads"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let v: serde_json::Value = post(&format!("/api/v1/orgs/{org}/verifications"), json!({"company_name": "Sam's Software Ltd", "registration_number": "REG-778899", "contact_name": "Sam", "contact_phone": "+14155550100", "contact_email": email, "document_ids": [up["id"]]})).await.unwrap().json().await.unwrap();
    let op = reqwest::Client::builder().cookie_store(true).build().unwrap();
    op.post(format!("{base}/api/v1/auth/signin"))
        .json(&json!({"email": "op@souk.test", "password": password}))
        .send()
        .await
        .unwrap();
    let res = op
        .post(format!("{base}/api/v1/admin/verifications/{}/decision", v["id"].as_str().unwrap()))
        .json(&json!({"approve": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = op
        .post(format!("{base}/api/v1/admin/agreements"))
        .json(&json!({"kind": "seller-agreement", "title": "Seller agreement", "body": "List only what you can deliver."}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    org
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_and_an_operator_take_a_product_through_review_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_driver, c)) = start_browser(&dir.path().join("profile")).await else { return };
    let password = "browser test password";
    let (base, _state, _stop) = start_app(dir.path(), password).await;
    let org = verified_enterprise(&base, "sam@example.com", password).await;

    // The seller accepts the agreement and applies, from the seller center.
    sign_in(&c, &base, "sam@example.com", password).await;
    c.goto(&format!("{base}/orgs/{org}")).await.unwrap();
    go(&c, "#seller-center").await;
    go(&c, "button.accept-agreement").await;
    go(&c, "#apply").await;
    let status = find(&c, "#seller-status").await.text().await.unwrap();
    assert!(status.contains("applied"), "{status}");
    sign_out(&c).await;

    // The operator approves the seller.
    sign_in(&c, &base, "op@souk.test", password).await;
    c.goto(&format!("{base}/admin/sellers")).await.unwrap();
    go(&c, "button.approve-seller").await;
    find(&c, "p.subnav").await;
    sign_out(&c).await;

    // The seller drafts a product, forgets the summary, submits.
    sign_in(&c, &base, "sam@example.com", password).await;
    c.goto(&format!("{base}/orgs/{org}/products")).await.unwrap();
    fill(&c, "#new-product #f-name", "Sam's Uptime Robot").await;
    go(&c, "#new-product button[type=submit]").await;
    find(&c, "#product-form").await;
    let logo = dir.path().join("logo.png");
    std::fs::write(&logo, b"\x89PNG\r\n\x1a\n browser logo").unwrap();
    find(&c, "#media-form input[type=file]").await.send_keys(logo.to_str().unwrap()).await.unwrap();
    go(&c, "#media-form button").await;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath("//form[@id='media-form']//p[contains(., '✓')]"))
        .await
        .unwrap();
    fill(&c, "#f-description", "Checks your sites **every minute**.").await;
    c.find(Locator::Css("#f-category")).await.unwrap().select_by_value("devops").await.unwrap();
    fill(&c, "#f-support_email", "help@sam.example").await;
    click(&c, "input[name=site_intl]").await;
    fill(&c, "input[name=plan0_code]", "monthly").await;
    fill(&c, "input[name=plan0_name]", "Monthly").await;
    fill(&c, "input[name=plan0_price_intl]", "9.90").await;
    go(&c, "#submit-review").await;
    let err = find(&c, "#e-summary").await.text().await.unwrap();
    assert!(!err.is_empty(), "the missing summary is shown beside its field");
    fill(&c, "#f-summary", "Uptime checks for small sites").await;
    go(&c, "#submit-review").await;
    let state = find(&c, "#revision-state").await.text().await.unwrap();
    assert!(state.contains("submitted"), "{state}");
    sign_out(&c).await;

    // The operator rejects with a reason on the name.
    sign_in(&c, &base, "op@souk.test", password).await;
    c.goto(&format!("{base}/admin/reviews")).await.unwrap();
    go(&c, "#review-queue a.button").await;
    fill(&c, "#r-name", "Do not use the word Robot").await;
    go(&c, "#reject").await;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath("//span[@id='review-state' and text()='rejected']"))
        .await
        .unwrap();
    sign_out(&c).await;

    // The seller sees the reason beside the name, fixes it and resubmits.
    sign_in(&c, &base, "sam@example.com", password).await;
    c.goto(&format!("{base}/orgs/{org}/applications")).await.unwrap();
    assert!(source(&c).await.contains("Do not use the word Robot"));
    go(&c, "#applications a").await;
    let reason = find(&c, "p.reviewer").await.text().await.unwrap();
    assert!(reason.contains("Robot"), "{reason}");
    fill(&c, "#f-name", "Sam's Uptime Checker").await;
    go(&c, "#submit-review").await;
    find(&c, "#revision-state").await;
    sign_out(&c).await;

    // The operator approves; the product is in the store.
    sign_in(&c, &base, "op@souk.test", password).await;
    c.goto(&format!("{base}/admin/reviews")).await.unwrap();
    go(&c, "#review-queue a.button").await;
    go(&c, "#approve").await;
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath("//span[@id='review-state' and text()='approved']"))
        .await
        .unwrap();
    c.goto(&format!("{base}/products?q=uptime")).await.unwrap();
    let results = source(&c).await;
    assert!(results.contains("Sam&#39;s Uptime Checker") || results.contains("Sam's Uptime Checker"), "listed after approval");
    go(&c, ".product-card a").await;
    find(&c, "#plans").await;
    assert!(source(&c).await.contains("$9.90"));
    find(&c, "#product-logo").await;
    let shot = c.screenshot().await.unwrap();
    let _ = std::fs::write(std::env::temp_dir().join("souk-browser-product.png"), shot);
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_buys_and_unsubscribes_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_driver, c)) = start_browser(&dir.path().join("profile")).await else { return };
    let password = "browser test password";
    let (base, _state, _stop) = start_app(dir.path(), password).await;
    let org = verified_enterprise(&base, "sam@example.com", password).await;

    // Set up through the API: an approved seller with a listed product, a verified buyer with money.
    let api = |email: &'static str| {
        let base = base.clone();
        async move {
            let c = reqwest::Client::builder().cookie_store(true).build().unwrap();
            c.post(format!("{base}/api/v1/auth/signin"))
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap();
            c
        }
    };
    let seller = api("sam@example.com").await;
    let op = api("op@souk.test").await;
    let standing: serde_json::Value =
        seller.get(format!("{base}/api/v1/orgs/{org}/seller")).send().await.unwrap().json().await.unwrap();
    let agreement = standing["agreements"][0]["agreement"]["id"].as_str().unwrap().to_owned();
    seller.post(format!("{base}/api/v1/orgs/{org}/seller/agreements/{agreement}/accept")).send().await.unwrap();
    seller.post(format!("{base}/api/v1/orgs/{org}/seller/apply")).send().await.unwrap();
    op.post(format!("{base}/api/v1/admin/sellers/{org}/decision")).json(&json!({"approve": true})).send().await.unwrap();
    let content = json!({"name": "Sam's Backup", "summary": "Backups", "description": "Backs up.", "category": "data", "support_email": "s@sam.example",
        "sites": ["intl"], "plans": [{"code": "monthly", "name": "Monthly", "billing": {"type": "periodic", "period": "month"}, "prices": [{"site": "intl", "amount_minor": 1250}]}]});
    let p: serde_json::Value = seller
        .post(format!("{base}/api/v1/orgs/{org}/products"))
        .json(&json!({"kind": "saas", "content": content}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let product = p["id"].as_str().unwrap().to_owned();
    let rev: serde_json::Value =
        seller.post(format!("{base}/api/v1/orgs/{org}/products/{product}/submit")).send().await.unwrap().json().await.unwrap();
    op.post(format!("{base}/api/v1/admin/reviews/products/{}/decision", rev["id"].as_str().unwrap()))
        .json(&json!({"approve": true}))
        .send()
        .await
        .unwrap();
    let anon = reqwest::Client::new();
    anon.post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"email": "bea@example.com", "name": "Bea", "password": password, "site": "intl"}))
        .send()
        .await
        .unwrap();
    let buyer = api("bea@example.com").await;
    let me: serde_json::Value = buyer.get(format!("{base}/api/v1/me")).send().await.unwrap().json().await.unwrap();
    let borg = me["account"]["personal_org_id"].as_str().unwrap().to_owned();
    let v: serde_json::Value = buyer
        .post(format!("{base}/api/v1/orgs/{borg}/verifications"))
        .json(&json!({"real_name": "Bea Buyer", "id_number": "ID-1234567"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    op.post(format!("{base}/api/v1/admin/verifications/{}/decision", v["id"].as_str().unwrap()))
        .json(&json!({"approve": true}))
        .send()
        .await
        .unwrap();
    op.post(format!("{base}/api/v1/admin/wallets/{borg}/top-ups"))
        .json(&json!({"currency": "USD", "amount_minor": 10_000, "reason": "test"}))
        .send()
        .await
        .unwrap();

    // The buyer buys three months from the product page.
    sign_in(&c, &base, "bea@example.com", password).await;
    c.goto(&format!("{base}/products/{product}")).await.unwrap();
    fill(&c, "#b-periods", "3").await;
    go(&c, "#get-quote").await;
    assert_eq!(find(&c, "#quote-total").await.text().await.unwrap(), "$37.50");
    go(&c, "#pay").await;
    let state = find(&c, ".sub-state").await.text().await.unwrap();
    assert_eq!(state, "pending_fulfillment");
    assert_eq!(find(&c, ".refund-preview").await.text().await.unwrap(), "$37.50", "inside the no-reason window, all of it");

    // …and unsubscribes, confirming the dialog; the money is back in the wallet.
    click(&c, "button.unsubscribe").await;
    c.accept_alert().await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath("//span[contains(@class,'sub-state') and text()='cancelled']"))
        .await
        .unwrap();
    c.goto(&format!("{base}/wallet")).await.unwrap();
    assert_eq!(find(&c, "#balances").await.text().await.unwrap().trim(), "$100.00");
    c.close().await.unwrap();
}
