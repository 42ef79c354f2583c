//! Wallets: top-ups by operators, a ledger that always equals the balance, and debits that
//! can never overdraw, even a hundred at once.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use souk_core::clock::Clock;
use souk_core::id::OrgId;
use souk_core::money::{Currency, Money};
use souk_store::wallets;

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    operators_top_up_and_members_see_the_ledger,
    concurrent_debits_never_overdraw,
    buyers_pay_in_through_the_sandbox_provider_credited_once
);

async fn operators_top_up_and_members_see_the_ledger(b: Backend) {
    let app = spawn_app(b).await;
    let (op, _) = app.operator("op@souk.test").await;
    let (buyer, me) = app.user("buyer@example.com", "cn").await;
    let org = me["account"]["personal_org_id"].as_str().unwrap().to_owned();
    let top_up = format!("/api/v1/admin/wallets/{org}/top-ups");

    assert_problem(
        app.post(&buyer, &top_up, json!({"currency": "CNY", "amount_minor": 100, "reason": "self"})).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    for bad in [
        json!({"currency": "XXX", "amount_minor": 100, "reason": "x"}),
        json!({"currency": "CNY", "amount_minor": 0, "reason": "x"}),
        json!({"currency": "CNY", "amount_minor": -5, "reason": "x"}),
        json!({"currency": "CNY", "amount_minor": 5, "reason": " "}),
    ] {
        assert_problem(app.post(&op, &top_up, bad).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    let res =
        app.post(&op, &top_up, json!({"currency": "CNY", "amount_minor": 50_000, "reason": "Bank transfer 2026-03-02"})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.json::<Value>().await.unwrap()["balance"]["display"], "¥500.00");
    app.post(&op, &top_up, json!({"currency": "CNY", "amount_minor": 1_234, "reason": "Goodwill"})).await;

    let wallet: Value = app.get(&buyer, &format!("/api/v1/orgs/{org}/wallet")).await.json().await.unwrap();
    assert_eq!(wallet["balances"][0]["amount_minor"], 51_234);
    assert_eq!(wallet["ledger"][0]["reason"], "top_up");
    assert_eq!(wallet["ledger"][0]["balance_after"], 51_234);
    assert_eq!(wallet["ledger"][1]["balance_after"], 50_000);
    let (stranger, _) = app.user("stranger@example.com", "cn").await;
    assert_problem(app.get(&stranger, &format!("/api/v1/orgs/{org}/wallet")).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'wallet.top_up'").await, 2);
}

async fn concurrent_debits_never_overdraw(b: Backend) {
    let app = spawn_app(b).await;
    let (_, me) = app.user("buyer@example.com", "cn").await;
    let org = OrgId::parse(me["account"]["personal_org_id"].as_str().unwrap()).unwrap();
    let now = app.clock.now();
    let mut tx = app.db.begin().await.unwrap();
    wallets::credit(&mut tx, now, &org, Money::new(10 * 990, Currency::Cny), "top_up", None, "test").await.unwrap();
    tx.commit().await.unwrap();

    // 100 purchases of ¥9.90 at once against a wallet holding ten of them.
    let db = Arc::new(app.db.clone());
    let mut tasks = Vec::new();
    for i in 0..100 {
        let db = db.clone();
        let org = org.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let mut tx = db.begin().await.unwrap();
                match wallets::debit(
                    &mut tx,
                    now,
                    &org,
                    Money::new(990, Currency::Cny),
                    "order",
                    Some(&format!("ord_{i}")),
                    "test",
                )
                .await
                {
                    Ok(Ok(_)) => {
                        tx.commit().await.unwrap();
                        return true;
                    }
                    Ok(Err(_)) => return false,
                    // SQLite may report a busy writer; a real client retries.
                    Err(e) if e.to_string().contains("locked") || e.to_string().contains("busy") => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    let mut paid = 0;
    for t in tasks {
        if t.await.unwrap() {
            paid += 1;
        }
    }
    assert_eq!(paid, 10, "exactly the purchases the wallet covers");
    let mut c = app.db.clone();
    assert_eq!(wallets::balance(&mut c, &org, Currency::Cny).await.unwrap().minor, 0);
    assert_eq!(wallets::ledger_sum(&mut c, &org, Currency::Cny).await.unwrap(), 0, "the ledger adds up to the balance");
    assert_eq!(wallets::ledger(&mut c, &org, None, 100).await.unwrap().len(), 11);
}

async fn buyers_pay_in_through_the_sandbox_provider_credited_once(b: Backend) {
    let app = spawn_app(b).await;
    let (buyer, me) = app.user("buyer@example.com", "cn").await;
    let org = me["account"]["personal_org_id"].as_str().unwrap().to_owned();
    let top_ups = format!("/api/v1/orgs/{org}/wallet/top-ups");
    let balance = || async {
        let w: Value = app.get(&buyer, &format!("/api/v1/orgs/{org}/wallet")).await.json().await.unwrap();
        w["balances"].as_array().unwrap().first().map(|b| b["amount_minor"].as_i64().unwrap()).unwrap_or(0)
    };

    for bad in [json!({"currency": "CNY", "amount_minor": 0}), json!({"currency": "XXX", "amount_minor": 100})] {
        assert_problem(app.post(&buyer, &top_ups, bad).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    let res = app.post(&buyer, &top_ups, json!({"currency": "CNY", "amount_minor": 10_000})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let t: Value = res.json().await.unwrap();
    assert_eq!(t["state"], "pending");
    assert_eq!(t["provider"], "sandbox");
    let id = t["id"].as_str().unwrap().to_owned();
    assert_eq!(t["pay_url"], format!("/sandbox/pay/{id}"));
    assert_eq!(balance().await, 0, "nothing until the provider reports the payment");

    // The provider's report arrives many times at once (retried notifications): one credit.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (state, id) = (app.state.clone(), id.clone());
        tasks.push(tokio::spawn(async move { souk_server::wallet::settle(&state, &id, true, "sbx_1").await.unwrap().state }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), "succeeded");
    }
    assert_eq!(balance().await, 10_000);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM wallet_ledger WHERE reason = 'top_up'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'wallet.topped_up'").await, 1);
    let res = app.post(&buyer, &format!("{top_ups}/{id}/sandbox"), json!({"pay": true})).await;
    assert_problem(res, StatusCode::CONFLICT, "top_up_settled").await;

    // Declined: nothing credited. Abandoned: expires after a day and can no longer be paid.
    let declined: Value =
        app.post(&buyer, &top_ups, json!({"currency": "CNY", "amount_minor": 5_000})).await.json().await.unwrap();
    let res = app.post(&buyer, &format!("{top_ups}/{}/sandbox", declined["id"].as_str().unwrap()), json!({"pay": false})).await;
    assert_eq!(res.json::<Value>().await.unwrap()["state"], "failed");
    let abandoned: Value =
        app.post(&buyer, &top_ups, json!({"currency": "CNY", "amount_minor": 7_000})).await.json().await.unwrap();
    app.clock.advance(chrono::Duration::hours(25));
    let expired = souk_store::payments::expire_before(
        &mut app.db.clone(),
        app.clock.now_utc(),
        app.clock.now_utc() - chrono::Duration::hours(souk_server::wallet::TOP_UP_EXPIRES_HOURS),
    )
    .await
    .unwrap();
    assert_eq!(expired, 1);
    app.post(&buyer, "/api/v1/auth/signin", json!({"email": "buyer@example.com", "password": PASSWORD})).await;
    let res = app.post(&buyer, &format!("{top_ups}/{}/sandbox", abandoned["id"].as_str().unwrap()), json!({"pay": true})).await;
    assert_problem(res, StatusCode::CONFLICT, "top_up_settled").await;
    assert_eq!(balance().await, 10_000);
    let list: Value = app.get(&buyer, &top_ups).await.json().await.unwrap();
    let states: Vec<&str> = list["items"].as_array().unwrap().iter().map(|t| t["state"].as_str().unwrap()).collect();
    assert_eq!(states, vec!["expired", "failed", "succeeded"]);
    assert_eq!(list["next_cursor"], Value::Null, "one page holds them");
    // A page at a time: two, then the last one.
    let first: Value = app.get(&buyer, &format!("{top_ups}?limit=2")).await.json().await.unwrap();
    let states = |page: &Value| page["items"].as_array().unwrap().iter().map(|t| t["state"].clone()).collect::<Vec<_>>();
    assert_eq!(states(&first), [json!("expired"), json!("failed")]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second: Value = app.get(&buyer, &format!("{top_ups}?limit=2&cursor={cursor}")).await.json().await.unwrap();
    assert_eq!((states(&second), &second["next_cursor"]), (vec![json!("succeeded")], &Value::Null));
    assert_problem(app.get(&buyer, &format!("{top_ups}?limit=500")).await, StatusCode::BAD_REQUEST, "invalid_query").await;

    // Another organization cannot see or pay this one's top-ups.
    let (stranger, _) = app.user("stranger@example.com", "cn").await;
    let res =
        app.post(&stranger, &format!("{top_ups}/{}/sandbox", abandoned["id"].as_str().unwrap()), json!({"pay": true})).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}
