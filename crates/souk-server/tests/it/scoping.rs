//! Every query is scoped to the caller's organization: another organization's resources
//! are answered exactly like missing ones, on every endpoint that names an organization.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;

both_backends!(other_orgs_are_invisible_on_every_endpoint, api_keys_are_confined_to_their_org);

async fn other_orgs_are_invisible_on_every_endpoint(b: Backend) {
    let app = spawn_app(b).await;
    let op = crate::catalog::operator_with_agreement(&app).await;
    // The victim is an approved seller, with an upload, a key and a member to go after.
    let (victim, org) = crate::catalog::seller(&app, &op, "victim@example.com", "intl").await;
    let victim_me: Value = app.get(&victim, "/api/v1/me").await.json().await.unwrap();
    let part = reqwest::multipart::Part::bytes(PDF.to_vec()).file_name("licence.pdf");
    let up: Value = victim
        .post(app.url(&format!("/api/v1/orgs/{org}/uploads")))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key: Value = app.post(&victim, &format!("/api/v1/orgs/{org}/api-keys"), json!({"name": "k"})).await.json().await.unwrap();
    let victim_id = victim_me["account"]["id"].as_str().unwrap().to_owned();

    // Every role another organization can hold: a person on their own, an approved seller's
    // owner, an enterprise's admin and plain member, and that enterprise's API keys.
    let (attacker, _) = app.user("attacker@example.com", "intl").await;
    let (rival, rival_org) = crate::catalog::seller(&app, &op, "rival@example.com", "intl").await;
    let (admin, _) = app.user("admin@example.com", "intl").await;
    let (member, _) = app.user("member@example.com", "intl").await;
    for (email, role) in [("admin@example.com", "admin"), ("member@example.com", "member")] {
        let res = app.post(&rival, &format!("/api/v1/orgs/{rival_org}/members"), json!({"email": email, "role": role})).await;
        assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
    }
    let token = |role: &'static str| {
        let (app, rival, rival_org) = (&app, rival.clone(), rival_org.clone());
        async move {
            let k: Value = app
                .post(&rival, &format!("/api/v1/orgs/{rival_org}/api-keys"), json!({"name": role, "role": role}))
                .await
                .json()
                .await
                .unwrap();
            k["token"].as_str().unwrap().to_owned()
        }
    };
    let (admin_key, member_key) = (token("admin").await, token("member").await);
    let script = reqwest::Client::new();
    let callers: Vec<(&str, reqwest::Client, Option<String>)> = vec![
        ("a person", attacker.clone(), None),
        ("a seller's owner", rival.clone(), None),
        ("an enterprise admin", admin, None),
        ("an enterprise member", member, None),
        ("an admin API key", script.clone(), Some(admin_key)),
        ("a member API key", script, Some(member_key)),
    ];

    let doc: Value = app.get(&attacker, "/api/openapi.json").await.json().await.unwrap();
    let before = app.count("SELECT COUNT(*) AS n FROM audit_log").await;
    let members = app.count("SELECT COUNT(*) AS n FROM memberships").await;
    let mut tried = 0;
    for (who, c, bearer) in &callers {
        for (path, item) in doc["paths"].as_object().unwrap() {
            if !path.contains("{org_id}") {
                continue;
            }
            let url = app.url(
                &path
                    .replace("{org_id}", &org)
                    .replace("{account_id}", &victim_id)
                    .replace("{key_id}", key["id"].as_str().unwrap())
                    .replace("{upload_id}", up["id"].as_str().unwrap()),
            );
            for method in ["get", "post", "put", "patch", "delete"] {
                if item.get(method).is_none() {
                    continue;
                }
                let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let body = json!({"name": "pwned", "email": "attacker@example.com", "role": "owner", "real_name": "X", "id_number": "ABCDE12345"});
                let mut req = c.request(m, &url).json(&body);
                if let Some(t) = bearer {
                    req = req.bearer_auth(t);
                }
                let res = req.send().await.unwrap();
                let status = res.status();
                // Staff endpoints that name an organization refuse the non-staff caller outright.
                let expected = if path.starts_with("/api/v1/admin/") { StatusCode::FORBIDDEN } else { StatusCode::NOT_FOUND };
                assert_eq!(status, expected, "{who}: {method} {path} answered {status}");
                let body: Value = res.json().await.unwrap();
                assert!(body["code"] == "not_found" || body["code"] == "forbidden", "{who}: {body}");
                tried += 1;
            }
        }
    }
    assert!(tried >= 6 * 40, "only {tried} tries of org endpoints");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_log").await, before, "no write happened");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM memberships").await, members);
    // The attacker's own org list does not include it.
    let orgs: Value = app.get(&attacker, "/api/v1/orgs").await.json().await.unwrap();
    assert_eq!(orgs["items"].as_array().unwrap().len(), 1);
}

async fn api_keys_are_confined_to_their_org(b: Backend) {
    let app = spawn_app(b).await;
    let (ann, ann_me) = app.user("ann@example.com", "intl").await;
    let acme = app.enterprise(&ann, "Acme").await;
    let personal = ann_me["account"]["personal_org_id"].as_str().unwrap().to_owned();
    let key: Value = app
        .post(&ann, &format!("/api/v1/orgs/{acme}/api-keys"), json!({"name": "k", "role": "admin"}))
        .await
        .json()
        .await
        .unwrap();
    let token = key["token"].as_str().unwrap();
    let script = reqwest::Client::new();
    let ok = script.get(app.url(&format!("/api/v1/orgs/{acme}/members"))).bearer_auth(token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    // Even an org its creator owns is out of the key's reach.
    let res = script.get(app.url(&format!("/api/v1/orgs/{personal}"))).bearer_auth(token).send().await.unwrap();
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let orgs: Value = script.get(app.url("/api/v1/orgs")).bearer_auth(token).send().await.unwrap().json().await.unwrap();
    assert_eq!(orgs["items"].as_array().unwrap().len(), 1);
    assert_eq!(orgs["items"][0]["id"], acme);
    // And it is no operator.
    let res = script.get(app.url("/api/v1/admin/audit")).bearer_auth(token).send().await.unwrap();
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
}
