//! Quotes: a conversion priced at the mid rate less the spread, valid until it expires.

use axum::Json;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use platform_common::CommonError;
use platform_common::auth::CurrentUser;
use platform_common::db::{self, Transaction};
use platform_common::http::ApiJson;
use platform_common::money::{self, Currency, CurrencyCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{ForexError, Settings, State, rate, store};

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

/// Quote a conversion: the buy amount after the spread, valid until `expires_at`. A rate
/// loaded or set longer ago than `FOREX_MAX_RATE_AGE_SECONDS` is not quoted.
#[utoipa::path(post, path = "/quotes", tag = "forex", operation_id = "create_quote",
    security(("bearer" = [])), request_body = QuoteRequest,
    responses((status = 201, body = Quote,
            links(("ConvertQuote" = (operation_id = "convert", request_body = json!({"quote_id": "$response.body#/id"}))))),
        (status = 422, description = "bad currency or amount, no rate, or a rate older than the maximum rate age")),
    extensions(("x-problem-codes" = json!({"422": ["rate_unavailable", "rate_stale"]}))))]
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
    let settings = s.settings;
    let expires_in = chrono::Duration::from_std(settings.quote_ttl).expect("ttl fits");
    let amount = q.sell_amount;
    let quote = db::serializable(&s.ctx.db, |tx| {
        let user = user.clone();
        Box::pin(async move {
            let p = price(tx, sell, buy, amount, &settings).await?;
            let quote = p.quote(Uuid::new_v4(), Utc::now() + expires_in);
            let owner = store::Owner {
                id: &user.id,
                name: &user.username,
            };
            store::insert_quote(tx, owner, &quote, p.rate_e8, p.mid_rate_e8).await?;
            Ok::<_, ForexError>(quote)
        })
    })
    .await?;
    Ok((StatusCode::CREATED, Json(quote)))
}

/// A conversion priced at the current rates: what a quote records.
pub(crate) struct Priced {
    pub sell: Currency,
    pub buy: Currency,
    pub sell_amount: i64,
    pub buy_amount: i64,
    /// After the spread.
    pub rate_e8: i64,
    pub mid_rate_e8: i64,
    pub spread_bps: i64,
}

impl Priced {
    pub fn quote(&self, id: Uuid, expires_at: DateTime<Utc>) -> Quote {
        Quote {
            id,
            sell_currency: self.sell.code().to_string(),
            buy_currency: self.buy.code().to_string(),
            sell_amount: self.sell_amount,
            buy_amount: self.buy_amount,
            rate: rate::format(self.rate_e8),
            mid_rate: rate::format(self.mid_rate_e8),
            spread_bps: self.spread_bps,
            expires_at,
        }
    }
}

/// Prices `sell_amount` of `sell` in `buy` at the current rates less the spread, rounded
/// down. Refuses a missing rate (`rate_unavailable`), a rate loaded or set longer ago than
/// the maximum rate age (`rate_stale`), and an amount that converts to nothing or overflows.
pub(crate) async fn price(
    tx: &Transaction<'_>,
    sell: Currency,
    buy: Currency,
    sell_amount: i64,
    settings: &Settings,
) -> Result<Priced, ForexError> {
    let rates = store::rates_for(tx, [sell.code(), buy.code()]).await?;
    let now = Utc::now();
    let per_usd = |cur: Currency| {
        let r = rates
            .iter()
            .find(|r| r.currency == cur.code())
            .ok_or_else(|| ForexError::NoRate(cur.code().to_string()))?;
        let age = (now - r.loaded_at).to_std().unwrap_or_default();
        if age > settings.max_rate_age {
            return Err(ForexError::RateStale {
                currency: cur.code().to_string(),
                loaded_at: r.loaded_at,
                max_age_seconds: settings.max_rate_age.as_secs(),
            });
        }
        Ok(r.per_usd_e8)
    };
    let mid = rate::cross(per_usd(sell)?, per_usd(buy)?);
    let customer = rate::with_spread(mid, settings.spread_bps);
    let buy_amount = rate::convert(sell_amount, customer, sell.exponent(), buy.exponent())
        .ok_or_else(|| CommonError::validation("sell_amount", "too large to convert"))?;
    if buy_amount <= 0 {
        return Err(CommonError::validation(
            "sell_amount",
            "too small: converts to less than one minor unit",
        )
        .into());
    }
    Ok(Priced {
        sell,
        buy,
        sell_amount,
        buy_amount,
        rate_e8: customer,
        mid_rate_e8: mid,
        spread_bps: settings.spread_bps,
    })
}
