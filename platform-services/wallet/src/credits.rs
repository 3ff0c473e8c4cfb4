//! Manual credits need two people: finance or admin requests one, another finance or admin
//! user (never the requester, never the wallet's owner) approves it, which posts a deposit
//! (settlement -> wallet) to the ledger in the same transaction.

use axum::Json;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use platform_common::auth::{CurrentUser, RoleGuard, roles};
use platform_common::db::{self, DbOptionExt};
use platform_common::http::{ApiJson, ApiPath, ApiQuery};
use platform_common::money::CurrencyCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::wallets::{MoneyRequest, STAFF, StatusChange, visible};
use crate::{State, WalletError, book, store};

const MONEY_MOVERS: RoleGuard = RoleGuard::AnyOf(&[roles::FINANCE, roles::ADMIN]);

pub const PENDING: &str = "pending_approval";
pub const APPROVED: &str = "approved";
pub const REJECTED: &str = "rejected";

/// The most requests one list returns.
const LIST_LIMIT: i64 = 500;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({"id": "5d4c3b2a-1908-4f7e-8d6c-5b4a39281706", "wallet_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "amount": 2500, "currency": "USD", "reference": "refund ticket 42", "status": "approved",
    "requested_by": "fin-1-sub", "requested_at": "2026-01-02T03:04:05Z",
    "decided_by": "fin-2-sub", "decided_at": "2026-01-02T03:09:05Z", "decision_reason": null,
    "transfer_id": "5d4c3b2a-1908-4f7e-8d6c-5b4a39281706"}))]
pub struct CreditRequest {
    pub id: Uuid,
    pub wallet_id: Uuid,
    /// Minor units of the wallet's currency.
    pub amount: i64,
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    pub reference: String,
    /// `pending_approval`, `approved` (the deposit is posted) or `rejected`.
    pub status: String,
    /// The requester's subject.
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    /// The approver's or rejecter's subject.
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_reason: Option<String>,
    /// The ledger deposit (settlement -> wallet) once approved.
    pub transfer_id: Option<Uuid>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    wallet_id: Option<Uuid>,
}

/// Request a manual credit to a wallet (finance, admin): it moves no money until another
/// finance or admin user approves it. Idempotent on the reference.
#[utoipa::path(post, path = "/wallets/{id}/credit-requests", tag = "wallet", operation_id = "create_credit_request",
    security(("bearer" = ["finance", "admin"])), request_body = MoneyRequest, params(("id" = Uuid, Path, description = "the wallet's id", example = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")),
    responses((status = 201, body = CreditRequest, description = "the request, `pending_approval`",
            links(("GetCreditRequest" = (operation_id = "get_credit_request", parameters(("id" = "$response.body#/id")))))),
        (status = 200, body = CreditRequest, description = "the request made earlier with this reference and amount"),
        (status = 404, description = "no such wallet"),
        (status = 409, description = "the reference used with another amount")),
    extensions(("x-problem-codes" = json!({"404": ["wallet_not_found"], "409": ["reference_reused"], "503": ["contention"]}))))]
pub(crate) async fn create(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(wallet_id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<MoneyRequest>,
) -> Result<(StatusCode, Json<CreditRequest>), WalletError> {
    MONEY_MOVERS.check(&user)?;
    b.validate()?;
    let id = Uuid::new_v4();
    let (status, r) = db::serializable::<_, WalletError, _>(&s.ctx.db, |tx| {
        let (by, b) = (user.id.clone(), b.clone());
        Box::pin(async move {
            let w = store::get_in(tx, wallet_id)
                .await
                .or_not_found(|| WalletError::NotFound(wallet_id.to_string()))?;
            if let Some(prev) =
                store::credit_request_by_reference(tx, wallet_id, &b.reference).await?
            {
                return if prev.amount == b.amount {
                    Ok((StatusCode::OK, prev))
                } else {
                    Err(WalletError::ReferenceReused(b.reference))
                };
            }
            match store::insert_credit_request(tx, id, &w, b.amount, &b.reference, &by).await {
                Ok(r) => Ok((StatusCode::CREATED, r)),
                Err(db::DbError::Duplicate(_)) => Err(WalletError::raced("credit request")),
                Err(e) => Err(e.into()),
            }
        })
    })
    .await?;
    if status == StatusCode::CREATED {
        tracing::info!(credit_request = %r.id, wallet = %wallet_id, amount = r.amount, by = %user.id, "credit requested");
    }
    Ok((status, Json(r)))
}

/// Credit requests, newest first (at most 500): finance, admin, auditor, ops_user.
#[utoipa::path(get, path = "/credit-requests", tag = "wallet", operation_id = "list_credit_requests",
    security(("bearer" = ["finance", "admin", "auditor", "ops_user"])),
    params(("status" = Option<String>, Query, description = "only this status: `pending_approval`, `approved` or `rejected`", example = "pending_approval"),
        ("wallet_id" = Option<Uuid>, Query, description = "only this wallet's", example = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")),
    responses((status = 200, body = [CreditRequest])))]
pub(crate) async fn list(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<CreditRequest>>, WalletError> {
    STAFF.check(&user)?;
    let c = s.ctx.db.get().await?;
    let all = store::credit_requests(&c, q.status.as_deref(), q.wallet_id, LIST_LIMIT).await?;
    Ok(Json(all))
}

/// A credit request: staff, or the owner of the wallet it credits.
#[utoipa::path(get, path = "/credit-requests/{id}", tag = "wallet", operation_id = "get_credit_request",
    security(("bearer" = [])), params(("id" = Uuid, Path, description = "the credit request's id", example = "5d4c3b2a-1908-4f7e-8d6c-5b4a39281706")),
    responses((status = 200, body = CreditRequest), (status = 404, description = "no such request, or one for another user's wallet")),
    extensions(("x-problem-codes" = json!({"404": ["credit_request_not_found"]}))))]
pub(crate) async fn get_one(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<CreditRequest>, WalletError> {
    let not_found = || WalletError::CreditRequestNotFound(id.to_string());
    let c = s.ctx.db.get().await?;
    let r = store::credit_request_by_id(&c, id)
        .await
        .or_not_found(not_found)?;
    let w = store::get(&c, r.wallet_id).await.or_not_found(not_found)?;
    if !visible(&user, &w) {
        return Err(not_found());
    }
    Ok(Json(r))
}

/// Approve a credit request (finance, admin; never its requester, never the wallet's owner):
/// posts the deposit (settlement -> wallet, transfer id = the request's id) and marks the
/// request `approved`, in one transaction. Approving an approved request again answers it.
#[utoipa::path(post, path = "/credit-requests/{id}/approve", tag = "wallet", operation_id = "approve_credit_request",
    security(("bearer" = ["finance", "admin"])), params(("id" = Uuid, Path, description = "the credit request's id", example = "5d4c3b2a-1908-4f7e-8d6c-5b4a39281706")),
    responses((status = 200, body = CreditRequest, description = "the request, `approved`, with its transfer"),
        (status = 403, description = "the caller requested it, or owns the wallet"),
        (status = 404, description = "no such request"),
        (status = 409, description = "rejected already, the wallet is frozen, or its balance would overflow")),
    extensions(("x-problem-codes" = json!({"403": ["self_approval_forbidden", "own_wallet_credit_forbidden"],
        "404": ["credit_request_not_found"], "409": ["credit_request_decided", "wallet_frozen", "overflows_balance"],
        "503": ["contention"]}))))]
pub(crate) async fn approve(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<CreditRequest>, WalletError> {
    MONEY_MOVERS.check(&user)?;
    let r = db::serializable::<_, WalletError, _>(&s.ctx.db, |tx| {
        let by = user.id.clone();
        Box::pin(async move {
            let r = store::credit_request_in(tx, id)
                .await
                .or_not_found(|| WalletError::CreditRequestNotFound(id.to_string()))?;
            if r.requested_by == by {
                return Err(WalletError::SelfApproval);
            }
            let w = store::get_in(tx, r.wallet_id)
                .await
                .or_not_found(|| WalletError::NotFound(r.wallet_id.to_string()))?;
            if w.owner == by {
                return Err(WalletError::OwnWalletCredit);
            }
            match r.status.as_str() {
                PENDING => {}
                APPROVED => return Ok(r),
                _ => {
                    return Err(WalletError::AlreadyDecided {
                        id: id.to_string(),
                        status: r.status,
                    });
                }
            }
            let reference = format!("credit request {id}: {}", r.reference);
            let transfer =
                book::deposit(tx, id, r.wallet_id, r.amount, &r.currency, &reference, &by).await?;
            Ok(store::decide_credit_request(tx, id, APPROVED, &by, None, Some(transfer)).await?)
        })
    })
    .await?;
    tracing::info!(credit_request = %id, wallet = %r.wallet_id, amount = r.amount, by = %user.id, "credit approved");
    Ok(Json(r))
}

/// Reject a credit request (finance, admin; its requester may withdraw it this way): no money
/// moves. Rejecting a rejected request again answers it.
#[utoipa::path(post, path = "/credit-requests/{id}/reject", tag = "wallet", operation_id = "reject_credit_request",
    security(("bearer" = ["finance", "admin"])), request_body = StatusChange, params(("id" = Uuid, Path, description = "the credit request's id", example = "5d4c3b2a-1908-4f7e-8d6c-5b4a39281706")),
    responses((status = 200, body = CreditRequest, description = "the request, `rejected`"),
        (status = 404, description = "no such request"),
        (status = 409, description = "approved already")),
    extensions(("x-problem-codes" = json!({"404": ["credit_request_not_found"], "409": ["credit_request_decided"], "503": ["contention"]}))))]
pub(crate) async fn reject(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<StatusChange>,
) -> Result<Json<CreditRequest>, WalletError> {
    MONEY_MOVERS.check(&user)?;
    let r = db::serializable::<_, WalletError, _>(&s.ctx.db, |tx| {
        let (by, reason) = (user.id.clone(), b.reason.clone());
        Box::pin(async move {
            let r = store::credit_request_in(tx, id)
                .await
                .or_not_found(|| WalletError::CreditRequestNotFound(id.to_string()))?;
            match r.status.as_str() {
                PENDING => {}
                REJECTED => return Ok(r),
                _ => {
                    return Err(WalletError::AlreadyDecided {
                        id: id.to_string(),
                        status: r.status,
                    });
                }
            }
            Ok(
                store::decide_credit_request(tx, id, REJECTED, &by, reason.as_deref(), None)
                    .await?,
            )
        })
    })
    .await?;
    tracing::info!(credit_request = %id, by = %user.id, "credit rejected");
    Ok(Json(r))
}
