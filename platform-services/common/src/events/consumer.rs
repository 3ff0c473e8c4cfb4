use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::{EventEnvelope, client_config, ensure_topics};
use crate::db::{self, DbError, Retryable, Transaction};

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

/// Attempts at one event before it is dead-lettered, unless configured otherwise
/// (`EVENT_MAX_ATTEMPTS`).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// Where a consumer puts what it gave up on: `<topic>.dlq`.
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// Headers a dead-lettered message carries besides the original message's own headers
/// (key and payload are the original's, byte for byte).
pub mod dlq_header {
    /// Why it was given up: the handler's last error, or why it is not an event envelope.
    pub const ERROR: &str = "dlq.error";
    /// Attempts made (`0`: the message was not an event envelope, so never handled).
    pub const ATTEMPTS: &str = "dlq.attempts";
    /// The consumer (group id) that gave up.
    pub const CONSUMER: &str = "dlq.consumer";
    pub const ORIGINAL_TOPIC: &str = "dlq.original_topic";
    pub const ORIGINAL_PARTITION: &str = "dlq.original_partition";
    pub const ORIGINAL_OFFSET: &str = "dlq.original_offset";
}

/// A Kafka consumer that applies each event at most once to the database, whatever Kafka
/// redelivers, by recording `event_id` in `processed_events` in the handler's transaction.
///
/// A failing event is retried with doubling backoff; after `max_attempts` failures (or at
/// once, for a message that is not an event envelope) the original message goes to
/// `<topic>.dlq` with [`dlq_header`]s, the event is recorded as processed (a redelivery is
/// skipped), and the consumer moves on. Failures that are not the event's fault (the
/// database unreachable, a serialization conflict that outlived its retries) are retried
/// without counting, so an outage dead-letters nothing.
pub struct IdempotentConsumer<H> {
    name: String,
    pool: Pool,
    handler: Arc<H>,
    max_attempts: u32,
    backoff: Duration,
    group_instance_id: Option<String>,
}

/// Session timeout of a static member (`group.instance.id`): long enough for a killed
/// replica to be restarted and take its partitions back without a rebalance.
const STATIC_SESSION_TIMEOUT: Duration = Duration::from_secs(30);
/// Session timeout of a dynamic member: Kafka's minimum, so a crash stalls a topic for
/// seconds, not the 45 s default.
const DYNAMIC_SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// Why one attempt at an event failed.
#[derive(Debug)]
enum ApplyError {
    /// The inbox itself (pool, transaction, insert, commit): not the event's fault.
    Db(DbError),
    /// The handler's error.
    Handler(String),
}

impl From<DbError> for ApplyError {
    fn from(e: DbError) -> Self {
        Self::Db(e)
    }
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Db(e) => e.fmt(f),
            Self::Handler(e) => f.write_str(e),
        }
    }
}

impl Retryable for ApplyError {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Db(e) => e.is_retryable(),
            // Handlers report errors as text; a serialization conflict (SQLSTATE 40001, as
            // `DbError` and CockroachDB spell it) runs the whole transaction again.
            Self::Handler(e) => is_conflict(e),
        }
    }
}

fn is_conflict(message: &str) -> bool {
    message.contains("40001")
        || message.contains("could not serialize access")
        || message.contains("restart transaction")
}

/// What became of one message.
enum Step {
    /// Applied, a duplicate, or dead-lettered: its offset may be committed.
    Done,
    /// Shutdown came first: the offset stays, the message is seen again.
    Stopped,
}

impl<H: EventHandler + 'static> IdempotentConsumer<H> {
    /// `name` identifies the consumer in `processed_events` and is its group id.
    pub fn new(name: impl Into<String>, pool: Pool, handler: H) -> Self {
        Self {
            name: name.into(),
            pool,
            handler: Arc::new(handler),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff: Duration::from_millis(100),
            group_instance_id: None,
        }
    }

    /// Static membership: `id` (unique per replica, stable across its restarts) becomes the
    /// consumer's `group.instance.id`. A replica that crashes and comes back within the
    /// session timeout gets its own partitions back at once, and the other members never
    /// rebalance. `None` (or empty): dynamic membership.
    pub fn with_group_instance_id(mut self, id: Option<String>) -> Self {
        self.group_instance_id = id.filter(|i| !i.trim().is_empty());
        self
    }

    /// Attempts at one event before it is dead-lettered (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The pause after the first failed attempt; it doubles per attempt, up to 30 s.
    pub fn with_backoff(mut self, first: Duration) -> Self {
        self.backoff = first;
        self
    }

    /// The consumer's name: its group id and its key in `processed_events`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Apply one event (in a SERIALIZABLE transaction, run again on a conflict).
    pub async fn apply(&self, event: &EventEnvelope) -> Result<ConsumeOutcome, String> {
        self.try_apply(event).await.map_err(|e| e.to_string())
    }

    async fn try_apply(&self, event: &EventEnvelope) -> Result<ConsumeOutcome, ApplyError> {
        let name = self.name.clone();
        let handler = self.handler.clone();
        let event = event.clone();
        db::serializable(&self.pool, move |tx| {
            let (name, handler, event) = (name.clone(), handler.clone(), event.clone());
            Box::pin(async move {
                let fresh = tx
                    .execute(
                        "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)
                         ON CONFLICT (consumer, event_id) DO NOTHING",
                        &[&name, &event.event_id],
                    )
                    .await
                    .map_err(DbError::from)?;
                if fresh == 0 {
                    return Ok(ConsumeOutcome::Duplicate);
                }
                handler
                    .handle(tx, &event)
                    .await
                    .map_err(ApplyError::Handler)?;
                Ok(ConsumeOutcome::Processed)
            })
        })
        .await
    }

    /// Records a dead-lettered event as processed, so a redelivery is skipped.
    async fn record_dead(&self, event: &EventEnvelope) -> Result<(), DbError> {
        let name = self.name.clone();
        let id = event.event_id;
        db::serializable(&self.pool, move |tx| {
            let name = name.clone();
            Box::pin(async move {
                tx.execute(
                    "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)
                     ON CONFLICT (consumer, event_id) DO NOTHING",
                    &[&name, &id],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Whether the database answers: a handler error while it does not is not the event's
    /// fault.
    async fn database_answers(&self) -> bool {
        match self.pool.get().await {
            Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }

    /// Consume `topics` until `shutdown`: apply each event, then commit its offset. The
    /// topics and their `<topic>.dlq` are created first when missing (retried until the
    /// broker answers).
    pub async fn run(
        self,
        brokers: &str,
        topics: &[&str],
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), String> {
        let shutdown = shutdown.shared();
        let mut all: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        all.extend(topics.iter().map(|t| dlq_topic(t)));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut delay = Duration::from_millis(200);
        loop {
            match ensure_topics(brokers, &all).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(consumer = %self.name, error = %e, "could not ensure topics exist; retrying");
                }
            }
            tokio::select! {
                _ = shutdown.clone() => return Ok(()),
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
        let producer: FutureProducer = client_config(brokers)
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "10000")
            .set("batch.num.messages", "1")
            .create()
            .map_err(|e| e.to_string())?;
        let mut config = client_config(brokers);
        config
            .set("group.id", &self.name)
            .set("enable.auto.commit", "false")
            // Brokers here report wrong end offsets, so new groups start from the beginning.
            .set("auto.offset.reset", "earliest")
            .set("heartbeat.interval.ms", "1000")
            // The saga hops through Kafka several times, and tansu answers every fetch after
            // half its max wait even when records are there: keep the wait short.
            .set("fetch.wait.max.ms", "50");
        // A worker killed without leaving the group holds its partitions until its session
        // expires. Dynamic members: keep that short. Static members (a replica that comes
        // back under the same id takes its partitions back without a rebalance; tansu
        // rebalances after a crash can leave partitions unowned): long enough to restart.
        let session = match &self.group_instance_id {
            Some(id) => {
                config.set("group.instance.id", id);
                STATIC_SESSION_TIMEOUT
            }
            None => DYNAMIC_SESSION_TIMEOUT,
        };
        config.set("session.timeout.ms", session.as_millis().to_string());
        let consumer: StreamConsumer = config.create().map_err(|e| e.to_string())?;
        consumer.subscribe(topics).map_err(|e| e.to_string())?;
        loop {
            let msg = tokio::select! {
                _ = shutdown.clone() => return Ok(()),
                m = consumer.recv() => m,
            };
            let msg = match msg {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "kafka receive failed");
                    tokio::select! {
                        _ = shutdown.clone() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                    continue;
                }
            };
            match self.process(&producer, &msg, &shutdown).await {
                Step::Stopped => return Ok(()),
                Step::Done => {}
            }
            if let Err(e) = consumer.commit_message(&msg, CommitMode::Async) {
                tracing::warn!(error = %e, "offset commit failed; the event may be seen again");
            }
        }
    }

    async fn process<S>(
        &self,
        producer: &FutureProducer,
        msg: &BorrowedMessage<'_>,
        shutdown: &Shared<S>,
    ) -> Step
    where
        S: Future<Output = ()>,
    {
        let event = match msg.payload() {
            None => Err("the message has no payload".to_owned()),
            Some(p) => serde_json::from_slice::<EventEnvelope>(p)
                .map_err(|e| format!("not an event envelope: {e}")),
        };
        let event = match event {
            Ok(event) => event,
            Err(reason) => {
                tracing::error!(
                    consumer = %self.name,
                    topic = msg.topic(),
                    partition = msg.partition(),
                    offset = msg.offset(),
                    error = %reason,
                    "dead-lettering a message that is not an event envelope"
                );
                return self
                    .dead_letter(producer, msg, None, &reason, 0, shutdown)
                    .await;
            }
        };
        let mut attempts = 0u32;
        let mut delay = self.backoff;
        loop {
            let error = match self.try_apply(&event).await {
                Ok(outcome) => {
                    tracing::debug!(event_id = %event.event_id, ?outcome, "event consumed");
                    return Step::Done;
                }
                Err(e) => e,
            };
            let counts = match &error {
                ApplyError::Db(_) => false,
                ApplyError::Handler(e) => !is_conflict(e) && self.database_answers().await,
            };
            if counts {
                attempts += 1;
                if attempts >= self.max_attempts {
                    tracing::error!(
                        consumer = %self.name,
                        event_id = %event.event_id,
                        topic = msg.topic(),
                        attempts,
                        error = %error,
                        "event failed on every attempt; dead-lettering it"
                    );
                    return self
                        .dead_letter(
                            producer,
                            msg,
                            Some(&event),
                            &error.to_string(),
                            attempts,
                            shutdown,
                        )
                        .await;
                }
                tracing::warn!(event_id = %event.event_id, attempts, error = %error, "event handler failed; retrying");
            } else {
                tracing::warn!(event_id = %event.event_id, error = %error, "event not applied (not counted as an attempt); retrying");
            }
            tokio::select! {
                _ = shutdown.clone() => return Step::Stopped,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }

    /// Publishes `msg` as it came to `<topic>.dlq`, then records its event (if it is one) as
    /// processed; each step is retried until it succeeds or shutdown.
    async fn dead_letter<S>(
        &self,
        producer: &FutureProducer,
        msg: &BorrowedMessage<'_>,
        event: Option<&EventEnvelope>,
        error: &str,
        attempts: u32,
        shutdown: &Shared<S>,
    ) -> Step
    where
        S: Future<Output = ()>,
    {
        let topic = dlq_topic(msg.topic());
        let (attempts, partition, offset) = (
            attempts.to_string(),
            msg.partition().to_string(),
            msg.offset().to_string(),
        );
        let mut delay = Duration::from_millis(200);
        loop {
            let mut headers = OwnedHeaders::new();
            if let Some(original) = msg.headers() {
                for h in original.iter() {
                    headers = headers.insert(h);
                }
            }
            for (key, value) in [
                (dlq_header::ERROR, error),
                (dlq_header::ATTEMPTS, &attempts),
                (dlq_header::CONSUMER, &self.name),
                (dlq_header::ORIGINAL_TOPIC, msg.topic()),
                (dlq_header::ORIGINAL_PARTITION, &partition),
                (dlq_header::ORIGINAL_OFFSET, &offset),
            ] {
                headers = headers.insert(Header {
                    key,
                    value: Some(value),
                });
            }
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&topic).headers(headers);
            if let Some(k) = msg.key() {
                record = record.key(k);
            }
            if let Some(p) = msg.payload() {
                record = record.payload(p);
            }
            match producer.send(record, Duration::from_secs(10)).await {
                Ok(_) => break,
                Err((e, _)) => {
                    tracing::warn!(%topic, error = %e, "could not dead-letter; retrying")
                }
            }
            tokio::select! {
                _ = shutdown.clone() => return Step::Stopped,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
        let Some(event) = event else {
            return Step::Done;
        };
        let mut delay = Duration::from_millis(200);
        loop {
            match self.record_dead(event).await {
                Ok(()) => return Step::Done,
                Err(e) => {
                    // Published but not recorded: a redelivery would be tried (and may be
                    // dead-lettered) again, which is safe; keep trying to record it.
                    tracing::warn!(event_id = %event.event_id, error = %e, "could not record a dead-lettered event; retrying")
                }
            }
            tokio::select! {
                _ = shutdown.clone() => return Step::Stopped,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }
}

/// Object-safe form of [`EventHandler`], so handlers of different types fit in one list.
trait DynHandler: Send + Sync {
    fn handle_boxed<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        event: &'a EventEnvelope,
    ) -> BoxFuture<'a, Result<(), String>>;
}

impl<H: EventHandler> DynHandler for H {
    fn handle_boxed<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        event: &'a EventEnvelope,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.handle(tx, event))
    }
}

/// Any [`EventHandler`] behind a shared pointer: what a [`Subscription`] runs.
#[derive(Clone)]
pub struct BoxedHandler(Arc<dyn DynHandler>);

impl BoxedHandler {
    pub fn new(handler: impl EventHandler + 'static) -> Self {
        Self(Arc::new(handler))
    }
}

impl EventHandler for BoxedHandler {
    fn handle<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        event: &'a EventEnvelope,
    ) -> impl Future<Output = Result<(), String>> + Send + 'a {
        self.0.handle_boxed(tx, event)
    }
}

/// A consumer a service declares (`ServiceSpec::consumers`): its worker runs it with an
/// [`IdempotentConsumer`] named `name` over `topics`, creates the topics and their
/// `<topic>.dlq` when missing, and stops it on shutdown.
pub struct Subscription {
    name: String,
    topics: &'static [&'static str],
    handler: BoxedHandler,
}

impl Subscription {
    /// `name` is the consumer's group id and its key in `processed_events`: keep it stable
    /// and unique across services (e.g. `payment.forex-converted`).
    pub fn new(
        name: impl Into<String>,
        topics: &'static [&'static str],
        handler: impl EventHandler + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            topics,
            handler: BoxedHandler::new(handler),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn topics(&self) -> &'static [&'static str] {
        self.topics
    }

    /// The consumer that runs this subscription on `pool`.
    pub fn consumer(&self, pool: Pool) -> IdempotentConsumer<BoxedHandler> {
        IdempotentConsumer::new(self.name.clone(), pool, self.handler.clone())
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("name", &self.name)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_are_recognised_in_handler_errors() {
        assert!(is_conflict(
            "transaction conflict, retry: 40001: could not serialize access"
        ));
        assert!(is_conflict(
            "db error: ERROR: restart transaction: TransactionRetryWithProtoRefreshError"
        ));
        assert!(!is_conflict("insufficient funds"));
        assert_eq!(dlq_topic("payment.screened"), "payment.screened.dlq");
    }
}
