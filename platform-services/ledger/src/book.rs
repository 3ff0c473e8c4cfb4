//! The book: accounts and transfers, the only code that moves money (TigerBeetle's model).
//!
//! Used by the ledger's HTTP API and saga consumer, and by the wallet service (a wallet is a
//! ledger account with the same id) on the shared database. Every function takes the
//! caller's transaction: run it inside [`platform_common::db::serializable`].
//!
//! - Transfers are immutable and balanced: each moves `amount` from its debit account to its
//!   credit account, so for every currency the sum of all accounts' balances is zero.
//! - A batch given to [`create_transfers`] is linked: all of it happens or none of it
//!   (cross-currency movement goes through the per-currency liquidity accounts this way).
//! - Two-phase: a `pending` transfer reserves the amount (`debits_pending`/`credits_pending`)
//!   until it is posted or voided, or until its timeout passes ([`expire_pending`] voids it).
//! - Limits: `debits_must_not_exceed_credits` (a wallet cannot go below zero, counting
//!   pending debits) and `credits_must_not_exceed_debits`; a frozen account takes part in no
//!   new transfer (a void still releases its holds).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use platform_common::db::{DbError, Transaction, read_all, read_opt};
use platform_common::migrate::Migration;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::LedgerError;

/// The book's errors are the ledger's (`BookError` for callers outside the crate).
pub use crate::LedgerError as BookError;

/// The book's tables, for services that share the ledger's database (the wallet). Versions
/// 101 and up; the statements are idempotent, so the ledger applying its own copy is harmless.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 101,
        name: "ledger: accounts and transfers",
        sql: include_str!("../migrations/0001_accounts_and_transfers.sql"),
    },
    Migration {
        version: 102,
        name: "ledger: account kinds and two-phase transfers",
        sql: include_str!("../migrations/0002_two_phase_and_kinds.sql"),
    },
];

/// What an account is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// A user's wallet: the account and the wallet share an id.
    Wallet,
    /// Money outside the platform, per currency: deposits debit it, withdrawals credit it.
    Settlement,
    /// The platform's currency pool, per currency: cross-currency payments pass through it.
    Liquidity,
    General,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wallet => "wallet",
            Self::Settlement => "settlement",
            Self::Liquidity => "liquidity",
            Self::General => "general",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "wallet" => Self::Wallet,
            "settlement" => Self::Settlement,
            "liquidity" => Self::Liquidity,
            _ => Self::General,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"id": "0b6f6c1e-3c55-4a55-9a39-0d7a3c1f7b10", "kind": "wallet", "owner": "u-123",
    "currency": "USD", "frozen": false, "debits_must_not_exceed_credits": true, "credits_must_not_exceed_debits": false,
    "debits_pending": 500, "debits_posted": 0, "credits_pending": 0, "credits_posted": 2500,
    "balance": 2500, "available": 2000, "reference": "wallet", "created_at": "2026-01-02T03:04:05Z"}))]
pub struct Account {
    pub id: Uuid,
    pub kind: AccountKind,
    /// The wallet's owner (the user's subject); none for the platform's own accounts.
    pub owner: Option<String>,
    #[schema(value_type = platform_common::money::CurrencyCode)]
    pub currency: String,
    pub frozen: bool,
    pub debits_must_not_exceed_credits: bool,
    pub credits_must_not_exceed_debits: bool,
    pub debits_pending: i64,
    pub debits_posted: i64,
    pub credits_pending: i64,
    pub credits_posted: i64,
    /// credits_posted - debits_posted
    pub balance: i64,
    /// balance - debits_pending: what can still be spent.
    pub available: i64,
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Account {
    /// Posted balance: credits_posted - debits_posted.
    pub fn balance(&self) -> i64 {
        self.credits_posted - self.debits_posted
    }

    /// What a debit may still take: the posted balance less pending debits.
    pub fn available(&self) -> i64 {
        self.balance() - self.debits_pending
    }
}

/// What a transfer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// Single phase: posted at once.
    #[default]
    Posted,
    /// Reserves the amount until posted, voided or timed out.
    Pending,
    /// Posts the pending transfer `pending_id` (its full amount).
    PostPending,
    /// Voids the pending transfer `pending_id`, releasing its amount.
    VoidPending,
}

impl TransferKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Posted => "posted",
            Self::Pending => "pending",
            Self::PostPending => "post_pending",
            Self::VoidPending => "void_pending",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "pending" => Self::Pending,
            "post_pending" => Self::PostPending,
            "void_pending" => Self::VoidPending,
            _ => Self::Posted,
        }
    }
}

/// A transfer to create. For `post_pending` and `void_pending`, the accounts, amount and
/// currency are the pending transfer's (what is given is checked against it when not nil/0).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "5d0c2f9e-8a7b-4c1d-9e2f-3a4b5c6d7e8f",
    "debit_account_id": "0b6f6c1e-3c55-4a55-9a39-0d7a3c1f7b10",
    "credit_account_id": "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f", "amount": 2500, "currency": "USD",
    "reference": "invoice 42", "kind": "pending", "timeout_seconds": 30}))]
pub struct NewTransfer {
    /// Client-chosen id: the same id with the same fields returns the original transfer.
    pub id: Uuid,
    pub debit_account_id: Uuid,
    pub credit_account_id: Uuid,
    /// Minor units, > 0.
    #[schema(minimum = 1)]
    pub amount: i64,
    #[schema(value_type = platform_common::money::CurrencyCode)]
    pub currency: String,
    pub reference: Option<String>,
    #[serde(default)]
    pub kind: TransferKind,
    /// The pending transfer a `post_pending` or `void_pending` resolves.
    #[serde(default)]
    pub pending_id: Option<Uuid>,
    /// For `pending`: seconds until it is voided unless posted (default 60).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86400)]
    pub timeout_seconds: Option<u32>,
}

impl NewTransfer {
    /// A single-phase transfer.
    pub fn posted(
        id: Uuid,
        debit: Uuid,
        credit: Uuid,
        amount: i64,
        currency: &str,
        reference: Option<&str>,
    ) -> Self {
        Self {
            id,
            debit_account_id: debit,
            credit_account_id: credit,
            amount,
            currency: currency.to_owned(),
            reference: reference.map(str::to_owned),
            kind: TransferKind::Posted,
            pending_id: None,
            timeout_seconds: None,
        }
    }

    /// A pending transfer that times out after `timeout_seconds`.
    pub fn pending(
        id: Uuid,
        debit: Uuid,
        credit: Uuid,
        amount: i64,
        currency: &str,
        reference: Option<&str>,
        timeout_seconds: u32,
    ) -> Self {
        Self {
            kind: TransferKind::Pending,
            timeout_seconds: Some(timeout_seconds),
            ..Self::posted(id, debit, credit, amount, currency, reference)
        }
    }

    /// Posts (`post == true`) or voids the pending transfer `pending_id`.
    pub fn resolve(id: Uuid, pending_id: Uuid, post: bool, reference: Option<&str>) -> Self {
        Self {
            id,
            debit_account_id: Uuid::nil(),
            credit_account_id: Uuid::nil(),
            amount: 0,
            currency: String::new(),
            reference: reference.map(str::to_owned),
            kind: if post {
                TransferKind::PostPending
            } else {
                TransferKind::VoidPending
            },
            pending_id: Some(pending_id),
            timeout_seconds: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"id": "5d0c2f9e-8a7b-4c1d-9e2f-3a4b5c6d7e8f",
    "debit_account_id": "0b6f6c1e-3c55-4a55-9a39-0d7a3c1f7b10",
    "credit_account_id": "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f", "amount": 2500, "currency": "USD",
    "reference": "invoice 42", "kind": "posted", "pending_id": null, "timeout_at": null, "state": null,
    "created_at": "2026-01-02T03:04:05Z"}))]
pub struct Transfer {
    pub id: Uuid,
    pub debit_account_id: Uuid,
    pub credit_account_id: Uuid,
    pub amount: i64,
    #[schema(value_type = platform_common::money::CurrencyCode)]
    pub currency: String,
    pub reference: Option<String>,
    pub kind: TransferKind,
    pub pending_id: Option<Uuid>,
    /// For pending transfers: when it is voided unless posted.
    pub timeout_at: Option<DateTime<Utc>>,
    /// For pending transfers: `pending`, `posted`, `voided` or `expired`.
    pub state: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Transfer {
    fn same_as(&self, t: &NewTransfer) -> bool {
        let resolves = matches!(
            t.kind,
            TransferKind::PostPending | TransferKind::VoidPending
        );
        self.kind == t.kind
            && self.pending_id == t.pending_id
            && self.reference == t.reference
            && (resolves
                || (self.debit_account_id == t.debit_account_id
                    && self.credit_account_id == t.credit_account_id
                    && self.amount == t.amount
                    && self.currency == t.currency))
    }
}

const NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_9d2e_8b4a_4c3f_9e21_7a5d_0b8c_3e41);

/// The settlement account of a currency: money outside the platform.
pub fn settlement_account_id(currency: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("settlement:{currency}").as_bytes())
}

/// The liquidity account of a currency: the platform's pool for conversions.
pub fn liquidity_account_id(currency: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("liquidity:{currency}").as_bytes())
}

/// An id derived from another and a label: the same inputs give the same id, so a
/// redelivered command creates nothing new.
pub fn derived_id(from: Uuid, label: &str) -> Uuid {
    Uuid::new_v5(&from, label.as_bytes())
}

fn account_row(r: &Row) -> Result<Account, tokio_postgres::Error> {
    let debits_posted: i64 = r.try_get("debits_posted")?;
    let credits_posted: i64 = r.try_get("credits_posted")?;
    let debits_pending: i64 = r.try_get("debits_pending")?;
    let kind: String = r.try_get("kind")?;
    Ok(Account {
        id: r.try_get("id")?,
        kind: AccountKind::parse(&kind),
        owner: r.try_get("owner")?,
        currency: r.try_get("currency")?,
        frozen: r.try_get("frozen")?,
        debits_must_not_exceed_credits: r.try_get("debits_must_not_exceed_credits")?,
        credits_must_not_exceed_debits: r.try_get("credits_must_not_exceed_debits")?,
        debits_pending,
        debits_posted,
        credits_pending: r.try_get("credits_pending")?,
        credits_posted,
        balance: credits_posted - debits_posted,
        available: credits_posted - debits_posted - debits_pending,
        reference: r.try_get("reference")?,
        created_at: r.try_get("created_at")?,
    })
}

fn transfer_row(r: &Row) -> Result<Transfer, tokio_postgres::Error> {
    let kind: String = r.try_get("kind")?;
    Ok(Transfer {
        id: r.try_get("id")?,
        debit_account_id: r.try_get("debit_account_id")?,
        credit_account_id: r.try_get("credit_account_id")?,
        amount: r.try_get("amount")?,
        currency: r.try_get("currency")?,
        reference: r.try_get("reference")?,
        kind: TransferKind::parse(&kind),
        pending_id: r.try_get("pending_id")?,
        timeout_at: r.try_get("timeout_at")?,
        state: r.try_get("state")?,
        created_at: r.try_get("created_at")?,
    })
}

/// A new account's fields.
#[derive(Debug, Clone)]
pub struct AccountSpec<'a> {
    pub id: Uuid,
    pub kind: AccountKind,
    pub owner: Option<&'a str>,
    pub currency: &'a str,
    pub debits_must_not_exceed_credits: bool,
    pub credits_must_not_exceed_debits: bool,
    pub reference: Option<&'a str>,
}

/// Creates the account unless its id exists; `(account, created)`. An existing account with
/// other fields is [`LedgerError::ExistsWithDifferentFields`].
pub async fn open_account(
    c: &impl GenericClient,
    a: &AccountSpec<'_>,
    by: &str,
) -> Result<(Account, bool), LedgerError> {
    let inserted = c
        .execute(
            "INSERT INTO accounts (id, kind, owner, currency, debits_must_not_exceed_credits,
                 credits_must_not_exceed_debits, reference, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
            &[
                &a.id,
                &a.kind.as_str(),
                &a.owner,
                &a.currency,
                &a.debits_must_not_exceed_credits,
                &a.credits_must_not_exceed_debits,
                &a.reference,
                &by,
            ],
        )
        .await
        .map_err(DbError::from)?;
    let account = account(c, a.id)
        .await?
        .ok_or_else(|| LedgerError::AccountNotFound(a.id.to_string()))?;
    let same = account.kind == a.kind
        && account.owner.as_deref() == a.owner
        && account.currency == a.currency
        && account.debits_must_not_exceed_credits == a.debits_must_not_exceed_credits
        && account.credits_must_not_exceed_debits == a.credits_must_not_exceed_debits
        && account.reference.as_deref() == a.reference;
    if inserted == 0 && !same {
        return Err(LedgerError::ExistsWithDifferentFields("account"));
    }
    Ok((account, inserted == 1))
}

/// Opens a wallet's account: it cannot go below zero.
pub async fn open_wallet_account(
    tx: &Transaction<'_>,
    id: Uuid,
    owner: &str,
    currency: &str,
    by: &str,
) -> Result<Account, LedgerError> {
    let spec = AccountSpec {
        id,
        kind: AccountKind::Wallet,
        owner: Some(owner),
        currency,
        debits_must_not_exceed_credits: true,
        credits_must_not_exceed_debits: false,
        reference: Some("wallet"),
    };
    Ok(open_account(tx, &spec, by).await?.0)
}

/// The currency's settlement and liquidity accounts, created when first needed.
pub async fn ensure_system_accounts(
    c: &impl GenericClient,
    currency: &str,
) -> Result<(), LedgerError> {
    for (id, kind) in [
        (settlement_account_id(currency), AccountKind::Settlement),
        (liquidity_account_id(currency), AccountKind::Liquidity),
    ] {
        let spec = AccountSpec {
            id,
            kind,
            owner: None,
            currency,
            debits_must_not_exceed_credits: false,
            credits_must_not_exceed_debits: false,
            reference: Some(kind.as_str()),
        };
        open_account(c, &spec, "ledger").await?;
    }
    Ok(())
}

pub async fn account(c: &impl GenericClient, id: Uuid) -> Result<Option<Account>, DbError> {
    let row = c
        .query_opt("SELECT * FROM accounts WHERE id = $1", &[&id])
        .await?;
    read_opt(row, account_row)
}

pub async fn accounts(c: &impl GenericClient, ids: &[Uuid]) -> Result<Vec<Account>, DbError> {
    let rows = c
        .query(
            "SELECT * FROM accounts WHERE id = ANY($1) ORDER BY id",
            &[&ids],
        )
        .await?;
    read_all(&rows, account_row)
}

/// A user's wallet account in a currency.
pub async fn wallet_account_of(
    c: &impl GenericClient,
    owner: &str,
    currency: &str,
) -> Result<Option<Account>, DbError> {
    let row = c
        .query_opt(
            "SELECT * FROM accounts WHERE owner = $1 AND currency = $2 AND kind = 'wallet'
             ORDER BY created_at LIMIT 1",
            &[&owner, &currency],
        )
        .await?;
    read_opt(row, account_row)
}

/// Freezes or unfreezes an account; `None` when it does not exist.
pub async fn set_frozen(
    tx: &Transaction<'_>,
    id: Uuid,
    frozen: bool,
) -> Result<Option<Account>, DbError> {
    let row = tx
        .query_opt(
            "UPDATE accounts SET frozen = $2 WHERE id = $1 RETURNING *",
            &[&id, &frozen],
        )
        .await?;
    read_opt(row, account_row)
}

pub async fn transfer(c: &impl GenericClient, id: Uuid) -> Result<Option<Transfer>, DbError> {
    let row = c
        .query_opt("SELECT * FROM transfers WHERE id = $1", &[&id])
        .await?;
    read_opt(row, transfer_row)
}

/// Money in from outside: settlement -> wallet.
pub async fn deposit(
    tx: &Transaction<'_>,
    transfer_id: Uuid,
    wallet: Uuid,
    amount: i64,
    currency: &str,
    reference: Option<&str>,
    by: &str,
) -> Result<Transfer, LedgerError> {
    let settlement = settlement_account_id(currency);
    let t = NewTransfer::posted(transfer_id, settlement, wallet, amount, currency, reference);
    settle(tx, t, by).await
}

/// Money out: wallet -> settlement.
pub async fn withdraw(
    tx: &Transaction<'_>,
    transfer_id: Uuid,
    wallet: Uuid,
    amount: i64,
    currency: &str,
    reference: Option<&str>,
    by: &str,
) -> Result<Transfer, LedgerError> {
    let settlement = settlement_account_id(currency);
    let t = NewTransfer::posted(transfer_id, wallet, settlement, amount, currency, reference);
    settle(tx, t, by).await
}

/// One posted transfer against the currency's settlement account (created when first needed).
async fn settle(tx: &Transaction<'_>, t: NewTransfer, by: &str) -> Result<Transfer, LedgerError> {
    ensure_system_accounts(tx, &t.currency).await?;
    Ok(create_transfers(tx, std::slice::from_ref(&t), by)
        .await?
        .remove(0))
}

/// Creates a linked batch: every transfer applies, or the first refusal is returned and the
/// caller's transaction must be rolled back (run the batch in a savepoint to keep going).
/// A transfer whose id exists with the same fields is returned as it was (a replay).
pub async fn create_transfers(
    tx: &Transaction<'_>,
    batch: &[NewTransfer],
    by: &str,
) -> Result<Vec<Transfer>, LedgerError> {
    let mut out = Vec::with_capacity(batch.len());
    for t in batch {
        out.push(create_one(tx, t, by).await?);
    }
    Ok(out)
}

/// Voids every pending transfer whose timeout has passed (at most `limit`), releasing its
/// amounts; returns them (state `expired`).
pub async fn expire_pending(
    tx: &Transaction<'_>,
    limit: i64,
) -> Result<Vec<Transfer>, LedgerError> {
    let rows = tx
        .query(
            "SELECT * FROM transfers WHERE state = 'pending' AND timeout_at <= now()
             ORDER BY timeout_at LIMIT $1 FOR UPDATE",
            &[&limit],
        )
        .await
        .map_err(DbError::from)?;
    let expired = read_all(&rows, transfer_row)?;
    let mut out = Vec::with_capacity(expired.len());
    for p in expired {
        release(tx, &p).await?;
        out.push(set_state(tx, p.id, "expired").await?);
    }
    Ok(out)
}

async fn set_state(tx: &Transaction<'_>, id: Uuid, state: &str) -> Result<Transfer, LedgerError> {
    let row = tx
        .query_one(
            "UPDATE transfers SET state = $2 WHERE id = $1 RETURNING *",
            &[&id, &state],
        )
        .await
        .map_err(DbError::from)?;
    Ok(transfer_row(&row).map_err(DbError::from)?)
}

/// Takes a pending transfer's amounts off both accounts' pending columns.
async fn release(tx: &Transaction<'_>, p: &Transfer) -> Result<(), LedgerError> {
    lock(tx, p.debit_account_id, p.credit_account_id).await?;
    tx.execute(
        "UPDATE accounts SET debits_pending = debits_pending - $2 WHERE id = $1",
        &[&p.debit_account_id, &p.amount],
    )
    .await
    .map_err(DbError::from)?;
    tx.execute(
        "UPDATE accounts SET credits_pending = credits_pending - $2 WHERE id = $1",
        &[&p.credit_account_id, &p.amount],
    )
    .await
    .map_err(DbError::from)?;
    Ok(())
}

/// Both accounts, locked in id order so concurrent transfers cannot deadlock.
async fn lock(tx: &Transaction<'_>, a: Uuid, b: Uuid) -> Result<Vec<Account>, LedgerError> {
    let rows = tx
        .query(
            "SELECT * FROM accounts WHERE id = $1 OR id = $2 ORDER BY id FOR UPDATE",
            &[&a, &b],
        )
        .await
        .map_err(DbError::from)?;
    Ok(read_all(&rows, account_row)?)
}

async fn create_one(
    tx: &Transaction<'_>,
    t: &NewTransfer,
    by: &str,
) -> Result<Transfer, LedgerError> {
    if let Some(existing) = transfer(tx, t.id).await? {
        return if existing.same_as(t) {
            Ok(existing)
        } else {
            Err(LedgerError::ExistsWithDifferentFields("transfer"))
        };
    }
    match t.kind {
        TransferKind::Posted | TransferKind::Pending => create_movement(tx, t, by).await,
        TransferKind::PostPending | TransferKind::VoidPending => resolve(tx, t, by).await,
    }
}

async fn create_movement(
    tx: &Transaction<'_>,
    t: &NewTransfer,
    by: &str,
) -> Result<Transfer, LedgerError> {
    if t.amount <= 0 {
        return Err(
            platform_common::CommonError::validation("amount", "must be greater than 0").into(),
        );
    }
    if t.debit_account_id == t.credit_account_id {
        return Err(LedgerError::SameAccount);
    }
    let accounts = lock(tx, t.debit_account_id, t.credit_account_id).await?;
    let find = |id: Uuid| {
        accounts
            .iter()
            .find(|a| a.id == id)
            .ok_or_else(|| LedgerError::AccountNotFound(id.to_string()))
    };
    let (debit, credit) = (find(t.debit_account_id)?, find(t.credit_account_id)?);
    for a in [debit, credit] {
        if a.currency != t.currency {
            return Err(LedgerError::CurrencyMismatch {
                account: a.id.to_string(),
                account_currency: a.currency.clone(),
                currency: t.currency.clone(),
            });
        }
        if a.frozen {
            return Err(LedgerError::Frozen(a.id.to_string()));
        }
    }
    let overflow = |id: Uuid| LedgerError::Overflow(id.to_string());
    let debits = debit
        .debits_posted
        .checked_add(debit.debits_pending)
        .and_then(|d| d.checked_add(t.amount))
        .ok_or_else(|| overflow(debit.id))?;
    let credits = credit
        .credits_posted
        .checked_add(credit.credits_pending)
        .and_then(|c| c.checked_add(t.amount))
        .ok_or_else(|| overflow(credit.id))?;
    if debit.debits_must_not_exceed_credits && debits > debit.credits_posted {
        return Err(LedgerError::ExceedsCredits(debit.id.to_string()));
    }
    if credit.credits_must_not_exceed_debits && credits > credit.debits_posted {
        return Err(LedgerError::ExceedsDebits(credit.id.to_string()));
    }
    let pending = t.kind == TransferKind::Pending;
    let (debit_col, credit_col) = if pending {
        ("debits_pending", "credits_pending")
    } else {
        ("debits_posted", "credits_posted")
    };
    tx.execute(
        &format!("UPDATE accounts SET {debit_col} = {debit_col} + $2 WHERE id = $1"),
        &[&debit.id, &t.amount],
    )
    .await
    .map_err(DbError::from)?;
    tx.execute(
        &format!("UPDATE accounts SET {credit_col} = {credit_col} + $2 WHERE id = $1"),
        &[&credit.id, &t.amount],
    )
    .await
    .map_err(DbError::from)?;
    let (timeout_at, state): (Option<DateTime<Utc>>, Option<&str>) = if pending {
        let secs = t.timeout_seconds.unwrap_or(60).clamp(1, 86_400);
        (
            Some(Utc::now() + chrono::Duration::seconds(i64::from(secs))),
            Some("pending"),
        )
    } else {
        (None, None)
    };
    insert(
        tx,
        t,
        t.debit_account_id,
        t.credit_account_id,
        t.amount,
        &t.currency,
        timeout_at,
        state,
        by,
    )
    .await
}

async fn resolve(tx: &Transaction<'_>, t: &NewTransfer, by: &str) -> Result<Transfer, LedgerError> {
    let pending_id = t.pending_id.ok_or_else(|| {
        platform_common::CommonError::validation("pending_id", "required to post or void")
    })?;
    let row = tx
        .query_opt(
            "SELECT * FROM transfers WHERE id = $1 FOR UPDATE",
            &[&pending_id],
        )
        .await
        .map_err(DbError::from)?;
    let p = read_opt(row, transfer_row)?
        .ok_or_else(|| LedgerError::PendingNotFound(pending_id.to_string()))?;
    if p.kind != TransferKind::Pending {
        return Err(LedgerError::PendingNotFound(pending_id.to_string()));
    }
    check_given_fields(t, &p)?;
    let post = t.kind == TransferKind::PostPending;
    match p.state.as_deref() {
        Some("pending") => {}
        Some("expired") => return Err(LedgerError::PendingExpired(pending_id.to_string())),
        Some(other) => {
            return Err(LedgerError::PendingResolved(
                pending_id.to_string(),
                other.to_owned(),
            ));
        }
        None => return Err(LedgerError::PendingNotFound(pending_id.to_string())),
    }
    if post && p.timeout_at.is_some_and(|at| at <= Utc::now()) {
        // Past its timeout: it is voided, whoever gets there first.
        release(tx, &p).await?;
        set_state(tx, p.id, "expired").await?;
        return Err(LedgerError::PendingExpired(pending_id.to_string()));
    }
    let accounts = lock(tx, p.debit_account_id, p.credit_account_id).await?;
    if post {
        if let Some(frozen) = accounts.iter().find(|a| a.frozen) {
            return Err(LedgerError::Frozen(frozen.id.to_string()));
        }
    }
    release(tx, &p).await?;
    if post {
        tx.execute(
            "UPDATE accounts SET debits_posted = debits_posted + $2 WHERE id = $1",
            &[&p.debit_account_id, &p.amount],
        )
        .await
        .map_err(DbError::from)?;
        tx.execute(
            "UPDATE accounts SET credits_posted = credits_posted + $2 WHERE id = $1",
            &[&p.credit_account_id, &p.amount],
        )
        .await
        .map_err(DbError::from)?;
    }
    set_state(tx, p.id, if post { "posted" } else { "voided" }).await?;
    insert(
        tx,
        t,
        p.debit_account_id,
        p.credit_account_id,
        p.amount,
        &p.currency,
        None,
        None,
        by,
    )
    .await
}

/// A post or void resolves the pending transfer as it is: what the caller gave besides
/// `pending_id` (nil, 0 and empty mean "the pending transfer's") must match it, so a post
/// meant for another amount or account is refused rather than posted in full.
fn check_given_fields(t: &NewTransfer, p: &Transfer) -> Result<(), LedgerError> {
    let mismatch = [
        (
            "debit_account_id",
            !t.debit_account_id.is_nil() && t.debit_account_id != p.debit_account_id,
        ),
        (
            "credit_account_id",
            !t.credit_account_id.is_nil() && t.credit_account_id != p.credit_account_id,
        ),
        ("amount", t.amount != 0 && t.amount != p.amount),
        (
            "currency",
            !t.currency.is_empty() && t.currency != p.currency,
        ),
    ]
    .into_iter()
    .find_map(|(field, differs)| differs.then_some(field));
    match mismatch {
        Some(field) => Err(platform_common::CommonError::validation(
            field,
            "must be the pending transfer's (or left nil, 0 or empty)",
        )
        .into()),
        None => Ok(()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn insert(
    tx: &Transaction<'_>,
    t: &NewTransfer,
    debit: Uuid,
    credit: Uuid,
    amount: i64,
    currency: &str,
    timeout_at: Option<DateTime<Utc>>,
    state: Option<&str>,
    by: &str,
) -> Result<Transfer, LedgerError> {
    let row = tx
        .query_one(
            "INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, currency,
                 reference, kind, pending_id, timeout_at, state, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *",
            &[
                &t.id,
                &debit,
                &credit,
                &amount,
                &currency,
                &t.reference,
                &t.kind.as_str(),
                &t.pending_id,
                &timeout_at,
                &state,
                &by,
            ],
        )
        .await
        .map_err(DbError::from)?;
    Ok(transfer_row(&row).map_err(DbError::from)?)
}
