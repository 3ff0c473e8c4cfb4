//! The rates and quotes tables' SQL. Rows are read by column name.

use chrono::{DateTime, Utc};
use platform_common::db::{Client, DbError, Transaction, read_all, read_opt};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::quotes::Quote;
use crate::rate;
use crate::rates::Rate;

/// A quote as stored, with who asked for it and whether it was converted.
pub struct StoredQuote {
    pub owner: String,
    pub converted_at: Option<DateTime<Utc>>,
    pub quote: Quote,
}

fn stored_quote(r: &Row) -> Result<StoredQuote, tokio_postgres::Error> {
    Ok(StoredQuote {
        owner: r.try_get("owner")?,
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

pub async fn rates(c: &Client) -> Result<Vec<Rate>, DbError> {
    let rows = c
        .query(
            "SELECT currency, per_usd_e8, source, as_of FROM rates ORDER BY currency",
            &[],
        )
        .await?;
    let rate = |r: &Row| -> Result<Rate, tokio_postgres::Error> {
        Ok(Rate {
            currency: r.try_get("currency")?,
            per_usd: rate::format(r.try_get("per_usd_e8")?),
            source: r.try_get("source")?,
            as_of: r.try_get("as_of")?,
        })
    };
    read_all(&rows, rate)
}

/// Units per 1 USD (scaled by 10^8) of those of `currencies` that have a rate.
pub async fn per_usd_e8(c: &Client, currencies: [&str; 2]) -> Result<Vec<(String, i64)>, DbError> {
    let rows = c
        .query(
            "SELECT currency, per_usd_e8 FROM rates WHERE currency = $1 OR currency = $2",
            &[&currencies[0], &currencies[1]],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Ok((r.try_get("currency")?, r.try_get("per_usd_e8")?)))
        .collect::<Result<_, tokio_postgres::Error>>()?)
}

pub async fn upsert_rate(
    tx: &Transaction<'_>,
    currency: &str,
    per_usd_e8: i64,
    source: &str,
    as_of: DateTime<Utc>,
) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO rates (currency, per_usd_e8, source, as_of) VALUES ($1, $2, $3, $4)
         ON CONFLICT (currency) DO UPDATE SET per_usd_e8 = excluded.per_usd_e8, source = excluded.source,
           as_of = excluded.as_of, updated_at = now()",
        &[&currency, &per_usd_e8, &source, &as_of],
    )
    .await?;
    Ok(())
}

/// Stores a quote for `owner`; `rate_e8` and `mid_rate_e8` are the quote's rates unformatted.
pub async fn insert_quote(
    c: &Client,
    owner: &str,
    q: &Quote,
    rate_e8: i64,
    mid_rate_e8: i64,
) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO quotes (id, owner, sell_currency, buy_currency, sell_amount, buy_amount, rate_e8, mid_rate_e8, spread_bps, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[&q.id, &owner, &q.sell_currency, &q.buy_currency, &q.sell_amount, &q.buy_amount, &rate_e8, &mid_rate_e8, &q.spread_bps, &q.expires_at],
    )
    .await?;
    Ok(())
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
