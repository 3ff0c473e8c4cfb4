//! Quotes: a conversion priced at the mid rate less the spread, valid until it expires.

use axum::Json;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use platform_common::CommonError;
use platform_common::auth::CurrentUser;
use platform_common::http::ApiJson;
use platform_common::money;
use platform_common::money::CurrencyCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{ForexError, State, rate, store};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"sell_currency": "USD", "buy_currency": "EUR", "sell_amount": 10000}))]
pub struct QuoteRequest {
    #[schema(value_type = CurrencyCode)]
    pub sell_currency: String,
    /// Not `sell_currency`.
    #[schema(value_type = CurrencyCode)]
    pub buy_currency: String,
    /// Minor units of `sell_currency`, > 0.
    #[schema(minimum = 1)]
    pub sell_amount: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "6e5d4c3b-2a19-4f08-9e7d-6c5b4a392817", "sell_currency": "USD", "buy_currency": "EUR",
    "sell_amount": 10000, "buy_amount": 9188, "rate": "0.91878300", "mid_rate": "0.92340000", "spread_bps": 50,
    "expires_at": "2026-01-02T03:05:05Z"}))]
pub struct Quote {
    pub id: Uuid,
    #[schema(value_type = CurrencyCode)]
    pub sell_currency: String,
    #[schema(value_type = CurrencyCode)]
    pub buy_currency: String,
    pub sell_amount: i64,
    pub buy_amount: i64,
    /// Units of buy currency per unit of sell currency, after the spread.
    pub rate: String,
    pub mid_rate: String,
    pub spread_bps: i64,
    pub expires_at: DateTime<Utc>,
}

/// Quote a conversion: the buy amount after the spread, valid until `expires_at`.
#[utoipa::path(post, path = "/quotes", tag = "forex", operation_id = "create_quote",
    security(("bearer" = [])), request_body = QuoteRequest,
    responses((status = 201, body = Quote,
            links(("ConvertQuote" = (operation_id = "convert", request_body = json!({"quote_id": "$response.body#/id"}))))),
        (status = 422, description = "bad currency or amount, or no rate")),
    extensions(("x-problem-codes" = json!({"422": ["rate_unavailable"]}))))]
pub(crate) async fn create_quote(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiJson(q): ApiJson<QuoteRequest>,
) -> Result<(StatusCode, Json<Quote>), ForexError> {
    let sell = money::currency("sell_currency", &q.sell_currency)?;
    let buy = money::currency("buy_currency", &q.buy_currency)?;
    money::positive_amount("sell_amount", q.sell_amount)?;
    if sell == buy {
        return Err(
            CommonError::validation("buy_currency", "must differ from sell_currency").into(),
        );
    }
    let c = s.ctx.db.get().await?;
    let rates = store::per_usd_e8(&c, [&q.sell_currency, &q.buy_currency]).await?;
    let per_usd = |cur: &str| {
        rates
            .iter()
            .find(|(c, _)| c == cur)
            .map(|(_, e8)| *e8)
            .ok_or_else(|| ForexError::NoRate(cur.to_string()))
    };
    let mid = rate::cross(per_usd(sell.code())?, per_usd(buy.code())?);
    let customer = rate::with_spread(mid, s.spread_bps);
    let buy_amount = rate::convert(q.sell_amount, customer, sell.exponent(), buy.exponent())
        .ok_or_else(|| CommonError::validation("sell_amount", "too large to convert"))?;
    if buy_amount <= 0 {
        return Err(CommonError::validation(
            "sell_amount",
            "too small: converts to less than one minor unit",
        )
        .into());
    }
    let quote = Quote {
        id: Uuid::new_v4(),
        sell_currency: q.sell_currency,
        buy_currency: q.buy_currency,
        sell_amount: q.sell_amount,
        buy_amount,
        rate: rate::format(customer),
        mid_rate: rate::format(mid),
        spread_bps: s.spread_bps,
        expires_at: Utc::now() + chrono::Duration::from_std(s.quote_ttl).expect("ttl fits"),
    };
    store::insert_quote(&c, &user.username, &quote, customer, mid).await?;
    Ok((StatusCode::CREATED, Json(quote)))
}
