//! The message center against a real SMTP server (a small sink started here, speaking SMTP
//! over TCP) and a local HTTP stub for the SMS gateway.

use std::sync::{Arc, Mutex};

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::both_backends;
use crate::catalog::{content, operator_with_agreement, publish, seller};
use crate::commerce::verified_buyer;
use crate::helpers::*;

both_backends!(
    a_server_killed_mid_send_loses_no_email_and_sends_none_twice,
    a_review_result_reaches_the_sellers_inbox_email_and_sms,
    a_subscriptions_life_is_told_to_its_buyer,
    recipients_are_set_per_category_with_confirmed_contacts,
    a_phone_is_bound_on_the_account_page_with_a_code,
);

#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

#[derive(Default)]
pub struct Sink {
    pub mails: Vec<Mail>,
    /// Answer this many DATA commands with 451 (a server in trouble) before accepting.
    pub refuse: u32,
    /// Take this many messages' data and then never answer (the sender dies waiting). A
    /// message is the server's only once it answers 250, so these are not kept.
    pub stall: u32,
    pub stalled: u32,
}

/// An SMTP server on 127.0.0.1 that keeps what it is sent.
pub async fn smtp_sink(refuse: u32) -> (Arc<Mutex<Sink>>, u16) {
    smtp_sink_with(Sink { refuse, ..Sink::default() }).await
}

pub async fn smtp_sink_with(initial: Sink) -> (Arc<Mutex<Sink>>, u16) {
    let sink = Arc::new(Mutex::new(initial));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shared = sink.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let sink = shared.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                let (mut from, mut to) = (String::new(), Vec::new());
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250-sink\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("MAIL FROM:") {
                        from = line[10..].trim().to_owned();
                        b"250 ok\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        to.push(line[8..].trim().to_owned());
                        b"250 ok\r\n"
                    } else if upper == "DATA" {
                        let refused = {
                            let mut s = sink.lock().unwrap();
                            if s.refuse > 0 {
                                s.refuse -= 1;
                                true
                            } else {
                                false
                            }
                        };
                        if refused {
                            b"451 try again later\r\n"
                        } else {
                            write.write_all(b"354 go ahead\r\n").await.unwrap();
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(&l);
                                data.push('\n');
                            }
                            let stall = {
                                let mut s = sink.lock().unwrap();
                                if s.stall > 0 {
                                    s.stall -= 1;
                                    s.stalled += 1;
                                    true
                                } else {
                                    s.mails.push(Mail { from: from.clone(), to: std::mem::take(&mut to), data });
                                    false
                                }
                            };
                            if stall {
                                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                                return;
                            }
                            b"250 queued\r\n"
                        }
                    } else if upper == "QUIT" {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    if write.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (sink, port)
}

/// What the SMS gateway stub received: each request's query, body and Authorization header.
type SmsLog = Arc<Mutex<Vec<(String, Value, String)>>>;

/// An SMS gateway stub: keeps each request's query, body and Authorization header.
async fn sms_stub() -> (SmsLog, u16) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shared = got.clone();
    let router = axum::Router::new().route(
        "/send",
        axum::routing::post(move |uri: axum::http::Uri, headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
            let shared = shared.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                shared.lock().unwrap().push((uri.query().unwrap_or_default().to_owned(), body, auth));
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    (got, port)
}

/// Binds a phone to the account through the API, reading the code from the SMS gateway stub.
async fn bind_phone(app: &TestApp, c: &reqwest::Client, sms: &SmsLog, phone: &str) {
    let res = app.put_json(c, "/api/v1/me/phone", json!({"phone": phone})).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED, "{}", res.text().await.unwrap());
    let pending: Value = res.json().await.unwrap();
    let normal = pending["pending"].as_str().unwrap().to_owned();
    assert!(pending["phone"].is_null() || pending["phone"] != normal);
    let code = || {
        sms.lock().unwrap().iter().rev().find(|(_, b, _)| b["to"] == normal.as_str()).and_then(|(_, b, _)| {
            let t = b["text"].as_str()?;
            t.split(|ch: char| !ch.is_ascii_digit()).find(|w| w.len() == 6).map(str::to_owned)
        })
    };
    eventually("the code by SMS", || async { code().is_some() }).await;
    let code = code().unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let res = app.post(c, "/api/v1/me/phone/confirm", json!({"code": wrong})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = app.post(c, "/api/v1/me/phone/confirm", json!({"code": code})).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    let bound: Value = res.json().await.unwrap();
    assert_eq!(bound["phone"], normal.as_str());
    assert!(bound["pending"].is_null());
}

async fn a_review_result_reaches_the_sellers_inbox_email_and_sms(b: Backend) {
    // The SMTP server refuses the first message: it is delayed, never lost.
    let (sink, smtp_port) = smtp_sink(1).await;
    let (sms, sms_port) = sms_stub().await;
    let app = spawn_app_with(b, |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{smtp_port}"));
        c.mail_from = "Souk <noreply@souk.test>".into();
        c.sms_url = Some(format!("http://127.0.0.1:{sms_port}/send?to={{to}}&text={{text}}"));
        c.sms_auth = Some("Bearer sms-secret".into());
    })
    .await;
    let op = operator_with_agreement(&app).await;
    let (seller_c, org) = seller(&app, &op, "owner@acme.example", "intl").await;
    // The owner binds a phone: a code goes to it by SMS, and a wrong code is refused.
    bind_phone(&app, &seller_c, &sms, "+86 138 0000 0001").await;
    // A second member sees the organization's messages in their inbox, but is not its contact.
    let (member, _) = app.user("member@acme.example", "intl").await;
    let res = app
        .post(&seller_c, &format!("/api/v1/orgs/{org}/members"), json!({"email": "member@acme.example", "role": "member"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    publish(&app, &seller_c, &op, &org, "saas", content("Uptime Radar", "Watches sites", "devops", 1000, false)).await;

    let inbox = |c: reqwest::Client| {
        let app = &app;
        async move { app.get(&c, "/api/v1/me/messages").await.json::<Value>().await.unwrap() }
    };
    let review = |v: &Value| v["items"].as_array().unwrap().iter().find(|m| m["category"] == "product_review").cloned();
    eventually("the review result in the owner's inbox", || async { review(&inbox(seller_c.clone()).await).is_some() }).await;
    let m = review(&inbox(seller_c.clone()).await).unwrap();
    assert_eq!(m["subject"], "Uptime Radar: review approved");
    assert_eq!(m["org_id"], org.as_str());
    assert!(m["read_at"].is_null());
    eventually("and in the member's", || async { review(&inbox(member.clone()).await).is_some() }).await;

    // Email to the owner's own address: the first try was refused, the retry delivers it.
    let mails_for = |subject: &str| {
        sink.lock().unwrap().mails.iter().filter(|m| m.data.contains(&format!("Subject: {subject}"))).cloned().collect::<Vec<_>>()
    };
    for _ in 0..100 {
        if !mails_for("Uptime Radar: review approved").is_empty() {
            break;
        }
        app.clock.advance(Duration::seconds(15));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mails = mails_for("Uptime Radar: review approved");
    assert_eq!(mails.len(), 1, "exactly one copy");
    let mail = &mails[0];
    assert_eq!(mail.to, vec!["<owner@acme.example>"]);
    assert_eq!(mail.from, "<noreply@souk.test>");
    assert!(mail.data.contains("text/plain") && mail.data.contains("text/html"), "{}", mail.data);
    assert!(mail.data.contains("@souk>"), "a Message-ID naming the send");
    let sends = || async {
        app.get(&seller_c, &format!("/api/v1/orgs/{org}/message-sends")).await.json::<Value>().await.unwrap()["items"]
            .as_array()
            .unwrap()
            .clone()
    };
    for _ in 0..100 {
        if sends().await.iter().all(|s| s["status"] == "sent") {
            break;
        }
        app.clock.advance(Duration::seconds(15));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let items = sends().await;
    assert!(items.iter().all(|s| s["status"] == "sent"), "{items:?}");
    let retried: Vec<&Value> = items.iter().filter(|s| s["attempts"].as_i64() >= Some(2)).collect();
    assert_eq!(retried.len(), 1, "the refused email was retried: {items:?}");
    assert!(retried[0]["last_error"].as_str().unwrap().contains("451"));
    assert!(items.iter().all(|s| s["address"] != "member@acme.example"), "only the contact is emailed");
    assert_eq!(sink.lock().unwrap().mails.len(), items.iter().filter(|s| s["channel"] == "email").count());
    let mut ids: Vec<String> = sink
        .lock()
        .unwrap()
        .mails
        .iter()
        .filter_map(|m| m.data.lines().find(|l| l.to_ascii_lowercase().starts_with("message-id:")).map(str::to_owned))
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no email sent twice");

    // SMS to the owner's phone through the gateway, with its credentials.
    eventually("the SMS", || async {
        sms.lock().unwrap().iter().any(|(_, b, _)| b["text"].as_str().is_some_and(|t| t.contains("Uptime Radar")))
    })
    .await;
    {
        let got = sms.lock().unwrap();
        let (query, body, auth) = got.iter().find(|(_, b, _)| b["text"].as_str().unwrap().contains("Uptime Radar")).unwrap();
        assert_eq!(body["to"], "+8613800000001");
        assert!(query.starts_with("to=%2B8613800000001&text="), "{query}");
        assert_eq!(auth, "Bearer sms-secret");
    }

    // Read one, then all; the badge on the pages follows.
    let before = inbox(seller_c.clone()).await["unread_count"].as_i64().unwrap();
    assert!(before >= 3, "verification, seller account and review: {before}");
    let page = app.get(&seller_c, "/messages").await.text().await.unwrap();
    assert!(page.contains(&format!("id=\"unread-badge\">{before}<")), "{page}");
    assert!(page.contains("Uptime Radar: review approved"));
    let id = m["id"].as_str().unwrap();
    let res = app.post(&seller_c, &format!("/api/v1/me/messages/{id}/read"), json!({})).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(inbox(seller_c.clone()).await["unread_count"].as_i64(), Some(before - 1));
    let only: Value = app.get(&seller_c, "/api/v1/me/messages?category=product_review").await.json().await.unwrap();
    assert!(only["items"].as_array().unwrap().iter().all(|m| m["category"] == "product_review"));
    let res = app.get(&seller_c, "/api/v1/me/messages?category=nonsense").await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    // Another person cannot mark this member's message.
    let res = app.post(&member, &format!("/api/v1/me/messages/{id}/read"), json!({})).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let html = app.get(&seller_c, "/messages").await.text().await.unwrap();
    let token = csrf(&html);
    let res =
        seller_c.post(app.url("/messages")).form(&[("_csrf", token.as_str()), ("action", "read_all")]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(inbox(seller_c.clone()).await["unread_count"], 0);
    assert!(!app.get(&seller_c, "/messages").await.text().await.unwrap().contains("unread-badge"));
    assert!(inbox(member.clone()).await["unread_count"].as_i64() >= Some(1), "the member's inbox is their own");
}

async fn a_subscriptions_life_is_told_to_its_buyer(b: Backend) {
    let app = spawn_app(b).await;
    let op = operator_with_agreement(&app).await;
    let (seller_c, seller_org) = seller(&app, &op, "seller@acme.example", "cn").await;
    let product =
        publish(&app, &seller_c, &op, &seller_org, "saas", content("Backup Box", "Backups", "devops", 1000, false)).await;
    let (buyer, borg) = verified_buyer(&app, &op, "buyer@example.com", "cn").await;
    app.post(
        &op,
        &format!("/api/v1/admin/wallets/{borg}/top-ups"),
        json!({"currency": "CNY", "amount_minor": 100_000, "reason": "t"}),
    )
    .await;
    let page: Value = app.get(&client(), &format!("/api/v1/storefront/cn/products/{product}")).await.json().await.unwrap();
    let plan = page["plans"][0]["id"].as_str().unwrap().to_owned();
    let buy = || async {
        let res = app.post(&buyer, &format!("/api/v1/orgs/{borg}/orders"), json!({"product_id": product, "plan_id": plan})).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json::<Value>().await.unwrap()
    };
    // Signed in afresh each time: the clock travels past sessions' lifetime.
    let subjects = || async {
        let c = client();
        app.post(&c, "/api/v1/auth/signin", json!({ "email": "buyer@example.com", "password": PASSWORD })).await;
        let inbox: Value = app.get(&c, "/api/v1/me/messages?limit=100").await.json().await.unwrap();
        inbox["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{inbox}"))
            .iter()
            .map(|m| (m["category"].as_str().unwrap().to_owned(), m["subject"].as_str().unwrap().to_owned()))
            .collect::<Vec<_>>()
    };
    let has = |category: &'static str| {
        let subjects = &subjects;
        move || async move { subjects().await.iter().any(|(c, _)| c == category) }
    };

    // Paid, then unsubscribed at once: refunded in full under the no-reason terms.
    let first = buy().await;
    // Written in the order's own commit, not by the dispatcher later.
    assert!(has("order_paid")().await, "the order's answer comes with its message");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'order.paid'").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM message_sends WHERE category = 'order_paid'").await, 1, "and its email");
    let order_id = first["id"].as_str().unwrap();
    assert!(
        subjects().await.iter().any(|(_, s)| s == &format!("订单 {order_id} 已支付")),
        "in the buyer's language (cn site): {:?}",
        subjects().await
    );
    let sub = first["subscription_id"].as_str().unwrap();
    let res = app.post(&buyer, &format!("/api/v1/orgs/{borg}/subscriptions/{sub}/unsubscribe"), json!({})).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    eventually("refund", has("refund")).await;
    assert!(subjects().await.iter().any(|(c, s)| c == "refund" && s == "退款 ¥70.00"), "{:?}", subjects().await);

    // A second purchase runs to its end: reminded 7 days ahead, then expired.
    let second = buy().await;
    let sub = second["subscription_id"].as_str().unwrap().to_owned();
    let res = app.post(&seller_c, &format!("/api/v1/orgs/{seller_org}/sales/subscriptions/{sub}/fulfilled"), json!({})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(has("provisioned")().await, "told in the provisioning's own commit");
    let subs: Value = app.get(&buyer, &format!("/api/v1/orgs/{borg}/subscriptions")).await.json().await.unwrap();
    let end = subs["items"].as_array().unwrap().iter().find(|s| s["id"] == sub.as_str()).unwrap()["term_end"].clone();
    let end: chrono::DateTime<chrono::Utc> = serde_json::from_value(end).unwrap();
    app.clock.set(end - Duration::days(7) + Duration::hours(1));
    souk_server::subscriptions::tick(&app.state).await.unwrap();
    eventually("expiry reminder", has("expiry_reminder")).await;
    assert!(subjects().await.iter().any(|(_, s)| s == "Backup Box 将在 7 天后到期"), "{:?}", subjects().await);
    app.clock.set(end + Duration::hours(1));
    souk_server::subscriptions::tick(&app.state).await.unwrap();
    eventually("expired", has("expired")).await;
    // Nothing told twice, however often the scheduler runs.
    souk_server::subscriptions::tick(&app.state).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let all = subjects().await;
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), all.len(), "{all:?}");
}

async fn recipients_are_set_per_category_with_confirmed_contacts(b: Backend) {
    let (sink, smtp_port) = smtp_sink(0).await;
    let (sms, sms_port) = sms_stub().await;
    let app = spawn_app_with(b, |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{smtp_port}"));
        c.sms_url = Some(format!("http://127.0.0.1:{sms_port}/send"));
    })
    .await;
    let op = operator_with_agreement(&app).await;
    let (seller_c, org) = seller(&app, &op, "boss@acme.example", "intl").await;
    souk_store::Conn::execute(
        &mut app.db.clone(),
        souk_store::q("UPDATE accounts SET phone = '+8613800000002' WHERE email = 'boss@acme.example'"),
    )
    .await
    .unwrap();
    let (_member, me) = app.user("dev@acme.example", "intl").await;
    let member_id = me["account"]["id"].as_str().unwrap().to_owned();
    app.post(&seller_c, &format!("/api/v1/orgs/{org}/members"), json!({"email": "dev@acme.example", "role": "member"})).await;

    // An extra address, confirmed by the code sent to it.
    let contacts = format!("/api/v1/orgs/{org}/message-contacts");
    let res = app.post(&seller_c, &contacts, json!({"channel": "email", "address": "not an address"})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = app.post(&seller_c, &contacts, json!({"channel": "email", "address": "Ops@Acme.example"})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let contact: Value = res.json().await.unwrap();
    assert_eq!((contact["address"].as_str(), contact["confirmed"].as_bool()), (Some("ops@acme.example"), Some(false)));
    let id = contact["id"].as_str().unwrap().to_owned();
    let code = || {
        sink.lock().unwrap().mails.iter().filter(|m| m.to == vec!["<ops@acme.example>"]).find_map(|m| {
            m.data.lines().find_map(|l| l.strip_prefix("Subject: Your Souk confirmation code: ").map(|c| c.trim().to_owned()))
        })
    };
    eventually("the code arrives", || async { code().is_some() }).await;
    let code = code().unwrap();
    assert_eq!(code.len(), 6);
    let settings = format!("/api/v1/orgs/{org}/message-settings");
    // Unconfirmed, it cannot be a recipient yet.
    let res = app.put_json(&seller_c, &format!("{settings}/product_review"), json!({"email": [{"contact_id": id}]})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let res = app.post(&seller_c, &format!("{contacts}/{id}/confirm"), json!({"code": wrong})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = app.post(&seller_c, &format!("{contacts}/{id}/confirm"), json!({"code": code})).await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    assert_eq!(res.json::<Value>().await.unwrap()["confirmed"], true);

    // Review results go to the contact and the member by email, and not by SMS.
    let res = app
        .put_json(
            &seller_c,
            &format!("{settings}/product_review"),
            json!({"email": [{"contact_id": id}, {"account_id": member_id}], "sms_muted": true}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    // Billing cannot be muted; a stranger is not a recipient.
    let res = app.put_json(&seller_c, &format!("{settings}/refund"), json!({"email_muted": true})).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = app
        .put_json(&seller_c, &format!("{settings}/refund"), json!({"email": [{"account_id": "acct_01jd0000000000000000000000"}]}))
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = app.put_json(&seller_c, &format!("{settings}/no_such_category"), json!({})).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let all: Value = app.get(&seller_c, &settings).await.json().await.unwrap();
    let review = all["items"].as_array().unwrap().iter().find(|s| s["category"] == "product_review").unwrap().clone();
    assert_eq!((review["sms_muted"].as_bool(), review["email"].as_array().map(Vec::len)), (Some(true), Some(2)));
    assert_eq!(all["items"].as_array().unwrap().iter().find(|s| s["category"] == "refund").unwrap()["mutable"], false);

    publish(&app, &seller_c, &op, &org, "saas", content("Log Lake", "Logs", "devops", 1000, false)).await;
    let to_of = |subject: &str| {
        let mut to: Vec<String> = sink
            .lock()
            .unwrap()
            .mails
            .iter()
            .filter(|m| m.data.contains(&format!("Subject: {subject}")))
            .flat_map(|m| m.to.clone())
            .collect();
        to.sort();
        to
    };
    eventually("the review result by email", || async { to_of("Log Lake: review approved").len() >= 2 }).await;
    assert_eq!(
        to_of("Log Lake: review approved"),
        vec!["<dev@acme.example>", "<ops@acme.example>"],
        "not the owner: recipients are set"
    );
    // Other categories still reach the owner's own email and phone (nothing set for them).
    assert_eq!(to_of("Your seller account: approved"), vec!["<boss@acme.example>"]);

    // The same settings on the page: a member chosen for top-up emails; billing stays unmutable.
    let page_url = format!("/orgs/{org}/message-settings");
    let html = app.get(&seller_c, &page_url).await.text().await.unwrap();
    assert!(html.contains("id=\"settings-product_review\"") && html.contains("ops@acme.example"), "{html}");
    assert!(!html.contains("id=\"settings-confirmation\""), "codes are not a category one sets");
    assert!(html.contains("id=\"message-sends\"") && html.contains("Your Souk confirmation code"), "the delivery log");
    let at = html.find("name=\"_csrf\" value=\"").unwrap() + 20;
    let token = html[at..].split('"').next().unwrap().to_owned();
    let member_value = format!("member:{member_id}");
    let res = seller_c
        .post(app.url(&page_url))
        .form(&[("_csrf", token.as_str()), ("category", "top_up"), ("action", "save"), ("email", member_value.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let all: Value = app.get(&seller_c, &settings).await.json().await.unwrap();
    let top_up = all["items"].as_array().unwrap().iter().find(|s| s["category"] == "top_up").unwrap().clone();
    assert_eq!(top_up["email"], json!([{"account_id": member_id, "contact_id": null}]));
    let res = seller_c
        .post(app.url(&page_url))
        .form(&[("_csrf", token.as_str()), ("category", "refund"), ("action", "save"), ("email_muted", "on")])
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("id=\"settings-message\""), "refused with a message on the page");

    // A top-up (billing; SMS not set) reaches the owner's phone and the chosen member's email;
    // the review reached no phone (muted).
    let res = app
        .post(
            &op,
            &format!("/api/v1/admin/wallets/{org}/top-ups"),
            json!({"currency": "USD", "amount_minor": 5_000, "reason": "t"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let texts =
        || sms.lock().unwrap().iter().map(|(_, b, _)| b["text"].as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>();
    eventually("the top-up SMS", || async { texts().iter().any(|t| t.contains("$50.00 added to your wallet")) }).await;
    eventually("the top-up email to the chosen member", || async {
        to_of("$50.00 added to your wallet") == vec!["<dev@acme.example>"]
    })
    .await;
    assert!(!texts().iter().any(|t| t.contains("Log Lake")), "SMS muted for reviews: {:?}", texts());
}

async fn a_server_killed_mid_send_loses_no_email_and_sends_none_twice(b: Backend) {
    let (sink, smtp_port) = smtp_sink_with(Sink { stall: 1, ..Sink::default() }).await;
    let smtp = format!("smtp://127.0.0.1:{smtp_port}");
    let first = spawn_app_with(b, |c| c.smtp_url = Some(smtp.clone())).await;
    let (op, _) = first.operator("op@example.com").await;
    let (_, me) = first.user("payer@example.com", "intl").await;
    let org = me["account"]["personal_org_id"].as_str().unwrap().to_owned();
    let res = first
        .post(
            &op,
            &format!("/api/v1/admin/wallets/{org}/top-ups"),
            json!({"currency": "USD", "amount_minor": 1_234, "reason": "t"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap());
    // The email's data has reached the SMTP server, which has not answered: kill the server now.
    eventually("mid-send", || async { sink.lock().unwrap().stalled == 1 }).await;
    let (testdb, clock) = (first.testdb.clone(), first.clock.clone());
    drop(first);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // Another node takes the send over once the dead one's lease runs out.
    let second = spawn_node_with(testdb, clock, |c| c.smtp_url = Some(smtp.clone())).await;
    second.clock.advance(Duration::seconds(120));
    eventually("delivered by the other node", || async { !sink.lock().unwrap().mails.is_empty() }).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mails = sink.lock().unwrap().mails.clone();
    assert_eq!(mails.len(), 1, "exactly once");
    assert!(mails[0].data.contains("Subject: $12.34 added to your wallet"), "{}", mails[0].data);
    assert_eq!(mails[0].to, vec!["<payer@example.com>"]);
    let sent = second.count("SELECT COUNT(*) AS n FROM message_sends WHERE status = 'sent' AND attempts = 1").await;
    assert_eq!(sent, 1, "the killed attempt recorded nothing; the retry recorded the send");
}

async fn a_phone_is_bound_on_the_account_page_with_a_code(b: Backend) {
    let (sms, sms_port) = sms_stub().await;
    let app = spawn_app_with(b, |c| c.sms_url = Some(format!("http://127.0.0.1:{sms_port}/send"))).await;
    let (c, _) = app.user("phone@example.com", "cn").await;
    let form = |fields: Vec<(&'static str, String)>| {
        let (app, c) = (&app, c.clone());
        async move {
            let token = csrf(&app.get(&c, "/account").await.text().await.unwrap());
            let mut all = vec![("_csrf", token)];
            all.extend(fields);
            let res = c.post(app.url("/account/phone")).form(&all).send().await.unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };
    let page = app.get(&c, "/account").await.text().await.unwrap();
    assert!(page.contains("未绑定手机"), "the page speaks the account's language: {page}");

    // A number that is not in international form is refused on the form.
    let (status, page) = form(vec![("action", "send".into()), ("phone", "13800000000".into())]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"e-phone\""), "{page}");

    let (status, page) = form(vec![("action", "send".into()), ("phone", "+86 139 0000 0009".into())]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("data-testid=\"pending-phone\">+8613900000009<"), "{page}");
    let code_sent = || {
        sms.lock().unwrap().iter().find(|(_, b, _)| b["to"] == "+8613900000009").and_then(|(_, b, _)| {
            b["text"].as_str()?.split(|ch: char| !ch.is_ascii_digit()).find(|w| w.len() == 6).map(str::to_owned)
        })
    };
    eventually("the code by SMS", || async { code_sent().is_some() }).await;
    let code = code_sent().unwrap();
    assert!(sms.lock().unwrap()[0].1["text"].as_str().unwrap().contains("验证码"), "the SMS in Chinese");

    // Five wrong tries use the code up, even the right one after them.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let (status, _) = form(vec![("action", "confirm".into()), ("code", wrong.into())]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (status, _) = form(vec![("action", "confirm".into()), ("code", code.clone())]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let phone: Value = app.get(&c, "/api/v1/me/phone").await.json().await.unwrap();
    assert!(phone["phone"].is_null(), "{phone}");

    // A new code, and it binds the number; the other organization's SMS fall back to it.
    sms.lock().unwrap().clear();
    let (status, _) = form(vec![("action", "send".into()), ("phone", "+8613900000009".into())]).await;
    assert_eq!(status, StatusCode::OK);
    eventually("a new code by SMS", || async { code_sent().is_some() }).await;
    let (status, page) = form(vec![("action", "confirm".into()), ("code", code_sent().unwrap())]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("data-testid=\"bound-phone\">+8613900000009<"), "{page}");
    let bound = app.count("SELECT COUNT(*) AS n FROM accounts WHERE phone = '+8613900000009'").await;
    assert_eq!(bound, 1);

    // A code does not outlive its 30 minutes.
    let (status, _) = form(vec![("action", "send".into()), ("phone", "+8613900000010".into())]).await;
    assert_eq!(status, StatusCode::OK);
    app.clock.advance(Duration::minutes(31));
    let (status, _) = form(vec![("action", "confirm".into()), ("code", "123456".into())]).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, page) = form(vec![("action", "remove".into())]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("未绑定手机"), "{page}");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM accounts WHERE phone IS NOT NULL").await, 0);
}
