use axum::Json;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use platform_common::CommonError;
use platform_common::auth::{CurrentUser, RoleGuard, roles};
use platform_common::db::{self, DbOptionExt};
use platform_common::http::{ApiJson, ApiPath};
use platform_common::money;
use platform_common::money::CurrencyCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{RuleError, State, store};

/// The longest velocity window: one year.
const MAX_WINDOW_SECONDS: i64 = 365 * 24 * 3600;
const ADMIN: RoleGuard = RoleGuard::AnyOf(&[roles::ADMIN]);
const READERS: RoleGuard = RoleGuard::AnyOf(&[roles::ADMIN, roles::AUDITOR, roles::OPS_USER]);

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"role": "user", "currency": "USD", "max_amount": 1000000, "review_above": 500000}))]
pub struct Limit {
    pub role: String,
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    pub max_amount: i64,
    pub review_above: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"currency": "USD", "window_seconds": 3600, "max_count": 10, "max_total": 2000000}))]
pub struct Velocity {
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    pub window_seconds: i64,
    pub max_count: i64,
    pub max_total: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"limits": [{"role": "user", "currency": "USD", "max_amount": 1000000, "review_above": 500000}],
    "velocity": [{"currency": "USD", "window_seconds": 3600, "max_count": 10, "max_total": 2000000}]}))]
pub struct Rules {
    pub limits: Vec<Limit>,
    pub velocity: Vec<Velocity>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"max_amount": 1000000, "review_above": 500000}))]
pub struct LimitBody {
    /// Minor units, > 0: above it, deny.
    #[schema(minimum = 1)]
    pub max_amount: i64,
    /// Minor units, > 0 and at most `max_amount`: above it, review.
    #[schema(minimum = 1)]
    pub review_above: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"window_seconds": 3600, "max_count": 10, "max_total": 2000000}))]
pub struct VelocityBody {
    /// 1 s to one year.
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub window_seconds: i64,
    #[schema(minimum = 1)]
    pub max_count: i64,
    /// Minor units.
    #[schema(minimum = 1)]
    pub max_total: i64,
}

/// All rules (admin, auditor, ops_user).
#[utoipa::path(get, path = "/rules", tag = "rules", operation_id = "list_rules",
    security(("bearer" = ["admin", "auditor", "ops_user"])), responses((status = 200, body = Rules)))]
pub async fn list(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<Rules>, RuleError> {
    READERS.check(&user)?;
    let c = s.ctx.db.get().await?;
    let limits = store::limits(&c).await?;
    let velocity = store::velocity_rules(&c).await?;
    Ok(Json(Rules { limits, velocity }))
}

/// Set the limit of a role in a currency (admin).
#[utoipa::path(put, path = "/rules/limits/{role}/{currency}", tag = "rules", operation_id = "put_limit",
    security(("bearer" = ["admin"])), request_body = LimitBody, params(("role" = String, Path, description = "the role the limit applies to", example = "user"),
        ("currency" = CurrencyCode, Path)),
    responses((status = 200, body = Limit)),
    extensions(("x-problem-codes" = json!({"503": ["contention"]}))))]
pub async fn put_limit(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath((role, currency)): ApiPath<(String, String)>,
    ApiJson(b): ApiJson<LimitBody>,
) -> Result<Json<Limit>, RuleError> {
    ADMIN.check(&user)?;
    money::currency("currency", &currency)?;
    money::positive_amount("max_amount", b.max_amount)?;
    if let Some(r) = b.review_above {
        money::positive_amount("review_above", r)?;
        if r > b.max_amount {
            return Err(
                CommonError::validation("review_above", "must not exceed max_amount").into(),
            );
        }
    }
    let limit = Limit {
        role,
        currency,
        max_amount: b.max_amount,
        review_above: b.review_above,
    };
    db::serializable(&s.ctx.db, |tx| {
        let (limit, by) = (limit.clone(), user.id.clone());
        Box::pin(async move {
            store::upsert_limit(tx, &limit, &by).await?;
            Ok::<_, RuleError>(())
        })
    })
    .await?;
    Ok(Json(limit))
}

/// Remove a limit (admin).
#[utoipa::path(delete, path = "/rules/limits/{role}/{currency}", tag = "rules", operation_id = "delete_limit",
    security(("bearer" = ["admin"])), params(("role" = String, Path, description = "the role the limit applies to", example = "user"),
        ("currency" = CurrencyCode, Path)),
    responses((status = 204, description = "deleted"), (status = 404, description = "no such limit")),
    extensions(("x-problem-codes" = json!({"404": ["limit_not_found"], "503": ["contention"]}))))]
pub async fn delete_limit(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath((role, currency)): ApiPath<(String, String)>,
) -> Result<StatusCode, RuleError> {
    ADMIN.check(&user)?;
    db::serializable(&s.ctx.db, |tx| {
        let (role, currency) = (role.clone(), currency.clone());
        Box::pin(async move {
            store::delete_limit(tx, &role, &currency)
                .await
                .or_not_found(|| RuleError::LimitNotFound { role, currency })
        })
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set the velocity window of a currency (admin).
#[utoipa::path(put, path = "/rules/velocity/{currency}", tag = "rules", operation_id = "put_velocity",
    security(("bearer" = ["admin"])), request_body = VelocityBody,
    params(("currency" = CurrencyCode, Path)),
    responses((status = 200, body = Velocity)),
    extensions(("x-problem-codes" = json!({"503": ["contention"]}))))]
pub async fn put_velocity(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(currency): ApiPath<String>,
    ApiJson(b): ApiJson<VelocityBody>,
) -> Result<Json<Velocity>, RuleError> {
    ADMIN.check(&user)?;
    money::currency("currency", &currency)?;
    for (field, v) in [
        ("window_seconds", b.window_seconds),
        ("max_count", b.max_count),
        ("max_total", b.max_total),
    ] {
        if v <= 0 {
            return Err(CommonError::validation(field, "must be greater than zero").into());
        }
    }
    // The window becomes a Redis expiry in milliseconds from now: keep it far from overflow.
    if b.window_seconds > MAX_WINDOW_SECONDS {
        return Err(CommonError::validation("window_seconds", "must be at most one year").into());
    }
    let velocity = Velocity {
        currency,
        window_seconds: b.window_seconds,
        max_count: b.max_count,
        max_total: b.max_total,
    };
    db::serializable(&s.ctx.db, |tx| {
        let (velocity, by) = (velocity.clone(), user.id.clone());
        Box::pin(async move {
            store::upsert_velocity(tx, &velocity, &by).await?;
            Ok::<_, RuleError>(())
        })
    })
    .await?;
    Ok(Json(velocity))
}
