//! Postgres-wire connection pool (CockroachDB or PostgreSQL) and error classification.

use std::time::Duration;

use deadpool_postgres::{Config, ManagerConfig, PoolConfig, RecyclingMethod, Runtime, Timeouts};
use futures_util::future::BoxFuture;
use tokio_postgres::error::SqlState;
use tokio_postgres::{IsolationLevel, NoTls, Row};

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

/// Whether an error is a serialization conflict (SQLSTATE 40001, or a deadlock) on which
/// the whole transaction may run again.
pub trait Retryable {
    fn is_retryable(&self) -> bool;
}

impl Retryable for DbError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Retry(_))
    }
}

impl Retryable for CommonError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Contention(_))
    }
}

/// The body of a transaction given to [`serializable`]: `|tx| Box::pin(async move { .. })`.
pub type TxFuture<'t, T, E> = BoxFuture<'t, Result<T, E>>;

/// How often [`serializable`] runs a transaction before giving the conflict to the caller.
pub const MAX_ATTEMPTS: u32 = 10;

/// Runs `body` in a SERIALIZABLE transaction and commits it; a serialization conflict
/// (CockroachDB's and Postgres's SQLSTATE 40001, at any statement or at commit) runs the whole
/// body again on a fresh transaction, with jittered backoff, up to [`MAX_ATTEMPTS`] times.
/// Every write path goes through here, so a conflict is never a 500.
///
/// An `Err` from `body` rolls the transaction back; a body that must record a refusal
/// returns `Ok` with it. The body may run more than once: keep side effects outside the
/// database (HTTP calls, in-memory counters) out of it.
///
/// ```ignore
/// let wallet = db::serializable(&pool, |tx| {
///     let (id, amount) = (id, amount);
///     Box::pin(async move { store::credit(tx, id, amount).await.map_err(Into::into) })
/// })
/// .await?;
/// ```
pub async fn serializable<T, E, F>(pool: &Pool, mut body: F) -> Result<T, E>
where
    E: From<DbError> + Retryable,
    F: for<'t> FnMut(&'t Transaction<'t>) -> TxFuture<'t, T, E>,
{
    let mut attempt = 1u32;
    loop {
        let result: Result<T, E> = async {
            let mut client = pool.get().await.map_err(DbError::from)?;
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::Serializable)
                .start()
                .await
                .map_err(DbError::from)?;
            let value = body(&tx).await?;
            tx.commit().await.map_err(DbError::from)?;
            Ok(value)
        }
        .await;
        match result {
            Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                tracing::debug!(
                    attempt,
                    "serialization conflict; running the transaction again"
                );
                backoff(attempt).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// 5 ms doubling to 320 ms, each with up to as much again of jitter.
async fn backoff(attempt: u32) {
    let ms = 5u64 << attempt.min(6);
    tokio::time::sleep(Duration::from_millis(ms + fastrand::u64(0..ms))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape handlers use: values captured by the closure, copied into each attempt.
    #[allow(dead_code)]
    async fn a_body_borrows_the_transaction_and_owns_its_inputs(
        pool: &Pool,
        name: &str,
    ) -> Result<u64, CommonError> {
        serializable(pool, |tx| {
            let name = name.to_owned();
            Box::pin(async move {
                let n = tx
                    .execute("UPDATE t SET n = n + 1 WHERE name = $1", &[&name])
                    .await
                    .map_err(DbError::from)?;
                Ok(n)
            })
        })
        .await
    }
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
