//! wallet: one wallet per user and currency; balances in minor units; freeze and unfreeze
//! by ops_user or admin; credits and debits (finance, admin) idempotent on a reference.

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use platform_common::auth::{CurrentUser, RoleGuard, roles};
use platform_common::db::{DbError, PoolError};
use platform_common::http::{ApiJson, ApiPath, ApiQuery};
use platform_common::jobs::TaskRegistry;
use platform_common::migrate::Migration;
use platform_common::money;
use platform_common::service::{Context, ServiceSpec};
use platform_common::{ApiError, CommonError};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "wallets and entries",
    sql: "
CREATE TABLE IF NOT EXISTS wallets (
    id UUID PRIMARY KEY,
    owner TEXT NOT NULL,
    currency TEXT NOT NULL,
    balance BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0),
    status TEXT NOT NULL DEFAULT 'active',
    status_reason TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (owner, currency)
);
CREATE TABLE IF NOT EXISTS wallet_entries (
    wallet_id UUID NOT NULL REFERENCES wallets (id),
    reference TEXT NOT NULL,
    direction TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (wallet_id, reference)
);
",
}];

const OPS: RoleGuard = RoleGuard::AnyOf(&[roles::OPS_USER, roles::ADMIN]);
const MONEY_MOVERS: RoleGuard = RoleGuard::AnyOf(&[roles::FINANCE, roles::ADMIN]);
const STAFF: RoleGuard = RoleGuard::AnyOf(&[
    roles::OPS_USER,
    roles::ADMIN,
    roles::AUDITOR,
    roles::FINANCE,
]);

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("wallet {0} not found")]
    NotFound(String),
    #[error("a {0} wallet exists already for this user")]
    Exists(String),
    #[error("wallet {0} is frozen")]
    Frozen(String),
    #[error("insufficient funds: balance {balance}, debit {amount}")]
    InsufficientFunds { balance: i64, amount: i64 },
    #[error("the balance would overflow")]
    Overflow,
    #[error("reference {0} was used with a different entry")]
    ReferenceReused(String),
}

impl ApiError for WalletError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Common(c) => c.status(),
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::CONFLICT,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Common(c) => c.code(),
            Self::NotFound(_) => "wallet_not_found",
            Self::Exists(_) => "wallet_exists",
            Self::Frozen(_) => "wallet_frozen",
            Self::InsufficientFunds { .. } => "insufficient_funds",
            Self::Overflow => "overflows_balance",
            Self::ReferenceReused(_) => "reference_reused",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Common(c) => c.field(),
            Self::ReferenceReused(_) => Some("reference"),
            Self::InsufficientFunds { .. } | Self::Overflow => Some("amount"),
            _ => None,
        }
    }
}

platform_common::impl_api_error_response!(WalletError);

impl From<tokio_postgres::Error> for WalletError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Common(DbError::from(e).into())
    }
}

impl From<PoolError> for WalletError {
    fn from(e: PoolError) -> Self {
        Self::Common(DbError::from(e).into())
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Wallet {
    pub id: Uuid,
    pub owner: String,
    pub currency: String,
    /// Minor units.
    pub balance: i64,
    /// `active` or `frozen`.
    pub status: String,
    pub status_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, owner, currency, balance, status, status_reason, created_at, updated_at";

impl From<&Row> for Wallet {
    fn from(r: &Row) -> Self {
        Wallet {
            id: r.get(0),
            owner: r.get(1),
            currency: r.get(2),
            balance: r.get(3),
            status: r.get(4),
            status_reason: r.get(5),
            created_at: r.get(6),
            updated_at: r.get(7),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWallet {
    pub currency: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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
pub struct Entry {
    pub direction: Direction,
    /// Minor units, > 0.
    pub amount: i64,
    /// Unique per wallet: the same reference and entry again is a no-op.
    pub reference: String,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    owner: Option<String>,
}

#[derive(Clone)]
struct State {
    ctx: Context,
}

#[derive(OpenApi)]
#[openapi(
    paths(create, list, get_one, freeze, unfreeze, post_entry),
    components(schemas(Wallet, NewWallet, StatusChange, Entry, Direction))
)]
struct Api;

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "wallet",
        migrations: MIGRATIONS,
        publishes: &[],
        worker_uses_db: false,
        openapi: Api::openapi,
        routes: |ctx| {
            Ok(Router::new()
                .route("/wallets", post(create).get(list))
                .route("/wallets/{id}", get(get_one))
                .route("/wallets/{id}/freeze", post(freeze))
                .route("/wallets/{id}/unfreeze", post(unfreeze))
                .route("/wallets/{id}/entries", post(post_entry))
                .with_state(State { ctx: ctx.clone() }))
        },
        tasks: |_: &mut TaskRegistry, _| {},
    }
}

/// Open a wallet in a currency for the caller.
#[utoipa::path(post, path = "/wallets", tag = "wallet", security(("bearer" = [])), request_body = NewWallet,
    responses((status = 201, body = Wallet), (status = 409, description = "exists already")))]
async fn create(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiJson(b): ApiJson<NewWallet>,
) -> Result<(StatusCode, Json<Wallet>), WalletError> {
    money::currency("currency", &b.currency)?;
    let c = s.ctx.db.get().await?;
    let row = c
        .query_opt(
            &format!(
                "INSERT INTO wallets (id, owner, currency) VALUES ($1, $2, $3)
                 ON CONFLICT (owner, currency) DO NOTHING RETURNING {COLUMNS}"
            ),
            &[&Uuid::new_v4(), &user.username, &b.currency],
        )
        .await?
        .ok_or(WalletError::Exists(b.currency))?;
    Ok((StatusCode::CREATED, Json(Wallet::from(&row))))
}

/// The caller's wallets; staff may pass `?owner=`.
#[utoipa::path(get, path = "/wallets", tag = "wallet", security(("bearer" = [])), params(("owner" = Option<String>, Query)),
    responses((status = 200, body = [Wallet])))]
async fn list(
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
    let rows = c
        .query(
            &format!("SELECT {COLUMNS} FROM wallets WHERE owner = $1 ORDER BY currency"),
            &[&owner],
        )
        .await?;
    Ok(Json(rows.iter().map(Wallet::from).collect()))
}

async fn load_visible(
    s: &State,
    user: &platform_common::auth::User,
    id: Uuid,
) -> Result<Wallet, WalletError> {
    let c = s.ctx.db.get().await?;
    let w = c
        .query_opt(
            &format!("SELECT {COLUMNS} FROM wallets WHERE id = $1"),
            &[&id],
        )
        .await?
        .map(|r| Wallet::from(&r))
        .ok_or_else(|| WalletError::NotFound(id.to_string()))?;
    if w.owner != user.username && STAFF.check(user).is_err() {
        return Err(WalletError::NotFound(id.to_string()));
    }
    Ok(w)
}

/// A wallet and its balance: its owner or staff.
#[utoipa::path(get, path = "/wallets/{id}", tag = "wallet", security(("bearer" = [])),
    responses((status = 200, body = Wallet), (status = 404, description = "no such wallet")))]
async fn get_one(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Wallet>, WalletError> {
    load_visible(&s, &user, id).await.map(Json)
}

async fn set_status(
    s: &State,
    id: Uuid,
    status: &str,
    reason: Option<String>,
) -> Result<Wallet, WalletError> {
    let c = s.ctx.db.get().await?;
    let row = c
        .query_opt(
            &format!("UPDATE wallets SET status = $2, status_reason = $3, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"),
            &[&id, &status, &reason],
        )
        .await?
        .ok_or_else(|| WalletError::NotFound(id.to_string()))?;
    tracing::info!(wallet = %id, status, "wallet status changed");
    Ok(Wallet::from(&row))
}

/// Freeze a wallet: no credits or debits until unfrozen (ops_user, admin).
#[utoipa::path(post, path = "/wallets/{id}/freeze", tag = "wallet", security(("bearer" = [])), request_body = StatusChange,
    responses((status = 200, body = Wallet)))]
async fn freeze(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<StatusChange>,
) -> Result<Json<Wallet>, WalletError> {
    OPS.check(&user)?;
    set_status(&s, id, "frozen", b.reason).await.map(Json)
}

/// Unfreeze a wallet (ops_user, admin).
#[utoipa::path(post, path = "/wallets/{id}/unfreeze", tag = "wallet", security(("bearer" = [])),
    responses((status = 200, body = Wallet)))]
async fn unfreeze(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Wallet>, WalletError> {
    OPS.check(&user)?;
    set_status(&s, id, "active", None).await.map(Json)
}

/// Credit or debit a wallet (finance, admin). Refused on frozen wallets and below zero.
#[utoipa::path(post, path = "/wallets/{id}/entries", tag = "wallet", security(("bearer" = [])), request_body = Entry,
    responses((status = 200, body = Wallet), (status = 409, description = "frozen, insufficient funds or reference reused")))]
async fn post_entry(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(e): ApiJson<Entry>,
) -> Result<Json<Wallet>, WalletError> {
    MONEY_MOVERS.check(&user)?;
    money::positive_amount("amount", e.amount)?;
    if e.reference.trim().is_empty() || e.reference.len() > 200 {
        return Err(CommonError::validation("reference", "must be 1 to 200 characters").into());
    }
    let direction = match e.direction {
        Direction::Credit => "credit",
        Direction::Debit => "debit",
    };
    let mut c = s.ctx.db.get().await?;
    let tx = c.transaction().await?;
    let w = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM wallets WHERE id = $1 FOR UPDATE"),
            &[&id],
        )
        .await?
        .map(|r| Wallet::from(&r))
        .ok_or_else(|| WalletError::NotFound(id.to_string()))?;
    if let Some(prev) = tx
        .query_opt(
            "SELECT direction, amount FROM wallet_entries WHERE wallet_id = $1 AND reference = $2",
            &[&id, &e.reference],
        )
        .await?
    {
        let same = prev.get::<_, String>(0) == direction && prev.get::<_, i64>(1) == e.amount;
        return if same {
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
    tx.execute(
        "INSERT INTO wallet_entries (wallet_id, reference, direction, amount, created_by) VALUES ($1, $2, $3, $4, $5)",
        &[&id, &e.reference, &direction, &e.amount, &user.username],
    )
    .await?;
    let row = tx
        .query_one(
            &format!("UPDATE wallets SET balance = $2, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"),
            &[&id, &balance],
        )
        .await?;
    tx.commit().await?;
    Ok(Json(Wallet::from(&row)))
}
