//! Souk's persistence layer.
//!
//! All SQL lives in this crate. Each module is named after what it stores and offers plain
//! functions over a [`Conn`] (the pool or a transaction): the caller decides the transaction,
//! so a state change, its audit entry and its outbox events commit together or not at all.

pub mod accounts;
pub mod api_keys;
pub mod app_users;
pub mod audit;
pub mod calendars;
pub mod clock;
pub mod coupons;
mod db;
pub mod fulfillment;
pub mod gateway_keys;
pub mod idempotency;
pub mod licenses;
pub mod messages;
pub mod orders;
pub mod orgs;
pub mod outbox;
pub mod payments;
pub mod products;
pub mod sellers;
pub mod servers;
pub mod sessions;
pub mod shops;
pub mod storefront;
pub mod uploads;
pub mod verifications;
pub mod wallets;

pub use db::{Backend, Conn, DatabaseUrl, Db, Q, Row, Tx, Value, Watch, q, q2};
pub(crate) use db::{placeholders, q_built};

/// The one error type of the persistence layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule of the schema refused the write. Callers that can cause one
    /// turn it into a domain answer ("email already registered").
    #[error("conflicts with an existing row: {0}")]
    Conflict(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let Some(db) = e.as_database_error()
            && db.is_unique_violation()
        {
            return StoreError::Conflict(db.constraint().map(str::to_owned).unwrap_or_else(|| db.message().to_owned()));
        }
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            other => StoreError::Database(other),
        }
    }
}

impl StoreError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict(_))
    }
}

/// Parses a stored string into a domain value, or reports corrupt data.
pub(crate) fn parse_stored<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn stored_enum<T>(parsed: Option<T>, raw: &str) -> Result<T, StoreError> {
    parsed.ok_or_else(|| StoreError::Corrupt(format!("unexpected stored value {raw:?}")))
}
