//! The payments and idempotency-key tables' SQL. Rows are read by column name.

use platform_common::db::{Client, DbError, Transaction, read_opt};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::payments::{NewPayment, Payment};

/// The response recorded for an idempotency key, and the hash of the request that made it.
pub struct StoredResponse {
    pub request_hash: String,
    pub status: i32,
    pub body: Value,
}

fn payment(r: &Row) -> Result<Payment, tokio_postgres::Error> {
    let reasons: Value = r.try_get("reasons")?;
    Ok(Payment {
        id: r.try_get("id")?,
        owner: r.try_get("owner")?,
        amount: r.try_get("amount")?,
        currency: r.try_get("currency")?,
        payee: r.try_get("payee")?,
        description: r.try_get("description")?,
        status: r.try_get("status")?,
        reasons: serde_json::from_value(reasons).unwrap_or_default(),
        created_at: r.try_get("created_at")?,
    })
}

pub async fn insert(
    tx: &Transaction<'_>,
    id: Uuid,
    owner: &str,
    p: &NewPayment,
    status: &str,
    reasons: &[String],
) -> Result<Payment, DbError> {
    let row = tx
        .query_one(
            "INSERT INTO payments (id, owner, amount, currency, payee, description, status, reasons)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             RETURNING id, owner, amount, currency, payee, description, status, reasons, created_at",
            &[&id, &owner, &p.amount, &p.currency, &p.payee, &p.description, &status, &serde_json::json!(reasons)],
        )
        .await?;
    Ok(payment(&row)?)
}

pub async fn get(c: &Client, id: Uuid) -> Result<Option<Payment>, DbError> {
    let row = c
        .query_opt("SELECT * FROM payments WHERE id = $1", &[&id])
        .await?;
    read_opt(row, payment)
}

/// The owner's payments that can still change status (`initiated`, `pending_review`), newest
/// first.
pub async fn not_final(c: &Client, owner: &str, limit: i64) -> Result<Vec<Payment>, DbError> {
    let rows = c
        .query(
            "SELECT * FROM payments WHERE owner = $1 AND status IN ('initiated', 'pending_review')
             ORDER BY created_at DESC LIMIT $2",
            &[&owner, &limit],
        )
        .await?;
    Ok(rows.iter().map(payment).collect::<Result<_, _>>()?)
}

pub async fn stored_response(
    c: &Client,
    owner: &str,
    key: &str,
) -> Result<Option<StoredResponse>, DbError> {
    let row = c
        .query_opt(
            "SELECT request_hash, response_status, response_body FROM idempotency_keys WHERE owner = $1 AND key = $2",
            &[&owner, &key],
        )
        .await?;
    let stored = |r: &Row| -> Result<StoredResponse, tokio_postgres::Error> {
        Ok(StoredResponse {
            request_hash: r.try_get("request_hash")?,
            status: r.try_get("response_status")?,
            body: r.try_get("response_body")?,
        })
    };
    read_opt(row, stored)
}

/// Records the response for `(owner, key)`; false when a concurrent request recorded one first.
pub async fn remember_response(
    tx: &Transaction<'_>,
    owner: &str,
    key: &str,
    r: &StoredResponse,
) -> Result<bool, DbError> {
    let inserted = tx
        .execute(
            "INSERT INTO idempotency_keys (owner, key, request_hash, response_status, response_body)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (owner, key) DO NOTHING",
            &[&owner, &key, &r.request_hash, &r.status, &r.body],
        )
        .await?;
    Ok(inserted == 1)
}
