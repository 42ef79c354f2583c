//! The message center (seed §4): the events other modules write to the outbox become messages
//! in each member's inbox, and emails and SMS to the organization's recipients, written in one
//! transaction per event (so a retried dispatch adds nothing) and then sent by their own
//! outbox workers, retried on failure and logged send by send.
//!
//! Recipients: every member of the organization sees its messages in their inbox. Email and
//! SMS go to the organization's own contact: its owners' bound email and phone. (Recipients set
//! per category in the message center come next; this is the fallback the seed asks for when
//! none are set.) Operators' messages (review deadlines, failing endpoints) go to every
//! operator.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use souk_core::id::{ContactId, EventId, MessageId, OrgId, SendId};
use souk_core::identity::OrgRole;
use souk_core::messages::{Category, render};
use souk_core::site::Lang;
use souk_store::messages::{self as store, NewMessage, NewSend};
use souk_store::outbox::{self, Event};
use souk_store::{Conn, Tx, accounts, orgs, products};

use crate::AppState;
use crate::error::{Error, Result};
use crate::workers::{Attempt, Claim, Failure, Handler, HandlerFuture, Worker};

/// The sender when none is configured.
pub const DEFAULT_FROM: &str = "Souk <noreply@souk.invalid>";
/// The events that become messages.
pub const SOURCE_TOPICS: &[&str] = &[
    "verification.decided",
    "seller.decided",
    "seller.enforcement",
    "product.review_decided",
    "shop.review_decided",
    "product.review_sla_at_risk",
    "shop.review_sla_at_risk",
    "subscription.provisioned",
    "order.fulfillment_failed",
    "wallet.topped_up",
    "license.pool_low",
    "integration.failing",
    "order.paid",
    "subscription.expiry_reminder",
    "subscription.auto_renew_failed",
    "subscription.expired",
    "subscription.released",
    "subscription.refunded",
];
pub const EMAIL_TOPIC: &str = "message.email";
pub const SMS_TOPIC: &str = "message.sms";
/// How long the email and SMS senders gather what a burst queued before claiming it.
const SEND_LINGER: std::time::Duration = std::time::Duration::from_millis(50);
/// An event older than this when first dispatched is not news (an upgrade finding old events):
/// it is passed over.
pub const STALE_DAYS: i64 = 7;
/// Inbox messages are kept this long.
pub const RETENTION_DAYS: i64 = 365;

/// Who a message is for.
enum Audience {
    Org(OrgId),
    Operators,
}

/// A message to render for each recipient in their language.
struct Draft {
    audience: Audience,
    category: Category,
    vars: BTreeMap<String, String>,
}

fn text(p: &Value, k: &str) -> String {
    p.get(k).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn vars(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

/// The product's name as buyers see it (its live revision's), or its id if never published.
async fn product_name(c: &mut impl Conn, product_id: &str) -> String {
    match products::live_name(c, product_id).await {
        Ok(Some(name)) => name,
        _ => product_id.to_owned(),
    }
}

/// The product's name and whether the subscription is a trial.
async fn subscription_product(c: &mut impl Conn, subscription_id: &str) -> (String, bool) {
    match products::subscription_product_name(c, subscription_id).await {
        Ok(Some((name, trial))) => (name.unwrap_or_default(), trial),
        _ => (String::new(), false),
    }
}

/// A timestamp in the payload as a day (`2026-04-02`).
fn day(p: &Value, k: &str) -> String {
    p.get(k)
        .and_then(|v| serde_json::from_value::<DateTime<Utc>>(v.clone()).ok())
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn amount(p: &Value, minor: &str) -> String {
    crate::pages::money(p.get(minor).and_then(Value::as_i64).unwrap_or(0), &text(p, "currency"))
}

/// A state the message names: the core puts it in the reader's language.
fn outcome(status: &str) -> String {
    status.to_owned()
}

fn reason_line(p: &Value) -> String {
    let reason = p.get("reason").and_then(Value::as_str).map(str::to_owned).or_else(|| {
        p.get("reasons").and_then(Value::as_array).map(|rs| {
            rs.iter()
                .map(|r| match (r.get("field").and_then(Value::as_str), r.get("reason").and_then(Value::as_str)) {
                    (Some(f), Some(why)) => format!("{f}: {why}"),
                    _ => r.as_str().map(str::to_owned).unwrap_or_else(|| r.to_string()),
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
    });
    match reason.filter(|r| !r.is_empty()) {
        Some(r) => format!(" {r}"),
        None => String::new(),
    }
}

fn org(p: &Value, k: &str) -> Option<OrgId> {
    p.get(k).and_then(Value::as_str).and_then(|s| s.parse().ok())
}

/// What an event tells whom. Events of other topics, or naming no one, tell no one.
async fn drafts(c: &mut impl Conn, topic: &str, p: &Value) -> Vec<Draft> {
    let mut out = Vec::new();
    let mut push = |audience: Option<Audience>, category: Category, v: BTreeMap<String, String>| {
        if let Some(audience) = audience {
            out.push(Draft { audience, category, vars: v });
        }
    };
    match topic {
        "verification.decided" => {
            let name = match org(p, "org_id") {
                Some(o) => orgs::get(c, &o).await.map(|o| o.name).unwrap_or_default(),
                None => String::new(),
            };
            push(
                org(p, "org_id").map(Audience::Org),
                Category::Verification,
                vars(&[("org", name), ("outcome", outcome(&text(p, "status"))), ("reason_line", reason_line(p))]),
            );
        }
        "seller.decided" | "seller.enforcement" => {
            let status = if topic == "seller.decided" { text(p, "status") } else { text(p, "action") };
            let name = match org(p, "org_id") {
                Some(o) => orgs::get(c, &o).await.map(|o| o.name).unwrap_or_default(),
                None => String::new(),
            };
            push(
                org(p, "org_id").map(Audience::Org),
                Category::SellerAccount,
                vars(&[("org", name), ("outcome", outcome(&status)), ("reason_line", reason_line(p))]),
            );
        }
        "product.review_decided" => {
            let product = product_name(c, &text(p, "product_id")).await;
            push(
                org(p, "org_id").map(Audience::Org),
                Category::ProductReview,
                vars(&[("product", product), ("outcome", outcome(&text(p, "status"))), ("reason_line", reason_line(p))]),
            );
        }
        "shop.review_decided" => push(
            org(p, "org_id").map(Audience::Org),
            Category::ShopReview,
            vars(&[("outcome", outcome(&text(p, "status"))), ("reason_line", reason_line(p))]),
        ),
        "product.review_sla_at_risk" | "shop.review_sla_at_risk" => {
            let subject = match p.get("product_id").and_then(Value::as_str) {
                Some(pid) => product_name(c, pid).await,
                None => text(p, "org_id"),
            };
            push(
                Some(Audience::Operators),
                Category::ReviewSla,
                vars(&[("subject", subject), ("since", text(p, "submitted_at")), ("deadline", text(p, "sla_due_at"))]),
            );
        }
        "subscription.provisioned" => {
            let (product, _) = subscription_product(c, &text(p, "subscription_id")).await;
            push(org(p, "buyer_org_id").map(Audience::Org), Category::Provisioned, vars(&[("product", product)]));
        }
        "order.fulfillment_failed" => {
            let (product, _) = subscription_product(c, &text(p, "subscription_id")).await;
            let v = vars(&[("product", product), ("order", text(p, "order_id"))]);
            push(org(p, "buyer_org_id").map(Audience::Org), Category::ProvisioningFailed, v.clone());
            push(org(p, "seller_org_id").map(Audience::Org), Category::ProvisioningFailed, v);
        }
        "wallet.topped_up" => {
            push(org(p, "org_id").map(Audience::Org), Category::TopUp, vars(&[("amount", amount(p, "amount_minor"))]));
        }
        "order.paid" => {
            // The order names its product; an event an earlier version left does not.
            let product = match p.get("product_name").and_then(Value::as_str) {
                Some(name) => name.to_owned(),
                None => product_name(c, &text(p, "product_id")).await,
            };
            push(
                org(p, "buyer_org_id").map(Audience::Org),
                Category::OrderPaid,
                vars(&[("order", text(p, "order_id")), ("product", product), ("amount", amount(p, "total_minor"))]),
            );
        }
        "subscription.expiry_reminder" => {
            let (product, trial) = subscription_product(c, &text(p, "subscription_id")).await;
            let days = p.get("days").and_then(Value::as_i64).unwrap_or(0).to_string();
            push(
                org(p, "buyer_org_id").map(Audience::Org),
                if trial { Category::TrialEnding } else { Category::ExpiryReminder },
                vars(&[("product", product), ("days", days), ("expires", day(p, "expires_at"))]),
            );
        }
        "subscription.auto_renew_failed" => {
            let (product, _) = subscription_product(c, &text(p, "subscription_id")).await;
            push(
                org(p, "buyer_org_id").map(Audience::Org),
                Category::RenewalFailed,
                vars(&[("product", product), ("reason", text(p, "reason")), ("expires", day(p, "expires_at"))]),
            );
        }
        "subscription.expired" => {
            let (product, _) = subscription_product(c, &text(p, "subscription_id")).await;
            push(
                org(p, "buyer_org_id").map(Audience::Org),
                Category::Expired,
                vars(&[("product", product), ("release_at", day(p, "release_at"))]),
            );
        }
        "subscription.released" => {
            let (product, _) = subscription_product(c, &text(p, "subscription_id")).await;
            push(org(p, "buyer_org_id").map(Audience::Org), Category::Released, vars(&[("product", product)]));
        }
        "subscription.refunded" => push(
            org(p, "buyer_org_id").map(Audience::Org),
            Category::Refund,
            vars(&[("amount", amount(p, "amount_minor")), ("reason", text(p, "reason"))]),
        ),
        "license.pool_low" => {
            let product = product_name(c, &text(p, "product_id")).await;
            let available = p.get("available").and_then(Value::as_i64).unwrap_or(0).to_string();
            push(
                org(p, "seller_org_id").map(Audience::Org),
                Category::LicensePoolLow,
                vars(&[("product", product), ("available", available)]),
            );
        }
        "integration.failing" => {
            let product = product_name(c, &text(p, "product_id")).await;
            let v = vars(&[("product", product), ("endpoint", text(p, "endpoint")), ("since", text(p, "failing_since"))]);
            push(org(p, "seller_org_id").map(Audience::Org), Category::EndpointFailing, v.clone());
            push(Some(Audience::Operators), Category::EndpointFailing, v);
        }
        _ => {}
    }
    out
}

/// Where one rendered message goes: inboxes (org, account, language), and email and SMS
/// addresses (org, address, language).
#[derive(Default)]
struct Reach {
    inbox: Vec<(String, String, Lang)>,
    email: Vec<(String, String, Lang)>,
    sms: Vec<(String, String, Lang)>,
}

/// The addresses set for an organization's category and channel, or its own contact (its
/// owners' bound email or phone) when none are set; nobody when the channel is muted.
#[allow(clippy::too_many_arguments)]
async fn addresses(
    db: &mut impl Conn,
    org: &OrgId,
    category: Category,
    channel: &str,
    members: &[(OrgRole, accounts::Account)],
    recipients: &[(String, store::Target)],
    muted: &[String],
    site_lang: Lang,
) -> Result<Vec<(String, Lang)>> {
    if category.mutable() && muted.iter().any(|m| m == channel) {
        return Ok(Vec::new());
    }
    let bound = |a: &accounts::Account| if channel == "sms" { a.phone.clone() } else { Some(a.email.clone()) };
    let targets: Vec<&store::Target> = recipients.iter().filter(|(ch, _)| ch == channel).map(|(_, t)| t).collect();
    let mut out = Vec::new();
    if targets.is_empty() {
        for (role, a) in members {
            if *role == OrgRole::Owner
                && let Some(addr) = bound(a)
            {
                out.push((addr, a.lang));
            }
        }
        return Ok(out);
    }
    for t in targets {
        match t {
            store::Target::Member(id) => {
                // Someone who left the organization receives nothing more.
                if let Some((_, a)) = members.iter().find(|(_, a)| a.id.as_str() == id.as_str())
                    && let Some(addr) = bound(a)
                {
                    out.push((addr, a.lang));
                }
            }
            store::Target::Contact(id) => {
                if let Some(c) = store::get_contact(db, org.as_str(), id).await?.filter(|c| c.confirmed_at.is_some()) {
                    out.push((c.address, site_lang));
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    Ok(out)
}

async fn reach(db: &mut impl Conn, audience: &Audience, category: Category) -> Result<Reach> {
    let mut out = Reach::default();
    match audience {
        Audience::Org(org) => {
            // Two reads whatever the channels: the organization's site with its members, and the
            // category's mutes with its recipients.
            let (site, members) = accounts::members_of(db, org).await?.ok_or(souk_store::StoreError::NotFound)?;
            let site_lang = site.default_lang();
            let (muted, recipients) = store::reach_settings(db, org.as_str(), category.as_str()).await?;
            if !(category.mutable() && muted.iter().any(|m| m == "inbox")) {
                out.inbox = members.iter().map(|(_, a)| (org.to_string(), a.id.to_string(), a.lang)).collect();
            }
            for channel in ["email", "sms"] {
                let list: Vec<(String, String, Lang)> =
                    addresses(db, org, category, channel, &members, &recipients, &muted, site_lang)
                        .await?
                        .into_iter()
                        .map(|(addr, lang)| (org.to_string(), addr, lang))
                        .collect();
                if channel == "sms" {
                    out.sms = list;
                } else {
                    out.email = list;
                }
            }
        }
        Audience::Operators => {
            for a in accounts::operators(db).await? {
                out.inbox.push((a.personal_org_id.to_string(), a.id.to_string(), a.lang));
                out.email.push((a.personal_org_id.to_string(), a.email.clone(), a.lang));
            }
        }
    }
    Ok(out)
}

/// Queues one email or SMS in the caller's transaction, once per source and address.
#[allow(clippy::too_many_arguments)]
async fn queue_send(
    tx: &mut Tx,
    now: DateTime<Utc>,
    org_id: &str,
    category: Category,
    channel: &str,
    address: &str,
    m: &souk_core::messages::Rendered,
    source: &str,
) -> Result<()> {
    let send_id = SendId::generate(now);
    let (body_text, body_html, topic) = match channel {
        "sms" => (format!("【Souk】{}", m.subject), None, SMS_TOPIC),
        _ => (m.text.clone(), Some(m.html.as_str()), EMAIL_TOPIC),
    };
    let new = NewSend {
        id: send_id.as_str(),
        org_id,
        category: category.as_str(),
        channel,
        address,
        subject: &m.subject,
        body_text: &body_text,
        body_html,
        source_event_id: source,
    };
    if store::insert_send(tx, now, new).await? {
        outbox::enqueue(tx, now, topic, send_id.as_str(), &json!({ "send_id": send_id })).await?;
    }
    Ok(())
}

/// Turns an event into messages and sends, all in one transaction with the attempt's record.
/// Safe to run again: each message and send exists once per event and recipient.
async fn dispatch(state: &AppState, attempt: &Attempt) -> Result<()> {
    let event = &attempt.event;
    let now = state.clock.now();
    if event.created_at < now - Duration::days(STALE_DAYS) {
        return Ok(());
    }
    let mut db = state.db.clone();
    let planned = plan(&mut db, &event.topic, &event.payload).await?;
    let mut tx = state.db.begin().await?;
    write(&mut tx, now, &planned, event.id.as_str()).await?;
    attempt.done(tx).await?;
    Ok(())
}

/// Tells whom an event concerns what happened, in `tx`, the transaction of the change itself,
/// instead of through the outbox and the dispatcher: the messages and sends (and the sends'
/// outbox events) commit with the change or not at all. For the events of a purchase (an
/// order paid, a subscription provisioned), where the dispatcher's event, claim, attempt and
/// commit cost more than the messages themselves (BENCHMARKS.md, purchase item 9). What it
/// reads, it reads in `tx`: a second connection held while the first waits could exhaust the
/// pool. Rendering cannot fail, so a message never fails its change; a database error fails
/// both, as it would the change alone. The dispatcher still takes these topics, for events an
/// earlier version left in the outbox.
pub async fn announce(tx: &mut Tx, now: DateTime<Utc>, topic: &str, payload: &Value) -> Result<()> {
    let planned = plan(tx, topic, payload).await?;
    // Stands for the event the dispatcher would have had: each message and send once per source.
    let source = EventId::generate(now);
    write(tx, now, &planned, source.as_str()).await
}

/// What an event tells whom, and where each of them is reached.
async fn plan(c: &mut impl Conn, topic: &str, payload: &Value) -> Result<Vec<(Draft, Reach)>> {
    let mut planned = Vec::new();
    for d in drafts(c, topic, payload).await {
        let reach = reach(c, &d.audience, d.category).await?;
        planned.push((d, reach));
    }
    Ok(planned)
}

/// Writes the planned messages (inbox) and sends (email, SMS) of one source event.
async fn write(tx: &mut Tx, now: DateTime<Utc>, planned: &[(Draft, Reach)], source: &str) -> Result<()> {
    for (d, r) in planned {
        for (org_id, account_id, lang) in &r.inbox {
            let m = render(d.category, *lang, &d.vars);
            let id = MessageId::generate(now);
            let new = NewMessage {
                id: id.as_str(),
                org_id,
                account_id,
                category: d.category.as_str(),
                subject: &m.subject,
                body: &m.text,
                source_event_id: source,
            };
            store::insert(tx, now, new).await?;
        }
        for (channel, list) in [("email", &r.email), ("sms", &r.sms)] {
            for (org_id, address, lang) in list {
                let m = render(d.category, *lang, &d.vars);
                queue_send(tx, now, org_id, d.category, channel, address, &m, source).await?;
            }
        }
    }
    Ok(())
}

/// Turns source events into messages (see [`dispatch`]).
struct Dispatcher(AppState);

impl Handler for Dispatcher {
    fn handle<'a>(&'a self, attempt: &'a Attempt) -> HandlerFuture<'a> {
        Box::pin(async move { dispatch(&self.0, attempt).await.map_err(|e| Failure::from(e.message())) })
    }
}

/// Sends emails over SMTP (or to the log), and SMS through the HTTP gateway (or to the log).
pub struct Sender {
    state: AppState,
    smtp: Option<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>>,
    http: reqwest::Client,
}

impl Sender {
    pub fn new(state: AppState) -> Self {
        crate::tls_init();
        let smtp =
            state.config.smtp_url.as_deref().and_then(
                |url| match lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url) {
                    Ok(b) => Some(b.timeout(Some(std::time::Duration::from_secs(30))).build()),
                    Err(e) => {
                        tracing::error!(error = %e, "the SMTP URL is not usable; emails go to the log");
                        None
                    }
                },
            );
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(15)).build().unwrap_or_default();
        Self { state, smtp, http }
    }

    async fn email(&self, s: &store::Send) -> std::result::Result<(), String> {
        use lettre::AsyncTransport;
        use lettre::message::{Mailbox, MultiPart};
        let Some(smtp) = &self.smtp else {
            tracing::info!(to = %s.address, subject = %s.subject, "email (no SMTP configured)");
            return Ok(());
        };
        let from: Mailbox = self.state.config.mail_from.parse().map_err(|e| format!("the sender address: {e}"))?;
        let to: Mailbox = s.address.parse().map_err(|e| format!("the recipient address: {e}"))?;
        let html = s.body_html.clone().unwrap_or_else(|| s.body_text.clone());
        // The send's id names the message, so a receiver can tell a resent copy.
        let message = lettre::Message::builder()
            .from(from)
            .to(to)
            .subject(s.subject.clone())
            .message_id(Some(format!("<{}@souk>", s.id)))
            .multipart(MultiPart::alternative_plain_html(s.body_text.clone(), html))
            .map_err(|e| e.to_string())?;
        smtp.send(message).await.map(|_| ()).map_err(|e| format!("SMTP: {e}"))
    }

    async fn sms(&self, s: &store::Send) -> std::result::Result<(), String> {
        let Some(template) = &self.state.config.sms_url else {
            tracing::info!(to = %s.address, text = %s.body_text, "SMS (no gateway configured)");
            return Ok(());
        };
        let url =
            template.replace("{to}", &urlencoding::encode(&s.address)).replace("{text}", &urlencoding::encode(&s.body_text));
        let mut req = self.http.post(url).json(&json!({ "to": s.address, "text": s.body_text, "id": s.id }));
        if let Some(auth) = &self.state.config.sms_auth {
            req = req.header("authorization", auth);
        }
        let res = req.send().await.map_err(|e| format!("SMS gateway: {e}"))?;
        if res.status().is_success() { Ok(()) } else { Err(format!("SMS gateway answered {}", res.status())) }
    }

    /// Sends a claimed batch: the sends read in one statement and sent together, then those
    /// that went out (or need not: gone, or sent by an earlier attempt) recorded sent with
    /// their events done in one commit. A batch costs a handful of statements instead of five
    /// per message (BENCHMARKS.md, purchase item 10). A failed send is recorded on its own,
    /// and retried on its own.
    async fn deliver(&self, attempts: &[Attempt]) -> Vec<std::result::Result<(), Failure>> {
        let ids: Vec<&str> = attempts.iter().map(|a| send_id(&a.event)).collect();
        let sends = match store::get_sends(&mut self.state.db.clone(), &ids).await {
            Ok(sends) => sends,
            Err(e) => return attempts.iter().map(|_| Err(Failure::from(e.to_string()))).collect(),
        };
        let sent = futures_util::future::join_all(ids.iter().map(|id| async {
            match sends.iter().find(|s| s.id == *id) {
                Some(s) if s.status != "sent" => {
                    let result = if s.channel == "sms" { self.sms(s).await } else { self.email(s).await };
                    result.map(|()| true)
                }
                _ => Ok(false),
            }
        }))
        .await;
        let now = self.state.clock.now();
        let mut results: Vec<std::result::Result<(), Failure>> = Vec::with_capacity(attempts.len());
        let (mut done, mut newly_sent) = (Vec::new(), Vec::new());
        for ((attempt, id), outcome) in attempts.iter().zip(&ids).zip(sent) {
            match outcome {
                Ok(went) => {
                    if went {
                        newly_sent.push(*id);
                    }
                    done.push(attempt);
                    results.push(Ok(()));
                }
                Err(why) => {
                    if let Err(e) = store::record_attempt(&mut self.state.db.clone(), now, id, "pending", Some(&why)).await {
                        tracing::warn!(send = %id, error = %e, "recording a failed send failed");
                    }
                    results.push(Err(Failure::from(why)));
                }
            }
        }
        let recorded = async {
            let mut tx = self.state.db.begin().await?;
            store::record_sent(&mut tx, now, &newly_sent).await?;
            Attempt::done_all(&done, tx).await
        };
        if let Err(e) = recorded.await {
            // The worker records each as failed instead: tried again later.
            let message = e.to_string();
            for (attempt, result) in attempts.iter().zip(results.iter_mut()) {
                if result.is_ok() && done.iter().any(|d| std::ptr::eq(*d, attempt)) {
                    *result = Err(Failure::from(message.clone()));
                }
            }
        }
        results
    }
}

/// The send an email or SMS event is about.
fn send_id(event: &Event) -> &str {
    event.payload.get("send_id").and_then(Value::as_str).unwrap_or(&event.aggregate_id)
}

impl Handler for Sender {
    fn handle<'a>(&'a self, attempt: &'a Attempt) -> HandlerFuture<'a> {
        Box::pin(async move {
            let mut results = self.deliver(std::slice::from_ref(attempt)).await;
            results.pop().unwrap_or(Ok(()))
        })
    }

    fn handle_batch<'a>(&'a self, attempts: &'a [Attempt]) -> crate::workers::BatchFuture<'a> {
        Box::pin(self.deliver(attempts))
    }

    fn given_up<'a>(&'a self, event: &'a Event, error: &'a str) -> HandlerFuture<'a> {
        Box::pin(async move {
            let id = send_id(event);
            store::record_attempt(&mut self.state.db.clone(), self.state.clock.now(), id, "failed", Some(error))
                .await
                .map_err(|e| Failure::from(e.to_string()))
        })
    }
}

/// The dispatcher and the senders, for `serve` and for tests.
pub fn workers(state: &AppState) -> Vec<Worker> {
    let dispatcher = Dispatcher(state.clone());
    let mut d =
        Worker::new(state.db.clone(), state.clock.clone(), "messages.dispatch", Arc::new(dispatcher), &state.config.node_id);
    d.claim = Claim::Any(SOURCE_TOPICS);
    let sender: Arc<dyn Handler> = Arc::new(Sender::new(state.clone()));
    let mut email = Worker::new(state.db.clone(), state.clock.clone(), EMAIL_TOPIC, sender.clone(), &state.config.node_id);
    // Longer than the SMTP timeout, so a slow server is not taken over mid-send.
    email.lease = Duration::seconds(90);
    // Nobody notices an email 50 ms later; claimed one by one as purchases commit, they cost a
    // claim each (BENCHMARKS.md, purchase item 10).
    email.linger = SEND_LINGER;
    email.batched = true;
    let mut sms = Worker::new(state.db.clone(), state.clock.clone(), SMS_TOPIC, sender, &state.config.node_id);
    sms.linger = SEND_LINGER;
    sms.batched = true;
    vec![d, email, sms]
}

/// A member's inbox, newest first, with the unread count.
pub async fn inbox(
    state: &AppState,
    caller: &crate::auth::Caller,
    filter: &store::InboxFilter<'_>,
) -> Result<(Vec<store::Message>, i64)> {
    let account = caller.account()?;
    if let Some(c) = filter.category {
        Category::parse(c).ok_or_else(|| Error::field("category", "one of the message categories"))?;
    }
    let mut db = state.db.clone();
    let items = store::inbox(&mut db, account.id.as_str(), filter).await?;
    let unread = store::unread_count(&mut db, account.id.as_str()).await?;
    Ok((items, unread))
}

/// How many unread messages the signed-in person has (the layout's badge).
pub async fn unread(state: &AppState, account_id: &str) -> Result<i64> {
    Ok(store::unread_count(&mut state.db.clone(), account_id).await?)
}

/// Marks one message (or, with `None`, every message) read.
pub async fn mark_read(state: &AppState, caller: &crate::auth::Caller, id: Option<&str>) -> Result<u64> {
    let account = caller.account()?;
    let mut db = state.db.clone();
    if let Some(id) = id {
        store::get(&mut db, account.id.as_str(), id).await?.ok_or_else(Error::not_found)?;
    }
    Ok(store::mark_read(&mut db, state.clock.now(), account.id.as_str(), id).await?)
}

/// An organization's sends (its delivery log), for its admins.
pub async fn sends(state: &AppState, caller: &crate::auth::Caller, org: &OrgId) -> Result<Vec<store::Send>> {
    caller.admin_of(state, org).await?;
    Ok(store::sends(&mut state.db.clone(), org.as_str(), 100).await?)
}

/// One category's settings in an organization.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CategorySettings {
    pub category: Category,
    /// Whether its channels may be muted (security and billing messages may not).
    pub mutable: bool,
    pub inbox_muted: bool,
    pub email_muted: bool,
    pub sms_muted: bool,
    /// Who receives its emails; empty: the organization's own contact.
    pub email: Vec<store::Target>,
    /// Who receives its SMS; empty: the organization's own contact.
    pub sms: Vec<store::Target>,
}

/// Every category's settings (admins).
pub async fn settings(state: &AppState, caller: &crate::auth::Caller, org: &OrgId) -> Result<Vec<CategorySettings>> {
    caller.admin_of(state, org).await?;
    let mut db = state.db.clone();
    let muted = store::all_muted(&mut db, org.as_str()).await?;
    let targets = store::all_recipients(&mut db, org.as_str()).await?;
    let is_muted = |c: Category, ch: &str| muted.iter().any(|(k, h, m)| k == c.as_str() && h == ch && *m);
    let of = |c: Category, ch: &str| {
        targets.iter().filter(|(k, h, _)| k == c.as_str() && h == ch).map(|(_, _, t)| t.clone()).collect::<Vec<_>>()
    };
    Ok(Category::ALL
        .into_iter()
        .filter(|c| c.settable())
        .map(|c| CategorySettings {
            category: c,
            mutable: c.mutable(),
            inbox_muted: is_muted(c, "inbox"),
            email_muted: is_muted(c, "email"),
            sms_muted: is_muted(c, "sms"),
            email: of(c, "email"),
            sms: of(c, "sms"),
        })
        .collect())
}

/// What an admin sets for a category.
#[derive(Debug, Clone, Default)]
pub struct CategoryInput {
    pub inbox_muted: bool,
    pub email_muted: bool,
    pub sms_muted: bool,
    pub email: Vec<store::Target>,
    pub sms: Vec<store::Target>,
}

/// Sets a category's mutes and recipients. Members must belong to the organization; contacts
/// must be its own, of the channel, and confirmed.
pub async fn set_category(
    state: &AppState,
    caller: &crate::auth::Caller,
    org: &OrgId,
    category: &str,
    input: &CategoryInput,
) -> Result<CategorySettings> {
    caller.admin_of(state, org).await?;
    let category = Category::parse(category).filter(|c| c.settable()).ok_or_else(Error::not_found)?;
    if !category.mutable() && (input.inbox_muted || input.email_muted || input.sms_muted) {
        return Err(Error::field("muted", "security and billing messages cannot be muted"));
    }
    let mut db = state.db.clone();
    let members = orgs::members(&mut db, org).await?;
    for (channel, targets) in [("email", &input.email), ("sms", &input.sms)] {
        if targets.len() > 20 {
            return Err(Error::field("recipients", "at most 20 recipients per channel"));
        }
        for t in targets {
            match t {
                store::Target::Member(id) => {
                    if !members.iter().any(|m| m.account_id.as_str() == id) {
                        return Err(Error::field("recipients", format!("{id} is not a member of this organization")));
                    }
                }
                store::Target::Contact(id) => {
                    let ok = store::get_contact(&mut db, org.as_str(), id)
                        .await?
                        .is_some_and(|c| c.channel == channel && c.confirmed_at.is_some());
                    if !ok {
                        return Err(Error::field(
                            "recipients",
                            format!("{id} is not a confirmed {channel} contact of this organization"),
                        ));
                    }
                }
            }
        }
    }
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    for (channel, m) in [("inbox", input.inbox_muted), ("email", input.email_muted), ("sms", input.sms_muted)] {
        store::set_muted(&mut tx, now, org.as_str(), category.as_str(), channel, m).await?;
    }
    store::set_recipients(&mut tx, now, org.as_str(), category.as_str(), "email", &input.email).await?;
    store::set_recipients(&mut tx, now, org.as_str(), category.as_str(), "sms", &input.sms).await?;
    let summary = format!("message settings for {}", category.as_str());
    crate::fulfillment::audit(&mut tx, now, caller, org, "messages.settings_changed", org.as_str(), summary).await?;
    tx.commit().await?;
    settings(state, caller, org).await?.into_iter().find(|s| s.category == category).ok_or_else(Error::not_found)
}

/// How long a confirmation code is valid, and how many tries it allows.
pub const CODE_MINUTES: i64 = 30;
pub const CODE_ATTEMPTS: i64 = 5;

fn code_hash(contact_id: &str, code: &str) -> String {
    crate::auth::hash_token(&format!("{contact_id}:{code}"))
}

/// Adds an email address or phone number (or sends a new code to one not yet confirmed): a
/// six-digit code goes to it, valid for [`CODE_MINUTES`].
pub async fn add_contact(
    state: &AppState,
    caller: &crate::auth::Caller,
    org: &OrgId,
    channel: &str,
    address: &str,
) -> Result<store::Contact> {
    caller.admin_of(state, org).await?;
    let address = match channel {
        "email" => {
            souk_core::identity::Email::parse("address", address).map_err(|e| Error::validation(vec![e]))?.as_str().to_owned()
        }
        "sms" => {
            souk_core::identity::Phone::parse("address", address).map_err(|e| Error::validation(vec![e]))?.as_str().to_owned()
        }
        _ => return Err(Error::field("channel", "email or sms")),
    };
    let mut db = state.db.clone();
    if store::contacts(&mut db, org.as_str()).await?.len() >= 50 {
        return Err(Error::conflict("too_many_contacts", "an organization keeps at most 50 extra contacts"));
    }
    let now = state.clock.now();
    let code = format!("{:06}", rand::random::<u32>() % 1_000_000);
    let new_id = ContactId::generate(now).to_string();
    let org_row = orgs::get(&mut db, org).await?;
    let lang = org_row.site.default_lang();
    let mut tx = state.db.begin().await?;
    // An existing unconfirmed contact keeps its id; the hash is over the id that is kept.
    let existing =
        store::contacts(&mut tx, org.as_str()).await?.into_iter().find(|c| c.channel == channel && c.address == address);
    if existing.as_ref().is_some_and(|c| c.confirmed_at.is_some()) {
        return Err(Error::conflict("already_confirmed", "this address is already confirmed"));
    }
    let id = existing.map_or(new_id, |c| c.id);
    let expires = now + Duration::minutes(CODE_MINUTES);
    let hash = code_hash(&id, &code);
    let new =
        store::NewContact { id: &id, org_id: org.as_str(), channel, address: &address, code_hash: &hash, code_expires: expires };
    let contact = store::upsert_contact(&mut tx, now, new).await?;
    let v: BTreeMap<String, String> = vars(&[("code", code), ("org", org_row.name)]);
    let m = render(Category::Confirmation, lang, &v);
    // Each code is its own send (a fresh id: two requests in one millisecond are two codes).
    let source = format!("{}:{}", contact.id, SendId::generate(now));
    queue_send(&mut tx, now, org.as_str(), Category::Confirmation, channel, &address, &m, &source).await?;
    tx.commit().await?;
    Ok(contact)
}

/// Confirms a contact with the code sent to it.
pub async fn confirm_contact(
    state: &AppState,
    caller: &crate::auth::Caller,
    org: &OrgId,
    id: &str,
    code: &str,
) -> Result<store::Contact> {
    caller.admin_of(state, org).await?;
    let mut db = state.db.clone();
    let c = store::get_contact(&mut db, org.as_str(), id).await?.ok_or_else(Error::not_found)?;
    if c.confirmed_at.is_some() {
        return Ok(c);
    }
    let now = state.clock.now();
    if c.attempts >= CODE_ATTEMPTS || c.code_expires.is_none_or(|t| t < now) {
        return Err(Error::conflict("code_expired", "this code has expired or was tried too often: ask for a new one"));
    }
    store::count_attempt(&mut db, id).await?;
    let given = code_hash(id, code.trim());
    let matches = c.code_hash.as_deref().is_some_and(|h| subtle::ConstantTimeEq::ct_eq(h.as_bytes(), given.as_bytes()).into());
    if !matches || !store::confirm_contact(&mut db, now, id, &given).await? {
        return Err(Error::field("code", "not the code we sent"));
    }
    store::get_contact(&mut db, org.as_str(), id).await?.ok_or_else(Error::not_found)
}

pub async fn contacts(state: &AppState, caller: &crate::auth::Caller, org: &OrgId) -> Result<Vec<store::Contact>> {
    caller.admin_of(state, org).await?;
    Ok(store::contacts(&mut state.db.clone(), org.as_str()).await?)
}

pub async fn remove_contact(state: &AppState, caller: &crate::auth::Caller, org: &OrgId, id: &str) -> Result<()> {
    caller.admin_of(state, org).await?;
    let mut tx = state.db.begin().await?;
    if !store::remove_contact(&mut tx, org.as_str(), id).await? {
        return Err(Error::not_found());
    }
    tx.commit().await?;
    Ok(())
}

/// The account's own phone, as the fallback recipient of its organizations' SMS: bound once the
/// code sent to it is entered.
#[derive(Debug, Clone, Serialize)]
pub struct PhoneState {
    /// The bound number, if any.
    pub phone: Option<String>,
    /// A number waiting for its code, and until when the code is good.
    pub pending: Option<String>,
    pub pending_expires: Option<DateTime<Utc>>,
}

pub async fn phone_state(state: &AppState, caller: &crate::auth::Caller) -> Result<PhoneState> {
    let account = caller.account()?;
    let mut db = state.db.clone();
    let fresh = accounts::get(&mut db, &account.id).await?;
    let pending = accounts::phone_binding(&mut db, &account.id).await?.filter(|p| p.code_expires >= state.clock.now());
    Ok(PhoneState {
        phone: fresh.phone,
        pending_expires: pending.as_ref().map(|p| p.code_expires),
        pending: pending.map(|p| p.phone),
    })
}

/// Sends a six-digit code by SMS to a number the account wants bound, valid for
/// [`CODE_MINUTES`]; a new request replaces the pending one.
pub async fn start_phone(state: &AppState, caller: &crate::auth::Caller, phone: &str) -> Result<PhoneState> {
    let account = caller.account()?;
    let phone = souk_core::identity::Phone::parse("phone", phone).map_err(|e| Error::validation(vec![e]))?;
    let now = state.clock.now();
    let code = format!("{:06}", rand::random::<u32>() % 1_000_000);
    let hash = code_hash(&format!("{}:{}", account.id, phone.as_str()), &code);
    let mut tx = state.db.begin().await?;
    let expires = now + Duration::minutes(CODE_MINUTES);
    accounts::start_phone_binding(&mut tx, now, &account.id, phone.as_str(), &hash, expires).await?;
    let v: BTreeMap<String, String> = vars(&[("code", code), ("org", account.name.clone())]);
    let m = render(Category::Confirmation, account.lang, &v);
    let source = format!("{}:phone:{}", account.id, SendId::generate(now));
    let org = account.personal_org_id.as_str();
    queue_send(&mut tx, now, org, Category::Confirmation, "sms", phone.as_str(), &m, &source).await?;
    tx.commit().await?;
    phone_state(state, caller).await
}

/// Binds the pending number if the code matches.
pub async fn confirm_phone(state: &AppState, caller: &crate::auth::Caller, code: &str) -> Result<PhoneState> {
    let account = caller.account()?;
    let mut db = state.db.clone();
    let now = state.clock.now();
    let Some(p) = accounts::phone_binding(&mut db, &account.id).await? else {
        return Err(Error::conflict("no_pending_phone", "ask for a code first"));
    };
    if p.attempts >= CODE_ATTEMPTS || p.code_expires < now {
        return Err(Error::conflict("code_expired", "this code has expired or was tried too often: ask for a new one"));
    }
    accounts::count_phone_attempt(&mut db, &account.id).await?;
    let given = code_hash(&format!("{}:{}", account.id, p.phone), code.trim());
    let matches: bool = subtle::ConstantTimeEq::ct_eq(p.code_hash.as_bytes(), given.as_bytes()).into();
    let mut tx = state.db.begin().await?;
    if !matches || !accounts::bind_phone(&mut tx, now, &account.id, &given).await? {
        return Err(Error::field("code", "not the code we sent"));
    }
    crate::fulfillment::audit(
        &mut tx,
        now,
        caller,
        &account.personal_org_id,
        "account.phone_bound",
        account.id.as_str(),
        "phone number bound".into(),
    )
    .await?;
    tx.commit().await?;
    phone_state(state, caller).await
}

/// Removes the account's phone: its organizations' SMS no longer fall back to it.
pub async fn remove_phone(state: &AppState, caller: &crate::auth::Caller) -> Result<()> {
    let account = caller.account()?;
    let now = state.clock.now();
    let mut tx = state.db.begin().await?;
    accounts::unbind_phone(&mut tx, now, &account.id).await?;
    tx.commit().await?;
    Ok(())
}
