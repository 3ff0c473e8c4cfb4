use std::future::Future;
use std::time::Duration;

use deadpool_postgres::Pool;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use uuid::Uuid;

use super::client_config;
use crate::db::DbError;

/// Publishes committed outbox rows to Kafka, oldest first, and marks them published.
///
/// Rows are locked (`FOR UPDATE`) while being sent, so relays in several worker replicas
/// never send the same row concurrently. A crash between send and mark means the row is
/// sent again after restart: delivery is at-least-once with a stable `event_id`, and
/// consumers deduplicate on it.
pub struct OutboxRelay {
    pool: Pool,
    producer: FutureProducer,
    batch: i64,
    idle: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("kafka: {0}")]
    Kafka(String),
}

impl From<tokio_postgres::Error> for RelayError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(e.into())
    }
}

impl OutboxRelay {
    pub fn new(pool: Pool, brokers: &str) -> Result<Self, rdkafka::error::KafkaError> {
        let producer = client_config(brokers)
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "10000")
            .create()?;
        Ok(Self {
            pool,
            producer,
            batch: 100,
            idle: Duration::from_millis(200),
        })
    }

    /// Publish until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut failures = 0u32;
        loop {
            let pause = match self.relay_once().await {
                Ok(n) if n as i64 == self.batch => Duration::ZERO,
                Ok(_) => {
                    failures = 0;
                    self.idle
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, failures, "outbox relay failed; will retry");
                    Duration::from_millis(200 << failures.min(5))
                }
            };
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Sends one batch; returns how many events were published.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        let mut client = self.pool.get().await.map_err(DbError::from)?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "SELECT id, topic, message_key, envelope FROM outbox
                 WHERE published_at IS NULL ORDER BY created_at, id LIMIT $1 FOR UPDATE",
                &[&self.batch],
            )
            .await?;
        let mut sent: Vec<Uuid> = Vec::with_capacity(rows.len());
        let mut failure = None;
        for row in &rows {
            let id: Uuid = row.get(0);
            let topic: String = row.get(1);
            let key: String = row.get(2);
            let envelope: Value = row.get(3);
            let payload = envelope.to_string();
            let event_id = id.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "event_id",
                    value: Some(&event_id),
                })
                .insert(Header {
                    key: "type",
                    value: Some(&topic),
                });
            let record = FutureRecord::to(&topic)
                .key(&key)
                .payload(&payload)
                .headers(headers);
            match self.producer.send(record, Duration::from_secs(10)).await {
                Ok(_) => sent.push(id),
                Err((e, _)) => {
                    // Stop at the first failure to keep per-key order.
                    failure = Some(format!("{topic}: {e}"));
                    break;
                }
            }
        }
        if !sent.is_empty() {
            tx.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1)",
                &[&sent],
            )
            .await?;
        }
        tx.commit().await?;
        if !sent.is_empty() {
            tracing::debug!(published = sent.len(), "outbox relayed");
        }
        match failure {
            Some(f) => Err(RelayError::Kafka(f)),
            None => Ok(sent.len()),
        }
    }
}
