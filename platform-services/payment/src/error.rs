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
    #[error("no wallet {0} found: the payee's wallet id is wrong")]
    PayeeWalletNotFound(uuid::Uuid),
    #[error("you have no wallet in {0}: open one (POST /wallets) or pay in a currency you hold")]
    PayerWalletNotFound(String),
    #[error("the payer's and the payee's wallet are the same")]
    SameWallet,
    #[error("nobody may review their own payment")]
    SelfApproval,
    #[error("the payment is {0}, not pending_review")]
    NotPendingReview(String),
}

impl ApiError for PaymentError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Common(c) => c.status(),
            Self::MissingIdempotencyKey => StatusCode::BAD_REQUEST,
            Self::IdempotencyKeyReused => StatusCode::CONFLICT,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::RuleEngineUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::PayeeWalletNotFound(_) | Self::PayerWalletNotFound(_) | Self::SameWallet => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::SelfApproval => StatusCode::FORBIDDEN,
            Self::NotPendingReview(_) => StatusCode::CONFLICT,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Common(c) => c.code(),
            Self::MissingIdempotencyKey => "missing_idempotency_key",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::NotFound(_) => "payment_not_found",
            Self::RuleEngineUnavailable(_) => "rule_engine_unavailable",
            Self::PayeeWalletNotFound(_) => "payee_wallet_not_found",
            Self::PayerWalletNotFound(_) => "payer_wallet_not_found",
            Self::SameWallet => "same_wallet",
            Self::SelfApproval => "self_approval_forbidden",
            Self::NotPendingReview(_) => "not_pending_review",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Common(c) => c.field(),
            Self::MissingIdempotencyKey | Self::IdempotencyKeyReused => Some("Idempotency-Key"),
            Self::PayeeWalletNotFound(_) | Self::SameWallet => Some("payee_wallet_id"),
            Self::PayerWalletNotFound(_) => Some("currency"),
            _ => None,
        }
    }
}

platform_common::impl_api_error_response!(PaymentError);
platform_common::impl_db_error_conversions!(PaymentError);
