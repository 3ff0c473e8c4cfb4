//! The accounts and transfers tables' SQL. Rows are read by column name.

use platform_common::db::{Client, DbError, Transaction, read_all, read_opt};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::accounts::{Account, NewAccount};
use crate::transfers::{NewTransfer, Transfer};

fn account_row(r: &Row) -> Result<Account, tokio_postgres::Error> {
    let debits: i64 = r.try_get("debits_posted")?;
    let credits: i64 = r.try_get("credits_posted")?;
    Ok(Account {
        id: r.try_get("id")?,
        currency: r.try_get("currency")?,
        debits_must_not_exceed_credits: r.try_get("debits_must_not_exceed_credits")?,
        credits_must_not_exceed_debits: r.try_get("credits_must_not_exceed_debits")?,
        debits_posted: debits,
        credits_posted: credits,
        balance: credits - debits,
        reference: r.try_get("reference")?,
        created_at: r.try_get("created_at")?,
    })
}

fn transfer_row(r: &Row) -> Result<Transfer, tokio_postgres::Error> {
    Ok(Transfer {
        id: r.try_get("id")?,
        debit_account_id: r.try_get("debit_account_id")?,
        credit_account_id: r.try_get("credit_account_id")?,
        amount: r.try_get("amount")?,
        currency: r.try_get("currency")?,
        reference: r.try_get("reference")?,
        created_at: r.try_get("created_at")?,
    })
}

/// Inserts the account unless its id exists; true when inserted.
pub async fn insert_account(c: &Client, a: &NewAccount, by: &str) -> Result<bool, DbError> {
    let inserted = c
        .execute(
            "INSERT INTO accounts (id, currency, debits_must_not_exceed_credits, credits_must_not_exceed_debits, reference, created_by)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
            &[&a.id, &a.currency, &a.debits_must_not_exceed_credits, &a.credits_must_not_exceed_debits, &a.reference, &by],
        )
        .await?;
    Ok(inserted == 1)
}

pub async fn account(c: &Client, id: Uuid) -> Result<Option<Account>, DbError> {
    let row = c
        .query_opt("SELECT * FROM accounts WHERE id = $1", &[&id])
        .await?;
    read_opt(row, account_row)
}

/// Those of the two accounts that exist, locked in id order so concurrent transfers cannot
/// deadlock.
pub async fn lock_accounts(
    tx: &Transaction<'_>,
    a: Uuid,
    b: Uuid,
) -> Result<Vec<Account>, DbError> {
    let rows = tx
        .query(
            "SELECT * FROM accounts WHERE id = $1 OR id = $2 ORDER BY id FOR UPDATE",
            &[&a, &b],
        )
        .await?;
    read_all(&rows, account_row)
}

pub async fn set_debits_posted(tx: &Transaction<'_>, id: Uuid, v: i64) -> Result<(), DbError> {
    tx.execute(
        "UPDATE accounts SET debits_posted = $2 WHERE id = $1",
        &[&id, &v],
    )
    .await?;
    Ok(())
}

pub async fn set_credits_posted(tx: &Transaction<'_>, id: Uuid, v: i64) -> Result<(), DbError> {
    tx.execute(
        "UPDATE accounts SET credits_posted = $2 WHERE id = $1",
        &[&id, &v],
    )
    .await?;
    Ok(())
}

const SELECT_TRANSFER: &str = "SELECT * FROM transfers WHERE id = $1";

pub async fn transfer(c: &Client, id: Uuid) -> Result<Option<Transfer>, DbError> {
    let row = c.query_opt(SELECT_TRANSFER, &[&id]).await?;
    read_opt(row, transfer_row)
}

/// The transfer, read inside the posting transaction.
pub async fn transfer_in(tx: &Transaction<'_>, id: Uuid) -> Result<Option<Transfer>, DbError> {
    let row = tx.query_opt(SELECT_TRANSFER, &[&id]).await?;
    read_opt(row, transfer_row)
}

pub async fn insert_transfer(
    tx: &Transaction<'_>,
    t: &NewTransfer,
    by: &str,
) -> Result<Transfer, DbError> {
    let row = tx
        .query_one(
            "INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, currency, reference, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             RETURNING id, debit_account_id, credit_account_id, amount, currency, reference, created_at",
            &[&t.id, &t.debit_account_id, &t.credit_account_id, &t.amount, &t.currency, &t.reference, &by],
        )
        .await?;
    Ok(transfer_row(&row)?)
}
