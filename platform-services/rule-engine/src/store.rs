//! The limits and velocity-rules tables' SQL. Rows are read by column name.

use platform_common::db::{Client, DbError, read_all, read_opt};
use tokio_postgres::Row;

use crate::rules::{Limit, Velocity};

fn limit(r: &Row) -> Result<Limit, tokio_postgres::Error> {
    Ok(Limit {
        role: r.try_get("role")?,
        currency: r.try_get("currency")?,
        max_amount: r.try_get("max_amount")?,
        review_above: r.try_get("review_above")?,
    })
}

fn velocity(r: &Row) -> Result<Velocity, tokio_postgres::Error> {
    Ok(Velocity {
        currency: r.try_get("currency")?,
        window_seconds: r.try_get("window_seconds")?,
        max_count: r.try_get("max_count")?,
        max_total: r.try_get("max_total")?,
    })
}

pub async fn limits(c: &Client) -> Result<Vec<Limit>, DbError> {
    let rows = c
        .query(
            "SELECT role, currency, max_amount, review_above FROM limits ORDER BY role, currency",
            &[],
        )
        .await?;
    read_all(&rows, limit)
}

/// The limits in `currency` of any of `roles`.
pub async fn limits_for(
    c: &Client,
    currency: &str,
    roles: &[String],
) -> Result<Vec<Limit>, DbError> {
    let rows = c
        .query(
            "SELECT role, currency, max_amount, review_above FROM limits WHERE currency = $1 AND role = ANY($2)",
            &[&currency, &roles],
        )
        .await?;
    read_all(&rows, limit)
}

pub async fn upsert_limit(c: &Client, l: &Limit, by: &str) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO limits (role, currency, max_amount, review_above, updated_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (role, currency) DO UPDATE SET max_amount = excluded.max_amount,
           review_above = excluded.review_above, updated_by = excluded.updated_by, updated_at = now()",
        &[&l.role, &l.currency, &l.max_amount, &l.review_above, &by],
    )
    .await?;
    Ok(())
}

/// `Some(())` when the limit existed and is gone, `None` when there was none.
pub async fn delete_limit(c: &Client, role: &str, currency: &str) -> Result<Option<()>, DbError> {
    let n = c
        .execute(
            "DELETE FROM limits WHERE role = $1 AND currency = $2",
            &[&role, &currency],
        )
        .await?;
    Ok((n > 0).then_some(()))
}

pub async fn velocity_rules(c: &Client) -> Result<Vec<Velocity>, DbError> {
    let rows = c
        .query(
            "SELECT currency, window_seconds, max_count, max_total FROM velocity_rules ORDER BY currency",
            &[],
        )
        .await?;
    read_all(&rows, velocity)
}

pub async fn velocity_rule(c: &Client, currency: &str) -> Result<Option<Velocity>, DbError> {
    let row = c
        .query_opt(
            "SELECT currency, window_seconds, max_count, max_total FROM velocity_rules WHERE currency = $1",
            &[&currency],
        )
        .await?;
    read_opt(row, velocity)
}

pub async fn upsert_velocity(c: &Client, v: &Velocity, by: &str) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO velocity_rules (currency, window_seconds, max_count, max_total, updated_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (currency) DO UPDATE SET window_seconds = excluded.window_seconds, max_count = excluded.max_count,
           max_total = excluded.max_total, updated_by = excluded.updated_by, updated_at = now()",
        &[&v.currency, &v.window_seconds, &v.max_count, &v.max_total, &by],
    )
    .await?;
    Ok(())
}
