use axum::Json;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use platform_common::auth::{CurrentUser, RoleGuard, roles};
use platform_common::db::DbOptionExt;
use platform_common::http::{ApiJson, ApiPath};
use platform_common::money::CurrencyCode;
use platform_common::{CommonError, money};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{LedgerError, State, store};

pub(crate) const WRITERS: RoleGuard = RoleGuard::AnyOf(&[roles::FINANCE, roles::ADMIN]);
pub(crate) const READERS: RoleGuard =
    RoleGuard::AnyOf(&[roles::FINANCE, roles::ADMIN, roles::AUDITOR]);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "0b6f6c1e-3c55-4a55-9a39-0d7a3c1f7b10", "currency": "USD",
    "debits_must_not_exceed_credits": true, "reference": "customer cash"}))]
pub struct NewAccount {
    /// Client-chosen id; creating the same account again is idempotent.
    pub id: Uuid,
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    #[serde(default)]
    pub debits_must_not_exceed_credits: bool,
    #[serde(default)]
    pub credits_must_not_exceed_debits: bool,
    pub reference: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "0b6f6c1e-3c55-4a55-9a39-0d7a3c1f7b10", "currency": "USD",
    "debits_must_not_exceed_credits": true, "credits_must_not_exceed_debits": false,
    "debits_posted": 0, "credits_posted": 2500, "balance": 2500, "reference": "customer cash",
    "created_at": "2026-01-02T03:04:05Z"}))]
pub struct Account {
    pub id: Uuid,
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    pub debits_must_not_exceed_credits: bool,
    pub credits_must_not_exceed_debits: bool,
    pub debits_posted: i64,
    pub credits_posted: i64,
    /// credits_posted - debits_posted
    pub balance: i64,
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Create an account (finance, admin). Same id and fields again: 200 with the original.
#[utoipa::path(post, path = "/accounts", tag = "ledger", operation_id = "create_account",
    security(("bearer" = ["finance", "admin"])), request_body = NewAccount,
    responses(
        (status = 201, description = "created", body = Account, links(("GetAccount" = (operation_id = "get_account",
            parameters(("id" = "$response.body#/id"))))), example = json!({"id": "0b6f6c1e-3c55-4a55-9a39-0d7a3c1f7b10",
            "currency": "USD", "debits_must_not_exceed_credits": true, "credits_must_not_exceed_debits": false,
            "debits_posted": 0, "credits_posted": 0, "balance": 0, "reference": "customer cash", "created_at": "2026-01-02T03:04:05Z"})),
        (status = 200, description = "the same account existed already", body = Account, links(("GetAccount" = (operation_id = "get_account",
            parameters(("id" = "$response.body#/id")))))),
        (status = 409, description = "the id exists with different fields")),
    extensions(("x-problem-codes" = json!({"409": ["exists_with_different_fields"]}))))]
pub async fn create(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiJson(new): ApiJson<NewAccount>,
) -> Result<(StatusCode, Json<Account>), LedgerError> {
    WRITERS.check(&user)?;
    money::currency("currency", &new.currency)?;
    if new.debits_must_not_exceed_credits && new.credits_must_not_exceed_debits {
        return Err(CommonError::validation(
            "credits_must_not_exceed_debits",
            "at most one balance flag may be set",
        )
        .into());
    }
    let client = s.ctx.db.get().await?;
    let inserted = store::insert_account(&client, &new, &user.username).await?;
    let account = store::account(&client, new.id)
        .await
        .or_not_found(|| LedgerError::AccountNotFound(new.id.to_string()))?;
    if inserted {
        return Ok((StatusCode::CREATED, Json(account)));
    }
    let same = account.currency == new.currency
        && account.debits_must_not_exceed_credits == new.debits_must_not_exceed_credits
        && account.credits_must_not_exceed_debits == new.credits_must_not_exceed_debits
        && account.reference == new.reference;
    if same {
        Ok((StatusCode::OK, Json(account)))
    } else {
        Err(LedgerError::ExistsWithDifferentFields("account"))
    }
}

/// An account and its balances (finance, admin, auditor).
#[utoipa::path(get, path = "/accounts/{id}", tag = "ledger", operation_id = "get_account",
    security(("bearer" = ["finance", "admin", "auditor"])),
    params(("id" = Uuid, Path, description = "the account's id", example = "0b6f6c1e-3c55-4a55-9a39-0d7a3c1f7b10")),
    responses((status = 200, body = Account), (status = 404, description = "no such account")),
    extensions(("x-problem-codes" = json!({"404": ["account_not_found"]}))))]
pub async fn get_one(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Account>, LedgerError> {
    READERS.check(&user)?;
    let client = s.ctx.db.get().await?;
    let account = store::account(&client, id)
        .await
        .or_not_found(|| LedgerError::AccountNotFound(id.to_string()))?;
    Ok(Json(account))
}
