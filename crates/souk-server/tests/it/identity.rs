use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    sign_up_sign_in_and_out,
    duplicate_email_and_bad_credentials,
    password_change_signs_out_other_sessions,
    sessions_expire_with_the_clock,
    api_keys_authenticate_until_revoked,
    members_and_roles,
    any_node_serves_any_session,
);

async fn sign_up_sign_in_and_out(b: Backend) {
    let app = spawn_app(b).await;
    let (c, me) = app.user("ann@example.com", "cn").await;
    assert_eq!(me["account"]["email"], "ann@example.com");
    assert_eq!(me["account"]["site"], "cn");
    assert_eq!(me["account"]["lang"], "zh-CN");
    let orgs = me["orgs"].as_array().unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0]["kind"], "personal");
    assert_eq!(orgs[0]["role"], "owner");
    assert_eq!(orgs[0]["currency"], "CNY");
    assert_eq!(orgs[0]["id"], me["account"]["personal_org_id"]);
    assert!(me["account"]["id"].as_str().unwrap().starts_with("acct_"));

    let res = app.post(&c, "/api/v1/auth/signout", json!({})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(app.get(&c, "/api/v1/me").await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // The session row is gone, not merely the cookie.
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM sessions").await, 0);
    // Sign-up is audited.
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'account.created'").await, 1);
}

async fn duplicate_email_and_bad_credentials(b: Backend) {
    let app = spawn_app(b).await;
    app.user("ann@example.com", "intl").await;
    let c = client();
    let res = app
        .post(
            &c,
            "/api/v1/auth/signup",
            json!({"email": "ANN@example.com", "name": "Ann 2", "password": PASSWORD, "site": "intl"}),
        )
        .await;
    let body = assert_problem(res, StatusCode::CONFLICT, "email_taken").await;
    assert_eq!(body["errors"][0]["field"], "email");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM accounts").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM orgs").await, 1, "no orphan personal org");

    let res = app.post(&c, "/api/v1/auth/signin", json!({"email": "ann@example.com", "password": "wrong password!"})).await;
    assert_problem(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let res = app.post(&c, "/api/v1/auth/signin", json!({"email": "nobody@example.com", "password": PASSWORD})).await;
    assert_problem(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM sessions").await, 1, "only the first sign-in opened a session");
}

async fn password_change_signs_out_other_sessions(b: Backend) {
    let app = spawn_app(b).await;
    let (c1, _) = app.user("ann@example.com", "intl").await;
    let c2 = client();
    assert_eq!(
        app.post(&c2, "/api/v1/auth/signin", json!({"email": "ann@example.com", "password": PASSWORD})).await.status(),
        200
    );

    let res = app
        .post(&c1, "/api/v1/me/password", json!({"current_password": "not it at all", "new_password": "a brand new secret"}))
        .await;
    let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "current_password");
    let res = app.post(&c1, "/api/v1/me/password", json!({"current_password": PASSWORD, "new_password": "short"})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    let res =
        app.post(&c1, "/api/v1/me/password", json!({"current_password": PASSWORD, "new_password": "a brand new secret"})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get(&c1, "/api/v1/me").await.status(), 200, "this session stays");
    assert_eq!(app.get(&c2, "/api/v1/me").await.status(), 401, "the other session ends");
    let c3 = client();
    assert_eq!(
        app.post(&c3, "/api/v1/auth/signin", json!({"email": "ann@example.com", "password": PASSWORD})).await.status(),
        401
    );
    assert_eq!(
        app.post(&c3, "/api/v1/auth/signin", json!({"email": "ann@example.com", "password": "a brand new secret"}))
            .await
            .status(),
        200
    );
}

async fn sessions_expire_with_the_clock(b: Backend) {
    let app = spawn_app(b).await;
    let (c, _) = app.user("ann@example.com", "intl").await;
    app.clock.advance(Duration::days(13));
    assert_eq!(app.get(&c, "/api/v1/me").await.status(), 200);
    app.clock.advance(Duration::days(2));
    assert_problem(app.get(&c, "/api/v1/me").await, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

async fn api_keys_authenticate_until_revoked(b: Backend) {
    let app = spawn_app(b).await;
    let (c, _) = app.user("ann@example.com", "intl").await;
    let org = app.enterprise(&c, "Acme").await;
    let res = app.post(&c, &format!("/api/v1/orgs/{org}/api-keys"), json!({"name": "ci", "role": "admin"})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let key: Value = res.json().await.unwrap();
    let token = key["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("souk_sk_"));
    assert!(token.starts_with(key["token_prefix"].as_str().unwrap()));

    let listed: Value = app.get(&c, &format!("/api/v1/orgs/{org}/api-keys")).await.json().await.unwrap();
    assert!(listed["items"][0].get("token").is_none(), "the secret is shown once");
    // Only its hash is stored.
    let stored = app.count("SELECT COUNT(*) AS n FROM api_keys WHERE token_hash = token_prefix").await;
    assert_eq!(stored, 0);

    let script = reqwest::Client::new();
    let me: Value = script.get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["api_key_org_id"], org);
    assert!(me["account"].is_null());
    // A key cannot do what needs a person.
    let res = script
        .post(app.url(&format!("/api/v1/orgs/{org}/api-keys")))
        .bearer_auth(&token)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;

    let res = c.delete(app.url(&format!("/api/v1/orgs/{org}/api-keys/{}", key["id"].as_str().unwrap()))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = script.get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap();
    assert_problem(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let res = script.get(app.url("/api/v1/me")).bearer_auth("souk_sk_made_up").send().await.unwrap();
    assert_problem(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

async fn members_and_roles(b: Backend) {
    let app = spawn_app(b).await;
    let (owner, _) = app.user("owner@example.com", "intl").await;
    let (member, member_me) = app.user("member@example.com", "intl").await;
    app.user("cn-user@example.com", "cn").await;
    let org = app.enterprise(&owner, "Acme").await;
    let members = format!("/api/v1/orgs/{org}/members");

    let res = app.post(&owner, &members, json!({"email": "nobody@example.com", "role": "member"})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = app.post(&owner, &members, json!({"email": "cn-user@example.com", "role": "member"})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = app.post(&owner, &members, json!({"email": "member@example.com", "role": "superuser"})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = app.post(&owner, &members, json!({"email": "member@example.com", "role": "member"})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app.post(&owner, &members, json!({"email": "member@example.com", "role": "member"})).await;
    assert_problem(res, StatusCode::CONFLICT, "already_member").await;

    // A member sees the org but cannot administer it.
    assert_eq!(app.get(&member, &format!("/api/v1/orgs/{org}")).await.status(), 200);
    let res = app.post(&member, &members, json!({"email": "owner@example.com", "role": "member"})).await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_problem(app.get(&member, &format!("/api/v1/orgs/{org}/api-keys")).await, StatusCode::FORBIDDEN, "forbidden").await;

    // The last owner stays.
    let owner_id = {
        let list: Value = app.get(&owner, &members).await.json().await.unwrap();
        list["items"].as_array().unwrap().iter().find(|m| m["email"] == "owner@example.com").unwrap()["account_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let res = owner.patch(app.url(&format!("{members}/{owner_id}"))).json(&json!({"role": "member"})).send().await.unwrap();
    assert_problem(res, StatusCode::CONFLICT, "last_owner").await;
    let res = owner.delete(app.url(&format!("{members}/{owner_id}"))).send().await.unwrap();
    assert_problem(res, StatusCode::CONFLICT, "last_owner").await;

    let member_id = member_me["account"]["id"].as_str().unwrap();
    let res = owner.patch(app.url(&format!("{members}/{member_id}"))).json(&json!({"role": "admin"})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get(&member, &format!("/api/v1/orgs/{org}/api-keys")).await.status(), 200);
    let res = owner.delete(app.url(&format!("{members}/{member_id}"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(app.get(&member, &format!("/api/v1/orgs/{org}")).await, StatusCode::NOT_FOUND, "not_found").await;

    // A personal organization takes no members.
    let (_, owner_me) = (0, app.get(&owner, "/api/v1/me").await.json::<Value>().await.unwrap());
    let personal = owner_me["account"]["personal_org_id"].as_str().unwrap();
    let res = app
        .post(&owner, &format!("/api/v1/orgs/{personal}/members"), json!({"email": "member@example.com", "role": "member"}))
        .await;
    assert_problem(res, StatusCode::CONFLICT, "personal_org").await;
    assert!(app.count("SELECT COUNT(*) AS n FROM audit_log WHERE action LIKE 'org.member%'").await >= 3);
}

async fn any_node_serves_any_session(b: Backend) {
    let a = spawn_app(b).await;
    let node_b = spawn_node(a.testdb.clone(), a.clock.clone()).await;
    let (c, _) = a.user("ann@example.com", "intl").await;
    // The same cookie works on the other process: sessions live in the database.
    let me: Value = node_b.get(&c, "/api/v1/me").await.json().await.unwrap();
    assert_eq!(me["account"]["email"], "ann@example.com");
    let org = node_b.enterprise(&c, "Made on node B").await;
    assert_eq!(a.get(&c, &format!("/api/v1/orgs/{org}")).await.status(), 200);
}
