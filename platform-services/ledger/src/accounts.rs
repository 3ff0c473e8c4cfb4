use axum::Json;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use platform_common::auth::{CurrentUser, RoleGuard, roles};
use platform_common::db::{self, DbOptionExt};
use platform_common::http::{ApiJson, ApiPath};
use platform_common::money::CurrencyCode;
use platform_common::{CommonError, money};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::book::{self, Account, AccountKind, AccountSpec};
use crate::{LedgerError, State};

pub(crate) const WRITERS: RoleGuard = RoleGuard::AnyOf(&[roles::FINANCE, roles::ADMIN]);
pub(crate) const READERS: RoleGuard =
    RoleGuard::AnyOf(&[roles::FINANCE, roles::ADMIN, roles::AUDITOR]);

#[derive(Debug, Clone, Deserialize, ToSchema)]
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
    let by = user.id.clone();
    let (account, created) = db::serializable(&s.ctx.db, |tx| {
        let (by, spec) = (by.clone(), new.clone());
        Box::pin(async move {
            let spec = AccountSpec {
                id: spec.id,
                kind: AccountKind::General,
                owner: None,
                currency: &spec.currency,
                debits_must_not_exceed_credits: spec.debits_must_not_exceed_credits,
                credits_must_not_exceed_debits: spec.credits_must_not_exceed_debits,
                reference: spec.reference.as_deref(),
            };
            book::open_account(tx, &spec, &by).await
        })
    })
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(account)))
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
    let account = book::account(&client, id)
        .await
        .or_not_found(|| LedgerError::AccountNotFound(id.to_string()))?;
    Ok(Json(account))
}
