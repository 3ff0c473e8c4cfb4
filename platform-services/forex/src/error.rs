use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use platform_common::{ApiError, CommonError};

#[derive(Debug, thiserror::Error)]
pub enum ForexError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("no rate for {0}")]
    NoRate(String),
    /// The rate was loaded or set longer ago than the maximum rate age.
    #[error(
        "the {currency} rate was loaded at {loaded_at}, more than {max_age_seconds} s ago \
         (FOREX_MAX_RATE_AGE_SECONDS)"
    )]
    RateStale {
        currency: String,
        loaded_at: DateTime<Utc>,
        max_age_seconds: u64,
    },
    #[error("quote {0} not found")]
    QuoteNotFound(String),
    #[error("quote {0} expired at {1}")]
    QuoteExpired(String, DateTime<Utc>),
    #[error("quote {0} was converted already")]
    QuoteUsed(String),
}

impl ApiError for ForexError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Common(c) => c.status(),
            Self::NoRate(_) | Self::RateStale { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::QuoteNotFound(_) => StatusCode::NOT_FOUND,
            Self::QuoteExpired(..) => StatusCode::GONE,
            Self::QuoteUsed(_) => StatusCode::CONFLICT,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Common(c) => c.code(),
            Self::NoRate(_) => "rate_unavailable",
            Self::RateStale { .. } => "rate_stale",
            Self::QuoteNotFound(_) => "quote_not_found",
            Self::QuoteExpired(..) => "quote_expired",
            Self::QuoteUsed(_) => "quote_already_converted",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Common(c) => c.field(),
            _ => None,
        }
    }
}

platform_common::impl_api_error_response!(ForexError);
platform_common::impl_db_error_conversions!(ForexError);
