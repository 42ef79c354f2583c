//! The message center: members' inboxes, and the emails and SMS messages are sent as.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Conn, Row, StoreError, q};

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub id: String,
    pub org_id: String,
    pub account_id: String,
    pub category: String,
    pub subject: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

fn message(r: &Row) -> Result<Message, StoreError> {
    Ok(Message {
        id: r.get("id")?,
        org_id: r.get("org_id")?,
        account_id: r.get("account_id")?,
        category: r.get("category")?,
        subject: r.get("subject")?,
        body: r.get("body")?,
        created_at: r.get("created_at")?,
        read_at: r.get("read_at")?,
    })
}

pub struct NewMessage<'a> {
    pub id: &'a str,
    pub org_id: &'a str,
    pub account_id: &'a str,
    pub category: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub source_event_id: &'a str,
}

/// Puts a message in a member's inbox, once per source event: false if it was there already.
pub async fn insert(c: &mut impl Conn, now: DateTime<Utc>, m: NewMessage<'_>) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("INSERT INTO messages (id, org_id, account_id, category, subject, body, source_event_id, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (source_event_id, account_id) DO NOTHING")
            .bind(m.id)
            .bind(m.org_id)
            .bind(m.account_id)
            .bind(m.category)
            .bind(m.subject)
            .bind(m.body)
            .bind(m.source_event_id)
            .bind(now),
        )
        .await?;
    Ok(n == 1)
}

/// What an inbox page shows.
#[derive(Debug, Clone, Default)]
pub struct InboxFilter<'a> {
    pub category: Option<&'a str>,
    pub unread_only: bool,
    /// Messages older than this id (the cursor).
    pub before: Option<&'a str>,
    pub limit: u32,
}

/// A member's messages, newest first.
pub async fn inbox(c: &mut impl Conn, account_id: &str, f: &InboxFilter<'_>) -> Result<Vec<Message>, StoreError> {
    c.fetch_all(
        q("SELECT * FROM messages WHERE account_id = $1
             AND ($2 IS NULL OR category = $2)
             AND ($3 = 0 OR read_at IS NULL)
             AND ($4 IS NULL OR id < $4)
           ORDER BY id DESC LIMIT $5")
        .bind(account_id)
        .bind(f.category)
        .bind(i64::from(f.unread_only))
        .bind(f.before)
        .bind(i64::from(f.limit)),
    )
    .await?
    .iter()
    .map(message)
    .collect()
}

pub async fn unread_count(c: &mut impl Conn, account_id: &str) -> Result<i64, StoreError> {
    c.fetch_one(q("SELECT COUNT(*) AS n FROM messages WHERE account_id = $1 AND read_at IS NULL").bind(account_id))
        .await?
        .get("n")
}

pub async fn get(c: &mut impl Conn, account_id: &str, id: &str) -> Result<Option<Message>, StoreError> {
    c.fetch_optional(q("SELECT * FROM messages WHERE id = $1 AND account_id = $2").bind(id).bind(account_id))
        .await?
        .as_ref()
        .map(message)
        .transpose()
}

/// Marks one message read (`Some(id)`) or all of them; returns how many changed.
pub async fn mark_read(c: &mut impl Conn, now: DateTime<Utc>, account_id: &str, id: Option<&str>) -> Result<u64, StoreError> {
    c.execute(
        q("UPDATE messages SET read_at = $1 WHERE account_id = $2 AND read_at IS NULL AND ($3 IS NULL OR id = $3)")
            .bind(now)
            .bind(account_id)
            .bind(id),
    )
    .await
}

/// Deletes messages older than `cutoff` (retention).
pub async fn purge(c: &mut impl Conn, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
    c.execute(q("DELETE FROM messages WHERE created_at < $1").bind(cutoff)).await
}

/// An email or SMS to send, and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct Send {
    pub id: String,
    pub org_id: String,
    pub category: String,
    /// `email` or `sms`.
    pub channel: String,
    pub address: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: Option<String>,
    /// `pending`, `sent` or `failed` (given up).
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

fn send(r: &Row) -> Result<Send, StoreError> {
    Ok(Send {
        id: r.get("id")?,
        org_id: r.get("org_id")?,
        category: r.get("category")?,
        channel: r.get("channel")?,
        address: r.get("address")?,
        subject: r.get("subject")?,
        body_text: r.get("body_text")?,
        body_html: r.get("body_html")?,
        status: r.get("status")?,
        attempts: r.get("attempts")?,
        last_error: r.get("last_error")?,
        created_at: r.get("created_at")?,
        sent_at: r.get("sent_at")?,
    })
}

pub struct NewSend<'a> {
    pub id: &'a str,
    pub org_id: &'a str,
    pub category: &'a str,
    pub channel: &'a str,
    pub address: &'a str,
    pub subject: &'a str,
    pub body_text: &'a str,
    pub body_html: Option<&'a str>,
    pub source_event_id: &'a str,
}

/// Records a send, once per source event, channel and address: false if it existed.
pub async fn insert_send(c: &mut impl Conn, now: DateTime<Utc>, s: NewSend<'_>) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("INSERT INTO message_sends (id, org_id, category, channel, address, subject, body_text, body_html, source_event_id, status, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10)
               ON CONFLICT (source_event_id, channel, address) DO NOTHING")
            .bind(s.id)
            .bind(s.org_id)
            .bind(s.category)
            .bind(s.channel)
            .bind(s.address)
            .bind(s.subject)
            .bind(s.body_text)
            .bind(s.body_html)
            .bind(s.source_event_id)
            .bind(now),
        )
        .await?;
    Ok(n == 1)
}

/// The sends among `ids` (a sender's claimed batch), in one read.
pub async fn get_sends(c: &mut impl Conn, ids: &[&str]) -> Result<Vec<Send>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT * FROM message_sends WHERE id IN ({})", crate::placeholders(1, ids.len()));
    let query = crate::q_built(sql.clone(), sql).bind_all(ids.iter().copied());
    c.fetch_all(query).await?.iter().map(send).collect()
}

/// Marks the sends among `ids` sent, in one statement (a sender's batch that went out).
pub async fn record_sent(c: &mut impl Conn, now: DateTime<Utc>, ids: &[&str]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "UPDATE message_sends SET status = 'sent', attempts = attempts + 1, sent_at = $1
         WHERE id IN ({}) AND status <> 'sent'",
        crate::placeholders(2, ids.len())
    );
    let query = crate::q_built(sql.clone(), sql).bind(now).bind_all(ids.iter().copied());
    c.execute(query).await?;
    Ok(())
}

/// An attempt's outcome: sent, still failing (with why), or given up.
pub async fn record_attempt(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    id: &str,
    status: &str,
    error: Option<&str>,
) -> Result<(), StoreError> {
    c.execute(
        q("UPDATE message_sends SET status = $1, attempts = attempts + 1, last_error = COALESCE($2, last_error),
              sent_at = CASE WHEN $1 = 'sent' THEN $3 ELSE sent_at END
           WHERE id = $4 AND status <> 'sent'")
        .bind(status)
        .bind(error)
        .bind(now)
        .bind(id),
    )
    .await?;
    Ok(())
}

/// An organization's sends, newest first (its delivery log).
pub async fn sends(c: &mut impl Conn, org_id: &str, limit: u32) -> Result<Vec<Send>, StoreError> {
    c.fetch_all(q("SELECT * FROM message_sends WHERE org_id = $1 ORDER BY id DESC LIMIT $2").bind(org_id).bind(i64::from(limit)))
        .await?
        .iter()
        .map(send)
        .collect()
}

/// What decides where an organization's messages of `category` go, in one read: the channels
/// it muted, and the recipients it set per channel (channel, target).
pub async fn reach_settings(
    c: &mut impl Conn,
    org_id: &str,
    category: &str,
) -> Result<(Vec<String>, Vec<(String, Target)>), StoreError> {
    let rows = c
        .fetch_all(
            q("SELECT channel, CAST(NULL AS TEXT) AS account_id, CAST(NULL AS TEXT) AS contact_id, CAST(1 AS BIGINT) AS muted
               FROM message_settings WHERE org_id = $1 AND category = $2 AND muted = $3
               UNION ALL
               SELECT channel, account_id, contact_id, CAST(0 AS BIGINT) FROM message_recipients WHERE org_id = $1 AND category = $2")
            .bind(org_id)
            .bind(category)
            .bind(true),
        )
        .await?;
    let (mut muted, mut recipients) = (Vec::new(), Vec::new());
    for r in &rows {
        let channel: String = r.get("channel")?;
        if r.get::<i64>("muted")? == 1 {
            muted.push(channel);
            continue;
        }
        recipients.push((channel, target(r)?));
    }
    Ok((muted, recipients))
}

fn target(r: &Row) -> Result<Target, StoreError> {
    match (r.get::<Option<String>>("account_id")?, r.get::<Option<String>>("contact_id")?) {
        (Some(a), _) => Ok(Target::Member(a)),
        (None, Some(c)) => Ok(Target::Contact(c)),
        (None, None) => Err(StoreError::Corrupt("a recipient names no one".into())),
    }
}

pub async fn set_muted(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    org_id: &str,
    category: &str,
    channel: &str,
    muted: bool,
) -> Result<(), StoreError> {
    c.execute(
        q("INSERT INTO message_settings (org_id, category, channel, muted, updated_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (org_id, category, channel) DO UPDATE SET muted = $4, updated_at = $5")
        .bind(org_id)
        .bind(category)
        .bind(channel)
        .bind(muted)
        .bind(now),
    )
    .await?;
    Ok(())
}

/// Who receives a category's emails or SMS: members (by account) and confirmed contacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Target {
    Member(String),
    Contact(String),
}

/// An organization's settings rows, for its settings page: (category, channel, muted).
pub async fn all_muted(c: &mut impl Conn, org_id: &str) -> Result<Vec<(String, String, bool)>, StoreError> {
    c.fetch_all(q("SELECT category, channel, muted FROM message_settings WHERE org_id = $1").bind(org_id))
        .await?
        .iter()
        .map(|r| Ok((r.get("category")?, r.get("channel")?, r.get("muted")?)))
        .collect()
}

/// Every recipient row of an organization: (category, channel, target).
pub async fn all_recipients(c: &mut impl Conn, org_id: &str) -> Result<Vec<(String, String, Target)>, StoreError> {
    c.fetch_all(
        q("SELECT category, channel, account_id, contact_id FROM message_recipients WHERE org_id = $1 ORDER BY created_at")
            .bind(org_id),
    )
    .await?
    .iter()
    .map(|r| Ok((r.get("category")?, r.get("channel")?, target(r)?)))
    .collect()
}

/// Replaces who receives a category's emails or SMS.
pub async fn set_recipients(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    org_id: &str,
    category: &str,
    channel: &str,
    targets: &[Target],
) -> Result<(), StoreError> {
    c.execute(
        q("DELETE FROM message_recipients WHERE org_id = $1 AND category = $2 AND channel = $3")
            .bind(org_id)
            .bind(category)
            .bind(channel),
    )
    .await?;
    for t in targets {
        let (account, contact) = match t {
            Target::Member(a) => (Some(a.as_str()), None),
            Target::Contact(c) => (None, Some(c.as_str())),
        };
        c.execute(
            q("INSERT INTO message_recipients (org_id, category, channel, account_id, contact_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(org_id)
                .bind(category)
                .bind(channel)
                .bind(account)
                .bind(contact)
                .bind(now),
        )
        .await?;
    }
    Ok(())
}

/// An extra email address or phone number of an organization.
#[derive(Debug, Clone, Serialize)]
pub struct Contact {
    pub id: String,
    pub org_id: String,
    pub channel: String,
    pub address: String,
    #[serde(skip)]
    pub code_hash: Option<String>,
    pub code_expires: Option<DateTime<Utc>>,
    pub attempts: i64,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

fn contact(r: &Row) -> Result<Contact, StoreError> {
    Ok(Contact {
        id: r.get("id")?,
        org_id: r.get("org_id")?,
        channel: r.get("channel")?,
        address: r.get("address")?,
        code_hash: r.get("code_hash")?,
        code_expires: r.get("code_expires")?,
        attempts: r.get("attempts")?,
        confirmed_at: r.get("confirmed_at")?,
        created_at: r.get("created_at")?,
    })
}

pub struct NewContact<'a> {
    pub id: &'a str,
    pub org_id: &'a str,
    pub channel: &'a str,
    pub address: &'a str,
    pub code_hash: &'a str,
    pub code_expires: DateTime<Utc>,
}

/// Adds a contact (or, for one already added and not confirmed, a new code); returns it.
pub async fn upsert_contact(c: &mut impl Conn, now: DateTime<Utc>, n: NewContact<'_>) -> Result<Contact, StoreError> {
    let NewContact { id, org_id, channel, address, code_hash, code_expires } = n;
    c.execute(
        q("INSERT INTO message_contacts (id, org_id, channel, address, code_hash, code_expires, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (org_id, channel, address) DO UPDATE SET code_hash = $5, code_expires = $6, attempts = 0
           WHERE message_contacts.confirmed_at IS NULL")
        .bind(id)
        .bind(org_id)
        .bind(channel)
        .bind(address)
        .bind(code_hash)
        .bind(code_expires)
        .bind(now),
    )
    .await?;
    let row = c
        .fetch_one(
            q("SELECT * FROM message_contacts WHERE org_id = $1 AND channel = $2 AND address = $3")
                .bind(org_id)
                .bind(channel)
                .bind(address),
        )
        .await?;
    contact(&row)
}

pub async fn get_contact(c: &mut impl Conn, org_id: &str, id: &str) -> Result<Option<Contact>, StoreError> {
    c.fetch_optional(q("SELECT * FROM message_contacts WHERE id = $1 AND org_id = $2").bind(id).bind(org_id))
        .await?
        .as_ref()
        .map(contact)
        .transpose()
}

pub async fn contacts(c: &mut impl Conn, org_id: &str) -> Result<Vec<Contact>, StoreError> {
    c.fetch_all(q("SELECT * FROM message_contacts WHERE org_id = $1 ORDER BY created_at").bind(org_id))
        .await?
        .iter()
        .map(contact)
        .collect()
}

/// Counts a confirmation attempt.
pub async fn count_attempt(c: &mut impl Conn, id: &str) -> Result<(), StoreError> {
    c.execute(q("UPDATE message_contacts SET attempts = attempts + 1 WHERE id = $1").bind(id)).await?;
    Ok(())
}

/// Confirms a contact whose code matched; false if it changed meanwhile.
pub async fn confirm_contact(c: &mut impl Conn, now: DateTime<Utc>, id: &str, code_hash: &str) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE message_contacts SET confirmed_at = $1, code_hash = NULL, code_expires = NULL
               WHERE id = $2 AND code_hash = $3 AND confirmed_at IS NULL")
            .bind(now)
            .bind(id)
            .bind(code_hash),
        )
        .await?;
    Ok(n == 1)
}

/// Removes a contact and every recipient row naming it.
pub async fn remove_contact(c: &mut impl Conn, org_id: &str, id: &str) -> Result<bool, StoreError> {
    c.execute(q("DELETE FROM message_recipients WHERE org_id = $1 AND contact_id = $2").bind(org_id).bind(id)).await?;
    Ok(c.execute(q("DELETE FROM message_contacts WHERE org_id = $1 AND id = $2").bind(org_id).bind(id)).await? == 1)
}
