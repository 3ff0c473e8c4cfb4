//! `GET /rates/stream`: the rates as Server-Sent Events.
//!
//! On connect, one `rate` event per current rate (so a client has the whole table at once),
//! then one `rate` event each time a rate is set through `PUT /rates/{currency}`; a
//! `: keep-alive` comment every [`KEEP_ALIVE`] keeps proxies from timing the stream out. The
//! data is the [`Rate`] JSON of `GET /rates`.
//!
//! Changes come from an in-process `tokio::sync::broadcast` fed by `PUT /rates/{currency}`
//! after its commit: complete for one `serve` replica. Rates loaded by the worker's
//! `forex.refresh_rates` (another process) or set on another replica appear on a new
//! connection, not on open ones; several replicas would relay changes over Redis pub/sub.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State as AxState;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use platform_common::auth::CurrentUser;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::{ForexError, Rate, State, store};

pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How many changes a slow client may fall behind before it is sent the whole table again.
const CHANNEL_CAPACITY: usize = 256;

/// Where rate changes are announced to the open streams of this process.
#[derive(Clone)]
pub struct RateChanges {
    tx: broadcast::Sender<Rate>,
}

impl RateChanges {
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(CHANNEL_CAPACITY).0,
        }
    }

    /// Announce `rate`; call after the transaction that stored it committed.
    pub fn publish(&self, rate: &Rate) {
        // No open stream is not an error.
        let _ = self.tx.send(rate.clone());
    }
}

fn event(rate: &Rate) -> Result<Event, Infallible> {
    Ok(Event::default()
        .event("rate")
        .data(serde_json::to_string(rate).expect("a rate serialises")))
}

/// Rates as Server-Sent Events (any authenticated caller): an `event: rate` per current rate at
/// once, then one per change, and a `: keep-alive` comment every 15 s.
#[utoipa::path(get, path = "/rates/stream", tag = "forex", operation_id = "stream_rates",
    security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream",
        description = "`event: rate` with `data:` a Rate as JSON, one per current rate on connect, then one per change; `: keep-alive` comments every 15 s",
        body = String, example = "event: rate\ndata: {\"currency\":\"EUR\",\"per_usd\":\"0.92340000\",\"source\":\"manual:admin\",\"as_of\":\"2026-01-02T03:04:05Z\",\"loaded_at\":\"2026-01-02T03:04:05Z\"}\n\n")))]
pub(crate) async fn stream_rates(
    AxState(s): AxState<State>,
    CurrentUser(_): CurrentUser,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ForexError> {
    // Subscribe before reading the table so no change falls between the two.
    let changes = s.rate_changes.tx.subscribe();
    let current = store::rates(&s.ctx.db.get().await?).await?;
    let first = stream::iter(current.iter().map(event).collect::<Vec<_>>());
    let rest = stream::unfold((changes, s), |(mut rx, s)| async move {
        let events = match rx.recv().await {
            Ok(rate) => vec![event(&rate)],
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "rate stream lagged; resending the table");
                match reload(&s).await {
                    Ok(rates) => rates.iter().map(event).collect(),
                    Err(e) => {
                        tracing::error!(error = %e, "rate stream: reading the rates failed");
                        Vec::new()
                    }
                }
            }
            Err(RecvError::Closed) => return None,
        };
        Some((stream::iter(events), (rx, s)))
    })
    .flatten();
    Ok(Sse::new(first.chain(rest))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive")))
}

async fn reload(s: &State) -> Result<Vec<Rate>, ForexError> {
    Ok(store::rates(&s.ctx.db.get().await?).await?)
}
