//! Postgres-wire connection pool (CockroachDB or PostgreSQL) and error classification.

use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{Config, ManagerConfig, PoolConfig, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::config::DbConfig;

pub use deadpool_postgres::{Client, Pool, PoolError, Transaction};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached (pool timeout, refused or dropped connection).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique constraint rejected the row.
    #[error("duplicate: {0}")]
    Duplicate(String),
    /// A serialization conflict; the transaction may be retried (CockroachDB's 40001).
    #[error("transaction conflict, retry: {0}")]
    Retry(String),
    #[error("query failed: {0}")]
    Query(String),
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.code() {
            Some(c) if *c == SqlState::UNIQUE_VIOLATION => Self::Duplicate(e.to_string()),
            Some(c)
                if *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED =>
            {
                Self::Retry(e.to_string())
            }
            Some(c) if *c == SqlState::ADMIN_SHUTDOWN || *c == SqlState::CANNOT_CONNECT_NOW => {
                Self::Unavailable(e.to_string())
            }
            Some(_) => Self::Query(as_report(&e)),
            None => Self::Unavailable(as_report(&e)),
        }
    }
}

fn as_report(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// A pool that connects lazily: building it never fails because the database is down.
pub fn pool(cfg: &DbConfig, max_size: usize) -> Pool {
    let mut c = Config::new();
    c.host = Some(cfg.host.clone());
    c.port = Some(cfg.port);
    c.dbname = Some(cfg.name.clone());
    c.user = Some(cfg.user.clone());
    c.password = cfg.password.as_ref().map(|p| p.expose().clone());
    c.connect_timeout = Some(Duration::from_secs(3));
    c.application_name = Some("finctl-platform".into());
    c.manager = Some(ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    });
    c.pool = Some(PoolConfig {
        max_size,
        timeouts: Timeouts {
            wait: Some(Duration::from_secs(3)),
            create: Some(Duration::from_secs(3)),
            recycle: Some(Duration::from_secs(3)),
        },
        ..PoolConfig::default()
    });
    c.create_pool(Some(Runtime::Tokio1), NoTls)
        .expect("pool config with a runtime is valid")
}

/// Runs `f` again when the database reports a serialization conflict, with a short backoff.
pub async fn retry_on_conflict<T, F, Fut>(mut f: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    let mut attempt = 0u32;
    loop {
        match f().await {
            Err(DbError::Retry(msg)) if attempt < 8 => {
                attempt += 1;
                tracing::debug!(attempt, %msg, "retrying transaction");
                let ms = 5u64 << attempt.min(6);
                tokio::time::sleep(Duration::from_millis(ms + fastrand::u64(0..ms))).await;
            }
            other => return other,
        }
    }
}
