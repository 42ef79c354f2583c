//! Quotes and coupons: what a buyer is shown before ordering, to the cent.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::catalog::{content, operator_with_agreement, publish, seller};
use crate::helpers::*;

both_backends!(quotes_show_list_price_coupon_total_and_tax);

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
    let q: Value = app.post(&buyer, &quotes, json!({"product_id": product, "plan_id": plan, "periods": 12})).await.json().await.unwrap();
    assert_eq!(q["currency"], "CNY");
    assert_eq!(q["list_minor"], 126_000);
    assert_eq!(q["coupon_discount_minor"], 0);
    assert_eq!(q["total_minor"], 126_000);
    assert_eq!(q["tax_included_minor"], 7_132, "126000 × 6 / 106 = 7132.08");
    assert_eq!(q["total_display"], "¥1260.00");

    let later = (app.clock.now_utc() + Duration::days(10)).to_rfc3339();
    let res = app.post(&op, "/api/v1/admin/coupons", json!({"code": "spring15", "percent_bp": 1500, "scope": "seller", "scope_id": org, "valid_until": later})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app.post(&op, "/api/v1/admin/coupons", json!({"code": "SPRING15", "percent_bp": 100, "scope": "any", "valid_until": later})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    app.post(&op, "/api/v1/admin/coupons", json!({"code": "TENOFF", "amount_minor": 1000, "currency": "USD", "scope": "any", "valid_until": later})).await;
    app.post(&op, "/api/v1/admin/coupons", json!({"code": "OTHERSELLER", "percent_bp": 5000, "scope": "seller", "scope_id": "org_01jd0000000000000000000000", "valid_until": later})).await;
    assert_problem(app.post(&buyer, "/api/v1/admin/coupons", json!({"code": "MINE", "percent_bp": 10000, "scope": "any", "valid_until": later})).await, StatusCode::FORBIDDEN, "forbidden").await;

    let q: Value = app.post(&buyer, &quotes, json!({"product_id": product, "plan_id": plan, "periods": 12, "coupon_code": "Spring15"})).await.json().await.unwrap();
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

    for bad in [json!({"product_id": product, "plan_id": plan, "periods": 0}), json!({"product_id": product, "plan_id": plan, "periods": 37}), json!({"product_id": product, "plan_id": plan, "quantity": 3}), json!({"product_id": product, "plan_id": "pln_01jd0000000000000000000000"}), json!({"product_id": "prd_01jd0000000000000000000000", "plan_id": plan})] {
        assert_problem(app.post(&buyer, &quotes, bad).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
}
