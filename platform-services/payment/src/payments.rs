use axum::Json;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use ledger::book::{self, AccountKind};
use platform_common::CommonError;
use platform_common::auth::{CurrentUser, JWT_ASSERTION_HEADER, RoleGuard, User, roles};
use platform_common::db::{self, DbOptionExt};
use platform_common::http::{ApiJson, ApiPath};
use platform_common::money;
use platform_common::money::CurrencyCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::rules_client::Request;
use crate::saga::Decision;
use crate::{PaymentError, State, store};

const IDEMPOTENCY_KEY: &str = "idempotency-key";
const PAYEE_MAX_CHARS: usize = 200;
const REVIEWERS: RoleGuard = RoleGuard::AnyOf(&[roles::ADMIN, roles::OPS_USER]);
const STAFF: RoleGuard = RoleGuard::AnyOf(&[
    roles::ADMIN,
    roles::OPS_USER,
    roles::FINANCE,
    roles::AUDITOR,
]);

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount": 2500, "currency": "USD", "payee_wallet_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "description": "invoice 42"}))]
pub struct NewPayment {
    /// Minor units of `currency`, > 0: what leaves the payer's wallet in that currency.
    #[schema(minimum = 1)]
    pub amount: i64,
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    /// The payee's wallet; when its currency differs, forex converts.
    pub payee_wallet_id: Uuid,
    /// A name for the payee, for people (1 to 200 characters; default: the wallet id).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub payee: Option<String>,
    pub description: Option<String>,
}

/// One state the payment went through.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub status: String,
    /// Why, for `failed` and `rejected`.
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"id": "3f2b8c1a-9d4e-4f6a-8b7c-1d2e3f4a5b6c", "owner": "u-1", "payer_name": "user",
    "amount": 2500, "currency": "USD", "payer_wallet_id": "0b6f6c1e-3c55-4a55-9a39-0d7a3c1f7b10",
    "payee_wallet_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "payee": "acme", "payee_currency": "EUR",
    "payee_amount": 2290, "quote_id": null, "rate_e8": 91600000, "hold_ids": [], "description": "invoice 42",
    "status": "completed", "failure_reason": null, "reasons": [],
    "history": [{"status": "initiated", "reason": null, "at": "2026-01-02T03:04:05Z"}],
    "created_at": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:04:06Z"}))]
pub struct Payment {
    pub id: Uuid,
    /// The payer's subject.
    pub owner: String,
    pub payer_name: Option<String>,
    pub amount: i64,
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    pub payer_wallet_id: Option<Uuid>,
    pub payee_wallet_id: Option<Uuid>,
    pub payee: String,
    #[schema(value_type = Option<CurrencyCode>)]
    pub payee_currency: Option<String>,
    /// What the payee receives, in `payee_currency` (after conversion).
    pub payee_amount: Option<i64>,
    pub quote_id: Option<Uuid>,
    pub rate_e8: Option<i64>,
    /// The ledger's pending transfers holding the payer's funds.
    pub hold_ids: Vec<Uuid>,
    pub description: Option<String>,
    /// `initiated`, `pending_review`, `rejected`, `screened`, `converted`, `held`, `voiding`,
    /// `completed` or `failed`.
    pub status: String,
    /// For `failed` and `rejected`: `kyc_required`, `rule_denied`, `review_rejected`,
    /// `insufficient_funds`, `wallet_frozen`, `wallet_not_found`, `currency_mismatch`,
    /// `rate_unavailable`, `rate_stale`, `hold_expired`, `screening_incomplete`.
    pub failure_reason: Option<String>,
    /// The rule engine's reasons.
    pub reasons: Vec<String>,
    pub history: Vec<HistoryEntry>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A reviewer's decision on a payment in `pending_review`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"decision": "approve", "note": "customer called"}))]
pub struct Review {
    pub decision: ReviewDecision,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    Approve,
    Reject,
}

fn caller_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' ').map(|(_, t)| t.trim().to_string()))
        .or_else(|| {
            headers
                .get(JWT_ASSERTION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
}

/// How long a duplicate request waits for the first one's screening before screening the
/// payment itself (the first may have died).
const DUPLICATE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Initiate a payment from the caller's wallet in `currency` to the payee's wallet. The
/// `Idempotency-Key` is reserved with the payment's id before anything else, so retries and
/// concurrent duplicates make one payment, screened once. The answer shows the status after
/// screening; the rest of the saga runs in the workers (`GET /payments/{id}` follows it).
#[utoipa::path(post, path = "/payments", tag = "payments", operation_id = "create_payment",
    security(("bearer" = [])), request_body = NewPayment,
    params(("Idempotency-Key" = String, Header, description = "client-chosen key, 1 to 255 characters",
        min_length = 1, max_length = 255, example = "order-42")),
    responses(
        (status = 201, description = "recorded and screened: `screened` (the saga goes on), `pending_review` or `rejected`", body = Payment,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the answer to a retry (the payment as it is now)")),
            links(("GetPayment" = (operation_id = "get_payment", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "the Idempotency-Key header is missing, or the body is not JSON"),
        (status = 409, description = "the Idempotency-Key was used with another body"),
        (status = 422, description = "invalid amount or currency, no wallet of the payer in that currency, no such payee wallet, or paying oneself"),
        (status = 503, description = "rule-engine, the database or the identity provider is unavailable: retry with the same key")),
    extensions(("x-problem-codes" = json!({"400": ["missing_idempotency_key"], "409": ["idempotency_key_reused"],
        "422": ["validation_failed", "payer_wallet_not_found", "payee_wallet_not_found", "same_wallet"],
        "503": ["rule_engine_unavailable", "contention"]}))))]
pub async fn create(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    headers: HeaderMap,
    ApiJson(p): ApiJson<NewPayment>,
) -> Result<Response, PaymentError> {
    // validate
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or(PaymentError::MissingIdempotencyKey)?
        .to_string();
    money::positive_amount("amount", p.amount)?;
    money::currency("currency", &p.currency)?;
    if let Some(payee) = &p.payee
        && (payee.trim().is_empty() || payee.chars().count() > PAYEE_MAX_CHARS)
    {
        return Err(CommonError::validation("payee", "must be 1 to 200 characters").into());
    }
    let token =
        caller_token(&headers).ok_or_else(|| CommonError::Unauthorized("no token".into()))?;
    let hash = hex::encode(Sha256::digest(
        serde_json::to_vec(&json!(p)).expect("serialises"),
    ));

    // load: a key used before answers with its payment as it is now
    let client = s.ctx.db.get().await?;
    if let Some((used_hash, id)) = store::reserved(&client, &user.id, &key).await? {
        return duplicate(&s, &user, &token, &hash, &used_hash, id).await;
    }
    let payee = book::account(&client, p.payee_wallet_id)
        .await?
        .filter(|a| a.kind == AccountKind::Wallet)
        .ok_or(PaymentError::PayeeWalletNotFound(p.payee_wallet_id))?;
    let payer = book::wallet_account_of(&client, &user.id, &p.currency)
        .await?
        .ok_or_else(|| PaymentError::PayerWalletNotFound(p.currency.clone()))?;
    if payer.id == payee.id {
        return Err(PaymentError::SameWallet);
    }
    drop(client);

    // record: the key, the payment (`initiated`) and `payment.initiated`, together
    let now = Utc::now();
    let payment = Payment {
        id: Uuid::new_v4(),
        owner: user.id.clone(),
        payer_name: Some(user.username.clone()),
        amount: p.amount,
        currency: p.currency.clone(),
        payer_wallet_id: Some(payer.id),
        payee_wallet_id: Some(payee.id),
        payee: p.payee.clone().unwrap_or_else(|| payee.id.to_string()),
        payee_currency: Some(payee.currency.clone()),
        payee_amount: None,
        quote_id: None,
        rate_e8: None,
        hold_ids: Vec::new(),
        description: p.description.clone(),
        status: "initiated".into(),
        failure_reason: None,
        reasons: Vec::new(),
        history: Vec::new(),
        created_at: now,
        updated_at: now,
    };
    let saga = s.saga.clone();
    let earlier = db::serializable(&s.ctx.db, |tx| {
        let (payment, key, hash, saga) = (payment.clone(), key.clone(), hash.clone(), saga.clone());
        Box::pin(async move {
            if !store::reserve(tx, &payment.owner, &key, &hash, payment.id).await? {
                return Ok::<_, PaymentError>(store::reserved(tx, &payment.owner, &key).await?);
            }
            store::insert(tx, &payment).await?;
            saga.initiated(tx, &payment).await?;
            Ok(None)
        })
    })
    .await?;
    if let Some((used_hash, id)) = earlier {
        // A concurrent request with the same key won the reservation.
        return duplicate(&s, &user, &token, &hash, &used_hash, id).await;
    }
    tracing::info!(payment_id = %payment.id, "payment initiated");

    // domain: screen it (KYC, then the rule engine) and move it on
    let screened = screen(&s, &user, &token, &payment).await?;
    Ok((StatusCode::CREATED, Json(screened)).into_response())
}

/// The answer to a key used before: the same body gets the payment as it is now (screened by
/// this request if the first one never finished); another body is a 409.
async fn duplicate(
    s: &State,
    user: &User,
    token: &str,
    hash: &str,
    used_hash: &str,
    id: Option<Uuid>,
) -> Result<Response, PaymentError> {
    if used_hash != hash {
        return Err(PaymentError::IdempotencyKeyReused);
    }
    let id = id.ok_or_else(|| CommonError::Internal("idempotency key without a payment".into()))?;
    let deadline = tokio::time::Instant::now() + DUPLICATE_WAIT;
    let mut payment = load(s, id).await?;
    while payment.status == "initiated" && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        payment = load(s, id).await?;
    }
    if payment.status == "initiated" {
        payment = screen(s, user, token, &payment).await?;
    }
    let mut resp = (StatusCode::CREATED, Json(payment)).into_response();
    resp.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(resp)
}

async fn load(s: &State, id: Uuid) -> Result<Payment, PaymentError> {
    let client = s.ctx.db.get().await?;
    store::get(&client, id)
        .await
        .or_not_found(|| PaymentError::NotFound(id.to_string()))
}

/// KYC first (no rule-engine call, so no velocity count, for a payer who may not pay this
/// much), then the rule engine with the payment's id; the outcome is one transition.
async fn screen(
    s: &State,
    user: &User,
    token: &str,
    payment: &Payment,
) -> Result<Payment, PaymentError> {
    let kyc_needed =
        payment.amount > s.kyc_threshold && !crate::kyc::verified(s, &payment.owner).await?;
    let (decision, reasons) = if kyc_needed {
        (
            Verdict::Reject("kyc_required"),
            vec![format!(
                "payments above {} need a verified KYC",
                s.kyc_threshold
            )],
        )
    } else {
        let evaluation = s
            .rules
            .evaluate(
                token,
                &Request {
                    user: &user.id,
                    roles: &user.roles,
                    amount: payment.amount,
                    currency: &payment.currency,
                    payment_id: payment.id.to_string(),
                },
            )
            .await?;
        let verdict = match evaluation.decision.as_str() {
            "allow" => Verdict::Allow,
            "review" => Verdict::Review,
            _ => Verdict::Reject("rule_denied"),
        };
        (verdict, evaluation.reasons)
    };
    let (saga, id) = (s.saga.clone(), payment.id);
    let moved = db::serializable(&s.ctx.db, |tx| {
        let (saga, reasons) = (saga.clone(), reasons.clone());
        Box::pin(async move {
            let decision = match decision {
                Verdict::Allow => Decision::Allow(&reasons),
                Verdict::Review => Decision::Review(&reasons),
                Verdict::Reject(why) => Decision::Reject(why, &reasons),
            };
            Ok::<_, PaymentError>(saga.screened(tx, id, "initiated", decision).await?)
        })
    })
    .await?;
    let current = load(s, id).await?;
    if moved.is_some() {
        s.updates.publish(&current);
        tracing::info!(payment_id = %id, status = %current.status, "payment screened");
    }
    Ok(current)
}

#[derive(Debug, Clone, Copy)]
enum Verdict {
    Allow,
    Review,
    Reject(&'static str),
}

/// A payment and its history: its payer, or admin, ops_user, finance, auditor.
#[utoipa::path(get, path = "/payments/{id}", tag = "payments", operation_id = "get_payment",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the payment's id", example = "3f2b8c1a-9d4e-4f6a-8b7c-1d2e3f4a5b6c")),
    responses((status = 200, body = Payment),
        (status = 404, description = "no such payment, or another user's (staff see every payment)")),
    extensions(("x-problem-codes" = json!({"404": ["payment_not_found"]}))))]
pub async fn get_one(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Payment>, PaymentError> {
    let payment = load(&s, id).await?;
    // Others' payments look absent rather than forbidden, so ids cannot be probed.
    if payment.owner != user.id && STAFF.check(&user).is_err() {
        return Err(PaymentError::NotFound(id.to_string()));
    }
    Ok(Json(payment))
}

/// Decide a payment held for review (ops_user, admin; never one's own payment): `approve`
/// sends it on through the saga, `reject` ends it.
#[utoipa::path(post, path = "/payments/{id}/review", tag = "payments", operation_id = "review_payment",
    security(("bearer" = ["ops_user", "admin"])), request_body = Review,
    params(("id" = Uuid, Path, description = "the payment's id", example = "3f2b8c1a-9d4e-4f6a-8b7c-1d2e3f4a5b6c")),
    responses((status = 200, body = Payment),
        (status = 403, description = "not ops_user or admin, or the reviewer is the payer"),
        (status = 404, description = "no such payment"),
        (status = 409, description = "the payment is not pending review")),
    extensions(("x-problem-codes" = json!({"403": ["forbidden", "self_approval_forbidden"],
        "404": ["payment_not_found"], "409": ["not_pending_review"]}))))]
pub async fn review(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(r): ApiJson<Review>,
) -> Result<Json<Payment>, PaymentError> {
    REVIEWERS.check(&user)?;
    let payment = load(&s, id).await?;
    if payment.owner == user.id {
        return Err(PaymentError::SelfApproval);
    }
    let saga = s.saga.clone();
    let reasons = payment.reasons.clone();
    let moved = db::serializable(&s.ctx.db, |tx| {
        let (saga, reasons) = (saga.clone(), reasons.clone());
        Box::pin(async move {
            let decision = match r.decision {
                ReviewDecision::Approve => Decision::Allow(&reasons),
                ReviewDecision::Reject => Decision::Reject("review_rejected", &reasons),
            };
            Ok::<_, PaymentError>(saga.screened(tx, id, "pending_review", decision).await?)
        })
    })
    .await?;
    if moved.is_none() {
        return Err(PaymentError::NotPendingReview(payment.status));
    }
    let current = load(&s, id).await?;
    s.updates.publish(&current);
    tracing::info!(payment_id = %id, reviewer = %user.username, decision = ?r.decision, note = ?r.note, "payment reviewed");
    Ok(Json(current))
}
