//! The outbox: events written in the same transaction as the change that causes them, then
//! claimed and handled by workers.
//!
//! Claims are leases: a worker sets `locked_by` and `locked_until` and bumps `attempts`.
//! While the lease runs no other worker can claim the row; if the worker dies, the lease
//! runs out and another worker claims it again (at-least-once). Completing is fenced on
//! `locked_by` and `attempts`, so a worker whose lease was taken over cannot overwrite the
//! newer attempt's outcome. On PostgreSQL the claim also uses `FOR UPDATE SKIP LOCKED`, so
//! concurrent claimers on many nodes pass over each other's rows instead of queueing.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use souk_core::id::EventId;

use crate::{Conn, Row, StoreError, Tx, parse_stored, placeholders, q};

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: EventId,
    pub topic: String,
    pub aggregate_id: String,
    pub payload: serde_json::Value,
    pub status: String,
    /// Attempts made so far, including the one in progress when claimed.
    pub attempts: u32,
    pub due_at: DateTime<Utc>,
    pub locked_by: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// When the event was first claimed (since its last manual redelivery).
    pub first_attempt_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub attempt: u32,
    pub worker: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: String,
    pub error: Option<String>,
}

fn from_row(r: &Row) -> Result<Event, StoreError> {
    let payload: String = r.get("payload")?;
    Ok(Event {
        id: parse_stored(EventId::parse(&r.get::<String>("id")?))?,
        topic: r.get("topic")?,
        aggregate_id: r.get("aggregate_id")?,
        payload: parse_stored(serde_json::from_str(&payload))?,
        status: r.get("status")?,
        attempts: u32::try_from(r.get::<i64>("attempts")?).unwrap_or(u32::MAX),
        due_at: r.get("due_at")?,
        locked_by: r.get("locked_by")?,
        last_error: r.get("last_error")?,
        created_at: r.get("created_at")?,
        completed_at: r.get("completed_at")?,
        first_attempt_at: r.get("first_attempt_at")?,
    })
}

/// Writes an event inside the caller's transaction; it becomes visible to workers only
/// when that transaction commits.
pub async fn enqueue(
    tx: &mut Tx,
    now: DateTime<Utc>,
    topic: &str,
    aggregate_id: &str,
    payload: &serde_json::Value,
) -> Result<EventId, StoreError> {
    let id = EventId::generate(now);
    tx.execute(
        q("INSERT INTO outbox_events (id, topic, aggregate_id, payload, status, attempts, due_at, created_at)
           VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)")
        .bind(id.as_str())
        .bind(topic)
        .bind(aggregate_id)
        .bind(payload.to_string())
        .bind(now),
    )
    .await?;
    tx.enqueued(topic, aggregate_id);
    Ok(id)
}

/// Claims up to `limit` due events of `topic` for `worker` until `now + lease`.
pub async fn claim(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    topic: &str,
    worker: &str,
    lease: Duration,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    claim_any(c, now, &[topic], worker, lease, limit).await
}

/// Claims due events of `topics` (seller deliveries), at most one per aggregate at a time and
/// in order: an event is not claimed while an earlier event of the same aggregate among
/// `topics` is not done (pending, in flight, or dead). So a seller never sees a subscription's
/// release before its create succeeded.
///
/// In three short steps rather than one query with `NOT EXISTS` per candidate: found by
/// `souk bench deliveries`, that query cost 70–700 ms per claim with 4,000–10,000 events
/// pending on PostgreSQL (a table that had just grown had statistics saying it was empty, and
/// the planner checked every pending event). Now: the oldest due candidates, a few times the
/// limit; the first unfinished event of each of their aggregates
/// (`outbox_undone_aggregate`); and the claim of the candidates that are those first events,
/// with the usual lease conditions, so two workers never take the same one. When the window
/// holds too few heads (backlogs waiting behind failed events in front), it widens, up to
/// 1,024, and then the heads of all aggregates are taken from what is not done.
pub async fn claim_in_order(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    topics: &[&str],
    worker: &str,
    lease: Duration,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    if topics.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let mut window = i64::from(limit) * 4;
    loop {
        // $3.. are the topics; built from the count only, the values are bound. One ordered
        // range of `outbox_due` per topic, merged: with `topic IN (…)` no index gives the
        // order, and PostgreSQL read every pending event and sorted them (8,740 rows, 5–15 ms
        // per claim in `souk bench deliveries`).
        let per_topic = due_per_topic("id, aggregate_id, due_at", 1, 2, 3, topics.len());
        let sql = format!("{per_topic} ORDER BY due_at, id LIMIT $2");
        let query = crate::q_built(sql.clone(), sql).bind(now).bind(window).bind_all(topics.iter().copied());
        let candidates: Vec<(String, String)> = c
            .fetch_all(query)
            .await?
            .iter()
            .map(|r| Ok((r.get::<String>("id")?, r.get::<String>("aggregate_id")?)))
            .collect::<Result<_, StoreError>>()?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let mut aggregates: Vec<&str> = candidates.iter().map(|(_, a)| a.as_str()).collect();
        aggregates.sort_unstable();
        aggregates.dedup();
        // Each aggregate's first undone event, as its own ordered lookup in
        // `outbox_undone_aggregate`: as one `GROUP BY` over `aggregate_id IN (…)`, PostgreSQL
        // with a burst's stale statistics (a table it thought nearly empty) read the whole
        // table instead, 15–22 ms per claim. `topic || ''` keeps the planners off the topic index.
        let aggs = (1..=aggregates.len()).map(|i| format!("(CAST(${i} AS TEXT))")).collect::<Vec<_>>().join(", ");
        let tops = placeholders(1 + aggregates.len(), topics.len());
        let sql = format!(
            "WITH a(aggregate_id) AS (VALUES {aggs})
             SELECT a.aggregate_id,
                    (SELECT f.id || CASE WHEN f.status = 'dead' OR f.due_at <> f.created_at THEN ' waited' ELSE '' END
                     FROM outbox_events f
                     WHERE f.aggregate_id = a.aggregate_id AND f.status <> 'done'
                       AND (f.topic || '') IN ({tops})
                     ORDER BY f.id LIMIT 1) AS head
             FROM a"
        );
        let query = crate::q_built(sql.clone(), sql).bind_all(aggregates.iter().copied()).bind_all(topics.iter().copied());
        // Each aggregate's head and whether it has waited (failed and put off, held, or
        // dead), as one text ("<id>" or "<id> waited"): read through a join on the head's id
        // instead, PostgreSQL hashed the whole table for it (a Seq Scan per claim, slower with
        // every run of `souk bench deliveries`). No head: the aggregate's events were all
        // finished since the candidates were read.
        let mut heads: std::collections::HashMap<String, (String, bool)> = std::collections::HashMap::new();
        for r in c.fetch_all(query).await? {
            if let Some(head) = r.get::<Option<String>>("head")? {
                let (id, waited) = match head.strip_suffix(" waited") {
                    Some(id) => (id.to_owned(), true),
                    None => (head, false),
                };
                heads.insert(r.get("aggregate_id")?, (id, waited));
            }
        }
        let is_head = |id: &str, aggregate: &str| heads.get(aggregate).is_some_and(|(head, _)| head == id);
        let claimable: Vec<&str> =
            candidates.iter().filter(|(id, a)| is_head(id, a)).map(|(id, _)| id.as_str()).take(limit as usize).collect();
        // Candidates behind a head that waits are parked, so the next claims do not read past
        // them again: events written after their head failed, which `hold_successors` did not
        // see (in `souk bench deliveries` with 5% errors, the front of the queue was all such
        // events, and claims widened to 1,024 candidates to find a few heads).
        let parked: Vec<&str> = candidates
            .iter()
            .filter(|(id, a)| heads.get(a.as_str()).is_some_and(|(head, waited)| *waited && head != id))
            .map(|(id, _)| id.as_str())
            .collect();
        if !parked.is_empty() {
            park(c, now + lease, &parked, topics).await?;
        }
        let full = candidates.len() as i64 == window;
        tracing::debug!(
            window,
            candidates = candidates.len(),
            heads = heads.len(),
            claimable = claimable.len(),
            parked = parked.len(),
            limit,
            "ordered claim"
        );
        if claimable.len() < limit as usize && full {
            if window < 1024 {
                window *= 4;
                continue;
            }
            // The window is all waiting successors (sellers failing, their backlogs in front):
            // take the first unfinished event of every aggregate, a scan of what is not done.
            let list = placeholders(5, topics.len());
            let inner = format!(
                "SELECT o.id FROM outbox_events o
                 WHERE o.id IN (SELECT MIN(id) FROM outbox_events
                                WHERE status <> 'done' AND (topic || '') IN ({list}) GROUP BY aggregate_id)
                   AND o.status = 'pending' AND o.due_at <= $3 AND (o.locked_until IS NULL OR o.locked_until <= $3)
                 ORDER BY o.due_at, o.id LIMIT $4"
            );
            return claim_selected(c, now, topics, worker, lease, limit, &inner).await;
        }
        if claimable.is_empty() {
            return Ok(Vec::new());
        }
        // $5.. are the chosen ids.
        let ids = placeholders(5, claimable.len());
        let inner = format!(
            "SELECT id FROM outbox_events
             WHERE id IN ({ids}) AND status = 'pending' AND (locked_until IS NULL OR locked_until <= $3)
             LIMIT $4"
        );
        return claim_selected(c, now, &claimable, worker, lease, limit, &inner).await;
    }
}

/// Makes `events`, each waiting behind an earlier event of its aggregate, due no earlier than
/// `until` (a lease from now). `release_successor` lets each go when the one before it is
/// done; `until` bounds the wait if that is missed: the head was done between the claim's
/// reading it and this update (the `EXISTS` narrows that to the statements' overlap), or an
/// event between them never waited itself. An event whose predecessors are all done is left.
async fn park(c: &mut impl Conn, until: DateTime<Utc>, events: &[&str], topics: &[&str]) -> Result<u64, StoreError> {
    let ids = placeholders(2, events.len());
    let tops = placeholders(2 + events.len(), topics.len());
    let sql = format!(
        "UPDATE outbox_events SET due_at = $1
         WHERE id IN ({ids}) AND status = 'pending' AND due_at < $1
           AND EXISTS (SELECT 1 FROM outbox_events p
                       WHERE p.aggregate_id = outbox_events.aggregate_id AND p.id < outbox_events.id
                         AND p.status <> 'done' AND (p.topic || '') IN ({tops}))"
    );
    let query = crate::q_built(sql.clone(), sql).bind(until).bind_all(events.iter().copied()).bind_all(topics.iter().copied());
    c.execute(query).await
}

/// The claimable events of `n` topics, bound from `$first_topic` on, as one ordered range of
/// `outbox_due` per topic merged with `UNION ALL`: `columns` of at most `$limit` pending
/// events of each that are due and not leased at `$now` (the numbers are the parameters').
fn due_per_topic(columns: &str, now: usize, limit: usize, first_topic: usize, n: usize) -> String {
    (first_topic..first_topic + n)
        .enumerate()
        .map(|(i, topic)| {
            format!(
                "SELECT * FROM (SELECT {columns} FROM outbox_events
                 WHERE topic = ${topic} AND status = 'pending' AND due_at <= ${now}
                   AND (locked_until IS NULL OR locked_until <= ${now})
                 ORDER BY due_at, id LIMIT ${limit}) t{i}"
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// Claims the events `inner` selects: a `SELECT id` over `$3` (now), `$4` (the limit) and
/// `$5…` (the topics).
async fn claim_selected(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    topics: &[&str],
    worker: &str,
    lease: Duration,
    limit: u32,
    inner: &str,
) -> Result<Vec<Event>, StoreError> {
    let set = "UPDATE outbox_events SET locked_by = $1, locked_until = $2, attempts = attempts + 1,
             first_attempt_at = COALESCE(first_attempt_at, $3)";
    let sqlite = format!("{set} WHERE id IN ({inner}) RETURNING *");
    // The selection is a materialized CTE, run once. As `id IN (subquery)` PostgreSQL may
    // plan a nested-loop semi join that runs the subquery again for every pending event the
    // outer scan meets: each run skips the rows this statement has just updated (SKIP LOCKED
    // passes over them) and takes the next, so a claim of 1 took every pending event of its
    // topics (`a_claim_takes_at_most_its_limit_oldest_first`
    // took 10 of 10 with a limit of 3).
    let postgres = format!(
        "WITH picked AS MATERIALIZED ({inner} FOR UPDATE SKIP LOCKED)
         {set} WHERE id IN (SELECT id FROM picked)
           AND status = 'pending' AND (locked_until IS NULL OR locked_until <= $3)
         RETURNING *"
    );
    let query = crate::q_built(sqlite, postgres)
        .bind(worker)
        .bind(now + lease)
        .bind(now)
        .bind(i64::from(limit))
        .bind_all(topics.iter().copied());
    let rows = c.fetch_all(query).await?;
    let mut events: Vec<Event> = rows.iter().map(from_row).collect::<Result<_, _>>()?;
    // RETURNING does not promise the subquery's order.
    events.sort_by(|a, b| a.due_at.cmp(&b.due_at).then_with(|| a.id.cmp(&b.id)));
    Ok(events)
}

/// Claims up to `limit` due events of any of `topics`, oldest due first (the message center
/// reacts to many topics with one worker).
pub async fn claim_any(
    c: &mut impl Conn,
    now: DateTime<Utc>,
    topics: &[&str],
    worker: &str,
    lease: Duration,
    limit: u32,
) -> Result<Vec<Event>, StoreError> {
    if topics.is_empty() {
        return Ok(Vec::new());
    }
    // $5.. are the topics; built from the count only, the values are bound. One ordered
    // range of `outbox_due` per topic, merged, as in `claim_in_order`: with `topic IN (…)`
    // over the message center's 18 topics the claim took 2.5 ms under `souk bench purchase`
    // (pg_stat_statements: a third of PostgreSQL's time; the email sender's, one topic, 0.1 ms).
    let per_topic = due_per_topic("id, due_at", 3, 4, 5, topics.len());
    let inner = format!(
        "SELECT o.id FROM outbox_events o
         WHERE o.id IN (SELECT id FROM ({per_topic}) due ORDER BY due_at, id LIMIT $4)
           AND o.status = 'pending' AND (o.locked_until IS NULL OR o.locked_until <= $3)
         ORDER BY o.due_at, o.id LIMIT $4"
    );
    claim_selected(c, now, topics, worker, lease, limit, &inner).await
}

/// The position of an event among its aggregate's events of `topics`, from 1: the
/// per-subscription sequence number sellers see. Stable: ids never change.
pub async fn sequence(c: &mut impl Conn, event: &Event, topics: &[&str]) -> Result<i64, StoreError> {
    let list = placeholders(3, topics.len());
    let sql = format!("SELECT COUNT(*) AS n FROM outbox_events WHERE aggregate_id = $1 AND id <= $2 AND topic IN ({list})");
    let query =
        crate::q_built(sql.clone(), sql).bind(&event.aggregate_id).bind(event.id.as_str()).bind_all(topics.iter().copied());
    c.fetch_one(query).await?.get("n")
}

/// Sends an event again now (a seller's manual redelivery). Only an event not in flight:
/// done or dead events start over with a fresh attempt count.
pub async fn redeliver(c: &mut impl Conn, now: DateTime<Utc>, id: &str) -> Result<bool, StoreError> {
    let n = c
        .execute(
            q("UPDATE outbox_events SET status = 'pending', attempts = 0, first_attempt_at = NULL, due_at = $1, completed_at = NULL, locked_by = NULL, locked_until = NULL
               WHERE id = $2 AND (status IN ('done', 'dead') OR (status = 'pending' AND (locked_until IS NULL OR locked_until <= $1)))")
            .bind(now)
            .bind(id),
        )
        .await?;
    Ok(n == 1)
}

/// How an attempt ended.
pub enum Outcome<'a> {
    Done,
    RetryAt { due: DateTime<Utc>, error: &'a str },
    Dead { error: &'a str },
}

/// Records the attempt and the event's new state. Returns false if this worker no longer
/// holds the claim (its lease ran out and another worker took the event), in which case
/// nothing is written.
pub async fn finish(
    tx: &mut Tx,
    event: &Event,
    worker: &str,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
    outcome: Outcome<'_>,
) -> Result<bool, StoreError> {
    let (status, due, error, completed) = match &outcome {
        Outcome::Done => ("done", event.due_at, None, Some(now)),
        Outcome::RetryAt { due, error } => ("pending", *due, Some(*error), None),
        Outcome::Dead { error } => ("dead", event.due_at, Some(*error), Some(now)),
    };
    let n = tx
        .execute(
            q("UPDATE outbox_events SET status = $1, due_at = $2, last_error = COALESCE($3, last_error), completed_at = $4,
                  locked_by = NULL, locked_until = NULL
               WHERE id = $5 AND locked_by = $6 AND attempts = $7 AND status = 'pending'")
            .bind(status)
            .bind(due)
            .bind(error)
            .bind(completed)
            .bind(event.id.as_str())
            .bind(worker)
            .bind(event.attempts),
        )
        .await?;
    if n == 0 {
        return Ok(false);
    }
    // The attempt's number is the claim's, except after a manual redelivery, which starts the
    // claim count over (for the retry policy): then the numbers go on from the last recorded.
    tx.execute(
        q("INSERT INTO outbox_attempts (event_id, attempt, worker, started_at, finished_at, outcome, error)
           VALUES ($1, (SELECT CASE WHEN COALESCE(MAX(attempt), 0) >= $2 THEN MAX(attempt) + 1 ELSE $2 END
                        FROM outbox_attempts WHERE event_id = $1), $3, $4, $5, $6, $7)")
        .bind(event.id.as_str())
        .bind(event.attempts)
        .bind(worker)
        .bind(started_at)
        .bind(now)
        .bind(if error.is_none() { "ok" } else { "error" })
        .bind(error),
    )
    .await?;
    Ok(true)
}

/// [`finish`] with [`Outcome::Done`] for a batch of events claimed together by `worker`, in
/// two statements whatever the batch's size. Returns the ids of those it still held (the
/// others were taken over after their lease ran out, and nothing is written for them).
pub async fn finish_done(
    tx: &mut Tx,
    events: &[&Event],
    worker: &str,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    // Each event by its id and its claim's attempt count, as `finish` checks one.
    let held_by = (0..events.len()).map(|i| format!("(id = ${} AND attempts = ${})", 3 + 2 * i, 4 + 2 * i)).collect::<Vec<_>>();
    let sql = format!(
        "UPDATE outbox_events SET status = 'done', completed_at = $1, locked_by = NULL, locked_until = NULL
         WHERE locked_by = $2 AND status = 'pending' AND ({})
         RETURNING id",
        held_by.join(" OR ")
    );
    let mut query = crate::q_built(sql.clone(), sql).bind(now).bind(worker);
    for e in events {
        query = query.bind(e.id.as_str()).bind(e.attempts);
    }
    let held = tx.fetch_all(query).await?.iter().map(|r| r.get::<String>("id")).collect::<Result<Vec<_>, _>>()?;
    let recorded: Vec<&&Event> = events.iter().filter(|e| held.iter().any(|h| h == e.id.as_str())).collect();
    if recorded.is_empty() {
        return Ok(held);
    }
    // Numbered as `finish` numbers one attempt.
    let rows = (0..recorded.len())
        .map(|i| {
            let (id, attempt) = (4 + 2 * i, 5 + 2 * i);
            format!(
                "(${id}, (SELECT CASE WHEN COALESCE(MAX(attempt), 0) >= ${attempt} THEN MAX(attempt) + 1 ELSE ${attempt} END
                          FROM outbox_attempts WHERE event_id = ${id}), $1, $2, $3, 'ok', NULL)"
            )
        })
        .collect::<Vec<_>>();
    let sql = format!(
        "INSERT INTO outbox_attempts (event_id, attempt, worker, started_at, finished_at, outcome, error) VALUES {}",
        rows.join(", ")
    );
    let mut query = crate::q_built(sql.clone(), sql).bind(worker).bind(started_at).bind(now);
    for e in &recorded {
        query = query.bind(e.id.as_str()).bind(e.attempts);
    }
    tx.execute(query).await?;
    Ok(held)
}

/// An ordered event is to be retried: its aggregate's later pending events of `topics`
/// cannot go before it, so they are held, made due no earlier than `until` (the worker gives
/// the retry's due time plus a lease). Without this they stay at the front of the due queue,
/// each claim passes over them again, and a few failing sellers' backlogs crowd out everyone
/// else's deliveries (see `claim_in_order`). They are let go one at a time, each when the
/// event before it is done (`release_successor`); `until` only bounds how long one waits if
/// its predecessor is never done (given up as dead).
pub async fn hold_successors(tx: &mut Tx, event: &Event, until: DateTime<Utc>, topics: &[&str]) -> Result<u64, StoreError> {
    // `status <> 'done'` says what `status = 'pending'` implies, so the planners use the
    // partial index on undone events (migration 0022).
    set_successors_due(tx, event, until, topics, |topics| {
        format!(
            "UPDATE outbox_events SET due_at = $1
             WHERE aggregate_id = $2 AND id > $3 AND status <> 'done' AND status = 'pending' AND due_at < $1
               AND (topic || '') IN ({topics})"
        )
    })
    .await
}

/// An ordered event is done: its aggregate's next event, if it is held (see
/// `hold_successors`), is made due now. Only the next: the others stay held until the event
/// before each is done, so a backlog waiting behind a retry is not all due at once, at the
/// front of the due queue, where every claim would read past it (found by `souk bench
/// deliveries` with 5% errors: windows of 200 candidates for 3 claimable events).
///
/// Nothing can be held behind an event that neither waited itself nor failed (its `due_at`
/// is still its `created_at`), so the caller skips this for those, the usual case.
pub async fn release_successor(tx: &mut Tx, event: &Event, now: DateTime<Utc>, topics: &[&str]) -> Result<u64, StoreError> {
    set_successors_due(tx, event, now, topics, |topics| {
        format!(
            "UPDATE outbox_events SET due_at = $1
             WHERE id = (SELECT MIN(id) FROM outbox_events
                         WHERE aggregate_id = $2 AND id > $3 AND status <> 'done' AND (topic || '') IN ({topics}))
               AND status = 'pending' AND due_at > $1"
        )
    })
    .await
}

/// Runs `sql` (given the placeholder list of `topics`) with `$1` the new due time, `$2` and
/// `$3` the event's aggregate and id, `$4…` the topics.
async fn set_successors_due(
    tx: &mut Tx,
    event: &Event,
    due: DateTime<Utc>,
    topics: &[&str],
    sql: impl FnOnce(&str) -> String,
) -> Result<u64, StoreError> {
    if topics.is_empty() {
        return Ok(0);
    }
    let sql = sql(&placeholders(4, topics.len()));
    let query = crate::q_built(sql.clone(), sql)
        .bind(due)
        .bind(event.aggregate_id.as_str())
        .bind(event.id.as_str())
        .bind_all(topics.iter().copied());
    tx.execute(query).await
}

pub async fn get(c: &mut impl Conn, id: &EventId) -> Result<Event, StoreError> {
    from_row(&c.fetch_one(q("SELECT * FROM outbox_events WHERE id = $1").bind(id.as_str())).await?)
}

pub async fn attempts(c: &mut impl Conn, id: &EventId) -> Result<Vec<Attempt>, StoreError> {
    let rows = c.fetch_all(q("SELECT * FROM outbox_attempts WHERE event_id = $1 ORDER BY attempt").bind(id.as_str())).await?;
    rows.iter()
        .map(|r| {
            Ok(Attempt {
                attempt: u32::try_from(r.get::<i64>("attempt")?).unwrap_or(u32::MAX),
                worker: r.get("worker")?,
                started_at: r.get("started_at")?,
                finished_at: r.get("finished_at")?,
                outcome: r.get("outcome")?,
                error: r.get("error")?,
            })
        })
        .collect()
}

/// Deletes up to `limit` events of `topics` that were done before `cutoff`, with their
/// attempts, in `tx`; returns how many events went. Only for topics whose events nothing
/// reads once done: a seller's deliveries stay, since their number in the subscription's
/// sequence is a count of the events before them, and a seller may ask for one again.
pub async fn purge_done(tx: &mut Tx, cutoff: DateTime<Utc>, topics: &[&str], limit: u32) -> Result<u64, StoreError> {
    if topics.is_empty() || limit == 0 {
        return Ok(0);
    }
    // `due_at` is never after `completed_at`, so it narrows the scan to the old end of each
    // topic's `outbox_due` range.
    let sql = format!(
        "SELECT id FROM outbox_events WHERE topic IN ({}) AND status = 'done' AND due_at < $1 AND completed_at < $1
         ORDER BY due_at, id LIMIT {limit}",
        placeholders(2, topics.len())
    );
    let query = crate::q_built(sql.clone(), sql).bind(cutoff).bind_all(topics.iter().copied());
    let ids = tx.fetch_all(query).await?.iter().map(|r| r.get::<String>("id")).collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() {
        return Ok(0);
    }
    let list = placeholders(1, ids.len());
    for table in ["DELETE FROM outbox_attempts WHERE event_id", "DELETE FROM outbox_events WHERE id"] {
        let sql = format!("{table} IN ({list})");
        let mut query = crate::q_built(sql.clone(), sql);
        for id in &ids {
            query = query.bind(id.as_str());
        }
        tx.execute(query).await?;
    }
    Ok(ids.len() as u64)
}

/// Events of a topic, oldest first (for operators and tests).
pub async fn list(c: &mut impl Conn, topic: &str) -> Result<Vec<Event>, StoreError> {
    let rows = c.fetch_all(q("SELECT * FROM outbox_events WHERE topic = $1 ORDER BY id").bind(topic)).await?;
    rows.iter().map(from_row).collect()
}

/// Counts of events per status, for `/metrics`.
pub async fn counts(c: &mut impl Conn) -> Result<Vec<(String, String, i64)>, StoreError> {
    let rows = c
        .fetch_all(q("SELECT topic, status, COUNT(*) AS n FROM outbox_events GROUP BY topic, status ORDER BY topic, status"))
        .await?;
    rows.iter().map(|r| Ok((r.get("topic")?, r.get("status")?, r.get("n")?))).collect()
}
