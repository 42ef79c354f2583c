//! Every query is scoped to the caller's organization: another organization's resources
//! are answered exactly like missing ones, on every endpoint that names an organization.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;

both_backends!(other_orgs_are_invisible_on_every_endpoint, api_keys_are_confined_to_their_org);

async fn other_orgs_are_invisible_on_every_endpoint(b: Backend) {
    let app = spawn_app(b).await;
    let (victim, victim_me) = app.user("victim@example.com", "intl").await;
    let org = app.enterprise(&victim, "Victim Corp").await;
    // The victim's org has an upload, a key and a verification to go after.
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
    let victim_id = victim_me["account"]["id"].as_str().unwrap();

    let (attacker, _) = app.user("attacker@example.com", "intl").await;
    let doc: Value = app.get(&attacker, "/api/openapi.json").await.json().await.unwrap();
    let before = app.count("SELECT COUNT(*) AS n FROM audit_log").await;
    let mut tried = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.contains("{org_id}") {
            continue;
        }
        let url = app.url(
            &path
                .replace("{org_id}", &org)
                .replace("{account_id}", victim_id)
                .replace("{key_id}", key["id"].as_str().unwrap())
                .replace("{upload_id}", up["id"].as_str().unwrap()),
        );
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = json!({"name": "pwned", "email": "attacker@example.com", "role": "owner", "real_name": "X", "id_number": "ABCDE12345"});
            let res = attacker.request(m, &url).json(&body).send().await.unwrap();
            let status = res.status();
            // Staff endpoints that name an organization refuse the non-staff caller outright.
            let expected = if path.starts_with("/api/v1/admin/") { StatusCode::FORBIDDEN } else { StatusCode::NOT_FOUND };
            assert_eq!(status, expected, "{method} {path} answered {status}");
            let body: Value = res.json().await.unwrap();
            assert!(body["code"] == "not_found" || body["code"] == "forbidden", "{body}");
            tried += 1;
        }
    }
    assert!(tried >= 10, "only {tried} org endpoints tried");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_log").await, before, "no write happened");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM memberships").await, 3);
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
