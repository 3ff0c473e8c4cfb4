//! Rates: the table of units per 1 USD, read by anyone, set by admin or from a rates file.
//!
//! A rate set by hand (`PUT /rates/{currency}`, source `manual:<username>`) wins over the
//! rates file: refreshes keep it until another `PUT` replaces it or a refresh run with
//! `replace_manual` resets it to the file's rate. Every rate is quoted only while it is younger
//! than the maximum rate age, counted from `loaded_at` (when forex last loaded or set it), not
//! from the file's `as_of`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State as AxState;
use chrono::{DateTime, Utc};
use platform_common::CommonError;
use platform_common::auth::{CurrentUser, RoleGuard, roles};
use platform_common::db::{self, Pool};
use platform_common::http::{ApiJson, ApiPath};
use platform_common::jobs::TaskError;
use platform_common::money::CurrencyCode;
use platform_common::money::{self, Currency};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ForexError, State, rate, store};

const BUNDLED_RATES: &str = include_str!("../rates.json");

const ADMIN: RoleGuard = RoleGuard::AnyOf(&[roles::ADMIN]);

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"currency": "EUR", "per_usd": "0.92340000", "source": "manual:admin",
    "as_of": "2026-01-02T03:04:05Z", "loaded_at": "2026-01-02T03:04:05Z"}))]
pub struct Rate {
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    /// Units of the currency per 1 USD, 8 decimals, as a string: never a float.
    pub per_usd: String,
    /// `manual:<username>` for a rate set by hand (kept by refreshes), else the rates file.
    pub source: String,
    /// When the rate's source published it (the rates file's `as_of`; the time of a manual
    /// `PUT`).
    pub as_of: DateTime<Utc>,
    /// When forex last loaded or set the rate: a quote refuses it (`rate_stale`) once it is
    /// older than the maximum rate age (`FOREX_MAX_RATE_AGE_SECONDS`).
    pub loaded_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"per_usd": "0.9234"}))]
pub struct RateBody {
    /// A positive decimal with at most 8 decimals, as a string.
    #[schema(pattern = "^\\s*[0-9]+(\\.[0-9]{0,8})?\\s*$", example = "0.9234")]
    pub per_usd: String,
}

#[derive(Deserialize)]
struct RatesFile {
    as_of: DateTime<Utc>,
    base: String,
    rates: BTreeMap<String, String>,
}

/// What a refresh does to rates set by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManualRates {
    /// Keep them (the default: a manual rate wins over the file).
    Keep,
    /// Replace them with the file's rates: the explicit reset.
    Replace,
}

/// What a refresh wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshed {
    /// Rates loaded from the file.
    pub loaded: usize,
    /// Currencies whose manual rate was kept instead.
    pub kept_manual: Vec<String>,
}

/// Load a rates file (the bundled one when `path` is `None`) into the table.
pub async fn refresh_rates(
    pool: &Pool,
    path: Option<&str>,
    manual: ManualRates,
) -> Result<Refreshed, TaskError> {
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
    let (as_of, replace) = (file.as_of, manual == ManualRates::Replace);
    let kept_manual = db::serializable(pool, |tx| {
        let (parsed, source) = (parsed.clone(), source.clone());
        Box::pin(async move {
            let mut kept = Vec::new();
            for (cur, e8) in &parsed {
                if !store::load_rate(tx, cur, *e8, &source, as_of, replace).await? {
                    kept.push(cur.clone());
                }
            }
            Ok::<_, ForexError>(kept)
        })
    })
    .await
    .map_err(|e| TaskError::retry(e.to_string()))?;
    Ok(Refreshed {
        loaded: parsed.len() - kept_manual.len(),
        kept_manual,
    })
}

/// Current rates (any authenticated caller).
#[utoipa::path(get, path = "/rates", tag = "forex", operation_id = "list_rates",
    security(("bearer" = [])), responses((status = 200, body = [Rate])))]
pub(crate) async fn list_rates(
    AxState(s): AxState<State>,
    CurrentUser(_): CurrentUser,
) -> Result<Json<Vec<Rate>>, ForexError> {
    let c = s.ctx.db.get().await?;
    Ok(Json(store::rates(&c).await?))
}

/// Set one rate by hand (admin). It wins over the rates file until another `PUT` replaces it
/// or a `forex.refresh_rates` job with `{"replace_manual": true}` resets it.
#[utoipa::path(put, path = "/rates/{currency}", tag = "forex", operation_id = "put_rate",
    security(("bearer" = ["admin"])), request_body = RateBody,
    params(("currency" = CurrencyCode, Path)),
    responses((status = 200, body = Rate)))]
pub(crate) async fn put_rate(
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
    let source = format!("{}{}", store::MANUAL_PREFIX, user.username);
    let rate = db::serializable(&s.ctx.db, |tx| {
        let (currency, source) = (currency.clone(), source.clone());
        Box::pin(async move {
            Ok::<_, ForexError>(store::set_manual_rate(tx, &currency, e8, &source).await?)
        })
    })
    .await?;
    s.rate_changes.publish(&rate);
    Ok(Json(rate))
}
