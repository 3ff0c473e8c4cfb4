use axum::http::StatusCode;
use platform_common::{ApiError, CommonError};

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("the Idempotency-Key header is required (1 to 255 visible characters)")]
    MissingIdempotencyKey,
    #[error("this Idempotency-Key was used with a different request body")]
    IdempotencyKeyReused,
    #[error("payment {0} not found")]
    NotFound(String),
    #[error("rule-engine is unavailable: {0}")]
    RuleEngineUnavailable(String),
}

impl ApiError for PaymentError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Common(c) => c.status(),
            Self::MissingIdempotencyKey => StatusCode::BAD_REQUEST,
            Self::IdempotencyKeyReused => StatusCode::CONFLICT,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::RuleEngineUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Common(c) => c.code(),
            Self::MissingIdempotencyKey => "missing_idempotency_key",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::NotFound(_) => "payment_not_found",
            Self::RuleEngineUnavailable(_) => "rule_engine_unavailable",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Common(c) => c.field(),
            Self::MissingIdempotencyKey | Self::IdempotencyKeyReused => Some("Idempotency-Key"),
            _ => None,
        }
    }
}

platform_common::impl_api_error_response!(PaymentError);
platform_common::impl_db_error_conversions!(PaymentError);
