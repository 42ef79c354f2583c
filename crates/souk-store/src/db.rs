//! One interface over two databases.
//!
//! sqlx cannot check a query against both SQLite and PostgreSQL, and its `Any` driver does
//! not know timestamps, so Souk keeps its own thin layer: a query is SQL text plus a list of
//! [`Value`]s, run on whichever pool the URL chose at start-up. Most SQL is written once in
//! the common dialect (`$1` placeholders work on both); where the dialects differ a query
//! carries one text per backend ([`q2`]). Rows are read by column name with [`Row::get`].

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Decode, Postgres, Row as _, Sqlite, Transaction, Type};
use tokio::sync::Notify;

use crate::StoreError;

/// A database URL. Its `Debug` and `Display` hide the password so it can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, StoreError> {
        let backend = if raw.starts_with("sqlite:") {
            Backend::Sqlite
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Config(format!(
                "database URL must start with sqlite: or postgres://, got {:?}",
                redact(raw)
            )));
        };
        let _ = backend;
        Ok(Self(raw.to_owned()))
    }

    /// The URL of a SQLite file, created if missing.
    pub fn sqlite_file(path: &std::path::Path) -> Self {
        Self(format!("sqlite://{}", path.display()))
    }

    pub fn backend(&self) -> Backend {
        if self.0.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

fn redact(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_owned(),
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", redact(&self.0))
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool on one of the two backends. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: Pool,
    wakeups: Arc<Notifiers>,
    watchers: Arc<Notifiers>,
    /// SQLite's write lock, queued for in this process: see [`Db::write_turn`].
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// Waiters in this process by key, woken after a commit that concerned their key. Two sets:
/// outbox workers by the topics they claim (a commit that enqueued an event wakes its topic's
/// workers at once instead of at their next poll), and readers by the aggregate they watch (a
/// commit that changed a subscription wakes the reads waiting for it). Only a hint, and only
/// within one process: workers still poll and readers still look again on a timer, which is
/// what other nodes' commits (and retries that come due) rely on.
#[derive(Debug, Default)]
struct Notifiers(std::sync::Mutex<HashMap<String, Vec<Arc<Notify>>>>);

impl Notifiers {
    fn add(&self, keys: &[&str]) -> Arc<Notify> {
        let n = Arc::new(Notify::new());
        if let Ok(mut map) = self.0.lock() {
            for k in keys {
                map.entry((*k).to_owned()).or_default().push(n.clone());
            }
        }
        n
    }

    fn remove(&self, key: &str, n: &Arc<Notify>) {
        let Ok(mut map) = self.0.lock() else { return };
        if let Some(list) = map.get_mut(key) {
            list.retain(|m| !Arc::ptr_eq(m, n));
            if list.is_empty() {
                map.remove(key);
            }
        }
    }

    fn wake(&self, keys: &[String]) {
        let Ok(map) = self.0.lock() else { return };
        for k in keys {
            for n in map.get(k).into_iter().flatten() {
                // A permit is kept if the waiter is busy (a worker between its claim and its
                // wait, a reader between its read and its wait), so the wake is not lost.
                n.notify_one();
            }
        }
    }
}

/// A registration made by [`Db::watch`]; dropping it unregisters.
#[derive(Debug)]
pub struct Watch {
    aggregate: String,
    notify: Arc<Notify>,
    watchers: Arc<Notifiers>,
}

impl Watch {
    /// Resolves at the first commit, since the watch was made, that wrote an event for the
    /// aggregate (at once if one came after the watch was made and before this call).
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.watchers.remove(&self.aggregate, &self.notify);
    }
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// A pooled connection idle for longer than this is pinged before it is handed out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// sqlx pings every connection it hands out by default: a round trip to the server per
/// acquire, that is per statement run outside a transaction and per transaction begun
/// (BENCHMARKS.md, purchase item 10). A connection that was in use a moment ago is almost
/// surely alive, and one that died since fails its next statement as it could have failed
/// just after a ping; so, as HikariCP does, only a connection that sat idle is checked (and
/// replaced if it is gone).
async fn ping_if_idle<C: sqlx::Connection>(conn: &mut C, meta: sqlx::pool::PoolConnectionMetadata) -> Result<bool, sqlx::Error> {
    if meta.idle_for > PING_AFTER_IDLE {
        conn.ping().await?;
    }
    Ok(true)
}

/// How long a SQLite writer waits for the write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Db {
    /// Connects. For SQLite the file is created if missing and put in WAL mode with
    /// `synchronous = FULL`: a commit that returned survives a crash or a power cut.
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, StoreError> {
        Self::connect_with(url, 10).await
    }

    pub async fn connect_with(url: &DatabaseUrl, max_connections: u32) -> Result<Self, StoreError> {
        let pool = match url.backend() {
            Backend::Sqlite => {
                let opts = SqliteConnectOptions::from_str(url.expose())?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    // Several processes (or pools) may share the file; writers wait rather than fail.
                    .busy_timeout(BUSY_TIMEOUT);
                let pool = SqlitePoolOptions::new()
                    .max_connections(max_connections)
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| Box::pin(async move { ping_if_idle(conn, meta).await }))
                    .connect_with(opts)
                    .await?;
                Pool::Sqlite(pool)
            }
            Backend::Postgres => {
                let opts = PgConnectOptions::from_str(url.expose())?;
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| Box::pin(async move { ping_if_idle(conn, meta).await }))
                    .connect_with(opts)
                    .await?;
                Pool::Postgres(pool)
            }
        };
        Ok(Self { pool, wakeups: Arc::default(), watchers: Arc::default(), writer: Arc::default() })
    }

    /// Applies the embedded migrations for this backend. Safe to run from several
    /// processes at once (sqlx takes an advisory lock on PostgreSQL).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => SQLITE_MIGRATOR.run(p).await?,
            Pool::Postgres(p) => POSTGRES_MIGRATOR.run(p).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Opens a transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads and then writes can fail with "database is locked"
    /// when another writer got in between, while an immediate one waits its turn.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let (inner, turn) = match &self.pool {
            Pool::Sqlite(p) => {
                let turn = self.write_turn().await?;
                (TxInner::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?), Some(turn))
            }
            Pool::Postgres(p) => (TxInner::Postgres(p.begin().await?), None),
        };
        Ok(Tx {
            inner,
            _turn: turn,
            wakeups: self.wakeups.clone(),
            watchers: self.watchers.clone(),
            enqueued: Vec::new(),
            aggregates: Vec::new(),
        })
    }

    /// This process's turn at SQLite's one write lock, held until the write is over. SQLite
    /// makes a writer that finds the lock taken sleep in its busy handler, in steps growing to
    /// 100 ms, and try again: under load the lock sat free while writers slept, and whoever
    /// asked last could get it first. Queued here, in order, each is handed the lock as the one
    /// before lets it go; the busy handler is left to other processes on the same file. Waits
    /// as long as the busy timeout, then fails as a locked database would.
    async fn write_turn(&self) -> Result<tokio::sync::OwnedMutexGuard<()>, StoreError> {
        tokio::time::timeout(BUSY_TIMEOUT, self.writer.clone().lock_owned())
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))
    }

    /// A write turn for a statement run on its own on SQLite, if it may write.
    async fn turn_for(&self, q: &Q) -> Result<Option<tokio::sync::OwnedMutexGuard<()>>, StoreError> {
        if q.writes() { self.write_turn().await.map(Some) } else { Ok(None) }
    }

    /// Watches an aggregate for changes committed by this process. Make the watch before
    /// reading what it guards, so that a change committed in between is not missed.
    pub fn watch(&self, aggregate: &str) -> Watch {
        let notify = self.watchers.add(&[aggregate]);
        Watch { aggregate: aggregate.to_owned(), notify, watchers: self.watchers.clone() }
    }

    /// What a worker claiming `topics` waits on between polls: notified when this process
    /// commits an event of one of them.
    pub fn wakeup(&self, topics: &[&str]) -> Arc<Notify> {
        self.wakeups.add(topics)
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    /// Whether the database answers. Used by `/healthz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut db = self.clone();
        db.fetch_one(q("SELECT 1 AS one")).await.map(|_| ())
    }
}

/// A transaction. Dropped without [`Tx::commit`], it rolls back: an error anywhere in a
/// handler leaves no partial write.
pub struct Tx {
    inner: TxInner,
    /// On SQLite, this process's write turn, let go once the transaction is over.
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    wakeups: Arc<Notifiers>,
    watchers: Arc<Notifiers>,
    /// Topics of the outbox events written in this transaction, whose workers to wake.
    enqueued: Vec<String>,
    /// Aggregates those events are about, whose watchers to wake.
    aggregates: Vec<String>,
}

enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        self.wakeups.wake(&self.enqueued);
        self.watchers.wake(&self.aggregates);
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.inner {
            TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Notes an outbox event of `topic` about `aggregate` written here: the topic's workers
    /// and the aggregate's watchers are woken on commit.
    pub(crate) fn enqueued(&mut self, topic: &str, aggregate: &str) {
        if !self.enqueued.iter().any(|t| t == topic) {
            self.enqueued.push(topic.to_owned());
        }
        Conn::changed(self, aggregate);
    }
}

/// A value bound to a query. Each variant carries an `Option` so that a NULL is still typed,
/// which PostgreSQL requires.
#[derive(Debug, Clone)]
pub enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Bool(Option<bool>),
    Time(Option<DateTime<Utc>>),
    Bytes(Option<Vec<u8>>),
}

macro_rules! value_from {
    ($variant:ident, $t:ty, |$v:ident| $conv:expr) => {
        impl From<$t> for Value {
            fn from($v: $t) -> Self {
                Value::$variant(Some($conv))
            }
        }
        impl From<Option<$t>> for Value {
            fn from(v: Option<$t>) -> Self {
                Value::$variant(v.map(|$v| $conv))
            }
        }
    };
}
value_from!(Int, i64, |v| v);
value_from!(Int, u32, |v| i64::from(v));
value_from!(Text, String, |v| v);
value_from!(Text, &str, |v| v.to_owned());
value_from!(Text, &String, |v| v.clone());
value_from!(Bool, bool, |v| v);
value_from!(Time, DateTime<Utc>, |v| v);
value_from!(Bytes, Vec<u8>, |v| v);
value_from!(Bytes, &[u8], |v| v.to_vec());

/// SQL text (one per backend) and its arguments.
#[derive(Debug, Clone)]
pub struct Q {
    sqlite: std::borrow::Cow<'static, str>,
    postgres: std::borrow::Cow<'static, str>,
    args: Vec<Value>,
}

/// A query written in the dialect both backends share.
pub fn q(sql: &'static str) -> Q {
    Q { sqlite: sql.into(), postgres: sql.into(), args: Vec::new() }
}

/// A query whose text differs between the backends.
pub fn q2(sqlite: &'static str, postgres: &'static str) -> Q {
    Q { sqlite: sqlite.into(), postgres: postgres.into(), args: Vec::new() }
}

/// `$from, $from+1, …`: `n` numbered parameters, for an `IN (…)` list whose values are bound.
pub(crate) fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// A query assembled at run time. Only for text built from constant fragments of this
/// crate (never from input): values still go in as bound arguments.
pub(crate) fn q_built(sqlite: String, postgres: String) -> Q {
    Q { sqlite: sqlite.into(), postgres: postgres.into(), args: Vec::new() }
}

impl Q {
    pub fn bind(mut self, v: impl Into<Value>) -> Self {
        self.args.push(v.into());
        self
    }

    /// Binds each of `values` in turn (the values of an `IN (…)` list built by `placeholders`).
    pub fn bind_all<V: Into<Value>>(mut self, values: impl IntoIterator<Item = V>) -> Self {
        self.args.extend(values.into_iter().map(Into::into));
        self
    }

    /// Whether the statement writes, as far as its first word tells (`INSERT`, `UPDATE`,
    /// `DELETE`, `REPLACE`). A write it misses (one behind a `WITH`) meets SQLite's busy
    /// handler, as every write did before; a read taken for a write would wait a turn it did
    /// not need, and, run while its task holds a transaction, wait for itself.
    fn writes(&self) -> bool {
        let sql = self.sqlite.trim_start();
        ["INSERT", "UPDATE", "DELETE", "REPLACE"].iter().any(|w| sql.get(..w.len()).is_some_and(|s| s.eq_ignore_ascii_case(w)))
    }

    fn sqlite(&self) -> sqlx::query::Query<'static, Sqlite, sqlx::sqlite::SqliteArguments> {
        let mut query = match &self.sqlite {
            std::borrow::Cow::Borrowed(s) => sqlx::query(*s),
            std::borrow::Cow::Owned(s) => sqlx::query(sqlx::AssertSqlSafe(s.clone())),
        };
        for v in &self.args {
            query = match v.clone() {
                Value::Int(x) => query.bind(x),
                Value::Text(x) => query.bind(x),
                Value::Bool(x) => query.bind(x),
                Value::Time(x) => query.bind(x),
                Value::Bytes(x) => query.bind(x),
            };
        }
        query
    }

    fn postgres(&self) -> sqlx::query::Query<'static, Postgres, sqlx::postgres::PgArguments> {
        let mut query = match &self.postgres {
            std::borrow::Cow::Borrowed(s) => sqlx::query(*s),
            std::borrow::Cow::Owned(s) => sqlx::query(sqlx::AssertSqlSafe(s.clone())),
        };
        for v in &self.args {
            query = match v.clone() {
                Value::Int(x) => query.bind(x),
                Value::Text(x) => query.bind(x),
                Value::Bool(x) => query.bind(x),
                Value::Time(x) => query.bind(x),
                Value::Bytes(x) => query.bind(x),
            };
        }
        query
    }
}

/// A result row from either backend.
pub enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

/// Types that can be read from a column on both backends.
pub trait Column: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres> {}
impl<T> Column for T where T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres> {}

impl Row {
    pub fn get<T: Column>(&self, column: &str) -> Result<T, StoreError> {
        match self {
            // SQLite's declared types are advisory and expressions have none, so its values
            // are decoded without the type-compatibility check; PostgreSQL's are checked.
            Row::Sqlite(r) => r.try_get_unchecked(column).map_err(StoreError::from),
            Row::Postgres(r) => r.try_get(column).map_err(StoreError::from),
        }
    }
}

/// Something queries run on: the pool, or a transaction.
pub trait Conn: Send {
    fn backend(&self) -> Backend;
    fn fetch_all(&mut self, q: Q) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send;
    fn fetch_optional(&mut self, q: Q) -> impl Future<Output = Result<Option<Row>, StoreError>> + Send;
    /// Runs a statement and returns the number of rows it affected.
    fn execute(&mut self, q: Q) -> impl Future<Output = Result<u64, StoreError>> + Send;

    fn fetch_one(&mut self, q: Q) -> impl Future<Output = Result<Row, StoreError>> + Send {
        let fut = self.fetch_optional(q);
        async move { fut.await?.ok_or(StoreError::NotFound) }
    }

    /// Notes that a statement just run changed `aggregate` (a subscription, say): its
    /// [`Watch`]ers are woken once the change is committed (at once outside a transaction).
    fn changed(&mut self, aggregate: &str);
}

impl Conn for Db {
    fn backend(&self) -> Backend {
        Db::backend(self)
    }

    fn changed(&mut self, aggregate: &str) {
        self.watchers.wake(&[aggregate.to_owned()]);
    }

    fn fetch_all(&mut self, q: Q) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send {
        let (pool, db) = (self.pool.clone(), self.clone());
        async move {
            Ok(match &pool {
                Pool::Sqlite(p) => {
                    let _turn = db.turn_for(&q).await?;
                    q.sqlite().fetch_all(p).await?.into_iter().map(Row::Sqlite).collect()
                }
                Pool::Postgres(p) => q.postgres().fetch_all(p).await?.into_iter().map(Row::Postgres).collect(),
            })
        }
    }

    fn fetch_optional(&mut self, q: Q) -> impl Future<Output = Result<Option<Row>, StoreError>> + Send {
        let (pool, db) = (self.pool.clone(), self.clone());
        async move {
            Ok(match &pool {
                Pool::Sqlite(p) => {
                    let _turn = db.turn_for(&q).await?;
                    q.sqlite().fetch_optional(p).await?.map(Row::Sqlite)
                }
                Pool::Postgres(p) => q.postgres().fetch_optional(p).await?.map(Row::Postgres),
            })
        }
    }

    fn execute(&mut self, q: Q) -> impl Future<Output = Result<u64, StoreError>> + Send {
        let (pool, db) = (self.pool.clone(), self.clone());
        async move {
            Ok(match &pool {
                Pool::Sqlite(p) => {
                    let _turn = db.turn_for(&q).await?;
                    q.sqlite().execute(p).await?.rows_affected()
                }
                Pool::Postgres(p) => q.postgres().execute(p).await?.rows_affected(),
            })
        }
    }
}

// The futures are written out (not `async fn`) so the trait can promise they are `Send`.
#[allow(clippy::manual_async_fn)]
impl Conn for Tx {
    fn backend(&self) -> Backend {
        Tx::backend(self)
    }

    fn changed(&mut self, aggregate: &str) {
        if !self.aggregates.iter().any(|a| a == aggregate) {
            self.aggregates.push(aggregate.to_owned());
        }
    }

    fn fetch_all(&mut self, q: Q) -> impl Future<Output = Result<Vec<Row>, StoreError>> + Send {
        async move {
            Ok(match &mut self.inner {
                TxInner::Sqlite(t) => q.sqlite().fetch_all(&mut **t).await?.into_iter().map(Row::Sqlite).collect(),
                TxInner::Postgres(t) => q.postgres().fetch_all(&mut **t).await?.into_iter().map(Row::Postgres).collect(),
            })
        }
    }

    fn fetch_optional(&mut self, q: Q) -> impl Future<Output = Result<Option<Row>, StoreError>> + Send {
        async move {
            Ok(match &mut self.inner {
                TxInner::Sqlite(t) => q.sqlite().fetch_optional(&mut **t).await?.map(Row::Sqlite),
                TxInner::Postgres(t) => q.postgres().fetch_optional(&mut **t).await?.map(Row::Postgres),
            })
        }
    }

    fn execute(&mut self, q: Q) -> impl Future<Output = Result<u64, StoreError>> + Send {
        async move {
            Ok(match &mut self.inner {
                TxInner::Sqlite(t) => q.sqlite().execute(&mut **t).await?.rows_affected(),
                TxInner::Postgres(t) => q.postgres().execute(&mut **t).await?.rows_affected(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_hide_passwords() {
        let url = DatabaseUrl::parse("postgres://souk:hunter2@db:5432/souk").unwrap();
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(!url.to_string().contains("hunter2"));
        assert_eq!(url.backend(), Backend::Postgres);
        assert!(DatabaseUrl::parse("mysql://x").is_err());
    }

    #[test]
    fn statements_that_write_are_told_by_their_first_word() {
        for sql in ["INSERT INTO t VALUES (1)", "  update t SET a = 1", "DELETE FROM t", "REPLACE INTO t VALUES (1)"] {
            assert!(q_built(sql.into(), sql.into()).writes(), "{sql}");
        }
        for sql in ["SELECT updated_at FROM t", "WITH a AS (SELECT 1) SELECT * FROM a", "select 'delete'", ""] {
            assert!(!q_built(sql.into(), sql.into()).writes(), "{sql}");
        }
    }

    /// Writers of one process take SQLite's write lock in the order they asked for it, each as
    /// soon as the one before lets it go, whether in a transaction or a statement on its own.
    #[tokio::test]
    async fn sqlite_writers_queue_for_the_lock_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&DatabaseUrl::sqlite_file(&dir.path().join("t.db"))).await.unwrap();
        db.clone().execute(q("CREATE TABLE t (n INTEGER NOT NULL)")).await.unwrap();
        // A transaction holds the lock while writers line up behind it, alternately a
        // transaction and a statement on its own.
        let first = db.begin().await.unwrap();
        let mut writers = Vec::new();
        for n in 0..20_i64 {
            let db = db.clone();
            writers.push(tokio::spawn(async move {
                if n % 2 == 0 {
                    let mut tx = db.begin().await.unwrap();
                    tx.execute(q("INSERT INTO t (n) VALUES ($1)").bind(n)).await.unwrap();
                    tx.commit().await.unwrap();
                } else {
                    db.clone().execute(q("INSERT INTO t (n) VALUES ($1)").bind(n)).await.unwrap();
                }
            }));
            // Each is queued before the next is started.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Reads are not queued, and a writer waiting its turn holds no pooled connection: this
        // read gets one while twenty writers wait (before the queue they held all ten, waiting
        // in SQLite's busy handler, and it timed out).
        let mut reader = db.clone();
        let none = tokio::time::timeout(Duration::from_secs(1), reader.fetch_all(q("SELECT n FROM t")));
        assert!(none.await.expect("a read does not wait for the writers").unwrap().is_empty());
        first.commit().await.unwrap();
        for w in writers {
            w.await.unwrap();
        }
        let rows = db.clone().fetch_all(q("SELECT n FROM t ORDER BY rowid")).await.unwrap();
        let order: Vec<i64> = rows.iter().map(|r| r.get("n").unwrap()).collect();
        assert_eq!(order, (0..20).collect::<Vec<_>>(), "served in the order they asked");
    }
}
