use axum::http::StatusCode;
use platform_common::{ApiError, CommonError};

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("wallet {0} not found")]
    NotFound(String),
    #[error("credit request {0} not found")]
    CreditRequestNotFound(String),
    #[error("a {0} wallet exists already for this user")]
    Exists(String),
    #[error("wallet {0} is frozen")]
    Frozen(String),
    /// The wallet's available amount (balance less held debits) is smaller than the debit.
    #[error("insufficient funds: the amount exceeds the wallet's available balance")]
    InsufficientFunds,
    #[error("the balance would overflow")]
    Overflow,
    #[error("reference {0} was used with a different amount")]
    ReferenceReused(String),
    #[error("credit request {id} is {status} already")]
    AlreadyDecided { id: String, status: String },
    /// The requester of a credit approving it: a manual credit needs a second person.
    #[error("a credit request must be approved by someone other than its requester")]
    SelfApproval,
    /// The owner of a wallet approving a credit to it.
    #[error("nobody approves a credit to their own wallet")]
    OwnWalletCredit,
    /// An ops_user or admin unfreezing their own wallet.
    #[error("nobody unfreezes their own wallet; ask another ops_user or admin")]
    SelfUnfreeze,
    /// Staff withdrawing from a wallet that is not theirs.
    #[error("only the wallet's owner withdraws from it")]
    NotOwner,
}

impl ApiError for WalletError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Common(c) => c.status(),
            Self::NotFound(_) | Self::CreditRequestNotFound(_) => StatusCode::NOT_FOUND,
            Self::SelfApproval | Self::OwnWalletCredit | Self::SelfUnfreeze | Self::NotOwner => {
                StatusCode::FORBIDDEN
            }
            Self::Exists(_)
            | Self::Frozen(_)
            | Self::InsufficientFunds
            | Self::Overflow
            | Self::ReferenceReused(_)
            | Self::AlreadyDecided { .. } => StatusCode::CONFLICT,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Common(c) => c.code(),
            Self::NotFound(_) => "wallet_not_found",
            Self::CreditRequestNotFound(_) => "credit_request_not_found",
            Self::Exists(_) => "wallet_exists",
            Self::Frozen(_) => "wallet_frozen",
            Self::InsufficientFunds => "insufficient_funds",
            Self::Overflow => "overflows_balance",
            Self::ReferenceReused(_) => "reference_reused",
            Self::AlreadyDecided { .. } => "credit_request_decided",
            Self::SelfApproval => "self_approval_forbidden",
            Self::OwnWalletCredit => "own_wallet_credit_forbidden",
            Self::SelfUnfreeze => "self_unfreeze_forbidden",
            Self::NotOwner => "not_wallet_owner",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Common(c) => c.field(),
            Self::ReferenceReused(_) => Some("reference"),
            Self::InsufficientFunds | Self::Overflow => Some("amount"),
            _ => None,
        }
    }
}

platform_common::impl_api_error_response!(WalletError);
platform_common::impl_db_error_conversions!(WalletError);

impl WalletError {
    /// A row another transaction inserted meanwhile (a unique violation under SERIALIZABLE):
    /// run the transaction again, which then finds that row.
    pub(crate) fn raced(what: &str) -> Self {
        CommonError::Contention(format!("{what} was inserted concurrently")).into()
    }
}
