//! The outbox: nothing lost when a worker dies mid-handler, nothing handled twice by two
//! workers, failures retried with backoff until they give up.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::Duration;
use serde_json::json;
use souk_core::clock::Clock;
use souk_core::outbox::RetryPolicy;
use souk_server::workers::{Attempt, BatchFuture, Handler, HandlerFuture, Worker};
use souk_store::outbox::{self, Outcome};
use souk_store::{Conn, Db, q};

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    events_commit_with_their_change,
    a_worker_that_dies_mid_handler_loses_nothing,
    two_workers_never_handle_the_same_event,
    failures_retry_with_backoff_then_die,
    a_worker_whose_lease_was_taken_cannot_overwrite,
    a_commit_wakes_an_idle_worker_of_its_topic,
    a_batch_is_handled_concurrently,
    ordered_claims_take_each_aggregates_first_event_past_a_long_blocked_backlog,
    a_failed_ordered_event_holds_its_successors_until_its_retry,
    a_handlers_writes_commit_with_its_attempt_or_not_at_all,
    a_claim_takes_at_most_its_limit_oldest_first,
    done_message_events_are_purged_after_their_retention_and_deliveries_stay,
    a_batched_worker_records_its_batch_in_one_commit,
    a_lingering_worker_claims_a_burst_together,
);

const TOPIC: &str = "test.effect";

async fn setup(b: Backend) -> (Arc<TestDb>, Db, Arc<souk_core::clock::MockClock>) {
    let testdb = Arc::new(TestDb::new(b).await);
    let db = testdb.connect().await;
    (testdb, db, Arc::new(souk_core::clock::MockClock::at(start_time())))
}

async fn enqueue(db: &Db, clock: &dyn Clock, n: usize) -> Vec<String> {
    let mut tx = db.begin().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            outbox::enqueue(&mut tx, clock.now(), TOPIC, &format!("agg-{}", i % 7), &json!({ "n": i }))
                .await
                .unwrap()
                .to_string(),
        );
    }
    tx.commit().await.unwrap();
    ids
}

/// Records what it handled; fails while `failing` is set.
#[derive(Default)]
struct Recorder {
    handled: Mutex<Vec<String>>,
    failing: std::sync::atomic::AtomicBool,
}

impl Handler for Recorder {
    fn handle<'a>(&'a self, attempt: &'a Attempt) -> HandlerFuture<'a> {
        Box::pin(async move {
            let event = &attempt.event;
            // Give the other worker a chance to interleave.
            tokio::task::yield_now().await;
            if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("seller answered 503".into());
            }
            self.handled.lock().unwrap().push(event.id.to_string());
            Ok(())
        })
    }
}

/// Never finishes: a process that hangs or dies inside the handler.
struct Hang;

impl Handler for Hang {
    fn handle<'a>(&'a self, _: &'a Attempt) -> HandlerFuture<'a> {
        Box::pin(std::future::pending())
    }
}

async fn status_count(db: &Db, status: &'static str) -> i64 {
    let sql = match status {
        "done" => "SELECT COUNT(*) AS n FROM outbox_events WHERE status = 'done'",
        "dead" => "SELECT COUNT(*) AS n FROM outbox_events WHERE status = 'dead'",
        _ => "SELECT COUNT(*) AS n FROM outbox_events WHERE status = 'pending'",
    };
    db.clone().fetch_one(q(sql)).await.unwrap().get("n").unwrap()
}

async fn events_commit_with_their_change(b: Backend) {
    let (_t, db, clock) = setup(b).await;
    let mut tx = db.begin().await.unwrap();
    outbox::enqueue(&mut tx, clock.now(), TOPIC, "agg", &json!({})).await.unwrap();
    drop(tx); // rolled back: the change failed, so its event never existed
    assert_eq!(status_count(&db, "pending").await, 0);
    enqueue(&db, clock.as_ref(), 1).await;
    let rec = Arc::new(Recorder::default());
    let w = Worker::new(db.clone(), clock.clone(), TOPIC, rec.clone(), "n1");
    assert_eq!(w.tick().await.unwrap(), 1);
    assert_eq!(rec.handled.lock().unwrap().len(), 1);
    assert_eq!(status_count(&db, "done").await, 1);
    assert_eq!(w.tick().await.unwrap(), 0, "a done event is not handled again");
}

async fn a_worker_that_dies_mid_handler_loses_nothing(b: Backend) {
    let (testdb, db, clock) = setup(b).await;
    let ids = enqueue(&db, clock.as_ref(), 3).await;
    // Node A claims the events and hangs inside the first handler; then it is killed.
    let a = Worker::new(testdb.connect().await, clock.clone(), TOPIC, Arc::new(Hang), "node-a");
    let task = tokio::spawn(async move { a.tick().await });
    for _ in 0..200 {
        let locked: i64 = db
            .clone()
            .fetch_one(q("SELECT COUNT(*) AS n FROM outbox_events WHERE locked_by IS NOT NULL"))
            .await
            .unwrap()
            .get("n")
            .unwrap();
        if locked == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    task.abort();
    let _ = task.await;

    let rec = Arc::new(Recorder::default());
    let b_worker = Worker::new(db.clone(), clock.clone(), TOPIC, rec.clone(), "node-b");
    assert_eq!(b_worker.tick().await.unwrap(), 0, "the dead node's lease still holds");
    clock.advance(Duration::seconds(61));
    assert_eq!(b_worker.tick().await.unwrap(), 3, "after the lease, another node takes over");
    let mut handled = rec.handled.lock().unwrap().clone();
    handled.sort();
    let mut ids = ids;
    ids.sort();
    assert_eq!(handled, ids, "every event handled, once");
    assert_eq!(status_count(&db, "done").await, 3);
    let first = souk_core::id::EventId::parse(&ids[0]).unwrap();
    let e = outbox::get(&mut db.clone(), &first).await.unwrap();
    assert_eq!(e.attempts, 2, "the lost attempt is counted");
    let attempts = outbox::attempts(&mut db.clone(), &first).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].worker, "node-b/test.effect");
    assert_eq!(attempts[0].outcome, "ok");
}

async fn two_workers_never_handle_the_same_event(b: Backend) {
    let (testdb, db, clock) = setup(b).await;
    let ids = enqueue(&db, clock.as_ref(), 200).await;
    let rec = Arc::new(Recorder::default());
    // Two nodes: separate connection pools on the same database.
    let mut tasks = Vec::new();
    for node in ["node-1", "node-2"] {
        let mut w = Worker::new(testdb.connect().await, clock.clone(), TOPIC, rec.clone(), node);
        w.batch = 7;
        tasks.push(tokio::spawn(async move {
            let mut claimed = 0;
            loop {
                let n = w.tick().await.unwrap();
                if n == 0 {
                    break claimed;
                }
                claimed += n;
            }
        }));
    }
    let mut per_node = Vec::new();
    for t in tasks {
        per_node.push(t.await.unwrap());
    }
    let handled = rec.handled.lock().unwrap().clone();
    let unique: HashSet<_> = handled.iter().collect();
    assert_eq!(handled.len(), 200, "handled {} times for 200 events (per node {per_node:?})", handled.len());
    assert_eq!(unique.len(), 200);
    assert_eq!(unique, ids.iter().collect());
    assert_eq!(status_count(&db, "done").await, 200);
    let attempts: i64 = db.clone().fetch_one(q("SELECT COUNT(*) AS n FROM outbox_attempts")).await.unwrap().get("n").unwrap();
    assert_eq!(attempts, 200);
}

async fn failures_retry_with_backoff_then_die(b: Backend) {
    let (_t, db, clock) = setup(b).await;
    let ids = enqueue(&db, clock.as_ref(), 1).await;
    let id = souk_core::id::EventId::parse(&ids[0]).unwrap();
    let rec = Arc::new(Recorder::default());
    rec.failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut w = Worker::new(db.clone(), clock.clone(), TOPIC, rec.clone(), "n1");
    w.policy = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };

    assert_eq!(w.tick().await.unwrap(), 1);
    let e = outbox::get(&mut db.clone(), &id).await.unwrap();
    assert_eq!(e.status, "pending");
    assert_eq!(e.last_error.as_deref(), Some("seller answered 503"));
    let delay = e.due_at - clock.now();
    assert!(delay >= Duration::seconds(4) && delay <= Duration::seconds(6), "first retry after ~5s, got {delay:?}");
    assert_eq!(w.tick().await.unwrap(), 0, "not before it is due");

    clock.advance(Duration::seconds(6));
    assert_eq!(w.tick().await.unwrap(), 1);
    let e = outbox::get(&mut db.clone(), &id).await.unwrap();
    let delay = e.due_at - clock.now();
    assert!(delay >= Duration::seconds(8) && delay <= Duration::seconds(12), "second retry after ~10s, got {delay:?}");

    clock.advance(Duration::seconds(12));
    assert_eq!(w.tick().await.unwrap(), 1);
    let e = outbox::get(&mut db.clone(), &id).await.unwrap();
    assert_eq!(e.status, "dead", "gives up after max_attempts");
    let attempts = outbox::attempts(&mut db.clone(), &id).await.unwrap();
    assert_eq!(attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(attempts.iter().all(|a| a.outcome == "error"));

    // A failure that recovers is delivered.
    let ids = enqueue(&db, clock.as_ref(), 1).await;
    assert_eq!(w.tick().await.unwrap(), 1);
    rec.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    clock.advance(Duration::seconds(10));
    assert_eq!(w.tick().await.unwrap(), 1);
    assert_eq!(rec.handled.lock().unwrap().clone(), ids);
}

async fn a_worker_whose_lease_was_taken_cannot_overwrite(b: Backend) {
    let (_t, db, clock) = setup(b).await;
    enqueue(&db, clock.as_ref(), 1).await;
    let lease = Duration::seconds(60);
    let slow = outbox::claim(&mut db.clone(), clock.now(), TOPIC, "slow", lease, 1).await.unwrap().pop().unwrap();
    clock.advance(Duration::seconds(61));
    let fast = outbox::claim(&mut db.clone(), clock.now(), TOPIC, "fast", lease, 1).await.unwrap().pop().unwrap();
    assert_eq!(fast.attempts, 2);
    let mut tx = db.begin().await.unwrap();
    let held =
        outbox::finish(&mut tx, &slow, "slow", clock.now(), clock.now(), Outcome::RetryAt { due: clock.now(), error: "late" })
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert!(!held, "the slow worker's outcome is refused");
    let mut tx = db.begin().await.unwrap();
    assert!(outbox::finish(&mut tx, &fast, "fast", clock.now(), clock.now(), Outcome::Done).await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(status_count(&db, "done").await, 1);
}

async fn a_commit_wakes_an_idle_worker_of_its_topic(b: Backend) {
    let (_testdb, db, clock) = setup(b).await;
    let rec = Arc::new(Recorder::default());
    let other = Arc::new(Recorder::default());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    // Both poll once an hour: only a wake-up can get them going within the test.
    let hour = std::time::Duration::from_secs(3600);
    let w = Worker::new(db.clone(), clock.clone(), TOPIC, rec.clone(), "n1");
    let o = Worker::new(db.clone(), clock.clone(), "test.other", other.clone(), "n1");
    let tasks = [tokio::spawn(w.run(shutdown.clone(), hour)), tokio::spawn(o.run(shutdown, hour))];
    // Let both make their first (empty) claim and go idle.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let ids = enqueue(&db, clock.as_ref(), 3).await;
    eventually("the worker of the topic woke and handled them", || async { rec.handled.lock().unwrap().len() == 3 }).await;
    let mut handled = rec.handled.lock().unwrap().clone();
    handled.sort();
    let mut ids = ids;
    ids.sort();
    assert_eq!(handled, ids);
    assert!(other.handled.lock().unwrap().is_empty());
    // A rolled-back transaction wakes nobody and leaves nothing.
    let mut tx = db.begin().await.unwrap();
    outbox::enqueue(&mut tx, clock.now(), "test.other", "agg", &json!({})).await.unwrap();
    drop(tx);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(other.handled.lock().unwrap().is_empty());
    let _ = stop.send(true);
    for t in tasks {
        t.await.unwrap();
    }
}

/// Counts how many of its handlers run at once.
#[derive(Default)]
struct Overlap {
    running: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    done: std::sync::atomic::AtomicUsize,
}

impl Handler for Overlap {
    fn handle<'a>(&'a self, _: &'a Attempt) -> HandlerFuture<'a> {
        use std::sync::atomic::Ordering::SeqCst;
        Box::pin(async move {
            let now = self.running.fetch_add(1, SeqCst) + 1;
            self.most.fetch_max(now, SeqCst);
            // A seller taking its time to answer.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            self.running.fetch_sub(1, SeqCst);
            self.done.fetch_add(1, SeqCst);
            Ok(())
        })
    }
}

async fn a_batch_is_handled_concurrently(b: Backend) {
    let (_testdb, db, clock) = setup(b).await;
    // 7 aggregates, so a claim of 16 takes 7 at a time per in-order claim, and all 14 here.
    enqueue(&db, clock.as_ref(), 14).await;
    let h = Arc::new(Overlap::default());
    let w = Worker::new(db.clone(), clock.clone(), TOPIC, h.clone(), "n1");
    assert_eq!(w.tick().await.unwrap(), 14);
    use std::sync::atomic::Ordering::SeqCst;
    assert_eq!(h.done.load(SeqCst), 14);
    assert!(h.most.load(SeqCst) > 1, "handlers overlapped: at most {} at once", h.most.load(SeqCst));
    assert_eq!(status_count(&db, "done").await, 14);
}

async fn ordered_claims_take_each_aggregates_first_event_past_a_long_blocked_backlog(b: Backend) {
    let (_t, db, clock) = setup(b).await;
    let topics = ["test.a", "test.b"];
    let now = clock.now();
    // Aggregate A: a first event in flight (its first attempt, so what is behind it is not
    // parked), and 1,100 due events behind it (more than the widest window); aggregate B: one due event, newest of all. Another topic's
    // event on B does not hold B up.
    let mut tx = db.begin().await.unwrap();
    let first = outbox::enqueue(&mut tx, now, "test.a", "A", &json!({})).await.unwrap();
    for i in 0..1100 {
        outbox::enqueue(&mut tx, now, if i % 2 == 0 { "test.a" } else { "test.b" }, "A", &json!({})).await.unwrap();
    }
    outbox::enqueue(&mut tx, now, "other.topic", "B", &json!({})).await.unwrap();
    let b_event = outbox::enqueue(&mut tx, now, "test.b", "B", &json!({})).await.unwrap();
    tx.commit().await.unwrap();
    let mut c = db.clone();
    souk_store::Conn::execute(
        &mut c,
        souk_store::q("UPDATE outbox_events SET locked_by = 'w0', locked_until = $1, attempts = 1 WHERE id = $2")
            .bind(now + chrono::Duration::seconds(300))
            .bind(first.as_str()),
    )
    .await
    .unwrap();
    // Leases outlast the test's clock, so B stays in flight throughout.
    let lease = chrono::Duration::hours(1);
    let got = outbox::claim_in_order(&mut c, now, &topics, "w1", lease, 1).await.unwrap();
    assert_eq!(got.iter().map(|e| e.id.to_string()).collect::<Vec<_>>(), vec![b_event.to_string()]);
    assert!(outbox::claim_in_order(&mut c, now, &topics, "w2", lease, 16).await.unwrap().is_empty(), "B in flight, A waits");
    // When the lease on A's first event runs out, it and only it is claimed.
    let later = now + chrono::Duration::seconds(301);
    let got = outbox::claim_in_order(&mut c, later, &topics, "w1", lease, 16).await.unwrap();
    assert_eq!(got.iter().map(|e| e.id.to_string()).collect::<Vec<_>>(), vec![first.to_string()]);
}

/// Fails the events of one aggregate while `failing` is set; records the rest.
struct FailsAggregate {
    aggregate: &'static str,
    failing: std::sync::atomic::AtomicBool,
    handled: Mutex<Vec<String>>,
}

impl Handler for FailsAggregate {
    fn handle<'a>(&'a self, attempt: &'a Attempt) -> HandlerFuture<'a> {
        Box::pin(async move {
            let event = &attempt.event;
            if event.aggregate_id == self.aggregate && self.failing.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("seller answered 503".into());
            }
            self.handled.lock().unwrap().push(event.id.to_string());
            Ok(())
        })
    }
}

async fn a_failed_ordered_event_holds_its_successors_until_its_retry(b: Backend) {
    static TOPICS: &[&str] = &["test.a", "test.b"];
    let (_t, db, clock) = setup(b).await;
    let now = clock.now();
    // A's three events, then B's one, then another topic's event on A (not held: not ordered
    // with A's deliveries).
    let mut tx = db.begin().await.unwrap();
    let mut a = Vec::new();
    for t in ["test.a", "test.b", "test.a"] {
        a.push(outbox::enqueue(&mut tx, now, t, "A", &json!({})).await.unwrap());
    }
    let b_event = outbox::enqueue(&mut tx, now, "test.b", "B", &json!({})).await.unwrap();
    let other = outbox::enqueue(&mut tx, now, "other.topic", "A", &json!({})).await.unwrap();
    tx.commit().await.unwrap();
    let handler = Arc::new(FailsAggregate { aggregate: "A", failing: true.into(), handled: Mutex::new(Vec::new()) });
    let mut w = Worker::new(db.clone(), clock.clone(), "test.a", handler.clone(), "n1");
    w.claim = souk_server::workers::Claim::InOrder(TOPICS);
    w.batch = 1;

    assert_eq!(w.tick().await.unwrap(), 1, "A's first event, which fails");
    let first = outbox::get(&mut db.clone(), &a[0]).await.unwrap();
    assert_eq!(first.status, "pending");
    let retry = first.due_at;
    assert!(retry > now, "put off for its retry");
    for id in &a[1..] {
        let e = outbox::get(&mut db.clone(), id).await.unwrap();
        assert_eq!(e.due_at, retry + w.lease, "a successor is held past its head's retry, by a lease");
    }
    assert_eq!(outbox::get(&mut db.clone(), &other).await.unwrap().due_at, now, "another topic is not held");
    assert_eq!(outbox::get(&mut db.clone(), &b_event).await.unwrap().due_at, now, "another aggregate is not held");

    // An event written after the failure was not there to be held: the first claim that
    // finds it behind its waiting head parks it, for a lease.
    let mut tx = db.begin().await.unwrap();
    let late = outbox::enqueue(&mut tx, now, "test.b", "A", &json!({})).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(outbox::get(&mut db.clone(), &late).await.unwrap().due_at, now);

    // Until the retry, only B is claimable, and it is the first thing the next claim finds.
    assert_eq!(w.tick().await.unwrap(), 1);
    assert_eq!(handler.handled.lock().unwrap().clone(), vec![b_event.to_string()]);
    assert_eq!(outbox::get(&mut db.clone(), &late).await.unwrap().due_at, now + w.lease, "parked");
    assert_eq!(w.tick().await.unwrap(), 0, "A waits for its retry");

    // When it comes, A's events go in order, each let go when the one before it is done:
    // not before, and not all at once, and not a lease later.
    handler.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    clock.set(retry);
    assert_eq!(w.tick().await.unwrap(), 1, "the retry");
    assert_eq!(outbox::get(&mut db.clone(), &a[1]).await.unwrap().due_at, retry, "the next is let go");
    assert_eq!(outbox::get(&mut db.clone(), &a[2]).await.unwrap().due_at, retry + w.lease, "the one after it is still held");
    assert_eq!(w.tick().await.unwrap(), 1);
    assert_eq!(outbox::get(&mut db.clone(), &a[2]).await.unwrap().due_at, retry, "let go in its turn");
    assert_eq!(w.tick().await.unwrap(), 1);
    assert_eq!(outbox::get(&mut db.clone(), &late).await.unwrap().due_at, retry, "the parked one too");
    assert_eq!(w.tick().await.unwrap(), 1);
    let got = handler.handled.lock().unwrap().clone();
    let want: Vec<String> =
        std::iter::once(&b_event).chain(a.iter()).chain(std::iter::once(&late)).map(|e| e.to_string()).collect();
    assert_eq!(got, want);
}

/// Writes a follow-up event in its own transaction and records the attempt in it, or, while
/// `failing`, writes it and fails before committing.
struct WritesWithAttempt {
    db: Db,
    failing: std::sync::atomic::AtomicBool,
}

impl Handler for WritesWithAttempt {
    fn handle<'a>(&'a self, attempt: &'a Attempt) -> HandlerFuture<'a> {
        Box::pin(async move {
            let mut tx = self.db.begin().await.map_err(|e| e.to_string())?;
            let now = chrono::Utc::now();
            outbox::enqueue(&mut tx, now, "test.follow", &attempt.event.aggregate_id, &json!({}))
                .await
                .map_err(|e| e.to_string())?;
            if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("failed after writing".into());
            }
            attempt.done(tx).await.map_err(|e| e.to_string())?;
            Ok(())
        })
    }
}

async fn a_handlers_writes_commit_with_its_attempt_or_not_at_all(b: Backend) {
    let (_t, db, clock) = setup(b).await;
    let ids = enqueue(&db, clock.as_ref(), 1).await;
    let id = souk_core::id::EventId::parse(&ids[0]).unwrap();
    let handler = Arc::new(WritesWithAttempt { db: db.clone(), failing: true.into() });
    let w = Worker::new(db.clone(), clock.clone(), TOPIC, handler.clone(), "n1");
    let follow_ups = |db: Db| async move {
        let mut db = db;
        db.fetch_one(q("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'test.follow'"))
            .await
            .unwrap()
            .get::<i64>("n")
            .unwrap()
    };

    // Fails after writing: neither the write nor a completion, and the failure is recorded.
    assert_eq!(w.tick().await.unwrap(), 1);
    assert_eq!(follow_ups(db.clone()).await, 0, "the failed attempt's write was rolled back");
    let e = outbox::get(&mut db.clone(), &id).await.unwrap();
    assert_eq!(e.status, "pending");
    assert_eq!(e.last_error.as_deref(), Some("failed after writing"));

    // Succeeds: its write and the event's completion together, the attempt recorded once.
    handler.failing.store(false, std::sync::atomic::Ordering::SeqCst);
    clock.advance(Duration::seconds(10));
    assert_eq!(w.tick().await.unwrap(), 1);
    assert_eq!(follow_ups(db.clone()).await, 1);
    let e = outbox::get(&mut db.clone(), &id).await.unwrap();
    assert_eq!(e.status, "done");
    assert!(e.completed_at.is_some());
    let attempts = outbox::attempts(&mut db.clone(), &id).await.unwrap();
    assert_eq!(attempts.iter().map(|a| (a.attempt, a.outcome.as_str())).collect::<Vec<_>>(), vec![(1, "error"), (2, "ok")]);
    assert_eq!(w.tick().await.unwrap(), 0, "a done event is not handled again");
}

async fn a_claim_takes_at_most_its_limit_oldest_first(b: Backend) {
    let (_t, db, clock) = setup(b).await;
    let mut ids = enqueue(&db, clock.as_ref(), 10).await;
    ids.sort();
    let lease = Duration::seconds(60);
    let got = outbox::claim(&mut db.clone(), clock.now(), TOPIC, "w1", lease, 3).await.unwrap();
    let got: Vec<String> = got.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(got, ids[..3].to_vec(), "three, the oldest");
    let got = outbox::claim_any(&mut db.clone(), clock.now(), &["other.topic", TOPIC], "w2", lease, 1).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id.to_string(), ids[3]);
    let rest = outbox::claim(&mut db.clone(), clock.now(), TOPIC, "w3", lease, 16).await.unwrap();
    assert_eq!(rest.len(), 6, "the rest, each claimed once");
}

async fn done_message_events_are_purged_after_their_retention_and_deliveries_stay(b: Backend) {
    let (_t, db, clock) = setup(b).await;
    let email = souk_server::messages::EMAIL_TOPIC;
    let mut tx = db.begin().await.unwrap();
    let mut old_emails = Vec::new();
    for i in 0..3 {
        old_emails.push(outbox::enqueue(&mut tx, clock.now(), email, &format!("snd-{i}"), &json!({})).await.unwrap());
    }
    let delivery = outbox::enqueue(&mut tx, clock.now(), "instance.create", "sub-1", &json!({})).await.unwrap();
    let pending = outbox::enqueue(&mut tx, clock.now(), email, "snd-pending", &json!({})).await.unwrap();
    tx.commit().await.unwrap();
    // All but the pending one done, with an attempt each.
    let lease = Duration::seconds(60);
    for topic in [email, "instance.create"] {
        for e in outbox::claim(&mut db.clone(), clock.now(), topic, "w", lease, 16).await.unwrap() {
            if e.id == pending {
                continue;
            }
            let mut tx = db.begin().await.unwrap();
            assert!(outbox::finish(&mut tx, &e, "w", clock.now(), clock.now(), Outcome::Done).await.unwrap());
            tx.commit().await.unwrap();
        }
    }
    let retention = Duration::days(souk_server::workers::OUTBOX_RETENTION_DAYS);
    assert_eq!(souk_server::workers::purge_outbox(&db, clock.now() - retention).await.unwrap(), 0, "nothing is old yet");
    clock.advance(retention + Duration::days(1));
    // Done recently: kept.
    let mut tx = db.begin().await.unwrap();
    let recent = outbox::enqueue(&mut tx, clock.now(), email, "snd-recent", &json!({})).await.unwrap();
    tx.commit().await.unwrap();
    for e in outbox::claim(&mut db.clone(), clock.now(), email, "w", lease, 16).await.unwrap() {
        if e.id == recent {
            let mut tx = db.begin().await.unwrap();
            assert!(outbox::finish(&mut tx, &e, "w", clock.now(), clock.now(), Outcome::Done).await.unwrap());
            tx.commit().await.unwrap();
        }
    }
    assert_eq!(souk_server::workers::purge_outbox(&db, clock.now() - retention).await.unwrap(), 3);
    let left = |sql: &'static str| {
        let db = db.clone();
        async move { db.clone().fetch_one(q(sql)).await.unwrap().get::<i64>("n").unwrap() }
    };
    assert_eq!(left("SELECT COUNT(*) AS n FROM outbox_events").await, 3, "the delivery, the pending email and the recent one");
    assert_eq!(
        left("SELECT COUNT(*) AS n FROM outbox_attempts").await,
        2,
        "the delivery's and the recent one's; the purged ones' went with them"
    );
    for id in [&delivery, &pending, &recent] {
        assert!(outbox::get(&mut db.clone(), id).await.is_ok(), "{id} stays");
    }
    for id in &old_emails {
        assert!(outbox::get(&mut db.clone(), id).await.is_err(), "{id} purged");
    }
}

/// Handles a batch as one, noting its size: fails the event whose `n` is 2, and records the
/// rest done with a write of its own in one commit, after the event whose `n` is 4 was taken
/// over by another worker (its lease ran out).
struct BatchWriter {
    db: Db,
    batches: Mutex<Vec<usize>>,
}

impl Handler for BatchWriter {
    fn handle<'a>(&'a self, _: &'a Attempt) -> HandlerFuture<'a> {
        Box::pin(async { Err("a batched worker hands over batches".into()) })
    }

    fn handle_batch<'a>(&'a self, attempts: &'a [Attempt]) -> BatchFuture<'a> {
        Box::pin(async move {
            self.batches.lock().unwrap().push(attempts.len());
            let n = |a: &Attempt| a.event.payload["n"].as_i64().unwrap();
            let mut tx = self.db.begin().await.unwrap();
            outbox::enqueue(&mut tx, chrono::Utc::now(), "test.follow", "batch", &json!({})).await.unwrap();
            for a in attempts.iter().filter(|a| n(a) == 4) {
                tx.execute(q("UPDATE outbox_events SET locked_by = 'another' WHERE id = $1").bind(a.event.id.as_str()))
                    .await
                    .unwrap();
            }
            let done: Vec<&Attempt> = attempts.iter().filter(|a| n(a) != 2).collect();
            Attempt::done_all(&done, tx).await.unwrap();
            attempts.iter().map(|a| if n(a) == 2 { Err("fails".into()) } else { Ok(()) }).collect()
        })
    }
}

async fn a_batched_worker_records_its_batch_in_one_commit(b: Backend) {
    let (_t, db, clock) = setup(b).await;
    let ids = enqueue(&db, clock.as_ref(), 5).await;
    let handler = Arc::new(BatchWriter { db: db.clone(), batches: Mutex::default() });
    let mut w = Worker::new(db.clone(), clock.clone(), TOPIC, handler.clone(), "n1");
    w.batched = true;
    assert_eq!(w.tick().await.unwrap(), 5);
    assert_eq!(*handler.batches.lock().unwrap(), vec![5], "one batch of five");
    let follow_ups = db.clone().fetch_one(q("SELECT COUNT(*) AS n FROM outbox_events WHERE topic = 'test.follow'")).await;
    assert_eq!(follow_ups.unwrap().get::<i64>("n").unwrap(), 1, "the handler's write, with the batch's record");
    for (i, id) in ids.iter().enumerate() {
        let id = souk_core::id::EventId::parse(id).unwrap();
        let e = outbox::get(&mut db.clone(), &id).await.unwrap();
        let attempts: Vec<(u32, String)> =
            outbox::attempts(&mut db.clone(), &id).await.unwrap().into_iter().map(|a| (a.attempt, a.outcome)).collect();
        match i {
            2 => {
                assert_eq!((e.status.as_str(), e.last_error.as_deref()), ("pending", Some("fails")), "retried on its own");
                assert_eq!(attempts, vec![(1, "error".to_owned())]);
            }
            4 => {
                assert_eq!((e.status.as_str(), e.locked_by.as_deref()), ("pending", Some("another")), "left to its new holder");
                assert!(attempts.is_empty(), "nothing recorded for a lost lease: {attempts:?}");
            }
            _ => {
                assert_eq!(e.status, "done", "event {i}");
                assert!(e.completed_at.is_some());
                assert_eq!(attempts, vec![(1, "ok".to_owned())], "event {i}");
            }
        }
    }
    // Within the other worker's lease, past the retry's delay (5 s and jitter).
    clock.advance(Duration::seconds(30));
    assert_eq!(w.tick().await.unwrap(), 1, "only the failed one comes back (the taken one is leased)");
    assert_eq!(*handler.batches.lock().unwrap(), vec![5, 1]);
}

async fn a_lingering_worker_claims_a_burst_together(b: Backend) {
    let (_testdb, db, clock) = setup(b).await;
    // Its events are each the first of their commit (`n` is 0): all are done, one batch a claim.
    let handler = Arc::new(BatchWriter { db: db.clone(), batches: Mutex::default() });
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let mut w = Worker::new(db.clone(), clock.clone(), TOPIC, handler.clone(), "n1");
    w.batched = true;
    w.linger = std::time::Duration::from_secs(1);
    // Polls once an hour: the commits' wake-ups start it.
    let task = tokio::spawn(w.run(shutdown, std::time::Duration::from_secs(3600)));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(handler.batches.lock().unwrap().is_empty());
    // Three commits of one event each, well within the linger: one claim, one batch.
    for _ in 0..3 {
        enqueue(&db, clock.as_ref(), 1).await;
    }
    eventually("the burst handled", || async { status_count(&db, "done").await == 3 }).await;
    assert_eq!(*handler.batches.lock().unwrap(), vec![3]);
    enqueue(&db, clock.as_ref(), 1).await;
    eventually("a later one on its own", || async { status_count(&db, "done").await == 4 }).await;
    assert_eq!(*handler.batches.lock().unwrap(), vec![3, 1]);
    let _ = stop.send(true);
    task.await.unwrap();
}
