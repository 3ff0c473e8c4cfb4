//! forex: a rates table, quotes with a configurable spread and an expiry, and conversions of
//! unexpired quotes; `GET /rates/stream` sends the rates and their changes as Server-Sent
//! Events. The worker's `forex.refresh_rates` job loads the bundled rates file (or
//! `FOREX_RATES_FILE`); the worker runs it at start and then every quarter of the maximum rate
//! age (at most hourly). Rates set by hand are kept by refreshes (see the `rates` module); a
//! rate loaded or set longer ago than `FOREX_MAX_RATE_AGE_SECONDS` is not quoted
//! (`rate_stale`).
//!
//! In the payment saga, [`PaymentConversions`] handles `payment.screened`: it converts a
//! cross-currency payment and announces `forex.converted` or `forex.conversion_failed`.

mod conversions;
mod error;
mod payment_conversions;
mod quotes;
mod rate;
mod rate_stream;
mod rates;
mod store;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post, put};
use platform_common::config::{ConfigError, EnvSource, positive};
use platform_common::env;
use platform_common::events::OUTBOX_MIGRATION;
use platform_common::jobs::TaskRegistry;
use platform_common::migrate::Migration;
use platform_common::service::{Context, ServiceSpec};
use serde_json::{Value, json};
use utoipa::OpenApi;

pub use conversions::ConversionRequest;
pub use error::ForexError;
pub use payment_conversions::{
    CONVERSIONS_CONSUMER, FOREX_CONVERSION_FAILED, FOREX_CONVERTED, PAYMENT_SCREENED,
    PaymentConversions, REASON_AMOUNT_NOT_CONVERTIBLE, REASON_RATE_STALE, REASON_RATE_UNAVAILABLE,
    conversion_quote_id,
};
pub use quotes::{Quote, QuoteRequest};
pub use rates::{ManualRates, Rate, RateBody, Refreshed, refresh_rates};

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "rates and quotes",
        sql: include_str!("../migrations/0001_rates_and_quotes.sql"),
    },
    Migration {
        version: 2,
        name: "quotes keyed by the owner's subject",
        sql: include_str!("../migrations/0002_quote_owner_subject.sql"),
    },
    OUTBOX_MIGRATION,
];

/// Default of `FOREX_MAX_RATE_AGE_SECONDS`: a day.
pub const DEFAULT_MAX_RATE_AGE: Duration = Duration::from_secs(86_400);

/// forex's settings from the environment.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// `FOREX_SPREAD_BPS` (default 50, 0 to 5000).
    pub spread_bps: i64,
    /// `FOREX_QUOTE_TTL_SECONDS` (default 30).
    pub quote_ttl: Duration,
    /// `FOREX_MAX_RATE_AGE_SECONDS` (default [`DEFAULT_MAX_RATE_AGE`]): a rate loaded or set
    /// longer ago is not quoted.
    pub max_rate_age: Duration,
}

impl Settings {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let spread_bps: i64 = env
            .var(env::FOREX_SPREAD_BPS)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|b| (0..=5_000).contains(b))
                    .ok_or(ConfigError::Invalid {
                        name: env::FOREX_SPREAD_BPS,
                        value: v,
                        reason: "expected basis points between 0 and 5000".into(),
                    })
            })
            .transpose()?
            .unwrap_or(50);
        let ttl: u64 = positive(env, env::FOREX_QUOTE_TTL_SECONDS, 30u64)?;
        let max_age: u64 = positive(
            env,
            env::FOREX_MAX_RATE_AGE_SECONDS,
            DEFAULT_MAX_RATE_AGE.as_secs(),
        )?;
        Ok(Self {
            spread_bps,
            quote_ttl: Duration::from_secs(ttl),
            max_rate_age: Duration::from_secs(max_age),
        })
    }

    /// How often the worker reloads the rates file: a quarter of the maximum rate age, between
    /// 1 s and an hour, so that a rate from a working file never goes stale.
    pub fn refresh_every(&self) -> Duration {
        (self.max_rate_age / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600))
    }
}

#[derive(Clone)]
struct State {
    ctx: Context,
    settings: Settings,
    rate_changes: rate_stream::RateChanges,
}

#[derive(OpenApi)]
#[openapi(
    paths(
        rates::list_rates,
        rates::put_rate,
        rate_stream::stream_rates,
        quotes::create_quote,
        conversions::convert
    ),
    components(schemas(Rate, RateBody, QuoteRequest, Quote, ConversionRequest))
)]
struct Api;

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "forex",
        migrations: MIGRATIONS,
        publishes: &[FOREX_CONVERTED, FOREX_CONVERSION_FAILED],
        worker_uses_db: true,
        openapi: Api::openapi,
        routes: |ctx| {
            let state = State {
                ctx: ctx.clone(),
                settings: Settings::from_env(ctx.env.as_ref())?,
                rate_changes: rate_stream::RateChanges::new(),
            };
            Ok(router(state))
        },
        tasks: |registry: &mut TaskRegistry, ctx| {
            let file = ctx.env.var(env::FOREX_RATES_FILE);
            let pool = ctx.db.clone();
            registry.register("forex.refresh_rates", move |args: Value| {
                let (pool, file) = (pool.clone(), file.clone());
                async move {
                    let path = args
                        .get("path")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .or(file);
                    let manual = match args.get("replace_manual").and_then(Value::as_bool) {
                        Some(true) => ManualRates::Replace,
                        _ => ManualRates::Keep,
                    };
                    rates::refresh_rates(&pool, path.as_deref(), manual)
                        .await
                        .map(|r| json!({"rates": r.loaded, "kept_manual": r.kept_manual}))
                }
            });
            // Load rates at start so quotes work on a fresh stack, then again and again so that
            // they do not go stale. A bad setting is reported by `serve`; here the default
            // stands in.
            let every = Settings::from_env(ctx.env.as_ref())
                .map(|s| s.refresh_every())
                .unwrap_or(Duration::from_secs(3600));
            let (pool, file) = (ctx.db.clone(), ctx.env.var(env::FOREX_RATES_FILE));
            tokio::spawn(async move {
                let mut loaded = false;
                for attempt in 0..30u32 {
                    match rates::refresh_rates(&pool, file.as_deref(), ManualRates::Keep).await {
                        Ok(r) => {
                            tracing::info!(rates = r.loaded, kept_manual = ?r.kept_manual, "rates loaded");
                            loaded = true;
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, attempt, "loading rates failed; retrying")
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                if !loaded {
                    tracing::error!("loading rates failed 30 times; trying again periodically");
                }
                loop {
                    tokio::time::sleep(every).await;
                    match rates::refresh_rates(&pool, file.as_deref(), ManualRates::Keep).await {
                        Ok(r) => tracing::debug!(rates = r.loaded, "rates reloaded"),
                        Err(e) => tracing::warn!(error = %e, "reloading rates failed"),
                    }
                }
            });
        },
        consumers: |ctx| match PaymentConversions::from_context(ctx) {
            Ok(handler) => vec![platform_common::events::Subscription::new(
                CONVERSIONS_CONSUMER,
                &[PAYMENT_SCREENED],
                handler,
            )],
            Err(e) => {
                tracing::error!(error = %e, "forex settings: payment conversions do not run");
                Vec::new()
            }
        },
    }
}

fn router(state: State) -> Router {
    Router::new()
        .route("/rates", get(rates::list_rates))
        .route("/rates/stream", get(rate_stream::stream_rates))
        .route("/rates/{currency}", put(rates::put_rate))
        .route("/quotes", post(quotes::create_quote))
        .route("/conversions", post(conversions::convert))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_to_a_day_of_rate_age() {
        let s = Settings::from_env(&[("UNRELATED", "1")]).unwrap();
        assert_eq!(
            (s.spread_bps, s.quote_ttl, s.max_rate_age),
            (50, Duration::from_secs(30), DEFAULT_MAX_RATE_AGE)
        );
        // Reloaded every quarter of the age, at most hourly.
        assert_eq!(s.refresh_every(), Duration::from_secs(3600));
        let s = Settings::from_env(&[(env::FOREX_MAX_RATE_AGE_SECONDS, "600")]).unwrap();
        assert_eq!(
            (s.max_rate_age, s.refresh_every()),
            (Duration::from_secs(600), Duration::from_secs(150))
        );
        for bad in ["0", "-5", "soon"] {
            assert!(
                Settings::from_env(&[(env::FOREX_MAX_RATE_AGE_SECONDS, bad)]).is_err(),
                "{bad}"
            );
        }
    }
}
