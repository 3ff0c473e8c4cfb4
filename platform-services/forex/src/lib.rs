//! forex: a rates table, quotes with a configurable spread and an expiry, and conversions of
//! unexpired quotes; `GET /rates/stream` sends the rates and their changes as Server-Sent Events. The worker's `forex.refresh_rates` job loads the bundled rates file
//! (or `FOREX_RATES_FILE`), and runs once when the worker starts.

mod conversions;
mod error;
mod quotes;
mod rate;
mod rate_stream;
mod rates;
mod store;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post, put};
use platform_common::config::{ConfigError, positive};
use platform_common::env;
use platform_common::jobs::TaskRegistry;
use platform_common::migrate::Migration;
use platform_common::service::{Context, ServiceSpec};
use serde_json::{Value, json};
use utoipa::OpenApi;

pub use conversions::ConversionRequest;
pub use error::ForexError;
pub use quotes::{Quote, QuoteRequest};
pub use rates::{Rate, RateBody, refresh_rates};

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "rates and quotes",
    sql: include_str!("../migrations/0001_rates_and_quotes.sql"),
}];

#[derive(Clone)]
struct State {
    ctx: Context,
    spread_bps: i64,
    quote_ttl: Duration,
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
        publishes: &[],
        worker_uses_db: true,
        openapi: Api::openapi,
        routes: |ctx| {
            let spread_bps: i64 = ctx
                .env
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
            let ttl: u64 = positive(ctx.env.as_ref(), env::FOREX_QUOTE_TTL_SECONDS, 30u64)?;
            let state = State {
                ctx: ctx.clone(),
                spread_bps,
                quote_ttl: Duration::from_secs(ttl),
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
                    rates::refresh_rates(&pool, path.as_deref())
                        .await
                        .map(|n| json!({"rates": n}))
                }
            });
            // Load rates once at start so quotes work on a fresh stack.
            let (pool, file) = (ctx.db.clone(), ctx.env.var(env::FOREX_RATES_FILE));
            tokio::spawn(async move {
                for attempt in 0..30u32 {
                    match rates::refresh_rates(&pool, file.as_deref()).await {
                        Ok(n) => return tracing::info!(rates = n, "rates loaded"),
                        Err(e) => {
                            tracing::warn!(error = %e, attempt, "loading rates failed; retrying")
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            });
        },
        consumers: |_| Vec::new(),
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
