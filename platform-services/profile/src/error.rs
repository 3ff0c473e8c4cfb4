use axum::http::StatusCode;
use platform_common::{ApiError, CommonError};

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("profile {0} not found")]
    NotFound(String),
    #[error("KYC cannot move from {from} to {to} this way")]
    InvalidTransition {
        from: &'static str,
        to: &'static str,
    },
    #[error("nobody may decide their own KYC; another reviewer must")]
    SelfApproval,
}

impl ApiError for ProfileError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Common(c) => c.status(),
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::InvalidTransition { .. } => StatusCode::CONFLICT,
            Self::SelfApproval => StatusCode::FORBIDDEN,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Common(c) => c.code(),
            Self::NotFound(_) => "profile_not_found",
            Self::InvalidTransition { .. } => "invalid_kyc_transition",
            Self::SelfApproval => "self_approval_forbidden",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Common(c) => c.field(),
            _ => None,
        }
    }
}

platform_common::impl_api_error_response!(ProfileError);
platform_common::impl_db_error_conversions!(ProfileError);
