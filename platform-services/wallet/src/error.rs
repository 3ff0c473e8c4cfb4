use axum::http::StatusCode;
use platform_common::{ApiError, CommonError};

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("wallet {0} not found")]
    NotFound(String),
    #[error("a {0} wallet exists already for this user")]
    Exists(String),
    #[error("wallet {0} is frozen")]
    Frozen(String),
    #[error("insufficient funds: balance {balance}, debit {amount}")]
    InsufficientFunds { balance: i64, amount: i64 },
    #[error("the balance would overflow")]
    Overflow,
    #[error("reference {0} was used with a different entry")]
    ReferenceReused(String),
}

impl ApiError for WalletError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Common(c) => c.status(),
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::CONFLICT,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Common(c) => c.code(),
            Self::NotFound(_) => "wallet_not_found",
            Self::Exists(_) => "wallet_exists",
            Self::Frozen(_) => "wallet_frozen",
            Self::InsufficientFunds { .. } => "insufficient_funds",
            Self::Overflow => "overflows_balance",
            Self::ReferenceReused(_) => "reference_reused",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Common(c) => c.field(),
            Self::ReferenceReused(_) => Some("reference"),
            Self::InsufficientFunds { .. } | Self::Overflow => Some("amount"),
            _ => None,
        }
    }
}

platform_common::impl_api_error_response!(WalletError);
platform_common::impl_db_error_conversions!(WalletError);
