use axum::Json;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use platform_common::CommonError;
use platform_common::auth::{CurrentUser, JWT_ASSERTION_HEADER, RoleGuard, User, roles};
use platform_common::db::DbOptionExt;
use platform_common::events::{self, EventEnvelope};
use platform_common::http::{ApiJson, ApiPath};
use platform_common::money;
use platform_common::money::CurrencyCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::rules_client::Request;
use crate::{PAYMENT_INITIATED, PaymentError, State, store};

const IDEMPOTENCY_KEY: &str = "idempotency-key";
const PAYEE_MAX_CHARS: usize = 200;
const STAFF: RoleGuard = RoleGuard::AnyOf(&[
    roles::ADMIN,
    roles::OPS_USER,
    roles::FINANCE,
    roles::AUDITOR,
]);

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount": 2500, "currency": "USD", "payee": "acme", "description": "invoice 42"}))]
pub struct NewPayment {
    /// Minor units, > 0.
    #[schema(minimum = 1)]
    pub amount: i64,
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    /// 1 to 200 characters, not only spaces.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub payee: String,
    pub description: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "3f2b8c1a-9d4e-4f6a-8b7c-1d2e3f4a5b6c", "owner": "user", "amount": 2500,
    "currency": "USD", "payee": "acme", "description": "invoice 42", "status": "initiated", "reasons": [],
    "created_at": "2026-01-02T03:04:05Z"}))]
pub struct Payment {
    pub id: Uuid,
    pub owner: String,
    pub amount: i64,
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    pub payee: String,
    pub description: Option<String>,
    /// `initiated` (allowed), `pending_review` or `rejected`.
    pub status: String,
    pub reasons: Vec<String>,
    pub created_at: DateTime<Utc>,
}

fn replay(status: i32, body: Value) -> Response {
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
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

/// Initiate a payment. A retry with the same `Idempotency-Key` and body returns the stored
/// response; the same key with another body is a 409.
#[utoipa::path(post, path = "/payments", tag = "payments", operation_id = "create_payment",
    security(("bearer" = [])), request_body = NewPayment,
    params(("Idempotency-Key" = String, Header, description = "client-chosen key, 1 to 255 characters",
        min_length = 1, max_length = 255, example = "order-42")),
    responses(
        (status = 201, description = "recorded: `initiated`, `pending_review` or `rejected`", body = Payment,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to a retry")),
            links(("GetPayment" = (operation_id = "get_payment", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "the Idempotency-Key header is missing, or the body is not JSON"),
        (status = 409, description = "the Idempotency-Key was used with another body"),
        (status = 503, description = "rule-engine, the database or the identity provider is unavailable")),
    extensions(("x-problem-codes" = json!({"400": ["missing_idempotency_key"], "409": ["idempotency_key_reused"],
        "503": ["rule_engine_unavailable"]}))))]
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
    if p.payee.trim().is_empty() || p.payee.chars().count() > PAYEE_MAX_CHARS {
        return Err(CommonError::validation("payee", "must be 1 to 200 characters").into());
    }
    let hash = hex::encode(Sha256::digest(
        serde_json::to_vec(&json!(p)).expect("serialises"),
    ));

    // load: a stored response for this key answers a retry
    if let Some(r) = stored(&s, &user, &key, &hash).await? {
        return Ok(r);
    }

    // domain: ask rule-engine (nothing is stored if it cannot answer, so a retry can succeed)
    let token =
        caller_token(&headers).ok_or_else(|| CommonError::Unauthorized("no token".into()))?;
    let id = Uuid::new_v4();
    let evaluation = s
        .rules
        .evaluate(
            &token,
            &Request {
                user: &user.username,
                roles: &user.roles,
                amount: p.amount,
                currency: &p.currency,
                payment_id: id.to_string(),
            },
        )
        .await?;
    let status = match evaluation.decision.as_str() {
        "allow" => "initiated",
        "review" => "pending_review",
        _ => "rejected",
    };

    // record: payment, idempotency key and event in one transaction
    let mut client = s.ctx.db.get().await?;
    let tx = client.transaction().await?;
    let payment = store::insert(&tx, id, &user.username, &p, status, &evaluation.reasons).await?;
    let body = serde_json::to_value(&payment).expect("serialises");
    let stored_key = store::StoredResponse {
        request_hash: hash.clone(),
        status: 201,
        body: body.clone(),
    };
    if !store::remember_response(&tx, &user.username, &key, &stored_key).await? {
        // A concurrent request with the same key won; answer as it did.
        tx.rollback().await?;
        return stored(&s, &user, &key, &hash)
            .await?
            .ok_or_else(|| CommonError::Internal("idempotency key vanished".into()).into());
    }
    if status == "initiated" {
        let event = EventEnvelope::new(PAYMENT_INITIATED, s.ctx.service.clone(), body.clone());
        events::record(&tx, &id.to_string(), &event).await?;
    }
    tx.commit().await?;
    s.updates.publish(&payment);
    tracing::info!(payment_id = %id, status, "payment recorded");
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn stored(
    s: &State,
    user: &User,
    key: &str,
    hash: &str,
) -> Result<Option<Response>, PaymentError> {
    let client = s.ctx.db.get().await?;
    match store::stored_response(&client, &user.username, key).await? {
        None => Ok(None),
        Some(r) if r.request_hash == hash => Ok(Some(replay(r.status, r.body))),
        Some(_) => Err(PaymentError::IdempotencyKeyReused),
    }
}

/// A payment: its owner, or admin, ops_user, finance, auditor.
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
    let client = s.ctx.db.get().await?;
    let payment = store::get(&client, id)
        .await
        .or_not_found(|| PaymentError::NotFound(id.to_string()))?;
    // Others' payments look absent rather than forbidden, so ids cannot be probed.
    if payment.owner != user.username && STAFF.check(&user).is_err() {
        return Err(PaymentError::NotFound(id.to_string()));
    }
    Ok(Json(payment))
}
