//! The server-rendered pages, driven over HTTP like a browser without JavaScript.

use reqwest::{Client, StatusCode};

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    sign_up_through_the_form,
    forms_need_their_csrf_token,
    pages_speak_two_languages,
    staff_pages_are_for_staff,
    the_demo_storefront,
    money_pages_top_up_trials_image_checkout_orders_bills_and_coupons
);

async fn page(app: &TestApp, c: &Client, path: &str) -> String {
    let res = app.get(c, path).await;
    assert_eq!(res.status(), 200, "{path}");
    res.text().await.unwrap()
}

async fn sign_up_through_the_form(b: Backend) {
    let app = spawn_app(b).await;
    let c = client();
    let token = csrf(&page(&app, &c, "/signup").await);

    let res = c
        .post(app.url("/signup"))
        .form(&[("_csrf", token.as_str()), ("email", "not-an-email"), ("name", "Ann"), ("password", "short"), ("site", "intl")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"e-email\""), "the email error stands beside its field");
    assert!(html.contains("id=\"e-password\""));
    assert!(html.contains("value=\"Ann\""), "entered values are kept");
    assert!(!html.contains("value=\"short\""), "passwords are never echoed");

    let res = c
        .post(app.url("/signup"))
        .form(&[
            ("_csrf", token.as_str()),
            ("email", "ann@example.com"),
            ("name", "Ann"),
            ("password", PASSWORD),
            ("site", "intl"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let home = page(&app, &c, "/").await;
    assert!(home.contains("ann@example.com"), "signed in after sign-up");

    // Sign out, then in again with the form.
    let token = csrf(&home);
    let res = c.post(app.url("/signout")).form(&[("_csrf", token.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(!page(&app, &c, "/").await.contains("ann@example.com"));
    let token = csrf(&page(&app, &c, "/signin").await);
    let res = c
        .post(app.url("/signin"))
        .form(&[("_csrf", token.as_str()), ("email", "ann@example.com"), ("password", "wrong password"), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = c
        .post(app.url("/signin"))
        .form(&[
            ("_csrf", token.as_str()),
            ("email", "ann@example.com"),
            ("password", PASSWORD),
            ("next", "https://evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers().get("location").unwrap(), "/", "never redirected off-site");
}

async fn forms_need_their_csrf_token(b: Backend) {
    let app = spawn_app(b).await;
    let c = client();
    page(&app, &c, "/signup").await;
    let res = c
        .post(app.url("/signup"))
        .form(&[("_csrf", "forged"), ("email", "ann@example.com"), ("name", "Ann"), ("password", PASSWORD), ("site", "intl")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let fresh = client();
    let res = fresh
        .post(app.url("/signup"))
        .form(&[("email", "ann@example.com"), ("name", "Ann"), ("password", PASSWORD), ("site", "intl")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM accounts").await, 0);
}

async fn pages_speak_two_languages(b: Backend) {
    let app = spawn_app(b).await;
    let c = client();
    assert!(page(&app, &c, "/").await.contains("Sign in"));
    let zh = c.get(app.url("/")).header("accept-language", "zh-CN,zh;q=0.9").send().await.unwrap().text().await.unwrap();
    assert!(zh.contains("登录") && zh.contains("lang=\"zh-CN\""));
    let res = c.get(app.url("/lang/zh-CN")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(page(&app, &c, "/signup").await.contains("创建账号"));
    c.get(app.url("/lang/en")).send().await.unwrap();
    assert!(page(&app, &c, "/signup").await.contains("Create your account"));
}

async fn staff_pages_are_for_staff(b: Backend) {
    let app = spawn_app(b).await;
    let (user, _) = app.user("ann@example.com", "intl").await;
    assert_eq!(app.get(&user, "/admin/verifications").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get(&user, "/admin/audit").await.status(), StatusCode::FORBIDDEN);
    let anon = client();
    let res = app.get(&anon, "/orgs").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(res.headers().get("location").unwrap().to_str().unwrap().starts_with("/signin"));
    let (op, _) = app.operator("op@example.com").await;
    let html = page(&app, &op, "/admin/audit").await;
    assert!(html.contains("account.created"));
    page(&app, &op, "/admin/verifications").await;
}

async fn the_demo_storefront(b: Backend) {
    let app = spawn_app(b).await;
    let first = souk_server::demo::load(&app.state).await.unwrap();
    assert_eq!(first.len(), 6);
    let products = app.count("SELECT COUNT(*) AS n FROM products").await;
    assert!(products >= 40, "a believable catalog, got {products}");
    souk_server::demo::load(&app.state).await.unwrap();
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM products").await, products, "loading twice adds nothing");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM accounts").await, 6);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM wallets WHERE balance_minor > 0").await, 2, "demo buyers can buy at once");

    let c = client();
    let home = page(&app, &c, "/").await;
    assert!(home.contains("Trial center") && home.contains("DevOps &#38; monitoring"), "{home}");
    let results = page(&app, &c, "/products?q=monitor").await;
    assert!(results.contains("Acme Monitor"), "search finds the product");
    let zh = c
        .get(app.url("/products?q=%E6%95%B0%E6%8D%AE"))
        .header("accept-language", "zh-CN")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(zh.contains("大数据分析平台") && zh.contains("数据库备份服务"), "Chinese search on the cn site");
    let res = app.get(&c, "/products?min_price=cheap").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("prices are amounts"));

    let at = results.find("href=\"/products/prd_").unwrap() + 16;
    let id = &results[at..at + 30];
    let product = page(&app, &c, &format!("/products/{id}")).await;
    assert!(product.contains("id=\"plans\"") && product.contains("$15.00"), "plans priced in the site's currency");
    assert!(product.contains("<h2>Acme Monitor</h2>"), "description rendered from Markdown");
    let shop_at = product.find("href=\"/shops/").unwrap() + 13;
    let shop = page(&app, &c, &format!("/shops/{}", &product[shop_at..shop_at + 30])).await;
    assert!(shop.contains("Acme Log Search"));
    assert_eq!(app.get(&c, "/products/prd_01jd0000000000000000000000").await.status(), StatusCode::NOT_FOUND);
}

async fn post_form(app: &TestApp, c: &Client, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    c.post(app.url(path)).form(form).send().await.unwrap()
}

fn location(res: &reqwest::Response) -> String {
    res.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default()
}

async fn money_pages_top_up_trials_image_checkout_orders_bills_and_coupons(b: Backend) {
    use serde_json::{Value, json};
    let app = spawn_app(b).await;
    let op = crate::catalog::operator_with_agreement(&app).await;
    let (seller_c, seller_org) = crate::catalog::seller(&app, &op, "acme@example.com", "cn").await;
    let saas = crate::catalog::content("Acme Monitor", "Uptime", "devops", 1000, true);
    let monitor = crate::catalog::publish(&app, &seller_c, &op, &seller_org, "saas", saas).await;
    let mut image = crate::catalog::content("WordPress Image", "A blog server", "devops", 1000, false);
    image["image"] = json!({"image_ref": "img-wp", "flavors": ["s6.large.2"], "regions": ["cn-north-4"], "min_disk_gb": 40});
    let wp = crate::catalog::publish(&app, &seller_c, &op, &seller_org, "image", image).await;
    let plan_of = |product: String| {
        let app = &app;
        async move {
            let page: Value =
                app.get(&client(), &format!("/api/v1/storefront/cn/products/{product}")).await.json().await.unwrap();
            page["plans"][0]["id"].as_str().unwrap().to_owned()
        }
    };
    let (buyer, _org) = crate::commerce::verified_buyer(&app, &op, "buyer@example.com", "cn").await;

    // Pages in English for the assertions below (the China site defaults to Chinese).
    for c in [&buyer, &seller_c, &op] {
        c.get(app.url("/lang/en")).send().await.unwrap();
    }
    // Pay ¥500 into the wallet through the sandbox provider's checkout.
    let token = csrf(&page(&app, &buyer, "/wallet").await);
    let res = post_form(&app, &buyer, "/wallet/top-up", &[("_csrf", &token), ("amount", "500")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let checkout = location(&res);
    assert!(checkout.starts_with("/sandbox/pay/top_"), "{checkout}");
    assert!(page(&app, &buyer, &checkout).await.contains("¥500.00"));
    let res = post_form(&app, &buyer, &checkout, &[("_csrf", &token), ("action", "pay")]).await;
    assert_eq!(location(&res), "/wallet");
    assert!(page(&app, &buyer, "/wallet").await.contains("<strong>¥500.00</strong>"));

    // The trial center offers the monitor's trial, once.
    let trials = page(&app, &buyer, "/trials").await;
    assert!(trials.contains("Acme Monitor") && trials.contains("start-trial"));
    let plan = plan_of(monitor.clone()).await;
    let res = post_form(&app, &buyer, "/trials", &[("_csrf", &token), ("product_id", &monitor), ("plan_id", &plan)]).await;
    assert_eq!(location(&res), "/subscriptions");
    let after = page(&app, &buyer, "/trials").await;
    assert!(after.contains("Tried"), "{after}");

    // The image checkout is the deployment wizard; a weak password is refused beside the form.
    let wp_plan = plan_of(wp.clone()).await;
    let wizard = page(&app, &buyer, &format!("/checkout?product_id={wp}&plan_id={wp_plan}")).await;
    assert!(wizard.contains("id=\"deploy-wizard\"") && wizard.contains("cn-north-4"));
    let mut form = vec![
        ("_csrf", token.as_str()),
        ("product_id", wp.as_str()),
        ("plan_id", wp_plan.as_str()),
        ("periods", "1"),
        ("quantity", "1"),
        ("key", "k1"),
        ("region", "cn-north-4"),
        ("flavor", "s6.large.2"),
        ("disk_gb", "40"),
        ("vpc", "vpc-default"),
        ("subnet", "subnet-a"),
        ("security_group", "sg-web"),
        ("public_ip_mbps", "5"),
        ("server_name", "myblog"),
        ("admin_password", "password"),
        ("accept_agreement", "1"),
    ];
    let res = post_form(&app, &buyer, "/checkout", &form).await;
    let html = res.text().await.unwrap();
    assert!(html.contains("admin_password"), "the password rule is shown");
    assert!(!html.contains("value=\"password\""), "the password is never echoed");
    assert!(html.contains("value=\"myblog\""), "the other answers are kept");
    form.retain(|(k, _)| *k != "admin_password" && *k != "key");
    form.push(("admin_password", "Str0ng!pass"));
    form.push(("key", "k2"));
    let res = post_form(&app, &buyer, "/checkout", &form).await;
    assert_eq!(location(&res), "/subscriptions");
    let subs = page(&app, &buyer, "/subscriptions").await;
    assert!(subs.contains("myblog"), "the server shows on the subscription");

    let orders = page(&app, &buyer, "/orders").await;
    assert!(orders.contains("¥70.00") && orders.contains("order-state"));
    assert!(page(&app, &buyer, "/orders?state=refunded").await.contains("No orders."));
    let bills = page(&app, &buyer, "/bills").await;
    assert!(bills.contains("¥500.00") && bills.contains("¥430.00") && bills.contains(".csv"), "{bills}");

    // The seller sees the sale and issues itself a test coupon.
    let sales = page(&app, &seller_c, &format!("/orgs/{seller_org}/sales")).await;
    assert!(sales.contains("¥70.00"));
    let coupons = page(&app, &seller_c, &format!("/orgs/{seller_org}/test-coupons")).await;
    assert!(coupons.contains("¥1000.00"));
    let token_s = csrf(&coupons);
    let html = post_form(
        &app,
        &seller_c,
        &format!("/orgs/{seller_org}/test-coupons"),
        &[("_csrf", &token_s), ("product_id", &monitor), ("amount", "100")],
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(html.contains("TEST-") && html.contains("¥900.00"), "{html}");

    // Operators issue coupons and top up wallets from their pages; buyers cannot.
    assert_eq!(app.get(&buyer, "/admin/coupons").await.status(), StatusCode::FORBIDDEN);
    let token_o = csrf(&page(&app, &op, "/admin/coupons").await);
    let html = post_form(
        &app,
        &op,
        "/admin/coupons",
        &[
            ("_csrf", &token_o),
            ("code", "spring"),
            ("percent", "12.5"),
            ("scope", "any"),
            ("days", "10"),
            ("per_buyer_limit", "1"),
        ],
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(html.contains("SPRING") && html.contains("12.50%"), "{html}");
    let html = post_form(
        &app,
        &op,
        "/admin/top-ups",
        &[("_csrf", &token_o), ("org_id", &seller_org), ("amount", "20"), ("currency", "CNY"), ("reason", "goodwill")],
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(html.contains("¥20.00"), "{html}");
}
