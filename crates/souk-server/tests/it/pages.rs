//! The server-rendered pages, driven over HTTP like a browser without JavaScript.

use reqwest::{Client, StatusCode};

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    sign_up_through_the_form,
    forms_need_their_csrf_token,
    pages_speak_two_languages,
    staff_pages_are_for_staff,
    the_demo_storefront
);

/// The CSRF token a page embedded in its forms.
fn csrf(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("page has a form with a CSRF token") + 20;
    html[at..].split('"').next().unwrap().to_owned()
}

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
