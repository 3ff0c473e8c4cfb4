//! The payment saga's forex step: `payment.screened` in, `forex.converted` or
//! `forex.conversion_failed` out.
//!
//! A payment whose payer and payee hold different currencies is converted at the current rate
//! less the spread (the quote logic of `POST /quotes`). The conversion is recorded as a quote
//! owned by the payer, converted at once, whose id is derived from the payment id
//! ([`conversion_quote_id`]): a payment is converted at most once, whatever is delivered
//! again. The quote row and the outgoing event are written in the consumer's transaction, with
//! its inbox row. Same currency: nothing to do, nothing is sent.

use std::time::Duration;

use chrono::Utc;
use platform_common::CommonError;
use platform_common::config::ConfigError;
use platform_common::db::Transaction;
use platform_common::events::{self, EventEnvelope, EventHandler};
use platform_common::money::Currency;
use platform_common::service::Context;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::{ForexError, Settings, quotes, store};

/// The topic consumed: a payment passed screening (payment -> forex, ledger).
pub const PAYMENT_SCREENED: &str = "payment.screened";
/// Published when a payment's amount was converted into the payee's currency.
pub const FOREX_CONVERTED: &str = "forex.converted";
/// Published when a payment cannot be converted; `reason` is one of the `REASON_*` constants.
pub const FOREX_CONVERSION_FAILED: &str = "forex.conversion_failed";
/// The consumer name (inbox key and Kafka group id) the conversions are meant to run under.
pub const CONVERSIONS_CONSUMER: &str = "forex-conversions";

/// No rate for one of the currencies (or a currency forex does not know).
pub const REASON_RATE_UNAVAILABLE: &str = "rate_unavailable";
/// A rate is older than the maximum rate age.
pub const REASON_RATE_STALE: &str = "rate_stale";
/// The amount converts to less than one minor unit of the payee's currency, or overflows.
/// Not in the issue 15 contract's list: the lead decides whether payment accepts it.
pub const REASON_AMOUNT_NOT_CONVERTIBLE: &str = "amount_not_convertible";

/// Namespace of the UUID v5 quote ids derived from payment ids.
const PAYMENT_QUOTE_NAMESPACE: Uuid = Uuid::from_u128(0x4f1d_2c9a_7b3e_4e58_9a61_0c2d_8e7f_5a13);

/// The id of the quote that converts payment `payment_id`: UUID v5 of the payment id.
pub fn conversion_quote_id(payment_id: Uuid) -> Uuid {
    Uuid::new_v5(&PAYMENT_QUOTE_NAMESPACE, payment_id.as_bytes())
}

/// The fields of `payment.screened` this step reads.
#[derive(Debug, Deserialize)]
struct Screened {
    payment_id: Uuid,
    /// The payer's stable subject.
    payer: String,
    /// Minor units of `currency`.
    amount: i64,
    currency: String,
    payee_currency: String,
}

/// The [`EventHandler`] for [`PAYMENT_SCREENED`].
#[derive(Debug, Clone)]
pub struct PaymentConversions {
    spread_bps: i64,
    max_rate_age: Duration,
    /// `source` of the events sent (`svc-forex`).
    source: String,
}

impl PaymentConversions {
    /// Converts at the mid rate less `spread_bps` basis points, refusing rates loaded or set
    /// longer than `max_rate_age` ago; events name `svc-forex` as their source.
    pub fn new(spread_bps: i64, max_rate_age: Duration) -> Self {
        Self {
            spread_bps,
            max_rate_age,
            source: "svc-forex".into(),
        }
    }

    /// The spread and maximum rate age from the service's environment (`FOREX_SPREAD_BPS`,
    /// `FOREX_MAX_RATE_AGE_SECONDS`), as `POST /quotes` uses them; the source is the service's
    /// name.
    pub fn from_context(ctx: &Context) -> Result<Self, ConfigError> {
        let s = Settings::from_env(ctx.env.as_ref())?;
        Ok(Self {
            source: ctx.service.clone(),
            ..Self::new(s.spread_bps, s.max_rate_age)
        })
    }

    async fn convert(&self, tx: &Transaction<'_>, p: &Screened) -> Result<(), String> {
        let key = p.payment_id.to_string();
        let failed = |reason: &str, detail: String| {
            EventEnvelope::new(
                FOREX_CONVERSION_FAILED,
                &self.source,
                json!({"payment_id": key, "reason": reason, "detail": detail}),
            )
        };
        let (Some(sell), Some(buy)) = (
            Currency::parse(&p.currency),
            Currency::parse(&p.payee_currency),
        ) else {
            let detail = format!("unknown currency in {} -> {}", p.currency, p.payee_currency);
            let event = failed(REASON_RATE_UNAVAILABLE, detail);
            return record(tx, &key, &event).await;
        };
        let settings = Settings {
            spread_bps: self.spread_bps,
            max_rate_age: self.max_rate_age,
            quote_ttl: Duration::ZERO,
        };
        let priced = match quotes::price(tx, sell, buy, p.amount, &settings).await {
            Ok(priced) => priced,
            Err(e) => {
                let reason = match &e {
                    ForexError::NoRate(_) => REASON_RATE_UNAVAILABLE,
                    ForexError::RateStale { .. } => REASON_RATE_STALE,
                    ForexError::Common(CommonError::Validation { .. }) => {
                        REASON_AMOUNT_NOT_CONVERTIBLE
                    }
                    // The database: fail the event, so that it is tried again.
                    _ => return Err(e.to_string()),
                };
                return record(tx, &key, &failed(reason, e.to_string())).await;
            }
        };
        let quote = priced.quote(conversion_quote_id(p.payment_id), Utc::now());
        let fresh = store::insert_payment_conversion(
            tx,
            p.payment_id,
            &p.payer,
            &quote,
            priced.rate_e8,
            priced.mid_rate_e8,
        )
        .await
        .map_err(|e| e.to_string())?;
        if !fresh {
            // Converted already (this payment was announced twice): once is enough.
            tracing::warn!(payment_id = %p.payment_id, "payment converted already; not again");
            return Ok(());
        }
        let event = EventEnvelope::new(
            FOREX_CONVERTED,
            &self.source,
            json!({
                "payment_id": key,
                "quote_id": quote.id,
                "sell_currency": quote.sell_currency,
                "sell_amount": quote.sell_amount,
                "buy_currency": quote.buy_currency,
                "buy_amount": quote.buy_amount,
                "rate_e8": priced.rate_e8,
            }),
        );
        record(tx, &key, &event).await
    }
}

async fn record(tx: &Transaction<'_>, key: &str, event: &EventEnvelope) -> Result<(), String> {
    events::record(tx, key, event)
        .await
        .map_err(|e| e.to_string())
}

impl EventHandler for PaymentConversions {
    async fn handle<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        event: &'a EventEnvelope,
    ) -> Result<(), String> {
        let p: Screened = serde_json::from_value(event.payload.clone())
            .map_err(|e| format!("{PAYMENT_SCREENED} {}: bad payload: {e}", event.event_id))?;
        if p.currency == p.payee_currency {
            return Ok(());
        }
        self.convert(tx, &p).await
    }
}
