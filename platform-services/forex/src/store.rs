//! The rates and quotes tables' SQL. Rows are read by column name.

use chrono::{DateTime, Utc};
use platform_common::db::{Client, DbError, Transaction, read_all, read_opt};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::quotes::Quote;
use crate::rate;
use crate::rates::Rate;

/// `source` of a rate set by hand: `manual:<username>`. Such a rate is kept by refreshes.
pub const MANUAL_PREFIX: &str = "manual:";

/// A quote as stored, with who asked for it and whether it was converted.
pub struct StoredQuote {
    /// The owner's stable subject; `None` for quotes made before quotes were keyed by it.
    pub owner_id: Option<String>,
    pub converted_at: Option<DateTime<Utc>>,
    pub quote: Quote,
}

fn stored_quote(r: &Row) -> Result<StoredQuote, tokio_postgres::Error> {
    Ok(StoredQuote {
        owner_id: r.try_get("owner_id")?,
        converted_at: r.try_get("converted_at")?,
        quote: Quote {
            id: r.try_get("id")?,
            sell_currency: r.try_get("sell_currency")?,
            buy_currency: r.try_get("buy_currency")?,
            sell_amount: r.try_get("sell_amount")?,
            buy_amount: r.try_get("buy_amount")?,
            rate: rate::format(r.try_get("rate_e8")?),
            mid_rate: rate::format(r.try_get("mid_rate_e8")?),
            spread_bps: r.try_get("spread_bps")?,
            expires_at: r.try_get("expires_at")?,
        },
    })
}

fn rate_row(r: &Row) -> Result<Rate, tokio_postgres::Error> {
    Ok(Rate {
        currency: r.try_get("currency")?,
        per_usd: rate::format(r.try_get("per_usd_e8")?),
        source: r.try_get("source")?,
        as_of: r.try_get("as_of")?,
        loaded_at: r.try_get("updated_at")?,
    })
}

pub async fn rates(c: &Client) -> Result<Vec<Rate>, DbError> {
    let rows = c
        .query(
            "SELECT currency, per_usd_e8, source, as_of, updated_at FROM rates ORDER BY currency",
            &[],
        )
        .await?;
    read_all(&rows, rate_row)
}

/// A rate as quotes use it: units per 1 USD (scaled by 10^8) and when it was loaded or set.
pub struct QuotedRate {
    pub currency: String,
    pub per_usd_e8: i64,
    pub loaded_at: DateTime<Utc>,
}

/// The rates of those of `currencies` that have one.
pub async fn rates_for(
    tx: &Transaction<'_>,
    currencies: [&str; 2],
) -> Result<Vec<QuotedRate>, DbError> {
    let rows = tx
        .query(
            "SELECT currency, per_usd_e8, updated_at FROM rates WHERE currency = $1 OR currency = $2",
            &[&currencies[0], &currencies[1]],
        )
        .await?;
    read_all(&rows, |r| {
        Ok(QuotedRate {
            currency: r.try_get("currency")?,
            per_usd_e8: r.try_get("per_usd_e8")?,
            loaded_at: r.try_get("updated_at")?,
        })
    })
}

/// Sets a rate by hand: it replaces whatever was there. Returns it as stored.
pub async fn set_manual_rate(
    tx: &Transaction<'_>,
    currency: &str,
    per_usd_e8: i64,
    source: &str,
) -> Result<Rate, DbError> {
    let row = tx
        .query_one(
            "INSERT INTO rates (currency, per_usd_e8, source, as_of, updated_at) VALUES ($1, $2, $3, now(), now())
             ON CONFLICT (currency) DO UPDATE SET per_usd_e8 = excluded.per_usd_e8, source = excluded.source,
               as_of = excluded.as_of, updated_at = excluded.updated_at
             RETURNING currency, per_usd_e8, source, as_of, updated_at",
            &[&currency, &per_usd_e8, &source],
        )
        .await?;
    Ok(rate_row(&row)?)
}

/// Loads a rate from a rates file. A manual rate is kept unless `replace_manual`; returns
/// whether the rate was written.
pub async fn load_rate(
    tx: &Transaction<'_>,
    currency: &str,
    per_usd_e8: i64,
    source: &str,
    as_of: DateTime<Utc>,
    replace_manual: bool,
) -> Result<bool, DbError> {
    let manual = format!("{MANUAL_PREFIX}%");
    let n = tx
        .execute(
            "INSERT INTO rates (currency, per_usd_e8, source, as_of) VALUES ($1, $2, $3, $4)
             ON CONFLICT (currency) DO UPDATE SET per_usd_e8 = excluded.per_usd_e8, source = excluded.source,
               as_of = excluded.as_of, updated_at = now()
             WHERE $5::BOOL OR rates.source NOT LIKE $6",
            &[&currency, &per_usd_e8, &source, &as_of, &replace_manual, &manual],
        )
        .await?;
    Ok(n == 1)
}

/// Who a quote is for: the stable subject, and a name for display.
pub struct Owner<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

/// Stores a quote; `rate_e8` and `mid_rate_e8` are the quote's rates unformatted.
pub async fn insert_quote(
    tx: &Transaction<'_>,
    owner: Owner<'_>,
    q: &Quote,
    rate_e8: i64,
    mid_rate_e8: i64,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO quotes (id, owner, owner_id, sell_currency, buy_currency, sell_amount, buy_amount, rate_e8, mid_rate_e8, spread_bps, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[&q.id, &owner.name, &owner.id, &q.sell_currency, &q.buy_currency, &q.sell_amount, &q.buy_amount, &rate_e8, &mid_rate_e8, &q.spread_bps, &q.expires_at],
    )
    .await?;
    Ok(())
}

/// Stores a quote made and converted for a payment; `false` when that payment's quote exists
/// already (nothing is written then).
pub async fn insert_payment_conversion(
    tx: &Transaction<'_>,
    payment_id: Uuid,
    payer: &str,
    q: &Quote,
    rate_e8: i64,
    mid_rate_e8: i64,
) -> Result<bool, DbError> {
    let n = tx
        .execute(
            "INSERT INTO quotes (id, owner, owner_id, payment_id, sell_currency, buy_currency, sell_amount, buy_amount, rate_e8, mid_rate_e8, spread_bps, expires_at, converted_at)
             VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now())
             ON CONFLICT (id) DO NOTHING",
            &[&q.id, &payer, &payment_id, &q.sell_currency, &q.buy_currency, &q.sell_amount, &q.buy_amount, &rate_e8, &mid_rate_e8, &q.spread_bps, &q.expires_at],
        )
        .await?;
    Ok(n == 1)
}

/// The quote, locked until the transaction ends.
pub async fn lock_quote(tx: &Transaction<'_>, id: Uuid) -> Result<Option<StoredQuote>, DbError> {
    let row = tx
        .query_opt("SELECT * FROM quotes WHERE id = $1 FOR UPDATE", &[&id])
        .await?;
    read_opt(row, stored_quote)
}

pub async fn mark_converted(tx: &Transaction<'_>, id: Uuid) -> Result<(), DbError> {
    tx.execute(
        "UPDATE quotes SET converted_at = now() WHERE id = $1",
        &[&id],
    )
    .await?;
    Ok(())
}
