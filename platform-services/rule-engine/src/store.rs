//! The limits, velocity-rules and evaluations tables' SQL. Rows are read by column name.

use deadpool_postgres::GenericClient;
use platform_common::db::{DbError, read_all, read_opt};
use tokio_postgres::Row;

use crate::evaluate::{Decision, Evaluation};
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

pub async fn limits(c: &impl GenericClient) -> Result<Vec<Limit>, DbError> {
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
    c: &impl GenericClient,
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

pub async fn upsert_limit(c: &impl GenericClient, l: &Limit, by: &str) -> Result<(), DbError> {
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
pub async fn delete_limit(
    c: &impl GenericClient,
    role: &str,
    currency: &str,
) -> Result<Option<()>, DbError> {
    let n = c
        .execute(
            "DELETE FROM limits WHERE role = $1 AND currency = $2",
            &[&role, &currency],
        )
        .await?;
    Ok((n > 0).then_some(()))
}

pub async fn velocity_rules(c: &impl GenericClient) -> Result<Vec<Velocity>, DbError> {
    let rows = c
        .query(
            "SELECT currency, window_seconds, max_count, max_total FROM velocity_rules ORDER BY currency",
            &[],
        )
        .await?;
    read_all(&rows, velocity)
}

pub async fn velocity_rule(
    c: &impl GenericClient,
    currency: &str,
) -> Result<Option<Velocity>, DbError> {
    let row = c
        .query_opt(
            "SELECT currency, window_seconds, max_count, max_total FROM velocity_rules WHERE currency = $1",
            &[&currency],
        )
        .await?;
    read_opt(row, velocity)
}

pub async fn upsert_velocity(
    c: &impl GenericClient,
    v: &Velocity,
    by: &str,
) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO velocity_rules (currency, window_seconds, max_count, max_total, updated_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (currency) DO UPDATE SET window_seconds = excluded.window_seconds, max_count = excluded.max_count,
           max_total = excluded.max_total, updated_by = excluded.updated_by, updated_at = now()",
        &[&v.currency, &v.window_seconds, &v.max_count, &v.max_total, &by],
    )
    .await?;
    Ok(())
}

/// What a payment's evaluation depends on besides the rules: the same payment id must come
/// with the same of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub user_id: String,
    pub currency: String,
    pub amount: i64,
}

fn evaluated(r: &Row) -> Result<(Payment, Evaluation), tokio_postgres::Error> {
    let decision: &str = r.try_get("decision")?;
    Ok((
        Payment {
            user_id: r.try_get("user_id")?,
            currency: r.try_get("currency")?,
            amount: r.try_get("amount")?,
        },
        Evaluation {
            // Only this module writes the column, from `Decision::as_str`.
            decision: Decision::parse(decision).unwrap_or(Decision::Review),
            reasons: r.try_get("reasons")?,
        },
    ))
}

/// The payment `payment_id` and its evaluation, if it was evaluated before.
pub async fn evaluation(
    c: &impl GenericClient,
    payment_id: &str,
) -> Result<Option<(Payment, Evaluation)>, DbError> {
    let row = c
        .query_opt(
            "SELECT user_id, currency, amount, decision, reasons FROM evaluations WHERE payment_id = $1",
            &[&payment_id],
        )
        .await?;
    read_opt(row, evaluated)
}

/// Records the evaluation of `payment_id`; `counted` puts it in its payer's velocity window.
pub async fn insert_evaluation(
    c: &impl GenericClient,
    payment_id: &str,
    p: &Payment,
    e: &Evaluation,
    counted: bool,
) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO evaluations (payment_id, user_id, currency, amount, decision, reasons, counted)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &payment_id,
            &p.user_id,
            &p.currency,
            &p.amount,
            &e.decision.as_str(),
            &e.reasons,
            &counted,
        ],
    )
    .await?;
    Ok(())
}

/// How many payments of `user_id` in `currency` are in the window of the last
/// `window_seconds` (database time), and their total.
pub async fn window(
    c: &impl GenericClient,
    user_id: &str,
    currency: &str,
    window_seconds: i64,
) -> Result<(i64, i64), DbError> {
    let row = c
        .query_one(
            "SELECT count(*) AS n, COALESCE(sum(amount), 0)::INT8 AS total FROM evaluations
             WHERE user_id = $1 AND currency = $2 AND counted
               AND evaluated_at > now() - $3::INT8 * INTERVAL '1 second'",
            &[&user_id, &currency, &window_seconds],
        )
        .await?;
    Ok((row.try_get("n")?, row.try_get("total")?))
}
