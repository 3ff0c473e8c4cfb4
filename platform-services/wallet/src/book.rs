//! The wallet's side of the ledger (`ledger::book`): a wallet is a ledger account with the
//! same id, and its money moves only as ledger transfers. This module maps the ledger's
//! refusals to the wallet's problems.

use deadpool_postgres::GenericClient;
use ledger::book::{self, Account, BookError};
use platform_common::CommonError;
use platform_common::db::{DbError, Transaction};
use uuid::Uuid;

use crate::WalletError;

pub use ledger::book::MIGRATIONS;

/// The ledger's refusal as the wallet's problem; a database error keeps its class (a
/// serialization conflict stays retryable).
fn refused(wallet: Uuid, e: BookError) -> WalletError {
    match e {
        BookError::Common(c) => c.into(),
        BookError::AccountNotFound(_) => WalletError::NotFound(wallet.to_string()),
        BookError::Frozen(_) => WalletError::Frozen(wallet.to_string()),
        BookError::ExceedsCredits(_) => WalletError::InsufficientFunds,
        BookError::Overflow(_) => WalletError::Overflow,
        other => CommonError::Internal(format!("ledger: {other}")).into(),
    }
}

/// Opens the wallet's ledger account (kind wallet, same id, same owner and currency).
pub async fn open(
    tx: &Transaction<'_>,
    id: Uuid,
    owner: &str,
    currency: &str,
    by: &str,
) -> Result<Account, WalletError> {
    book::open_wallet_account(tx, id, owner, currency, by)
        .await
        .map_err(|e| refused(id, e))
}

pub async fn accounts(c: &impl GenericClient, ids: &[Uuid]) -> Result<Vec<Account>, DbError> {
    book::accounts(c, ids).await
}

/// Sets the account's `frozen` flag: the ledger refuses transfers on a frozen account.
pub async fn set_frozen(
    tx: &Transaction<'_>,
    id: Uuid,
    frozen: bool,
) -> Result<Account, WalletError> {
    book::set_frozen(tx, id, frozen)
        .await?
        .ok_or_else(|| WalletError::NotFound(id.to_string()))
}

/// Settlement -> wallet, idempotent on `transfer_id`; the transfer's id.
pub async fn deposit(
    tx: &Transaction<'_>,
    transfer_id: Uuid,
    wallet: Uuid,
    amount: i64,
    currency: &str,
    reference: &str,
    by: &str,
) -> Result<Uuid, WalletError> {
    book::deposit(
        tx,
        transfer_id,
        wallet,
        amount,
        currency,
        Some(reference),
        by,
    )
    .await
    .map(|t| t.id)
    .map_err(|e| refused(wallet, e))
}

/// Wallet -> settlement, idempotent on `transfer_id`; the transfer's id.
pub async fn withdraw(
    tx: &Transaction<'_>,
    transfer_id: Uuid,
    wallet: Uuid,
    amount: i64,
    currency: &str,
    reference: &str,
    by: &str,
) -> Result<Uuid, WalletError> {
    book::withdraw(
        tx,
        transfer_id,
        wallet,
        amount,
        currency,
        Some(reference),
        by,
    )
    .await
    .map(|t| t.id)
    .map_err(|e| refused(wallet, e))
}
