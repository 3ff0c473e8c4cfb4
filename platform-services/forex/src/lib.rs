//! forex: a rates table, quotes with a configurable spread and an expiry, and conversions of
//! unexpired quotes. The worker's `forex.refresh_rates` job loads the bundled rates file
//! (or `FOREX_RATES_FILE`), and runs once when the worker starts.

mod rate;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use platform_common::auth::{CurrentUser, RoleGuard, roles};
use platform_common::config::{ConfigError, positive};
use platform_common::db::Pool;
use platform_common::http::{ApiJson, ApiPath};
use platform_common::jobs::{TaskError, TaskRegistry};
use platform_common::migrate::Migration;
use platform_common::money::{self, Currency};
use platform_common::service::{Context, ServiceSpec};
use platform_common::{ApiError, CommonError, env};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

const BUNDLED_RATES: &str = include_str!("../rates.json");

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "rates and quotes",
    sql: "
CREATE TABLE IF NOT EXISTS rates (
    currency TEXT PRIMARY KEY,
    per_usd_e8 BIGINT NOT NULL CHECK (per_usd_e8 > 0),
    source TEXT NOT NULL,
    as_of TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS quotes (
    id UUID PRIMARY KEY,
    owner TEXT NOT NULL,
    sell_currency TEXT NOT NULL,
    buy_currency TEXT NOT NULL,
    sell_amount BIGINT NOT NULL CHECK (sell_amount > 0),
    buy_amount BIGINT NOT NULL CHECK (buy_amount > 0),
    rate_e8 BIGINT NOT NULL,
    mid_rate_e8 BIGINT NOT NULL,
    spread_bps BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    converted_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
",
}];

const ADMIN: RoleGuard = RoleGuard::AnyOf(&[roles::ADMIN]);

#[derive(Debug, thiserror::Error)]
pub enum ForexError {
    #[error(transparent)]
    Common(#[from] CommonError),
    #[error("no rate for {0}")]
    NoRate(String),
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
            Self::NoRate(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::QuoteNotFound(_) => StatusCode::NOT_FOUND,
            Self::QuoteExpired(..) => StatusCode::GONE,
            Self::QuoteUsed(_) => StatusCode::CONFLICT,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Common(c) => c.code(),
            Self::NoRate(_) => "rate_unavailable",
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

#[derive(Clone)]
struct State {
    ctx: Context,
    spread_bps: i64,
    quote_ttl: Duration,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Rate {
    pub currency: String,
    /// Units of the currency per 1 USD, 8 decimals, as a string: never a float.
    pub per_usd: String,
    pub source: String,
    pub as_of: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateBody {
    pub per_usd: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    pub sell_currency: String,
    pub buy_currency: String,
    /// Minor units of `sell_currency`, > 0.
    pub sell_amount: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Quote {
    pub id: Uuid,
    pub sell_currency: String,
    pub buy_currency: String,
    pub sell_amount: i64,
    pub buy_amount: i64,
    /// Units of buy currency per unit of sell currency, after the spread.
    pub rate: String,
    pub mid_rate: String,
    pub spread_bps: i64,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversionRequest {
    pub quote_id: Uuid,
}

#[derive(OpenApi)]
#[openapi(
    paths(list_rates, put_rate, create_quote, convert),
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
            };
            Ok(Router::new()
                .route("/rates", get(list_rates))
                .route("/rates/{currency}", put(put_rate))
                .route("/quotes", post(create_quote))
                .route("/conversions", post(convert))
                .with_state(state))
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
                    refresh_rates(&pool, path.as_deref())
                        .await
                        .map(|n| json!({"rates": n}))
                }
            });
            // Load rates once at start so quotes work on a fresh stack.
            let (pool, file) = (ctx.db.clone(), ctx.env.var(env::FOREX_RATES_FILE));
            tokio::spawn(async move {
                for attempt in 0..30u32 {
                    match refresh_rates(&pool, file.as_deref()).await {
                        Ok(n) => return tracing::info!(rates = n, "rates loaded"),
                        Err(e) => {
                            tracing::warn!(error = %e, attempt, "loading rates failed; retrying")
                        }
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            });
        },
    }
}

#[derive(Deserialize)]
struct RatesFile {
    as_of: DateTime<Utc>,
    base: String,
    rates: BTreeMap<String, String>,
}

/// Load a rates file into the table; returns how many rates were written.
pub async fn refresh_rates(pool: &Pool, path: Option<&str>) -> Result<usize, TaskError> {
    let (raw, source) = match path {
        Some(p) => (
            std::fs::read_to_string(p)
                .map_err(|e| TaskError::fatal(format!("reading {p}: {e}")))?,
            p.to_string(),
        ),
        None => (BUNDLED_RATES.to_string(), "bundled".to_string()),
    };
    let file: RatesFile = serde_json::from_str(&raw)
        .map_err(|e| TaskError::fatal(format!("rates file {source}: {e}")))?;
    if file.base != "USD" {
        return Err(TaskError::fatal(format!(
            "rates file {source}: base must be USD, not {}",
            file.base
        )));
    }
    let mut parsed = Vec::new();
    for (cur, v) in &file.rates {
        Currency::parse(cur).ok_or_else(|| {
            TaskError::fatal(format!("rates file {source}: unknown currency {cur}"))
        })?;
        let e8 = rate::parse(v).ok_or_else(|| {
            TaskError::fatal(format!("rates file {source}: bad rate {v:?} for {cur}"))
        })?;
        parsed.push((cur.clone(), e8));
    }
    let mut c = pool
        .get()
        .await
        .map_err(|e| TaskError::retry(e.to_string()))?;
    let tx = c
        .transaction()
        .await
        .map_err(|e| TaskError::retry(e.to_string()))?;
    for (cur, e8) in &parsed {
        tx.execute(
            "INSERT INTO rates (currency, per_usd_e8, source, as_of) VALUES ($1, $2, $3, $4)
             ON CONFLICT (currency) DO UPDATE SET per_usd_e8 = excluded.per_usd_e8, source = excluded.source,
               as_of = excluded.as_of, updated_at = now()",
            &[cur, e8, &source, &file.as_of],
        )
        .await
        .map_err(|e| TaskError::retry(e.to_string()))?;
    }
    tx.commit()
        .await
        .map_err(|e| TaskError::retry(e.to_string()))?;
    Ok(parsed.len())
}

/// Current rates (any authenticated caller).
#[utoipa::path(get, path = "/rates", tag = "forex", security(("bearer" = [])), responses((status = 200, body = [Rate])))]
async fn list_rates(
    AxState(s): AxState<State>,
    CurrentUser(_): CurrentUser,
) -> Result<Json<Vec<Rate>>, ForexError> {
    let c = s.ctx.db.get().await?;
    let rows = c
        .query(
            "SELECT currency, per_usd_e8, source, as_of FROM rates ORDER BY currency",
            &[],
        )
        .await?;
    Ok(Json(
        rows.iter()
            .map(|r| Rate {
                currency: r.get(0),
                per_usd: rate::format(r.get(1)),
                source: r.get(2),
                as_of: r.get(3),
            })
            .collect(),
    ))
}

/// Set one rate by hand (admin).
#[utoipa::path(put, path = "/rates/{currency}", tag = "forex", security(("bearer" = [])), request_body = RateBody,
    responses((status = 200, body = Rate)))]
async fn put_rate(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiPath(currency): ApiPath<String>,
    ApiJson(b): ApiJson<RateBody>,
) -> Result<Json<Rate>, ForexError> {
    ADMIN.check(&user)?;
    money::currency("currency", &currency)?;
    let e8 = rate::parse(&b.per_usd).ok_or_else(|| {
        CommonError::validation(
            "per_usd",
            "a positive decimal with at most 8 decimals, as a string",
        )
    })?;
    let source = format!("manual:{}", user.username);
    let now = Utc::now();
    let c = s.ctx.db.get().await?;
    c.execute(
        "INSERT INTO rates (currency, per_usd_e8, source, as_of) VALUES ($1, $2, $3, $4)
         ON CONFLICT (currency) DO UPDATE SET per_usd_e8 = excluded.per_usd_e8, source = excluded.source,
           as_of = excluded.as_of, updated_at = now()",
        &[&currency, &e8, &source, &now],
    )
    .await?;
    Ok(Json(Rate {
        currency,
        per_usd: rate::format(e8),
        source,
        as_of: now,
    }))
}

/// Quote a conversion: the buy amount after the spread, valid until `expires_at`.
#[utoipa::path(post, path = "/quotes", tag = "forex", security(("bearer" = [])), request_body = QuoteRequest,
    responses((status = 201, body = Quote), (status = 422, description = "bad currency or amount, or no rate")))]
async fn create_quote(
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
    let rows = c
        .query(
            "SELECT currency, per_usd_e8 FROM rates WHERE currency = $1 OR currency = $2",
            &[&q.sell_currency, &q.buy_currency],
        )
        .await?;
    let per_usd = |cur: &str| {
        rows.iter()
            .find(|r| r.get::<_, String>(0) == cur)
            .map(|r| r.get::<_, i64>(1))
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
    let id = Uuid::new_v4();
    let expires_at = Utc::now() + chrono::Duration::from_std(s.quote_ttl).expect("ttl fits");
    c.execute(
        "INSERT INTO quotes (id, owner, sell_currency, buy_currency, sell_amount, buy_amount, rate_e8, mid_rate_e8, spread_bps, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[&id, &user.username, &q.sell_currency, &q.buy_currency, &q.sell_amount, &buy_amount, &customer, &mid, &s.spread_bps, &expires_at],
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Quote {
            id,
            sell_currency: q.sell_currency,
            buy_currency: q.buy_currency,
            sell_amount: q.sell_amount,
            buy_amount,
            rate: rate::format(customer),
            mid_rate: rate::format(mid),
            spread_bps: s.spread_bps,
            expires_at,
        }),
    ))
}

/// Convert at a quote: once, before it expires, by the caller who asked for it.
#[utoipa::path(post, path = "/conversions", tag = "forex", security(("bearer" = [])), request_body = ConversionRequest,
    responses((status = 201, body = Quote), (status = 410, description = "quote expired"), (status = 409, description = "converted already")))]
async fn convert(
    AxState(s): AxState<State>,
    CurrentUser(user): CurrentUser,
    ApiJson(r): ApiJson<ConversionRequest>,
) -> Result<(StatusCode, Json<Quote>), ForexError> {
    let mut c = s.ctx.db.get().await?;
    let tx = c.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT owner, sell_currency, buy_currency, sell_amount, buy_amount, rate_e8, mid_rate_e8, spread_bps, expires_at, converted_at
             FROM quotes WHERE id = $1 FOR UPDATE",
            &[&r.quote_id],
        )
        .await?
        .filter(|row| row.get::<_, String>(0) == user.username)
        .ok_or_else(|| ForexError::QuoteNotFound(r.quote_id.to_string()))?;
    let expires_at: DateTime<Utc> = row.get(8);
    if row.get::<_, Option<DateTime<Utc>>>(9).is_some() {
        return Err(ForexError::QuoteUsed(r.quote_id.to_string()));
    }
    if Utc::now() >= expires_at {
        return Err(ForexError::QuoteExpired(r.quote_id.to_string(), expires_at));
    }
    tx.execute(
        "UPDATE quotes SET converted_at = now() WHERE id = $1",
        &[&r.quote_id],
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(Quote {
            id: r.quote_id,
            sell_currency: row.get(1),
            buy_currency: row.get(2),
            sell_amount: row.get(3),
            buy_amount: row.get(4),
            rate: rate::format(row.get(5)),
            mid_rate: rate::format(row.get(6)),
            spread_bps: row.get(7),
            expires_at,
        }),
    ))
}
