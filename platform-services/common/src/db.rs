//! Postgres-wire connection pool (CockroachDB or PostgreSQL) and error classification.

use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{Config, ManagerConfig, PoolConfig, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use crate::CommonError;
use crate::config::DbConfig;

pub use deadpool_postgres::{Client, Pool, PoolError, Transaction};
/// The driver's error, named here so services' macros need not name the driver crate.
pub use tokio_postgres::Error as TokioPostgresError;

/// What went wrong below a [`DbError`]: the driver's or the pool's error, kept as the source.
pub type DbSource = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A database failure, classified by what the caller can do about it. The driver's error is
/// the source; the message adds the SQLSTATE and the server's text, which only logs see
/// (problem+json hides it, see [`crate::problem::ApiError::to_problem`]).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached (pool timeout, refused or dropped connection).
    #[error("database unavailable: {}", report(.0.as_ref()))]
    Unavailable(#[source] DbSource),
    /// A unique constraint rejected the row.
    #[error("duplicate: {}", report(.0))]
    Duplicate(#[source] tokio_postgres::Error),
    /// A serialization conflict; the transaction may be retried (CockroachDB's 40001).
    #[error("transaction conflict, retry: {}", report(.0))]
    Retry(#[source] tokio_postgres::Error),
    #[error("query failed: {}", report(.0.as_ref()))]
    Query(#[source] DbSource),
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.code() {
            Some(c) if *c == SqlState::UNIQUE_VIOLATION => Self::Duplicate(e),
            Some(c)
                if *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED =>
            {
                Self::Retry(e)
            }
            Some(c) if *c == SqlState::ADMIN_SHUTDOWN || *c == SqlState::CANNOT_CONNECT_NOW => {
                Self::Unavailable(Box::new(e))
            }
            Some(_) => Self::Query(Box::new(e)),
            None => Self::Unavailable(Box::new(e)),
        }
    }
}

/// `SQLSTATE: message` for a server error, else the error and its causes joined by `: `.
fn report(e: &(dyn std::error::Error + 'static)) -> String {
    if let Some(db) = e
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(tokio_postgres::Error::as_db_error)
    {
        return format!("{}: {}", db.code().code(), db.message());
    }
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => Self::Unavailable(Box::new(other)),
        }
    }
}

/// Reads a row that may be absent with `read` (columns by name), as stores do for lookups.
pub fn read_opt<T>(
    row: Option<Row>,
    read: impl Fn(&Row) -> Result<T, tokio_postgres::Error>,
) -> Result<Option<T>, DbError> {
    Ok(row.as_ref().map(read).transpose()?)
}

/// Reads every row with `read`; the first row that does not fit fails them all.
pub fn read_all<T>(
    rows: &[Row],
    read: impl Fn(&Row) -> Result<T, tokio_postgres::Error>,
) -> Result<Vec<T>, DbError> {
    Ok(rows.iter().map(read).collect::<Result<_, _>>()?)
}

/// `Ok(None)`, the row that is not there, as the caller's "not found" error.
pub trait DbOptionExt<T> {
    /// `Ok(Some(t))` is `t`; `Ok(None)` is `not_found()`; a database error goes through
    /// [`CommonError`] (503 when the database is down, else 500).
    fn or_not_found<E: From<CommonError>>(self, not_found: impl FnOnce() -> E) -> Result<T, E>;
}

impl<T> DbOptionExt<T> for Result<Option<T>, DbError> {
    fn or_not_found<E: From<CommonError>>(self, not_found: impl FnOnce() -> E) -> Result<T, E> {
        match self {
            Ok(Some(t)) => Ok(t),
            Ok(None) => Err(not_found()),
            Err(e) => Err(CommonError::from(e).into()),
        }
    }
}

/// A unique violation as the caller's "exists already" error.
pub trait DbResultExt<T> {
    /// [`DbError::Duplicate`] is `conflict()`; any other database error goes through
    /// [`CommonError`].
    fn or_conflict<E: From<CommonError>>(self, conflict: impl FnOnce() -> E) -> Result<T, E>;
}

impl<T> DbResultExt<T> for Result<T, DbError> {
    fn or_conflict<E: From<CommonError>>(self, conflict: impl FnOnce() -> E) -> Result<T, E> {
        match self {
            Ok(t) => Ok(t),
            Err(DbError::Duplicate(_)) => Err(conflict()),
            Err(e) => Err(CommonError::from(e).into()),
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
            Err(DbError::Retry(e)) if attempt < 8 => {
                attempt += 1;
                tracing::debug!(attempt, error = %e, "retrying transaction");
                let ms = 5u64 << attempt.min(6);
                tokio::time::sleep(Duration::from_millis(ms + fastrand::u64(0..ms))).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::ApiError;

    fn query_failed() -> DbError {
        DbError::Query(Box::new(std::io::Error::other(
            "relation \"x\" does not exist",
        )))
    }

    #[test]
    fn db_error_keeps_its_source_and_says_what_failed() {
        let e = query_failed();
        assert_eq!(e.to_string(), "query failed: relation \"x\" does not exist");
        let source = std::error::Error::source(&e).expect("the driver's error is the source");
        assert_eq!(source.to_string(), "relation \"x\" does not exist");
    }

    #[test]
    fn no_row_is_the_callers_not_found() {
        let found: Result<Option<i32>, DbError> = Ok(Some(7));
        assert_eq!(
            found
                .or_not_found(|| CommonError::NotFound("x".into()))
                .unwrap(),
            7
        );
        let missing: Result<Option<i32>, DbError> = Ok(None);
        let e = missing
            .or_not_found(|| CommonError::NotFound("wallet".into()))
            .unwrap_err();
        assert_eq!(e.code(), "not_found");
    }

    #[test]
    fn other_db_errors_are_not_taken_for_not_found_or_conflict() {
        let failed: Result<Option<i32>, DbError> = Err(query_failed());
        let e = failed
            .or_not_found(|| CommonError::NotFound("x".into()))
            .unwrap_err();
        assert_eq!(e.code(), "internal");
        let failed: Result<i32, DbError> = Err(query_failed());
        let e = failed
            .or_conflict(|| CommonError::Conflict("x".into()))
            .unwrap_err();
        assert_eq!(e.code(), "internal");
        let down: Result<i32, DbError> = Err(DbError::Unavailable(Box::new(
            std::io::Error::other("connection refused"),
        )));
        let e = down
            .or_conflict(|| CommonError::Conflict("x".into()))
            .unwrap_err();
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            ("dependency_unavailable", "database is unavailable")
        );
    }
}
