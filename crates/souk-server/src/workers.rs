//! Background workers. Each outbox topic gets a claim loop that takes due events with a
//! lease, runs the topic's handler, and records the attempt. Everything a worker decides is
//! in the database, so any number of `souk serve` processes can run the same loops.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::Duration;
use souk_core::clock::Clock;
use souk_core::outbox::{AfterFailure, RetryPolicy};
use souk_store::outbox::{self, Event, Outcome};
use souk_store::{Db, StoreError, idempotency, sessions};
use tokio::sync::watch;

pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Does the effect an event asks for (a call to a seller, an email). It may run more than
/// once for the same event (after a crash), so it must be idempotent on `event.id`.
pub trait Handler: Send + Sync + 'static {
    fn handle<'a>(&'a self, event: &'a Event) -> HandlerFuture<'a>;
}

impl<F, Fut> Handler for F
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    fn handle<'a>(&'a self, event: &'a Event) -> HandlerFuture<'a> {
        Box::pin(self(event.clone()))
    }
}

#[derive(Clone)]
pub struct Worker {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub topic: String,
    pub handler: Arc<dyn Handler>,
    pub policy: RetryPolicy,
    /// Names this worker in claims and attempts: node and loop.
    pub id: String,
    /// How long a claim stays exclusive. A handler still running after this may be
    /// overtaken by another worker, so it is also the handler's time limit.
    pub lease: Duration,
    pub batch: u32,
}

impl Worker {
    pub fn new(db: Db, clock: Arc<dyn Clock>, topic: &str, handler: Arc<dyn Handler>, node: &str) -> Self {
        Self {
            db,
            clock,
            topic: topic.to_owned(),
            handler,
            policy: RetryPolicy::default(),
            id: format!("{node}/{topic}"),
            lease: Duration::seconds(60),
            batch: 16,
        }
    }

    /// Claims one batch and handles it. Returns how many events were claimed.
    pub async fn tick(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let mut db = self.db.clone();
        let events = outbox::claim(&mut db, now, &self.topic, &self.id, self.lease, self.batch).await?;
        let n = events.len();
        for event in events {
            self.handle_one(event).await?;
        }
        Ok(n)
    }

    async fn handle_one(&self, event: Event) -> Result<(), StoreError> {
        let started = self.clock.now();
        let limit = self.lease.to_std().unwrap_or(std::time::Duration::from_secs(60));
        let result = match tokio::time::timeout(limit, self.handler.handle(&event)).await {
            Ok(r) => r,
            Err(_) => Err(format!("handler timed out after {}s", limit.as_secs())),
        };
        let now = self.clock.now();
        let outcome = match &result {
            Ok(()) => Outcome::Done,
            Err(error) => match self.policy.after_failure(event.attempts, rand::random::<f64>()) {
                AfterFailure::RetryIn(delay) => Outcome::RetryAt { due: now + delay, error },
                AfterFailure::GiveUp => Outcome::Dead { error },
            },
        };
        let mut tx = self.db.begin().await?;
        let held = outbox::finish(&mut tx, &event, &self.id, started, now, outcome).await?;
        tx.commit().await?;
        metrics::counter!("souk_outbox_attempts_total", "topic" => self.topic.clone(), "outcome" => if result.is_ok() { "ok" } else { "error" }).increment(1);
        if !held {
            tracing::warn!(event = %event.id, worker = %self.id, "lease lost before the attempt finished; outcome dropped");
        } else if let Err(e) = result {
            tracing::warn!(event = %event.id, attempt = event.attempts, error = %e, "outbox handler failed");
        }
        Ok(())
    }

    /// Runs until `shutdown` turns true, polling when idle.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>, idle: std::time::Duration) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            let busy = match self.tick().await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::error!(error = %e, worker = %self.id, "outbox claim failed");
                    false
                }
            };
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(idle) => {}
                    _ = shutdown.changed() => {}
                }
            }
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
