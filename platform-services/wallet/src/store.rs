//! The wallet tables' SQL. Rows are read by column name.

use platform_common::db::{Client, DbError, Transaction, read_all, read_opt};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::wallets::{Direction, Wallet};

const RETURNING: &str =
    "RETURNING id, owner, currency, balance, status, status_reason, created_at, updated_at";

fn wallet(r: &Row) -> Result<Wallet, tokio_postgres::Error> {
    Ok(Wallet {
        id: r.try_get("id")?,
        owner: r.try_get("owner")?,
        currency: r.try_get("currency")?,
        balance: r.try_get("balance")?,
        status: r.try_get("status")?,
        status_reason: r.try_get("status_reason")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Credit => "credit",
            Direction::Debit => "debit",
        }
    }
}

/// A new empty wallet; [`DbError::Duplicate`] when the owner has one in the currency.
pub async fn create(c: &Client, owner: &str, currency: &str) -> Result<Wallet, DbError> {
    let row = c
        .query_one(
            &format!("INSERT INTO wallets (id, owner, currency) VALUES ($1, $2, $3) {RETURNING}"),
            &[&Uuid::new_v4(), &owner, &currency],
        )
        .await?;
    Ok(wallet(&row)?)
}

pub async fn by_owner(c: &Client, owner: &str) -> Result<Vec<Wallet>, DbError> {
    let rows = c
        .query(
            "SELECT * FROM wallets WHERE owner = $1 ORDER BY currency",
            &[&owner],
        )
        .await?;
    read_all(&rows, wallet)
}

pub async fn get(c: &Client, id: Uuid) -> Result<Option<Wallet>, DbError> {
    let row = c
        .query_opt("SELECT * FROM wallets WHERE id = $1", &[&id])
        .await?;
    read_opt(row, wallet)
}

/// The wallet, locked until the transaction ends.
pub async fn lock(tx: &Transaction<'_>, id: Uuid) -> Result<Option<Wallet>, DbError> {
    let row = tx
        .query_opt("SELECT * FROM wallets WHERE id = $1 FOR UPDATE", &[&id])
        .await?;
    read_opt(row, wallet)
}

pub async fn set_status(
    c: &Client,
    id: Uuid,
    status: &str,
    reason: Option<&str>,
) -> Result<Option<Wallet>, DbError> {
    let row = c
        .query_opt(
            &format!(
                "UPDATE wallets SET status = $2, status_reason = $3, updated_at = now() WHERE id = $1 {RETURNING}"
            ),
            &[&id, &status, &reason],
        )
        .await?;
    read_opt(row, wallet)
}

/// The entry recorded under `reference`: its direction and amount.
pub async fn entry(
    tx: &Transaction<'_>,
    id: Uuid,
    reference: &str,
) -> Result<Option<(Direction, i64)>, DbError> {
    let Some(row) = tx
        .query_opt(
            "SELECT direction, amount FROM wallet_entries WHERE wallet_id = $1 AND reference = $2",
            &[&id, &reference],
        )
        .await?
    else {
        return Ok(None);
    };
    let direction = match row.try_get::<_, &str>("direction")? {
        "credit" => Direction::Credit,
        _ => Direction::Debit,
    };
    Ok(Some((direction, row.try_get("amount")?)))
}

/// Records the entry and sets the wallet's new balance.
pub async fn post_entry(
    tx: &Transaction<'_>,
    id: Uuid,
    reference: &str,
    direction: Direction,
    amount: i64,
    created_by: &str,
    balance: i64,
) -> Result<Wallet, DbError> {
    tx.execute(
        "INSERT INTO wallet_entries (wallet_id, reference, direction, amount, created_by) VALUES ($1, $2, $3, $4, $5)",
        &[&id, &reference, &direction.as_str(), &amount, &created_by],
    )
    .await?;
    let row = tx
        .query_one(
            &format!(
                "UPDATE wallets SET balance = $2, updated_at = now() WHERE id = $1 {RETURNING}"
            ),
            &[&id, &balance],
        )
        .await?;
    Ok(wallet(&row)?)
}
