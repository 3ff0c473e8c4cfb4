use std::time::Duration;

use axum::Json;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use platform_common::auth::CurrentUser;
use platform_common::db::{DbError, DbOptionExt};
use platform_common::events::{self, EventEnvelope};
use platform_common::http::{ApiJson, ApiPath};
use platform_common::money;
use platform_common::money::CurrencyCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::{READERS, WRITERS};
use crate::{LedgerError, State, TRANSFER_POSTED, store};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id": "5d0c2f9e-8a7b-4c1d-9e2f-3a4b5c6d7e8f",
    "debit_account_id": "0b6f6c1e-3c55-4a55-9a39-0d7a3c1f7b10",
    "credit_account_id": "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f", "amount": 2500, "currency": "USD",
    "reference": "invoice 42"}))]
pub struct NewTransfer {
    /// Client-chosen id: the same id with the same fields returns the original transfer.
    pub id: Uuid,
    pub debit_account_id: Uuid,
    pub credit_account_id: Uuid,
    /// Minor units, > 0.
    #[schema(minimum = 1)]
    pub amount: i64,
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    pub reference: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "5d0c2f9e-8a7b-4c1d-9e2f-3a4b5c6d7e8f",
    "debit_account_id": "0b6f6c1e-3c55-4a55-9a39-0d7a3c1f7b10",
    "credit_account_id": "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f", "amount": 2500, "currency": "USD",
    "reference": "invoice 42", "created_at": "2026-01-02T03:04:05Z"}))]
pub struct Transfer {
    pub id: Uuid,
    pub debit_account_id: Uuid,
    pub credit_account_id: Uuid,
    pub amount: i64,
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Transfer {
    fn same_as(&self, t: &NewTransfer) -> bool {
        self.debit_account_id == t.debit_account_id
            && self.credit_account_id == t.credit_account_id
            && self.amount == t.amount
            && self.currency == t.currency
            && self.reference == t.reference
    }
}

enum Attempt {
    Retry,
    Fail(LedgerError),
}

impl From<tokio_postgres::Error> for Attempt {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError::from(e).into()
    }
}

impl From<DbError> for Attempt {
    fn from(e: DbError) -> Self {
        match e {
            // A concurrent transfer with the same id won: read it on the next attempt.
            DbError::Retry(_) | DbError::Duplicate(_) => Attempt::Retry,
            other => Attempt::Fail(other.into()),
        }
    }
}

impl From<LedgerError> for Attempt {
    fn from(e: LedgerError) -> Self {
        Attempt::Fail(e)
    }
}

/// Post a transfer (finance, admin): debit one account, credit another, atomically.
#[utoipa::path(post, path = "/transfers", tag = "ledger", operation_id = "create_transfer",
    security(("bearer" = ["finance", "admin"])), request_body = NewTransfer,
    responses(
        (status = 201, description = "posted", body = Transfer, links(("GetTransfer" = (operation_id = "get_transfer",
            parameters(("id" = "$response.body#/id")))))),
        (status = 200, description = "a replay of the same transfer: the original", body = Transfer,
            links(("GetTransfer" = (operation_id = "get_transfer", parameters(("id" = "$response.body#/id")))))),
        (status = 404, description = "an account does not exist"),
        (status = 409, description = "the id was used with different fields, or a balance limit"),
        (status = 422, description = "an invalid transfer")),
    extensions(("x-problem-codes" = json!({"404": ["account_not_found"],
        "409": ["exists_with_different_fields", "exceeds_credits", "exceeds_debits", "overflows_balance"],
        "422": ["currency_mismatch", "accounts_must_be_different"]}))))]
pub async fn create(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiJson(t): ApiJson<NewTransfer>,
) -> Result<(StatusCode, Json<Transfer>), LedgerError> {
    // validate
    WRITERS.check(&user)?;
    money::positive_amount("amount", t.amount)?;
    money::currency("currency", &t.currency)?;
    if t.debit_account_id == t.credit_account_id {
        return Err(LedgerError::SameAccount);
    }
    // post, retrying serialization conflicts
    for attempt in 0..10u32 {
        match post(&s, &user.username, &t).await {
            Ok(r) => return Ok(r),
            Err(Attempt::Fail(e)) => return Err(e),
            Err(Attempt::Retry) => {
                let ms = 5u64 << attempt.min(6);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
        }
    }
    Err(LedgerError::Common(
        platform_common::CommonError::DependencyUnavailable("database (contention)"),
    ))
}

async fn post(
    s: &State,
    by: &str,
    t: &NewTransfer,
) -> Result<(StatusCode, Json<Transfer>), Attempt> {
    let mut client = s.ctx.db.get().await.map_err(DbError::from)?;
    let tx = client.transaction().await?;
    // load: an existing transfer with this id decides the answer
    if let Some(existing) = store::transfer_in(&tx, t.id).await? {
        return if existing.same_as(t) {
            Ok((StatusCode::OK, Json(existing)))
        } else {
            Err(LedgerError::ExistsWithDifferentFields("transfer").into())
        };
    }
    // Lock both accounts in id order so concurrent transfers cannot deadlock.
    let accounts = store::lock_accounts(&tx, t.debit_account_id, t.credit_account_id).await?;
    let find = |id: Uuid| {
        accounts
            .iter()
            .find(|a| a.id == id)
            .ok_or_else(|| LedgerError::AccountNotFound(id.to_string()))
    };
    let (debit, credit) = (find(t.debit_account_id)?, find(t.credit_account_id)?);
    // domain rules
    for a in [debit, credit] {
        if a.currency != t.currency {
            return Err(LedgerError::CurrencyMismatch {
                account: a.id.to_string(),
                account_currency: a.currency.clone(),
                currency: t.currency.clone(),
            }
            .into());
        }
    }
    let new_debits = debit
        .debits_posted
        .checked_add(t.amount)
        .ok_or_else(|| LedgerError::Overflow(debit.id.to_string()))?;
    let new_credits = credit
        .credits_posted
        .checked_add(t.amount)
        .ok_or_else(|| LedgerError::Overflow(credit.id.to_string()))?;
    if debit.debits_must_not_exceed_credits && new_debits > debit.credits_posted {
        return Err(LedgerError::ExceedsCredits(debit.id.to_string()).into());
    }
    if credit.credits_must_not_exceed_debits && new_credits > credit.debits_posted {
        return Err(LedgerError::ExceedsDebits(credit.id.to_string()).into());
    }
    // update
    store::set_debits_posted(&tx, debit.id, new_debits).await?;
    store::set_credits_posted(&tx, credit.id, new_credits).await?;
    let transfer = store::insert_transfer(&tx, t, by).await?;
    // post-update: the event commits with the transfer or not at all
    let event = EventEnvelope::new(
        TRANSFER_POSTED,
        s.ctx.service.clone(),
        serde_json::to_value(&transfer).expect("serialises"),
    );
    events::record(&tx, &t.debit_account_id.to_string(), &event).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(transfer)))
}

/// A transfer (finance, admin, auditor).
#[utoipa::path(get, path = "/transfers/{id}", tag = "ledger", operation_id = "get_transfer",
    security(("bearer" = ["finance", "admin", "auditor"])),
    params(("id" = Uuid, Path, description = "the transfer's id", example = "5d0c2f9e-8a7b-4c1d-9e2f-3a4b5c6d7e8f")),
    responses((status = 200, body = Transfer), (status = 404, description = "no such transfer")),
    extensions(("x-problem-codes" = json!({"404": ["transfer_not_found"]}))))]
pub async fn get_one(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Transfer>, LedgerError> {
    READERS.check(&user)?;
    let client = s.ctx.db.get().await?;
    let transfer = store::transfer(&client, id)
        .await
        .or_not_found(|| LedgerError::TransferNotFound(id.to_string()))?;
    Ok(Json(transfer))
}
