//! Money is an integer count of minor units plus an ISO 4217 currency; never floating point.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use crate::problem::CommonError;

/// ISO 4217 codes this platform accepts, with their minor-unit exponents.
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("AUD", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CNY", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EGP", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("GHS", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("MAD", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("NGN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("QAR", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TND", 3),
    ("TRY", 2),
    ("TZS", 2),
    ("UGX", 0),
    ("USD", 2),
    ("VND", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("ZAR", 2),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    exponent: u8,
}

impl Currency {
    pub fn parse(code: &str) -> Option<Currency> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|&(code, exponent)| Currency { code, exponent })
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Digits after the decimal point (USD 2, JPY 0, KWD 3).
    pub fn exponent(&self) -> u8 {
        self.exponent
    }
}

/// The OpenAPI schema of every currency field and parameter: the codes [`currency`] accepts,
/// so a generated client refuses what the service would answer 422 to.
pub struct CurrencyCode;

impl utoipa::PartialSchema for CurrencyCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("An ISO 4217 currency code this platform supports."))
            .pattern(Some("^[A-Z]{3}$"))
            .enum_values(Some(CURRENCIES.iter().map(|(code, _)| *code)))
            .examples(["USD"])
            .into()
    }
}

impl ToSchema for CurrencyCode {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("CurrencyCode")
    }
}

/// An amount in minor units (cents for USD) of a currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Money {
    /// Minor units, e.g. 1050 for USD 10.50.
    pub amount: i64,
    /// ISO 4217 code, e.g. `USD`.
    pub currency: String,
}

/// A currency code from a request, or a 422 naming `field`.
pub fn currency(field: &str, code: &str) -> Result<Currency, CommonError> {
    Currency::parse(code).ok_or_else(|| {
        CommonError::validation(
            field,
            format!("{code:?} is not a supported ISO 4217 currency code"),
        )
    })
}

/// A strictly positive amount from a request, or a 422 naming `field`.
pub fn positive_amount(field: &str, amount: i64) -> Result<i64, CommonError> {
    if amount <= 0 {
        return Err(CommonError::validation(
            field,
            "must be a positive integer number of minor units",
        ));
    }
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies() {
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().exponent(), 3);
        assert!(Currency::parse("usd").is_none());
        assert!(Currency::parse("XXX").is_none());
        assert!(
            CURRENCIES.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, no duplicates"
        );
    }

    #[test]
    fn amounts() {
        assert!(positive_amount("amount", 1).is_ok());
        assert!(positive_amount("amount", 0).is_err());
        assert!(positive_amount("amount", -5).is_err());
    }
}
