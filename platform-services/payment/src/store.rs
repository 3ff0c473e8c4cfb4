//! The payments, history and idempotency-key tables' SQL. Rows are read by column name.

use deadpool_postgres::GenericClient;
use platform_common::db::{DbError, Transaction, read_all, read_opt};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::payments::{HistoryEntry, Payment};

fn payment(r: &Row) -> Result<Payment, tokio_postgres::Error> {
    let reasons: Value = r.try_get("reasons")?;
    Ok(Payment {
        id: r.try_get("id")?,
        owner: r.try_get("owner")?,
        payer_name: r.try_get("payer_name")?,
        amount: r.try_get("amount")?,
        currency: r.try_get("currency")?,
        payer_wallet_id: r.try_get("payer_wallet_id")?,
        payee_wallet_id: r.try_get("payee_wallet_id")?,
        payee: r.try_get("payee")?,
        payee_currency: r.try_get("payee_currency")?,
        payee_amount: r.try_get("payee_amount")?,
        quote_id: r.try_get("quote_id")?,
        rate_e8: r.try_get("rate_e8")?,
        hold_ids: r
            .try_get::<_, Option<Vec<Uuid>>>("hold_ids")?
            .unwrap_or_default(),
        description: r.try_get("description")?,
        status: r.try_get("status")?,
        failure_reason: r.try_get("failure_reason")?,
        reasons: serde_json::from_value(reasons).unwrap_or_default(),
        history: Vec::new(),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn history_row(r: &Row) -> Result<HistoryEntry, tokio_postgres::Error> {
    Ok(HistoryEntry {
        status: r.try_get("status")?,
        reason: r.try_get("reason")?,
        at: r.try_get("at")?,
    })
}

/// A new payment, `initiated`, with its first history entry.
pub async fn insert(tx: &Transaction<'_>, p: &Payment) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO payments (id, owner, payer_name, amount, currency, payer_wallet_id,
             payee_wallet_id, payee, payee_currency, description, status, reasons)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '[]')",
        &[
            &p.id,
            &p.owner,
            &p.payer_name,
            &p.amount,
            &p.currency,
            &p.payer_wallet_id,
            &p.payee_wallet_id,
            &p.payee,
            &p.payee_currency,
            &p.description,
            &p.status,
        ],
    )
    .await?;
    add_history(tx, p.id, &p.status, None).await
}

async fn add_history(
    tx: &Transaction<'_>,
    id: Uuid,
    status: &str,
    reason: Option<&str>,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO payment_history (payment_id, seq, status, reason)
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3 FROM payment_history WHERE payment_id = $1",
        &[&id, &status, &reason],
    )
    .await?;
    Ok(())
}

/// What a transition may set besides the status.
#[derive(Debug, Default)]
pub struct Changes<'a> {
    pub failure_reason: Option<&'a str>,
    pub reasons: Option<&'a [String]>,
    pub payee_amount: Option<i64>,
    pub quote_id: Option<Uuid>,
    pub rate_e8: Option<i64>,
    pub hold_ids: Option<&'a [Uuid]>,
}

/// Moves the payment from `from` to `to` (compare-and-set): `None` when it is no longer in
/// `from` (another step got there first: the caller does nothing).
pub async fn transition(
    tx: &Transaction<'_>,
    id: Uuid,
    from: &[&str],
    to: &str,
    c: &Changes<'_>,
) -> Result<Option<Payment>, DbError> {
    let from: Vec<String> = from.iter().map(|s| (*s).to_owned()).collect();
    let reasons = c.reasons.map(|r| serde_json::json!(r));
    let row = tx
        .query_opt(
            "UPDATE payments SET status = $3, updated_at = now(),
                 failure_reason = COALESCE($4, failure_reason),
                 reasons = COALESCE($5, reasons),
                 payee_amount = COALESCE($6, payee_amount),
                 quote_id = COALESCE($7, quote_id),
                 rate_e8 = COALESCE($8, rate_e8),
                 hold_ids = COALESCE($9, hold_ids)
             WHERE id = $1 AND status = ANY($2) RETURNING *",
            &[
                &id,
                &from,
                &to,
                &c.failure_reason,
                &reasons,
                &c.payee_amount,
                &c.quote_id,
                &c.rate_e8,
                &c.hold_ids.map(<[Uuid]>::to_vec),
            ],
        )
        .await?;
    let Some(p) = read_opt(row, payment)? else {
        return Ok(None);
    };
    add_history(tx, id, to, c.failure_reason).await?;
    Ok(Some(p))
}

pub async fn get(c: &impl GenericClient, id: Uuid) -> Result<Option<Payment>, DbError> {
    let row = c
        .query_opt("SELECT * FROM payments WHERE id = $1", &[&id])
        .await?;
    let Some(mut p) = read_opt(row, payment)? else {
        return Ok(None);
    };
    let rows = c
        .query(
            "SELECT status, reason, at FROM payment_history WHERE payment_id = $1 ORDER BY seq",
            &[&id],
        )
        .await?;
    p.history = read_all(&rows, history_row)?;
    Ok(Some(p))
}

/// The owner's payments that can still change status, newest first.
pub async fn not_final(
    c: &impl GenericClient,
    owner: &str,
    limit: i64,
) -> Result<Vec<Payment>, DbError> {
    let rows = c
        .query(
            "SELECT * FROM payments WHERE owner = $1
               AND status NOT IN ('completed', 'failed', 'rejected')
             ORDER BY created_at DESC LIMIT $2",
            &[&owner, &limit],
        )
        .await?;
    read_all(&rows, payment)
}

/// Payments changed in the last `seconds` (by the database's clock), newest change first, at
/// most `limit`: what the updates socket announces, whichever process made the change.
pub async fn changed_recently(
    c: &impl GenericClient,
    seconds: f64,
    limit: i64,
) -> Result<Vec<Payment>, DbError> {
    let rows = c
        .query(
            "SELECT * FROM payments WHERE updated_at > now() - make_interval(secs => $1::FLOAT8)
             ORDER BY updated_at DESC LIMIT $2",
            &[&seconds, &limit],
        )
        .await?;
    read_all(&rows, payment)
}

/// Payments left `initiated` for longer than `seconds` (their screening was interrupted).
pub async fn stuck_initiated(
    c: &impl GenericClient,
    seconds: i64,
    limit: i64,
) -> Result<Vec<Uuid>, DbError> {
    let rows = c
        .query(
            "SELECT id FROM payments WHERE status = 'initiated'
               AND updated_at < now() - make_interval(secs => $1::FLOAT8)
             ORDER BY updated_at LIMIT $2",
            &[&(seconds as f64), &limit],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The key's request hash and payment, if the key was used.
pub async fn reserved(
    c: &impl GenericClient,
    owner: &str,
    key: &str,
) -> Result<Option<(String, Option<Uuid>)>, DbError> {
    let row = c
        .query_opt(
            "SELECT request_hash, payment_id FROM idempotency_keys WHERE owner = $1 AND key = $2",
            &[&owner, &key],
        )
        .await?;
    read_opt(row, |r| Ok((r.try_get(0)?, r.try_get(1)?)))
}

/// Reserves `(owner, key)` for `payment_id` before anything else happens; false when the
/// key was taken (by a concurrent request).
pub async fn reserve(
    tx: &Transaction<'_>,
    owner: &str,
    key: &str,
    request_hash: &str,
    payment_id: Uuid,
) -> Result<bool, DbError> {
    let n = tx
        .execute(
            "INSERT INTO idempotency_keys (owner, key, request_hash, response_status, response_body, payment_id)
             VALUES ($1, $2, $3, 201, '{}', $4) ON CONFLICT (owner, key) DO NOTHING",
            &[&owner, &key, &request_hash, &payment_id],
        )
        .await?;
    Ok(n == 1)
}
