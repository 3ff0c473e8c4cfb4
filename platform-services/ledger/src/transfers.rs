//! Transfers over HTTP: single, linked batches, and two-phase (pending, post, void).

use axum::Json;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use platform_common::auth::CurrentUser;
use platform_common::db::{self, DbOptionExt};
use platform_common::events::{self, EventEnvelope};
use platform_common::http::{ApiJson, ApiPath};
use platform_common::money;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::accounts::{READERS, WRITERS};
use crate::book::{self, NewTransfer, Transfer, TransferKind};
use crate::{LedgerError, State, TRANSFER_POSTED};

/// A linked batch: all of it is applied, or none of it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkedTransfers {
    /// 1 to 100 transfers, applied in order.
    #[schema(min_items = 1, max_items = 100)]
    pub transfers: Vec<NewTransfer>,
}

fn validate(t: &NewTransfer) -> Result<(), LedgerError> {
    match t.kind {
        TransferKind::Posted | TransferKind::Pending => {
            money::positive_amount("amount", t.amount)?;
            money::currency("currency", &t.currency)?;
            if t.debit_account_id == t.credit_account_id {
                return Err(LedgerError::SameAccount);
            }
        }
        TransferKind::PostPending | TransferKind::VoidPending => {
            if t.pending_id.is_none() {
                return Err(platform_common::CommonError::validation(
                    "pending_id",
                    "required to post or void a pending transfer",
                )
                .into());
            }
        }
    }
    Ok(())
}

/// Applies `batch` in one SERIALIZABLE transaction with its `ledger.transfer_posted` events;
/// true when every transfer existed already (a replay).
async fn apply(
    s: &State,
    by: &str,
    batch: Vec<NewTransfer>,
) -> Result<(Vec<Transfer>, bool), LedgerError> {
    let service = s.ctx.service.clone();
    db::serializable(&s.ctx.db, |tx| {
        let (batch, by, service) = (batch.clone(), by.to_owned(), service.clone());
        Box::pin(async move {
            let mut replay = true;
            for t in &batch {
                replay &= book::transfer(tx, t.id).await?.is_some();
            }
            let transfers = book::create_transfers(tx, &batch, &by).await?;
            if !replay {
                for t in &transfers {
                    let event = EventEnvelope::new(
                        TRANSFER_POSTED,
                        service.clone(),
                        serde_json::to_value(t).expect("serialises"),
                    );
                    events::record(tx, &t.debit_account_id.to_string(), &event).await?;
                }
            }
            Ok((transfers, replay))
        })
    })
    .await
}

/// Create a transfer (finance, admin): `posted` at once, or `pending` (reserves the amount
/// until `post_pending`/`void_pending` or its timeout).
#[utoipa::path(post, path = "/transfers", tag = "ledger", operation_id = "create_transfer",
    security(("bearer" = ["finance", "admin"])), request_body = NewTransfer,
    responses(
        (status = 201, description = "applied", body = Transfer, links(("GetTransfer" = (operation_id = "get_transfer",
            parameters(("id" = "$response.body#/id")))))),
        (status = 200, description = "a replay of the same transfer: the original", body = Transfer,
            links(("GetTransfer" = (operation_id = "get_transfer", parameters(("id" = "$response.body#/id")))))),
        (status = 404, description = "an account or the pending transfer does not exist"),
        (status = 409, description = "the id was used with different fields, a balance limit, a frozen account, or the pending transfer is resolved or expired"),
        (status = 422, description = "an invalid transfer")),
    extensions(("x-problem-codes" = json!({"404": ["account_not_found", "pending_transfer_not_found"],
        "409": ["exists_with_different_fields", "exceeds_credits", "exceeds_debits", "overflows_balance",
            "account_frozen", "pending_transfer_expired", "pending_transfer_resolved", "contention"],
        "422": ["currency_mismatch", "accounts_must_be_different", "validation_failed"]}))))]
pub async fn create(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiJson(t): ApiJson<NewTransfer>,
) -> Result<(StatusCode, Json<Transfer>), LedgerError> {
    WRITERS.check(&user)?;
    validate(&t)?;
    let (mut transfers, replay) = apply(&s, &user.id, vec![t]).await?;
    let status = if replay {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(transfers.remove(0))))
}

/// Create linked transfers (finance, admin): all are applied, or none (the first refusal is
/// the answer). Cross-currency movement: debit the payer into the source currency's liquidity
/// account and credit the payee from the target currency's, as one batch.
#[utoipa::path(post, path = "/transfers/linked", tag = "ledger", operation_id = "create_linked_transfers",
    security(("bearer" = ["finance", "admin"])), request_body = LinkedTransfers,
    responses(
        (status = 201, description = "all applied", body = [Transfer]),
        (status = 200, description = "a replay: every transfer existed already", body = [Transfer]),
        (status = 404, description = "an account or a pending transfer does not exist"),
        (status = 409, description = "a transfer was refused: nothing was applied"),
        (status = 422, description = "an invalid transfer")),
    extensions(("x-problem-codes" = json!({"404": ["account_not_found", "pending_transfer_not_found"],
        "409": ["exists_with_different_fields", "exceeds_credits", "exceeds_debits", "overflows_balance",
            "account_frozen", "pending_transfer_expired", "pending_transfer_resolved", "contention"],
        "422": ["currency_mismatch", "accounts_must_be_different", "validation_failed"]}))))]
pub async fn create_linked(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiJson(b): ApiJson<LinkedTransfers>,
) -> Result<(StatusCode, Json<Vec<Transfer>>), LedgerError> {
    WRITERS.check(&user)?;
    if b.transfers.is_empty() || b.transfers.len() > 100 {
        return Err(platform_common::CommonError::validation(
            "transfers",
            "must hold 1 to 100 transfers",
        )
        .into());
    }
    for t in &b.transfers {
        validate(t)?;
    }
    let (transfers, replay) = apply(&s, &user.id, b.transfers).await?;
    let status = if replay {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(transfers)))
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
    let transfer = book::transfer(&client, id)
        .await
        .or_not_found(|| LedgerError::TransferNotFound(id.to_string()))?;
    Ok(Json(transfer))
}
