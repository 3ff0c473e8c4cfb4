//! Rates: the table of units per 1 USD, read by anyone, set by admin or from a rates file.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State as AxState;
use chrono::{DateTime, Utc};
use platform_common::CommonError;
use platform_common::auth::{CurrentUser, RoleGuard, roles};
use platform_common::db::Pool;
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
    "as_of": "2026-01-02T03:04:05Z"}))]
pub struct Rate {
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    /// Units of the currency per 1 USD, 8 decimals, as a string: never a float.
    pub per_usd: String,
    pub source: String,
    pub as_of: DateTime<Utc>,
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
    let retry = |e: &dyn std::fmt::Display| TaskError::retry(e.to_string());
    let mut c = pool.get().await.map_err(|e| retry(&e))?;
    let tx = c.transaction().await.map_err(|e| retry(&e))?;
    for (cur, e8) in &parsed {
        store::upsert_rate(&tx, cur, *e8, &source, file.as_of)
            .await
            .map_err(|e| retry(&e))?;
    }
    tx.commit().await.map_err(|e| retry(&e))?;
    Ok(parsed.len())
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

/// Set one rate by hand (admin).
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
    let source = format!("manual:{}", user.username);
    let now = Utc::now();
    let mut c = s.ctx.db.get().await?;
    let tx = c.transaction().await?;
    store::upsert_rate(&tx, &currency, e8, &source, now).await?;
    tx.commit().await?;
    let rate = Rate {
        currency,
        per_usd: rate::format(e8),
        source,
        as_of: now,
    };
    s.rate_changes.publish(&rate);
    Ok(Json(rate))
}
