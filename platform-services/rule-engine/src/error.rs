use axum::http::StatusCode;
use platform_common::{ApiError, CommonError};

#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("no limit for role {role} in {currency}")]
    LimitNotFound { role: String, currency: String },
    #[error("payment {0} was evaluated before for another user, amount or currency")]
    PaymentIdReused(String),
}

impl ApiError for RuleError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Common(c) => c.status(),
            Self::LimitNotFound { .. } => StatusCode::NOT_FOUND,
            Self::PaymentIdReused(_) => StatusCode::CONFLICT,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Common(c) => c.code(),
            Self::LimitNotFound { .. } => "limit_not_found",
            Self::PaymentIdReused(_) => "payment_id_reused",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Common(c) => c.field(),
            _ => None,
        }
    }
}

platform_common::impl_api_error_response!(RuleError);
platform_common::impl_db_error_conversions!(RuleError);
