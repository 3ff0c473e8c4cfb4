//! The wallet tables' SQL: wallets (who owns which ledger account), credit requests and
//! withdrawals. Balances are the ledger's (see `book`). Rows are read by column name.

use chrono::{DateTime, Utc};
use platform_common::db::{Client, DbError, Transaction, read_all, read_opt};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::credits::CreditRequest;
use crate::wallets::Withdrawal;

/// A wallet row: who owns the ledger account of the same id.
#[derive(Debug, Clone)]
pub struct WalletRow {
    pub id: Uuid,
    pub owner: String,
    pub currency: String,
    pub status_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const WALLET_COLUMNS: &str = "id, owner, currency, status_reason, created_at, updated_at";

fn wallet(r: &Row) -> Result<WalletRow, tokio_postgres::Error> {
    Ok(WalletRow {
        id: r.try_get("id")?,
        owner: r.try_get("owner")?,
        currency: r.try_get("currency")?,
        status_reason: r.try_get("status_reason")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// A new wallet row; [`DbError::Duplicate`] when the owner has one in the currency.
pub async fn create(
    tx: &Transaction<'_>,
    id: Uuid,
    owner: &str,
    currency: &str,
) -> Result<WalletRow, DbError> {
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO wallets (id, owner, currency) VALUES ($1, $2, $3) RETURNING {WALLET_COLUMNS}"
            ),
            &[&id, &owner, &currency],
        )
        .await?;
    Ok(wallet(&row)?)
}

pub async fn by_owner(c: &Client, owner: &str) -> Result<Vec<WalletRow>, DbError> {
    let rows = c
        .query(
            &format!("SELECT {WALLET_COLUMNS} FROM wallets WHERE owner = $1 ORDER BY currency"),
            &[&owner],
        )
        .await?;
    read_all(&rows, wallet)
}

pub async fn get(c: &Client, id: Uuid) -> Result<Option<WalletRow>, DbError> {
    let row = c
        .query_opt(
            &format!("SELECT {WALLET_COLUMNS} FROM wallets WHERE id = $1"),
            &[&id],
        )
        .await?;
    read_opt(row, wallet)
}

/// The wallet, read inside a transaction.
pub async fn get_in(tx: &Transaction<'_>, id: Uuid) -> Result<Option<WalletRow>, DbError> {
    let row = tx
        .query_opt(
            &format!("SELECT {WALLET_COLUMNS} FROM wallets WHERE id = $1"),
            &[&id],
        )
        .await?;
    read_opt(row, wallet)
}

/// Records why the wallet was frozen (None when unfrozen); the flag itself is the ledger
/// account's.
pub async fn set_status_reason(
    tx: &Transaction<'_>,
    id: Uuid,
    reason: Option<&str>,
) -> Result<Option<WalletRow>, DbError> {
    let row = tx
        .query_opt(
            &format!(
                "UPDATE wallets SET status_reason = $2, updated_at = now() WHERE id = $1 RETURNING {WALLET_COLUMNS}"
            ),
            &[&id, &reason],
        )
        .await?;
    read_opt(row, wallet)
}

const CREDIT_COLUMNS: &str = "id, wallet_id, amount, currency, reference, status, requested_by, \
     requested_at, decided_by, decided_at, decision_reason, transfer_id";

fn credit_request(r: &Row) -> Result<CreditRequest, tokio_postgres::Error> {
    Ok(CreditRequest {
        id: r.try_get("id")?,
        wallet_id: r.try_get("wallet_id")?,
        amount: r.try_get("amount")?,
        currency: r.try_get("currency")?,
        reference: r.try_get("reference")?,
        status: r.try_get("status")?,
        requested_by: r.try_get("requested_by")?,
        requested_at: r.try_get("requested_at")?,
        decided_by: r.try_get("decided_by")?,
        decided_at: r.try_get("decided_at")?,
        decision_reason: r.try_get("decision_reason")?,
        transfer_id: r.try_get("transfer_id")?,
    })
}

pub async fn credit_request_by_reference(
    tx: &Transaction<'_>,
    wallet_id: Uuid,
    reference: &str,
) -> Result<Option<CreditRequest>, DbError> {
    let row = tx
        .query_opt(
            &format!(
                "SELECT {CREDIT_COLUMNS} FROM credit_requests WHERE wallet_id = $1 AND reference = $2"
            ),
            &[&wallet_id, &reference],
        )
        .await?;
    read_opt(row, credit_request)
}

/// A new request `pending_approval`.
pub async fn insert_credit_request(
    tx: &Transaction<'_>,
    id: Uuid,
    w: &WalletRow,
    amount: i64,
    reference: &str,
    requested_by: &str,
) -> Result<CreditRequest, DbError> {
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO credit_requests (id, wallet_id, amount, currency, reference, requested_by)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING {CREDIT_COLUMNS}"
            ),
            &[&id, &w.id, &amount, &w.currency, &reference, &requested_by],
        )
        .await?;
    Ok(credit_request(&row)?)
}

pub async fn credit_request_by_id(c: &Client, id: Uuid) -> Result<Option<CreditRequest>, DbError> {
    let row = c
        .query_opt(
            &format!("SELECT {CREDIT_COLUMNS} FROM credit_requests WHERE id = $1"),
            &[&id],
        )
        .await?;
    read_opt(row, credit_request)
}

pub async fn credit_request_in(
    tx: &Transaction<'_>,
    id: Uuid,
) -> Result<Option<CreditRequest>, DbError> {
    let row = tx
        .query_opt(
            &format!("SELECT {CREDIT_COLUMNS} FROM credit_requests WHERE id = $1"),
            &[&id],
        )
        .await?;
    read_opt(row, credit_request)
}

/// Newest first, at most `limit`, optionally one status and one wallet.
pub async fn credit_requests(
    c: &Client,
    status: Option<&str>,
    wallet_id: Option<Uuid>,
    limit: i64,
) -> Result<Vec<CreditRequest>, DbError> {
    let rows = c
        .query(
            &format!(
                "SELECT {CREDIT_COLUMNS} FROM credit_requests
                 WHERE ($1::TEXT IS NULL OR status = $1) AND ($2::UUID IS NULL OR wallet_id = $2)
                 ORDER BY requested_at DESC, id LIMIT $3"
            ),
            &[&status, &wallet_id, &limit],
        )
        .await?;
    read_all(&rows, credit_request)
}

/// Records the decision on a pending request: `approved` with its transfer, or `rejected`.
pub async fn decide_credit_request(
    tx: &Transaction<'_>,
    id: Uuid,
    status: &str,
    by: &str,
    reason: Option<&str>,
    transfer_id: Option<Uuid>,
) -> Result<CreditRequest, DbError> {
    let row = tx
        .query_one(
            &format!(
                "UPDATE credit_requests
                 SET status = $2, decided_by = $3, decided_at = now(), decision_reason = $4, transfer_id = $5
                 WHERE id = $1 AND status = 'pending_approval' RETURNING {CREDIT_COLUMNS}"
            ),
            &[&id, &status, &by, &reason, &transfer_id],
        )
        .await?;
    Ok(credit_request(&row)?)
}

const WITHDRAWAL_COLUMNS: &str =
    "id, wallet_id, amount, currency, reference, requested_by, created_at";

fn withdrawal(r: &Row) -> Result<Withdrawal, tokio_postgres::Error> {
    Ok(Withdrawal {
        id: r.try_get("id")?,
        wallet_id: r.try_get("wallet_id")?,
        amount: r.try_get("amount")?,
        currency: r.try_get("currency")?,
        reference: r.try_get("reference")?,
        requested_by: r.try_get("requested_by")?,
        created_at: r.try_get("created_at")?,
    })
}

pub async fn withdrawal_by_reference(
    tx: &Transaction<'_>,
    wallet_id: Uuid,
    reference: &str,
) -> Result<Option<Withdrawal>, DbError> {
    let row = tx
        .query_opt(
            &format!(
                "SELECT {WITHDRAWAL_COLUMNS} FROM withdrawals WHERE wallet_id = $1 AND reference = $2"
            ),
            &[&wallet_id, &reference],
        )
        .await?;
    read_opt(row, withdrawal)
}

/// Records a withdrawal; its id is the ledger transfer's.
pub async fn insert_withdrawal(
    tx: &Transaction<'_>,
    id: Uuid,
    w: &WalletRow,
    amount: i64,
    reference: &str,
    by: &str,
) -> Result<Withdrawal, DbError> {
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO withdrawals (id, wallet_id, amount, currency, reference, requested_by)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING {WITHDRAWAL_COLUMNS}"
            ),
            &[&id, &w.id, &amount, &w.currency, &reference, &by],
        )
        .await?;
    Ok(withdrawal(&row)?)
}
