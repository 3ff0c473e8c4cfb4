//! The outbox: events are rows written in the same transaction as the change they describe,
//! so an event exists if and only if that transaction committed. The relay publishes them.

use crate::db::{DbError, Transaction};
use crate::migrate::Migration;

use super::EventEnvelope;

/// The relay's claim on a row: which relay (`claimed_by`) holds it until when
/// (`claimed_until`). Added to tables created before the columns existed, idempotently.
macro_rules! claim_columns_sql {
    () => {
        "
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS claimed_by UUID;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS claimed_until TIMESTAMPTZ;
"
    };
}

/// What the relay runs on a database whose `outbox` predates the claim columns (every
/// service there recorded [`OUTBOX_MIGRATION`] before they were added to it).
pub(crate) const CLAIM_COLUMNS_SQL: &str = claim_columns_sql!();

/// Include in a service's migrations (any free version number) to get the outbox and the
/// consumer's de-duplication table. Several services apply it to one shared database, so
/// every statement is idempotent, and a change to it only adds (`ADD COLUMN IF NOT EXISTS`).
pub const OUTBOX_MIGRATION: Migration = Migration {
    version: 1000,
    name: "outbox and processed_events",
    sql: concat!(
        "
CREATE TABLE IF NOT EXISTS outbox (
    id UUID PRIMARY KEY,
    topic TEXT NOT NULL,
    message_key TEXT NOT NULL,
    envelope JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ,
    claimed_by UUID,
    claimed_until TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (published_at, created_at);
CREATE TABLE IF NOT EXISTS processed_events (
    consumer TEXT NOT NULL,
    event_id UUID NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);",
        claim_columns_sql!()
    ),
};

/// Record `event` for publication on the topic named by its type, keyed by `key`
/// (events with one key keep their order). Call inside the business transaction.
pub async fn record(tx: &Transaction<'_>, key: &str, event: &EventEnvelope) -> Result<(), DbError> {
    let envelope = serde_json::to_value(event).expect("envelope serialises");
    tx.execute(
        "INSERT INTO outbox (id, topic, message_key, envelope, created_at) VALUES ($1, $2, $3, $4, $5)",
        &[&event.event_id, &event.kind, &key, &envelope, &event.occurred_at],
    )
    .await?;
    Ok(())
}
