//! Wallets: open, list, read, freeze and unfreeze, credit and debit.

use axum::Json;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use platform_common::CommonError;
use platform_common::auth::{CurrentUser, RoleGuard, User, roles};
use platform_common::db::{DbOptionExt, DbResultExt};
use platform_common::http::{ApiJson, ApiPath, ApiQuery};
use platform_common::money;
use platform_common::money::CurrencyCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{State, WalletError, store};

const OPS: RoleGuard = RoleGuard::AnyOf(&[roles::OPS_USER, roles::ADMIN]);
const MONEY_MOVERS: RoleGuard = RoleGuard::AnyOf(&[roles::FINANCE, roles::ADMIN]);
const STAFF: RoleGuard = RoleGuard::AnyOf(&[
    roles::OPS_USER,
    roles::ADMIN,
    roles::AUDITOR,
    roles::FINANCE,
]);

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "owner": "user", "currency": "USD",
    "balance": 2500, "status": "active", "status_reason": null,
    "created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:04:05Z"}))]
pub struct Wallet {
    pub id: Uuid,
    pub owner: String,
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    /// Minor units.
    pub balance: i64,
    /// `active` or `frozen`.
    pub status: String,
    pub status_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Credit,
    Debit,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"direction": "credit", "amount": 2500, "reference": "top-up 42"}))]
pub struct Entry {
    pub direction: Direction,
    /// Minor units, > 0.
    #[schema(minimum = 1)]
    pub amount: i64,
    /// Unique per wallet: the same reference and entry again is a no-op. 1 to 200 characters,
    /// not only spaces.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub reference: String,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    owner: Option<String>,
}

/// Open a wallet in a currency for the caller.
#[utoipa::path(post, path = "/wallets", tag = "wallet", operation_id = "create_wallet",
    security(("bearer" = [])), request_body = NewWallet,
    responses((status = 201, body = Wallet, links(("GetWallet" = (operation_id = "get_wallet", parameters(("id" = "$response.body#/id")))))),
        (status = 409, description = "the caller has a wallet in this currency")),
    extensions(("x-problem-codes" = json!({"409": ["wallet_exists"]}))))]
pub(crate) async fn create(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiJson(b): ApiJson<NewWallet>,
) -> Result<(StatusCode, Json<Wallet>), WalletError> {
    money::currency("currency", &b.currency)?;
    let c = s.ctx.db.get().await?;
    let w = store::create(&c, &user.username, &b.currency)
        .await
        .or_conflict(|| WalletError::Exists(b.currency.clone()))?;
    Ok((StatusCode::CREATED, Json(w)))
}

/// The caller's wallets; staff may pass `?owner=`.
#[utoipa::path(get, path = "/wallets", tag = "wallet", operation_id = "list_wallets",
    security(("bearer" = [])),
    params(("owner" = Option<String>, Query, description = "another user's wallets (ops_user, admin, auditor, finance)", example = "user")),
    responses((status = 200, body = [Wallet]), (status = 403, description = "another owner, without a staff role")),
    extensions(("x-problem-codes" = json!({"403": ["forbidden"]}))))]
pub(crate) async fn list(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Wallet>>, WalletError> {
    let owner = match q.owner {
        Some(o) if o != user.username => {
            STAFF.check(&user)?;
            o
        }
        _ => user.username.clone(),
    };
    let c = s.ctx.db.get().await?;
    Ok(Json(store::by_owner(&c, &owner).await?))
}

/// A wallet and its balance: its owner or staff.
#[utoipa::path(get, path = "/wallets/{id}", tag = "wallet", operation_id = "get_wallet",
    security(("bearer" = [])), params(("id" = Uuid, Path, description = "the wallet's id", example = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")),
    responses((status = 200, body = Wallet), (status = 404, description = "no such wallet, or another user's (staff see every wallet)")),
    extensions(("x-problem-codes" = json!({"404": ["wallet_not_found"]}))))]
pub(crate) async fn get_one(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Wallet>, WalletError> {
    load_visible(&s, &user, id).await.map(Json)
}

/// Others' wallets are not found unless the caller is staff.
async fn load_visible(s: &State, user: &User, id: Uuid) -> Result<Wallet, WalletError> {
    let c = s.ctx.db.get().await?;
    let w = store::get(&c, id)
        .await
        .or_not_found(|| WalletError::NotFound(id.to_string()))?;
    if w.owner != user.username && STAFF.check(user).is_err() {
        return Err(WalletError::NotFound(id.to_string()));
    }
    Ok(w)
}

/// Freeze a wallet: no credits or debits until unfrozen (ops_user, admin).
#[utoipa::path(post, path = "/wallets/{id}/freeze", tag = "wallet", operation_id = "freeze_wallet",
    security(("bearer" = ["ops_user", "admin"])), request_body = StatusChange, params(("id" = Uuid, Path, description = "the wallet's id", example = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")),
    responses((status = 200, body = Wallet), (status = 404, description = "no such wallet")),
    extensions(("x-problem-codes" = json!({"404": ["wallet_not_found"]}))))]
pub(crate) async fn freeze(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<StatusChange>,
) -> Result<Json<Wallet>, WalletError> {
    OPS.check(&user)?;
    set_status(&s, id, "frozen", b.reason.as_deref())
        .await
        .map(Json)
}

/// Unfreeze a wallet (ops_user, admin).
#[utoipa::path(post, path = "/wallets/{id}/unfreeze", tag = "wallet", operation_id = "unfreeze_wallet",
    security(("bearer" = ["ops_user", "admin"])), params(("id" = Uuid, Path, description = "the wallet's id", example = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")),
    responses((status = 200, body = Wallet), (status = 404, description = "no such wallet")),
    extensions(("x-problem-codes" = json!({"404": ["wallet_not_found"]}))))]
pub(crate) async fn unfreeze(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Wallet>, WalletError> {
    OPS.check(&user)?;
    set_status(&s, id, "active", None).await.map(Json)
}

async fn set_status(
    s: &State,
    id: Uuid,
    status: &str,
    reason: Option<&str>,
) -> Result<Wallet, WalletError> {
    let c = s.ctx.db.get().await?;
    let w = store::set_status(&c, id, status, reason)
        .await
        .or_not_found(|| WalletError::NotFound(id.to_string()))?;
    tracing::info!(wallet = %id, status, "wallet status changed");
    Ok(w)
}

/// Credit or debit a wallet (finance, admin). Refused on frozen wallets and below zero.
#[utoipa::path(post, path = "/wallets/{id}/entries", tag = "wallet", operation_id = "post_wallet_entry",
    security(("bearer" = ["finance", "admin"])), request_body = Entry, params(("id" = Uuid, Path, description = "the wallet's id", example = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")),
    responses((status = 200, body = Wallet, description = "the wallet after the entry (or after the first one with this reference)"),
        (status = 404, description = "no such wallet"),
        (status = 409, description = "frozen, insufficient funds, a balance overflow or the reference reused")),
    extensions(("x-problem-codes" = json!({"404": ["wallet_not_found"],
        "409": ["wallet_frozen", "insufficient_funds", "overflows_balance", "reference_reused"]}))))]
pub(crate) async fn post_entry(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(e): ApiJson<Entry>,
) -> Result<Json<Wallet>, WalletError> {
    MONEY_MOVERS.check(&user)?;
    money::positive_amount("amount", e.amount)?;
    if e.reference.trim().is_empty() || e.reference.chars().count() > 200 {
        return Err(CommonError::validation("reference", "must be 1 to 200 characters").into());
    }
    let mut c = s.ctx.db.get().await?;
    let tx = c.transaction().await?;
    let w = store::lock(&tx, id)
        .await
        .or_not_found(|| WalletError::NotFound(id.to_string()))?;
    if let Some(prev) = store::entry(&tx, id, &e.reference).await? {
        return if prev == (e.direction, e.amount) {
            Ok(Json(w))
        } else {
            Err(WalletError::ReferenceReused(e.reference))
        };
    }
    if w.status == "frozen" {
        return Err(WalletError::Frozen(id.to_string()));
    }
    let balance = match e.direction {
        Direction::Credit => w
            .balance
            .checked_add(e.amount)
            .ok_or(WalletError::Overflow)?,
        Direction::Debit if w.balance < e.amount => {
            return Err(WalletError::InsufficientFunds {
                balance: w.balance,
                amount: e.amount,
            });
        }
        Direction::Debit => w.balance - e.amount,
    };
    let w = store::post_entry(
        &tx,
        id,
        &e.reference,
        e.direction,
        e.amount,
        &user.username,
        balance,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(w))
}
