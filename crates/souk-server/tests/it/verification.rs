use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;

both_backends!(enterprise_verification_is_reviewed_by_an_operator, individual_verification_and_document_rules);

async fn upload(app: &TestApp, c: &reqwest::Client, org: &str, name: &str, bytes: Vec<u8>) -> reqwest::Response {
    let form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_owned()));
    c.post(app.url(&format!("/api/v1/orgs/{org}/uploads"))).multipart(form).send().await.unwrap()
}

fn company(doc: &str) -> Value {
    json!({
        "company_name": "Acme Cloud Ltd", "registration_number": "91110000MA01ABCD2X",
        "contact_name": "Li Lei", "contact_phone": "+86 138 0000 0000", "contact_email": "li@acme.example",
        "document_ids": [doc],
    })
}

async fn enterprise_verification_is_reviewed_by_an_operator(b: Backend) {
    let app = spawn_app(b).await;
    let (seller, _) = app.user("seller@example.com", "cn").await;
    let (op, _) = app.operator("op@example.com").await;
    let org = app.enterprise(&seller, "Acme").await;

    let res = upload(&app, &seller, &org, "licence.pdf", PDF.to_vec()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let up: Value = res.json().await.unwrap();
    assert_eq!(up["content_type"], "application/pdf");
    let doc = up["id"].as_str().unwrap().to_owned();

    // Missing documents and bad fields are all reported at once.
    let res = app
        .post(&seller, &format!("/api/v1/orgs/{org}/verifications"), json!({"company_name": "", "contact_phone": "123"}))
        .await;
    let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for f in ["company_name", "registration_number", "contact_phone", "document_ids"] {
        assert!(fields.contains(&f), "{f} not reported: {fields:?}");
    }

    let res = app.post(&seller, &format!("/api/v1/orgs/{org}/verifications"), company(&doc)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["status"], "pending");
    assert_eq!(v["details"]["registration_number"], "**************CD2X", "masked for the submitter");
    let vid = v["id"].as_str().unwrap().to_owned();
    let org_now: Value = app.get(&seller, &format!("/api/v1/orgs/{org}")).await.json().await.unwrap();
    assert_eq!(org_now["verification_status"], "pending");

    let res = app.post(&seller, &format!("/api/v1/orgs/{org}/verifications"), company(&doc)).await;
    assert_problem(res, StatusCode::CONFLICT, "verification_exists").await;

    // Only operators see the queue; they see the full details and the document.
    assert_problem(app.get(&seller, "/api/v1/admin/verifications").await, StatusCode::FORBIDDEN, "forbidden").await;
    let queue: Value = app.get(&op, "/api/v1/admin/verifications").await.json().await.unwrap();
    assert_eq!(queue["items"].as_array().unwrap().len(), 1);
    assert_eq!(queue["items"][0]["details"]["registration_number"], "91110000MA01ABCD2X");
    let file = app.get(&op, &format!("/api/v1/admin/verifications/{vid}/documents/{doc}")).await;
    assert_eq!(file.status(), 200);
    assert_eq!(file.bytes().await.unwrap().as_ref(), PDF);

    let decision = format!("/api/v1/admin/verifications/{vid}/decision");
    assert_problem(app.post(&seller, &decision, json!({"approve": true})).await, StatusCode::FORBIDDEN, "forbidden").await;
    assert_problem(
        app.post(&op, &decision, json!({"approve": false})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let res = app.post(&op, &decision, json!({"approve": false, "reason": "The licence scan is unreadable"})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let rejected: Value = res.json().await.unwrap();
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["reason"], "The licence scan is unreadable");
    assert!(rejected["decided_by"].as_str().unwrap().starts_with("acct_"));
    assert!(rejected["decided_at"].is_string());
    assert_problem(app.post(&op, &decision, json!({"approve": true})).await, StatusCode::CONFLICT, "already_decided").await;

    // Corrected and sent again, then approved.
    let res = app.post(&seller, &format!("/api/v1/orgs/{org}/verifications"), company(&doc)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let vid2 = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let res = app.post(&op, &format!("/api/v1/admin/verifications/{vid2}/decision"), json!({"approve": true})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let org_now: Value = app.get(&seller, &format!("/api/v1/orgs/{org}")).await.json().await.unwrap();
    assert_eq!(org_now["verification_status"], "verified");
    assert_eq!(org_now["verified_name"], "Acme Cloud Ltd");
    let history: Value = app.get(&seller, &format!("/api/v1/orgs/{org}/verifications")).await.json().await.unwrap();
    assert_eq!(history["items"].as_array().unwrap().len(), 2);

    // Each step is audited and announced on the outbox in the same transaction.
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'verification.submitted'").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'verification.decided'").await, 2);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM audit_log WHERE action IN ('verification.approved', 'verification.rejected')").await,
        2
    );
}

async fn individual_verification_and_document_rules(b: Backend) {
    let app = spawn_app(b).await;
    let (person, me) = app.user("ann@example.com", "intl").await;
    let org = me["account"]["personal_org_id"].as_str().unwrap().to_owned();

    assert_problem(
        upload(&app, &person, &org, "page.html", b"<html>hi</html>".to_vec()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_file_type",
    )
    .await;
    assert_problem(
        upload(&app, &person, &org, "empty.pdf", Vec::new()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let mut big = PDF.to_vec();
    big.resize(5 * 1024 * 1024 + 1, b' ');
    assert_problem(upload(&app, &person, &org, "big.pdf", big).await, StatusCode::PAYLOAD_TOO_LARGE, "file_too_large").await;
    let res = person.post(app.url(&format!("/api/v1/orgs/{org}/uploads"))).json(&json!({})).send().await.unwrap();
    assert_problem(res, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM uploads").await, 0);

    // Someone else's upload cannot be attached.
    let (other, other_me) = app.user("bob@example.com", "intl").await;
    let other_org = other_me["account"]["personal_org_id"].as_str().unwrap().to_owned();
    let foreign: Value =
        upload(&app, &other, &other_org, "id.png", b"\x89PNG\r\n\x1a\n0000".to_vec()).await.json().await.unwrap();
    let res = app
        .post(
            &person,
            &format!("/api/v1/orgs/{org}/verifications"),
            json!({"real_name": "Ann Example", "id_number": "X1234567", "document_ids": [foreign["id"]]}),
        )
        .await;
    let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "document_ids");

    // Company fields do not belong on a personal organization.
    let res = app.post(&person, &format!("/api/v1/orgs/{org}/verifications"), json!({"company_name": "Acme"})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    let res = app
        .post(&person, &format!("/api/v1/orgs/{org}/verifications"), json!({"real_name": "Ann Example", "id_number": "x1234567"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["kind"], "individual");
    assert_eq!(v["details"]["id_number"], "****4567");
}
