use std::future::Future;
use std::time::Duration;

use deadpool_postgres::Pool;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};

use super::{EventEnvelope, client_config};
use crate::db::{DbError, Transaction};

/// Business reaction to one event, run inside the transaction that also records the event
/// as processed: both happen, or neither.
pub trait EventHandler: Send + Sync {
    fn handle<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        event: &'a EventEnvelope,
    ) -> impl Future<Output = Result<(), String>> + Send + 'a;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeOutcome {
    Processed,
    /// Seen before (redelivery): skipped.
    Duplicate,
}

/// A Kafka consumer that applies each event at most once to the database, whatever Kafka
/// redelivers, by recording `event_id` in `processed_events` in the handler's transaction.
pub struct IdempotentConsumer<H> {
    name: String,
    pool: Pool,
    handler: H,
}

impl<H: EventHandler> IdempotentConsumer<H> {
    /// `name` identifies the consumer in `processed_events` and is its group id.
    pub fn new(name: impl Into<String>, pool: Pool, handler: H) -> Self {
        Self {
            name: name.into(),
            pool,
            handler,
        }
    }

    /// Apply one event.
    pub async fn apply(&self, event: &EventEnvelope) -> Result<ConsumeOutcome, String> {
        let mut client = self
            .pool
            .get()
            .await
            .map_err(|e| DbError::from(e).to_string())?;
        let tx = client.transaction().await.map_err(|e| e.to_string())?;
        let fresh = tx
            .execute(
                "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)
                 ON CONFLICT (consumer, event_id) DO NOTHING",
                &[&self.name, &event.event_id],
            )
            .await
            .map_err(|e| e.to_string())?;
        if fresh == 0 {
            tx.rollback().await.map_err(|e| e.to_string())?;
            return Ok(ConsumeOutcome::Duplicate);
        }
        self.handler.handle(&tx, event).await?;
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(ConsumeOutcome::Processed)
    }

    /// Consume `topics` until `shutdown`: apply each event, then commit its offset. A failing
    /// event is retried with backoff (it blocks its partition rather than being skipped).
    pub async fn run(
        self,
        brokers: &str,
        topics: &[&str],
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), String> {
        let consumer: StreamConsumer = client_config(brokers)
            .set("group.id", &self.name)
            .set("enable.auto.commit", "false")
            // Brokers here report wrong end offsets, so new groups start from the beginning.
            .set("auto.offset.reset", "earliest")
            .create()
            .map_err(|e| e.to_string())?;
        consumer.subscribe(topics).map_err(|e| e.to_string())?;
        tokio::pin!(shutdown);
        loop {
            let msg = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                m = consumer.recv() => m,
            };
            let msg = match msg {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "kafka receive failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let event: Option<EventEnvelope> =
                msg.payload().and_then(|p| serde_json::from_slice(p).ok());
            match event {
                None => tracing::error!(
                    topic = msg.topic(),
                    offset = msg.offset(),
                    "skipping a message that is not an event envelope"
                ),
                Some(event) => {
                    let mut delay = Duration::from_millis(100);
                    loop {
                        match self.apply(&event).await {
                            Ok(outcome) => {
                                tracing::debug!(event_id = %event.event_id, ?outcome, "event consumed");
                                break;
                            }
                            Err(e) => {
                                tracing::warn!(event_id = %event.event_id, error = %e, "event handler failed; retrying");
                                tokio::time::sleep(delay).await;
                                delay = (delay * 2).min(Duration::from_secs(30));
                            }
                        }
                    }
                }
            }
            if let Err(e) = consumer.commit_message(&msg, CommitMode::Async) {
                tracing::warn!(error = %e, "offset commit failed; the event may be seen again");
            }
        }
    }
}
