use axum::http::StatusCode;
use platform_common::{ApiError, CommonError};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("account {0} not found")]
    AccountNotFound(String),
    #[error("transfer {0} not found")]
    TransferNotFound(String),
    #[error("{0} exists with different fields; ids are immutable")]
    ExistsWithDifferentFields(&'static str),
    #[error("accounts must differ")]
    SameAccount,
    #[error("account {account} holds {account_currency}, not {currency}")]
    CurrencyMismatch {
        account: String,
        account_currency: String,
        currency: String,
    },
    #[error("the debit would make account {0} negative (debits must not exceed credits)")]
    ExceedsCredits(String),
    #[error("the credit would exceed debits on account {0} (credits must not exceed debits)")]
    ExceedsDebits(String),
    #[error("the transfer would overflow account {0}")]
    Overflow(String),
    #[error("account {0} is frozen")]
    Frozen(String),
    #[error("pending transfer {0} not found")]
    PendingNotFound(String),
    #[error("pending transfer {0} expired: its amount was released")]
    PendingExpired(String),
    #[error("pending transfer {0} is {1} already")]
    PendingResolved(String, String),
}

impl ApiError for LedgerError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Common(c) => c.status(),
            Self::AccountNotFound(_) | Self::TransferNotFound(_) => StatusCode::NOT_FOUND,
            Self::ExistsWithDifferentFields(_)
            | Self::ExceedsCredits(_)
            | Self::ExceedsDebits(_)
            | Self::Overflow(_)
            | Self::Frozen(_)
            | Self::PendingExpired(_)
            | Self::PendingResolved(..) => StatusCode::CONFLICT,
            Self::PendingNotFound(_) => StatusCode::NOT_FOUND,
            Self::SameAccount | Self::CurrencyMismatch { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Common(c) => c.code(),
            Self::AccountNotFound(_) => "account_not_found",
            Self::TransferNotFound(_) => "transfer_not_found",
            Self::ExistsWithDifferentFields(_) => "exists_with_different_fields",
            Self::SameAccount => "accounts_must_be_different",
            Self::CurrencyMismatch { .. } => "currency_mismatch",
            Self::ExceedsCredits(_) => "exceeds_credits",
            Self::ExceedsDebits(_) => "exceeds_debits",
            Self::Overflow(_) => "overflows_balance",
            Self::Frozen(_) => "account_frozen",
            Self::PendingNotFound(_) => "pending_transfer_not_found",
            Self::PendingExpired(_) => "pending_transfer_expired",
            Self::PendingResolved(..) => "pending_transfer_resolved",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Common(c) => c.field(),
            Self::SameAccount => Some("credit_account_id"),
            Self::CurrencyMismatch { .. } => Some("currency"),
            _ => None,
        }
    }
}

platform_common::impl_api_error_response!(LedgerError);
platform_common::impl_db_error_conversions!(LedgerError);
