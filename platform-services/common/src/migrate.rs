//! Ordered, recorded migrations in the SQL subset CockroachDB and PostgreSQL share.
//!
//! Each migration runs in its own transaction together with the row that records it, so
//! two processes migrating at once cannot both record one: the loser finds the row and
//! rolls back. Keep statements idempotent (`IF NOT EXISTS`) all the same.

use crate::db::DbError;
use deadpool_postgres::Pool;

#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Which migration failed, around the database's error.
#[derive(Debug, thiserror::Error)]
#[error("migration {version} ({name}) failed: {source}")]
struct MigrationFailed {
    version: i64,
    name: &'static str,
    source: DbError,
}

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    service TEXT NOT NULL,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (service, version)
)";

/// Applies every migration of `service` not yet recorded; returns the versions applied.
pub async fn run(
    pool: &Pool,
    service: &str,
    migrations: &[Migration],
) -> Result<Vec<i64>, DbError> {
    assert!(
        migrations.windows(2).all(|w| w[0].version < w[1].version),
        "migrations of {service} must be in ascending version order"
    );
    let mut client = pool.get().await?;
    if let Err(e) = client.batch_execute(LEDGER).await {
        // Two first-time migrators can race on CREATE TABLE in PostgreSQL; once is enough.
        tracing::debug!(error = %e, "creating schema_migrations raced; retrying");
        client.batch_execute(LEDGER).await?;
    }
    let rows = client
        .query(
            "SELECT version FROM schema_migrations WHERE service = $1",
            &[&service],
        )
        .await?;
    let done: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let mut applied = Vec::new();
    for m in migrations.iter().filter(|m| !done.contains(&m.version)) {
        // DDL first: CockroachDB refuses schema changes after a write in the same transaction.
        let tx = client.transaction().await?;
        tx.batch_execute(m.sql).await.map_err(|e| {
            DbError::Query(Box::new(MigrationFailed {
                version: m.version,
                name: m.name,
                source: DbError::from(e),
            }))
        })?;
        let inserted = tx
            .execute(
                "INSERT INTO schema_migrations (service, version, name) VALUES ($1, $2, $3)
                 ON CONFLICT (service, version) DO NOTHING",
                &[&service, &m.version, &m.name],
            )
            .await?;
        if inserted == 0 {
            // Another process applied it meanwhile.
            tx.rollback().await?;
            continue;
        }
        tx.commit().await?;
        tracing::info!(
            service,
            version = m.version,
            name = m.name,
            "applied migration"
        );
        applied.push(m.version);
    }
    Ok(applied)
}
