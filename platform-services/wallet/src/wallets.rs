//! Wallets: open, list, read, freeze and unfreeze, withdraw. A wallet is a ledger account
//! with the same id: its balance and its frozen flag are the account's.

use axum::Json;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use ledger::book::Account;
use platform_common::CommonError;
use platform_common::auth::{CurrentUser, RoleGuard, User, roles};
use platform_common::db::{self, DbOptionExt, DbResultExt};
use platform_common::http::{ApiJson, ApiPath, ApiQuery};
use platform_common::money;
use platform_common::money::CurrencyCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store::WalletRow;
use crate::{State, WalletError, book, store};

pub(crate) const OPS: RoleGuard = RoleGuard::AnyOf(&[roles::OPS_USER, roles::ADMIN]);
pub(crate) const STAFF: RoleGuard = RoleGuard::AnyOf(&[
    roles::OPS_USER,
    roles::ADMIN,
    roles::AUDITOR,
    roles::FINANCE,
]);

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "owner": "3f6c1a2e-user-sub", "currency": "USD",
    "balance": 2500, "available": 2000, "debits_pending": 500, "credits_pending": 0,
    "status": "active", "status_reason": null,
    "created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:04:05Z"}))]
pub struct Wallet {
    /// Also the id of the wallet's ledger account.
    pub id: Uuid,
    /// The owner's stable subject (`sub`).
    pub owner: String,
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    /// Posted balance of the ledger account, minor units: credits posted - debits posted.
    pub balance: i64,
    /// What can be withdrawn or held: balance - debits pending.
    pub available: i64,
    /// Debits held by pending (two-phase) transfers, minor units.
    pub debits_pending: i64,
    /// Credits on their way in by pending transfers, minor units.
    pub credits_pending: i64,
    /// `active` or `frozen` (the ledger account's flag).
    pub status: String,
    /// Why it was frozen.
    pub status_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Wallet {
    pub(crate) fn new(w: WalletRow, a: &Account) -> Self {
        Wallet {
            id: w.id,
            owner: w.owner,
            currency: w.currency,
            balance: a.balance(),
            available: a.available(),
            debits_pending: a.debits_pending,
            credits_pending: a.credits_pending,
            status: if a.frozen { "frozen" } else { "active" }.into(),
            status_reason: w.status_reason,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"currency": "USD"}))]
pub struct NewWallet {
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "suspected fraud"}))]
pub struct StatusChange {
    pub reason: Option<String>,
}

/// An amount and a reference: a withdrawal or a credit request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount": 2500, "reference": "payout 42"}))]
pub struct MoneyRequest {
    /// Minor units of the wallet's currency, > 0.
    #[schema(minimum = 1)]
    pub amount: i64,
    /// Unique per wallet: the same reference and amount again returns the first result; with
    /// another amount it is a 409. 1 to 200 characters, not only spaces.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub reference: String,
}

impl MoneyRequest {
    pub(crate) fn validate(&self) -> Result<(), WalletError> {
        money::positive_amount("amount", self.amount)?;
        if self.reference.trim().is_empty() || self.reference.chars().count() > 200 {
            return Err(CommonError::validation("reference", "must be 1 to 200 characters").into());
        }
        Ok(())
    }
}

/// A withdrawal: a ledger transfer from the wallet to the currency's settlement account.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({"id": "0b1c2d3e-4f50-4617-8283-94a5b6c7d8e9", "wallet_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "amount": 2500, "currency": "USD", "reference": "payout 42", "requested_by": "3f6c1a2e-user-sub",
    "created_at": "2026-01-02T03:04:05Z"}))]
pub struct Withdrawal {
    /// Also the ledger transfer's id.
    pub id: Uuid,
    pub wallet_id: Uuid,
    pub amount: i64,
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    pub reference: String,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    owner: Option<String>,
}

/// The wallet rows with their ledger accounts.
async fn with_accounts(c: &db::Client, rows: Vec<WalletRow>) -> Result<Vec<Wallet>, WalletError> {
    let ids: Vec<Uuid> = rows.iter().map(|w| w.id).collect();
    let accounts = book::accounts(c, &ids).await?;
    rows.into_iter()
        .map(|w| {
            let a = accounts
                .iter()
                .find(|a| a.id == w.id)
                .ok_or_else(|| no_account(w.id))?;
            Ok(Wallet::new(w, a))
        })
        .collect()
}

/// A wallet row without its ledger account: migration 1001 opens one for every wallet, so
/// this is a broken database, not a client's error.
fn no_account(id: Uuid) -> WalletError {
    CommonError::Internal(format!("wallet {id} has no ledger account")).into()
}

/// Open a wallet in a currency for the caller: the wallet and its ledger account, in one
/// transaction.
#[utoipa::path(post, path = "/wallets", tag = "wallet", operation_id = "create_wallet",
    security(("bearer" = [])), request_body = NewWallet,
    responses((status = 201, body = Wallet, links(("GetWallet" = (operation_id = "get_wallet", parameters(("id" = "$response.body#/id")))))),
        (status = 409, description = "the caller has a wallet in this currency")),
    extensions(("x-problem-codes" = json!({"409": ["wallet_exists"], "503": ["contention"]}))))]
pub(crate) async fn create(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiJson(b): ApiJson<NewWallet>,
) -> Result<(StatusCode, Json<Wallet>), WalletError> {
    money::currency("currency", &b.currency)?;
    let id = Uuid::new_v4();
    let w = db::serializable::<_, WalletError, _>(&s.ctx.db, |tx| {
        let (owner, currency) = (user.id.clone(), b.currency.clone());
        Box::pin(async move {
            let w = store::create(tx, id, &owner, &currency)
                .await
                .or_conflict(|| WalletError::Exists(currency.clone()))?;
            let a = book::open(tx, id, &owner, &currency, &owner).await?;
            Ok(Wallet::new(w, &a))
        })
    })
    .await?;
    tracing::info!(wallet = %w.id, owner = %w.owner, currency = %w.currency, "wallet opened");
    Ok((StatusCode::CREATED, Json(w)))
}

/// The caller's wallets; staff may pass `?owner=` (a subject).
#[utoipa::path(get, path = "/wallets", tag = "wallet", operation_id = "list_wallets",
    security(("bearer" = [])),
    params(("owner" = Option<String>, Query, description = "another user's wallets, by subject (ops_user, admin, auditor, finance)", example = "3f6c1a2e-user-sub")),
    responses((status = 200, body = [Wallet]), (status = 403, description = "another owner, without a staff role")),
    extensions(("x-problem-codes" = json!({"403": ["forbidden"]}))))]
pub(crate) async fn list(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Wallet>>, WalletError> {
    let owner = match q.owner {
        Some(o) if o != user.id => {
            STAFF.check(&user)?;
            o
        }
        _ => user.id.clone(),
    };
    let c = s.ctx.db.get().await?;
    let rows = store::by_owner(&c, &owner).await?;
    Ok(Json(with_accounts(&c, rows).await?))
}

/// A wallet and its balance, read from its ledger account: its owner or staff.
#[utoipa::path(get, path = "/wallets/{id}", tag = "wallet", operation_id = "get_wallet",
    security(("bearer" = [])), params(("id" = Uuid, Path, description = "the wallet's id", example = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")),
    responses((status = 200, body = Wallet), (status = 404, description = "no such wallet, or another user's (staff see every wallet)")),
    extensions(("x-problem-codes" = json!({"404": ["wallet_not_found"]}))))]
pub(crate) async fn get_one(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Wallet>, WalletError> {
    let c = s.ctx.db.get().await?;
    let w = store::get(&c, id)
        .await
        .or_not_found(|| WalletError::NotFound(id.to_string()))?;
    if !visible(&user, &w) {
        return Err(WalletError::NotFound(id.to_string()));
    }
    let mut all = with_accounts(&c, vec![w]).await?;
    Ok(Json(all.remove(0)))
}

/// Others' wallets are not found unless the caller is staff.
pub(crate) fn visible(user: &User, w: &WalletRow) -> bool {
    w.owner == user.id || STAFF.check(user).is_ok()
}

/// Freeze a wallet: its ledger account takes no transfers until unfrozen (ops_user, admin).
#[utoipa::path(post, path = "/wallets/{id}/freeze", tag = "wallet", operation_id = "freeze_wallet",
    security(("bearer" = ["ops_user", "admin"])), request_body = StatusChange, params(("id" = Uuid, Path, description = "the wallet's id", example = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")),
    responses((status = 200, body = Wallet), (status = 404, description = "no such wallet")),
    extensions(("x-problem-codes" = json!({"404": ["wallet_not_found"], "503": ["contention"]}))))]
pub(crate) async fn freeze(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<StatusChange>,
) -> Result<Json<Wallet>, WalletError> {
    OPS.check(&user)?;
    set_frozen(&s, &user, id, true, b.reason).await.map(Json)
}

/// Unfreeze a wallet (ops_user, admin; never the wallet's owner).
#[utoipa::path(post, path = "/wallets/{id}/unfreeze", tag = "wallet", operation_id = "unfreeze_wallet",
    security(("bearer" = ["ops_user", "admin"])), params(("id" = Uuid, Path, description = "the wallet's id", example = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")),
    responses((status = 200, body = Wallet), (status = 403, description = "the caller owns the wallet: another ops_user or admin unfreezes it"),
        (status = 404, description = "no such wallet")),
    extensions(("x-problem-codes" = json!({"403": ["self_unfreeze_forbidden"], "404": ["wallet_not_found"], "503": ["contention"]}))))]
pub(crate) async fn unfreeze(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Wallet>, WalletError> {
    OPS.check(&user)?;
    set_frozen(&s, &user, id, false, None).await.map(Json)
}

async fn set_frozen(
    s: &State,
    user: &User,
    id: Uuid,
    frozen: bool,
    reason: Option<String>,
) -> Result<Wallet, WalletError> {
    let w = db::serializable::<_, WalletError, _>(&s.ctx.db, |tx| {
        let (caller, reason) = (user.id.clone(), reason.clone());
        Box::pin(async move {
            let w = store::get_in(tx, id)
                .await
                .or_not_found(|| WalletError::NotFound(id.to_string()))?;
            if !frozen && w.owner == caller {
                return Err(WalletError::SelfUnfreeze);
            }
            let a = book::set_frozen(tx, id, frozen).await?;
            let w = store::set_status_reason(tx, id, reason.as_deref())
                .await
                .or_not_found(|| WalletError::NotFound(id.to_string()))?;
            Ok(Wallet::new(w, &a))
        })
    })
    .await?;
    tracing::info!(wallet = %id, frozen, by = %user.id, "wallet frozen flag set");
    Ok(w)
}

/// Withdraw from one's own wallet: a ledger transfer from the wallet to the currency's
/// settlement account. Idempotent on the reference.
#[utoipa::path(post, path = "/wallets/{id}/withdrawals", tag = "wallet", operation_id = "create_withdrawal",
    security(("bearer" = [])), request_body = MoneyRequest, params(("id" = Uuid, Path, description = "the wallet's id", example = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")),
    responses((status = 201, body = Withdrawal, description = "the withdrawal, posted to the ledger"),
        (status = 200, body = Withdrawal, description = "the withdrawal made earlier with this reference and amount"),
        (status = 403, description = "staff withdrawing from a wallet that is not theirs"),
        (status = 404, description = "no such wallet, or another user's"),
        (status = 409, description = "frozen, insufficient available funds, or the reference used with another amount")),
    extensions(("x-problem-codes" = json!({"403": ["not_wallet_owner"], "404": ["wallet_not_found"],
        "409": ["wallet_frozen", "insufficient_funds", "reference_reused"], "503": ["contention"]}))))]
pub(crate) async fn withdraw(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<MoneyRequest>,
) -> Result<(StatusCode, Json<Withdrawal>), WalletError> {
    b.validate()?;
    let transfer_id = Uuid::new_v4();
    let (status, w) = db::serializable::<_, WalletError, _>(&s.ctx.db, |tx| {
        let (user, b) = (user.clone(), b.clone());
        Box::pin(async move {
            let w = store::get_in(tx, id)
                .await
                .or_not_found(|| WalletError::NotFound(id.to_string()))?;
            if w.owner != user.id {
                return Err(if visible(&user, &w) {
                    WalletError::NotOwner
                } else {
                    WalletError::NotFound(id.to_string())
                });
            }
            if let Some(prev) = store::withdrawal_by_reference(tx, id, &b.reference).await? {
                return if prev.amount == b.amount {
                    Ok((StatusCode::OK, prev))
                } else {
                    Err(WalletError::ReferenceReused(b.reference))
                };
            }
            book::withdraw(
                tx,
                transfer_id,
                id,
                b.amount,
                &w.currency,
                &b.reference,
                &user.id,
            )
            .await?;
            let wd = match store::insert_withdrawal(
                tx,
                transfer_id,
                &w,
                b.amount,
                &b.reference,
                &user.id,
            )
            .await
            {
                Err(db::DbError::Duplicate(_)) => return Err(WalletError::raced("withdrawal")),
                other => other?,
            };
            Ok((StatusCode::CREATED, wd))
        })
    })
    .await?;
    if status == StatusCode::CREATED {
        tracing::info!(wallet = %id, withdrawal = %w.id, amount = w.amount, "withdrawal posted");
    }
    Ok((status, Json(w)))
}
