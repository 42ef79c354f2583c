//! Background workers. Each outbox topic gets a claim loop that takes due events with a
//! lease, runs the topic's handler, and records the attempt. Everything a worker decides is
//! in the database, so any number of `souk serve` processes can run the same loops.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use souk_core::clock::Clock;
use souk_core::outbox::{AfterFailure, RetryPolicy};
use souk_store::outbox::{self, Event, Outcome};
use souk_store::{Db, StoreError, Tx, idempotency, sessions};
use tokio::sync::watch;

/// Why an attempt failed, and when the other side asked to be tried again (`Retry-After`).
#[derive(Debug, Clone, Default)]
pub struct Failure {
    pub message: String,
    pub retry_after: Option<Duration>,
    /// Not a failure of the other side: it is still working (KooGallery's `000004`). The
    /// event is asked about again exactly after `retry_after`, not after the policy's delay;
    /// whether to give up is still the policy's decision.
    pub poll: bool,
    /// The retry policy for this event instead of the worker's (a protocol's own cadence).
    pub policy: Option<Box<RetryPolicy>>,
}

impl Failure {
    /// Ask again after `after`: the other side is still working.
    pub fn poll(message: impl Into<String>, after: Duration) -> Self {
        Self { message: message.into(), retry_after: Some(after), poll: true, policy: None }
    }

    pub fn with_policy(self, policy: RetryPolicy) -> Self {
        Self { policy: Some(Box::new(policy)), ..self }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self { message, ..Self::default() }
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        Self { message: message.to_owned(), ..Self::default() }
    }
}

pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'a>>;

/// One attempt at an event, as its handler sees it. A handler whose effect ends in writes of
/// its own (a delivery's log and the subscription it provisioned, an email's status) hands
/// their transaction to [`Attempt::done`], which records the attempt in it: one commit
/// instead of two (a purchase's cost to PostgreSQL is its commits, see BENCHMARKS.md), and
/// the event is done exactly when its effect's writes are, never one without the other.
pub struct Attempt {
    pub event: Event,
    worker: String,
    started: DateTime<Utc>,
    clock: Arc<dyn Clock>,
    /// Set by `done`: whether this worker still held the claim when it recorded the attempt.
    recorded: std::sync::OnceLock<bool>,
    /// The topics the event is ordered among, if it was claimed in order.
    ordered: Option<&'static [&'static str]>,
}

impl Attempt {
    /// Records the attempt as done in `tx`, and commits it.
    pub async fn done(&self, mut tx: Tx) -> Result<(), StoreError> {
        let now = self.clock.now();
        let held = outbox::finish(&mut tx, &self.event, &self.worker, self.started, now, Outcome::Done).await?;
        if held {
            release_successor(&mut tx, &self.event, now, self.ordered).await?;
        }
        tx.commit().await?;
        let _ = self.recorded.set(held);
        Ok(())
    }

    /// [`Attempt::done`] for attempts of one batch (claimed together by one worker): each is
    /// recorded as done in `tx`, in two statements for the whole batch, and `tx` is committed.
    /// Not for ordered topics, whose successors each attempt may release.
    pub async fn done_all(attempts: &[&Attempt], mut tx: Tx) -> Result<(), StoreError> {
        let Some(first) = attempts.first() else { return tx.commit().await };
        debug_assert!(attempts.iter().all(|a| a.ordered.is_none() && a.worker == first.worker));
        let now = first.clock.now();
        let events: Vec<&Event> = attempts.iter().map(|a| &a.event).collect();
        let started = attempts.iter().map(|a| a.started).min().unwrap_or(now);
        let held = outbox::finish_done(&mut tx, &events, &first.worker, started, now).await?;
        tx.commit().await?;
        for a in attempts {
            let _ = a.recorded.set(held.iter().any(|h| h == a.event.id.as_str()));
        }
        Ok(())
    }
}

/// After an ordered event is done: lets its aggregate's next event go if it was held behind
/// it. Only an event that waited itself (retried, or held) can have one behind it.
async fn release_successor(
    tx: &mut Tx,
    event: &Event,
    now: DateTime<Utc>,
    ordered: Option<&'static [&'static str]>,
) -> Result<(), StoreError> {
    if let Some(topics) = ordered
        && event.due_at != event.created_at
    {
        outbox::release_successor(tx, event, now, topics).await?;
    }
    Ok(())
}

/// Does the effect an event asks for (a call to a seller, an email). It may run more than
/// once for the same event (after a crash), so it must be idempotent on `event.id`. When it
/// returns `Ok` without having called [`Attempt::done`], the worker records the attempt.
pub trait Handler: Send + Sync + 'static {
    fn handle<'a>(&'a self, attempt: &'a Attempt) -> HandlerFuture<'a>;

    /// Called once the policy's last attempt failed, before the event is marked dead (for a
    /// seller delivery: fail the order and refund). If it fails, the event stays pending and
    /// is tried again later, so it must be idempotent too.
    fn given_up<'a>(&'a self, _event: &'a Event, _error: &'a str) -> HandlerFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    /// Handles the events a batched worker (`Worker::batched`) claimed together, an outcome
    /// per attempt in their order: for a handler that can read what the batch needs, and
    /// record what it did, once for all of them ([`Attempt::done_all`]). By default, each on
    /// its own, together.
    fn handle_batch<'a>(&'a self, attempts: &'a [Attempt]) -> BatchFuture<'a> {
        Box::pin(futures_util::future::join_all(attempts.iter().map(|a| self.handle(a))))
    }
}

pub type BatchFuture<'a> = Pin<Box<dyn Future<Output = Vec<Result<(), Failure>>> + Send + 'a>>;

impl<F, Fut, E> Handler for F
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Into<Failure> + 'static,
{
    fn handle<'a>(&'a self, attempt: &'a Attempt) -> HandlerFuture<'a> {
        let fut = self(attempt.event.clone());
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

/// Which events a worker claims.
#[derive(Debug, Clone)]
pub enum Claim {
    /// Every due event of one topic.
    Topic(String),
    /// Due events of these topics, one at a time per aggregate and in order (seller deliveries).
    InOrder(&'static [&'static str]),
    /// Due events of any of these topics, in no particular order per aggregate.
    Any(&'static [&'static str]),
}

#[derive(Clone)]
pub struct Worker {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub topic: String,
    pub claim: Claim,
    pub handler: Arc<dyn Handler>,
    pub policy: RetryPolicy,
    /// Names this worker in claims and attempts: node and loop.
    pub id: String,
    /// How long a claim stays exclusive. A handler still running after this may be
    /// overtaken by another worker, so it is also the handler's time limit.
    pub lease: Duration,
    pub batch: u32,
    /// How long a worker waits, after a wake-up or after a claim that did not fill its slots,
    /// before it claims again, so that events written in a burst or a steady stream are
    /// claimed together: a claim per batch instead of per event. Zero (claim at once) unless
    /// what the worker does may come a little later (emails, SMS).
    pub linger: std::time::Duration,
    /// Hands each claimed batch to [`Handler::handle_batch`] as one, instead of each event to
    /// [`Handler::handle`] on its own task.
    pub batched: bool,
}

impl Worker {
    pub fn new(db: Db, clock: Arc<dyn Clock>, topic: &str, handler: Arc<dyn Handler>, node: &str) -> Self {
        Self {
            db,
            clock,
            topic: topic.to_owned(),
            claim: Claim::Topic(topic.to_owned()),
            handler,
            policy: RetryPolicy::default(),
            id: format!("{node}/{topic}"),
            lease: Duration::seconds(60),
            batch: 16,
            linger: std::time::Duration::ZERO,
            batched: false,
        }
    }

    /// Claims up to `limit` due events.
    async fn claim(&self, limit: u32) -> Result<Vec<Event>, StoreError> {
        let now = self.clock.now();
        let mut db = self.db.clone();
        match &self.claim {
            Claim::Topic(topic) => outbox::claim(&mut db, now, topic, &self.id, self.lease, limit).await,
            Claim::InOrder(topics) => outbox::claim_in_order(&mut db, now, topics, &self.id, self.lease, limit).await,
            Claim::Any(topics) => outbox::claim_any(&mut db, now, topics, &self.id, self.lease, limit).await,
        }
    }

    /// Claims one batch and handles it. Returns how many events were claimed.
    pub async fn tick(&self) -> Result<usize, StoreError> {
        let events = self.claim(self.batch).await?;
        let n = events.len();
        // The batch's events are handled together: a seller's slow answer no longer holds up
        // the others. Safe for ordered deliveries too, since a claim holds at most one event
        // per aggregate (see `outbox::claim_in_order`).
        if self.batched {
            self.handle_batch(events).await?;
            return Ok(n);
        }
        let results = futures_util::future::join_all(events.into_iter().map(|e| self.handle_one(e))).await;
        for r in results {
            r?;
        }
        Ok(n)
    }

    fn attempt(&self, event: Event) -> Attempt {
        let ordered = match &self.claim {
            Claim::InOrder(topics) => Some(*topics),
            _ => None,
        };
        Attempt {
            event,
            worker: self.id.clone(),
            started: self.clock.now(),
            clock: self.clock.clone(),
            recorded: std::sync::OnceLock::new(),
            ordered,
        }
    }

    /// The lease: a handler still running after it may be overtaken, so it is its time limit.
    fn time_limit(&self) -> std::time::Duration {
        self.lease.to_std().unwrap_or(std::time::Duration::from_secs(60))
    }

    async fn handle_one(&self, event: Event) -> Result<(), StoreError> {
        let attempt = self.attempt(event);
        let limit = self.time_limit();
        let result = match tokio::time::timeout(limit, self.handler.handle(&attempt)).await {
            Ok(r) => r,
            Err(_) => Err(Failure::from(format!("handler timed out after {}s", limit.as_secs()))),
        };
        self.record(&attempt, result).await
    }

    /// Handles a claimed batch as one (`batched` workers), then records each outcome its
    /// handler did not.
    async fn handle_batch(&self, events: Vec<Event>) -> Result<(), StoreError> {
        let attempts: Vec<Attempt> = events.into_iter().map(|e| self.attempt(e)).collect();
        let limit = self.time_limit();
        let results = match tokio::time::timeout(limit, self.handler.handle_batch(&attempts)).await {
            Ok(r) if r.len() == attempts.len() => r,
            Ok(_) => attempts.iter().map(|_| Err(Failure::from("the batch handler lost track of its events"))).collect(),
            Err(_) => {
                attempts.iter().map(|_| Err(Failure::from(format!("handler timed out after {}s", limit.as_secs())))).collect()
            }
        };
        let mut first_error = None;
        for (attempt, result) in attempts.iter().zip(results) {
            if let Err(e) = self.record(attempt, result).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Records an attempt's outcome, unless its handler did with its own writes.
    async fn record(&self, attempt: &Attempt, result: Result<(), Failure>) -> Result<(), StoreError> {
        let started = attempt.started;
        let event = &attempt.event;
        if let Some(&held) = attempt.recorded.get() {
            // The handler recorded the attempt with its own writes.
            metrics::counter!("souk_outbox_attempts_total", "topic" => self.topic.clone(), "outcome" => "ok").increment(1);
            if !held {
                tracing::warn!(event = %event.id, worker = %self.id, "lease lost before the attempt finished; outcome dropped");
            }
            if let Err(e) = result {
                tracing::warn!(event = %event.id, error = %e.message, "outbox handler failed after recording its attempt");
            }
            return Ok(());
        }
        let now = self.clock.now();
        let mut compensation_error = None;
        let outcome = match &result {
            Ok(()) => Outcome::Done,
            Err(f) => match f.policy.as_deref().unwrap_or(&self.policy).after_failure_at(
                event.attempts,
                now - event.first_attempt_at.unwrap_or(started),
                rand::random::<f64>(),
            ) {
                // The other side's Retry-After wins when it asks for more time than the policy,
                // and a poll is asked again exactly when it said.
                AfterFailure::RetryIn(delay) => {
                    let wait = match f.retry_after {
                        Some(r) if f.poll => r,
                        Some(r) => r.max(delay),
                        None => delay,
                    };
                    Outcome::RetryAt { due: now + wait, error: &f.message }
                }
                AfterFailure::GiveUp => match self.handler.given_up(event, &f.message).await {
                    Ok(()) => Outcome::Dead { error: &f.message },
                    Err(e) => {
                        compensation_error = Some(e.message);
                        Outcome::RetryAt { due: now + self.policy.base, error: &f.message }
                    }
                },
            },
        };
        if let Some(e) = &compensation_error {
            tracing::error!(event = %event.id, error = %e, "giving up on an event failed; will try again");
        }
        let retry_at = match &outcome {
            Outcome::RetryAt { due, .. } => Some(*due),
            _ => None,
        };
        let mut tx = self.db.begin().await?;
        let done = matches!(outcome, Outcome::Done);
        let held = outbox::finish(&mut tx, event, &self.id, started, now, outcome).await?;
        if let (true, Some(due), Claim::InOrder(topics)) = (held, retry_at, &self.claim) {
            // Held a lease past the retry: let go one by one as the retry and each after it
            // are done, or at the latest then, if the retry is given up.
            outbox::hold_successors(&mut tx, event, due + self.lease, topics).await?;
        }
        if held && done {
            release_successor(&mut tx, event, now, attempt.ordered).await?;
        }
        tx.commit().await?;
        metrics::counter!("souk_outbox_attempts_total", "topic" => self.topic.clone(), "outcome" => if result.is_ok() { "ok" } else { "error" }).increment(1);
        if !held {
            tracing::warn!(event = %event.id, worker = %self.id, "lease lost before the attempt finished; outcome dropped");
        } else if let Err(e) = result {
            tracing::warn!(event = %event.id, attempt = event.attempts, error = %e.message, "outbox handler failed");
        }
        Ok(())
    }

    /// The topics this worker claims.
    pub fn topics(&self) -> Vec<&str> {
        match &self.claim {
            Claim::Topic(t) => vec![t.as_str()],
            Claim::InOrder(ts) | Claim::Any(ts) => ts.to_vec(),
        }
    }

    /// Runs until `shutdown` turns true, with up to `batch` events in hand at once. A slot
    /// that frees up is refilled without waiting for the rest (a slow seller holds up only
    /// its own deliveries), claiming once a quarter of the slots are free so that a busy
    /// queue costs a claim per few events rather than per event. When idle it waits for the
    /// next poll, or less: a commit in this process that enqueued one of its topics wakes it.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>, idle: std::time::Duration) {
        let wakeup = self.db.wakeup(&self.topics());
        let this = Arc::new(self);
        let batch = usize::try_from(this.batch).unwrap_or(16).max(1);
        let refill_at = (batch / 4).max(1);
        let mut in_hand = tokio::task::JoinSet::new();
        // Events in hand per task (one, or a batched worker's batch), so slots count events.
        let mut sizes: std::collections::HashMap<tokio::task::Id, usize> = std::collections::HashMap::new();
        // Whether due events may be waiting: the last claim filled every free slot, or
        // something happened since (a wake-up, a poll, or, for ordered topics, a finished
        // event, which may free its aggregate's next one). Claiming only then keeps an idle
        // worker from asking the database again after every event it finishes.
        let mut more = true;
        let ordered = matches!(this.claim, Claim::InOrder(_));
        // A lingering worker claims no sooner than this after a wake-up or a claim that did
        // not fill its slots: what comes in meanwhile is claimed with it.
        let mut not_before = tokio::time::Instant::now();
        loop {
            if *shutdown.borrow() {
                // Finish what is in hand: its outcome is recorded, not left to a lease.
                while in_hand.join_next().await.is_some() {}
                return;
            }
            // Claims never return more than asked (see `outbox::claim_selected`); saturating
            // all the same, so that a claim that did could not make this underflow.
            let free = batch.saturating_sub(sizes.values().sum());
            let wants = free > 0 && more && (in_hand.is_empty() || free >= refill_at);
            if wants && tokio::time::Instant::now() >= not_before {
                match this.claim(u32::try_from(free).unwrap_or(1)).await {
                    Ok(events) => {
                        more = events.len() == free;
                        if !more {
                            not_before = tokio::time::Instant::now() + this.linger;
                        }
                        if this.batched && !events.is_empty() {
                            // The batch is one task: its events are in hand until it ends.
                            let (w, n) = (this.clone(), events.len());
                            sizes.insert(in_hand.spawn(async move { w.handle_batch(events).await }).id(), n);
                        } else {
                            for event in events {
                                let w = this.clone();
                                sizes.insert(in_hand.spawn(async move { w.handle_one(event).await }).id(), 1);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, worker = %this.id, "outbox claim failed");
                        more = false;
                    }
                }
                continue;
            }
            let lingering = wants && tokio::time::Instant::now() < not_before;
            if in_hand.is_empty() {
                if lingering {
                    tokio::select! {
                        _ = tokio::time::sleep_until(not_before) => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
                let woken = tokio::select! {
                    _ = tokio::time::sleep(idle) => false,
                    _ = wakeup.notified() => true,
                    _ = shutdown.changed() => false,
                };
                if woken {
                    not_before = not_before.max(tokio::time::Instant::now() + this.linger);
                }
                more = true;
                continue;
            }
            tokio::select! {
                done = in_hand.join_next_with_id() => {
                    match done {
                        Some(Ok((id, result))) => {
                            sizes.remove(&id);
                            if let Err(e) = result {
                                tracing::error!(error = %e, worker = %this.id, "recording an outbox attempt failed");
                            }
                        }
                        Some(Err(e)) => {
                            sizes.remove(&e.id());
                            tracing::error!(error = %e, worker = %this.id, "an outbox handler panicked");
                        }
                        None => {}
                    }
                    // A finished ordered event may let its aggregate's next one be claimed.
                    more |= ordered;
                }
                _ = wakeup.notified() => more = true,
                _ = tokio::time::sleep(idle) => more = true,
                _ = tokio::time::sleep_until(not_before), if lingering => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

/// Done events of the message center's topics are kept this long, then deleted with their
/// attempts (the sends keep their own log in `message_sends`). Without it the outbox grew by
/// every email ever sent, and `/metrics` counts it whole.
pub const OUTBOX_RETENTION_DAYS: i64 = 30;

/// Deletes the message center's events done before `cutoff`, a batch per transaction so that
/// none holds many rows for long. Safe on every node at once: a row two nodes both picked is
/// deleted by the first and found gone by the second. Returns how many events went.
pub async fn purge_outbox(db: &Db, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
    const BATCH: u32 = 500;
    let topics: Vec<&str> = crate::messages::SOURCE_TOPICS
        .iter()
        .copied()
        .chain([crate::messages::EMAIL_TOPIC, crate::messages::SMS_TOPIC])
        .collect();
    let mut total = 0;
    loop {
        let mut tx = db.begin().await?;
        let n = outbox::purge_done(&mut tx, cutoff, &topics, BATCH).await?;
        tx.commit().await?;
        total += n;
        if n < u64::from(BATCH) {
            return Ok(total);
        }
    }
}

/// Periodic housekeeping that is safe to run on every node at once (it only deletes
/// what is already dead).
pub async fn housekeeping(db: Db, clock: Arc<dyn Clock>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let mut conn = db.clone();
        let now = clock.now();
        if let Err(e) = sessions::purge_expired(&mut conn, now).await {
            tracing::warn!(error = %e, "purging expired sessions failed");
        }
        if let Err(e) = idempotency::purge(&mut conn, now - Duration::hours(24)).await {
            tracing::warn!(error = %e, "purging idempotency keys failed");
        }
        if let Err(e) = souk_store::messages::purge(&mut conn, now - Duration::days(crate::messages::RETENTION_DAYS)).await {
            tracing::warn!(error = %e, "purging old messages failed");
        }
        if let Err(e) = purge_outbox(&db, now - Duration::days(OUTBOX_RETENTION_DAYS)).await {
            tracing::warn!(error = %e, "purging done outbox events failed");
        }
        if let Err(e) =
            souk_store::payments::expire_before(&mut conn, now, now - Duration::hours(crate::wallet::TOP_UP_EXPIRES_HOURS)).await
        {
            tracing::warn!(error = %e, "expiring abandoned top-ups failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(600)) => {}
            _ = shutdown.changed() => return,
        }
    }
}
