use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::client_config;
use super::outbox::CLAIM_COLUMNS_SQL;
use crate::db::{self, DbError};

/// How long the broker has to acknowledge one message (`message.timeout.ms`).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes committed outbox rows to Kafka, oldest first, and marks them published.
///
/// No database lock is held while sending. A relay claims a batch in a short transaction
/// (`claimed_by` = the relay, `claimed_until` = now + lease), commits, sends, and marks the
/// sent rows `published_at` in another short transaction (unsent rows are released). Relays
/// in several worker replicas skip rows another relay holds a live claim on, and every
/// later row with the same message key, so each key's events are sent in order by one
/// relay at a time. A relay that dies holding a claim delays its rows by the lease; then
/// another relay sends them. A crash between send and mark, or a claim that outlives its
/// lease, sends a row again: delivery is at-least-once with a stable `event_id`, and
/// consumers deduplicate on it.
pub struct OutboxRelay {
    pool: Pool,
    producer: FutureProducer,
    id: Uuid,
    batch: usize,
    idle: Duration,
    lease: Duration,
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

/// One claimed outbox row.
struct Claimed {
    id: Uuid,
    topic: String,
    key: String,
    envelope: Value,
}

impl OutboxRelay {
    pub fn new(pool: Pool, brokers: &str) -> Result<Self, rdkafka::error::KafkaError> {
        let producer = client_config(brokers)
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", SEND_TIMEOUT.as_millis().to_string())
            // The saga hops through the outbox several times: send at once.
            .set("linger.ms", "1")
            // One record per batch: tansu answers a fetch from an offset inside a batch with
            // the batches after it, so a consumer group that committed half a batch before a
            // rebalance would skip the other half.
            .set("batch.num.messages", "1")
            .create()?;
        Ok(Self {
            pool,
            producer,
            id: Uuid::new_v4(),
            batch: 100,
            idle: Duration::from_millis(50),
            lease: Duration::from_secs(30),
        })
    }

    /// The pause after a round that found nothing to send (`OUTBOX_POLL_MS`, default 50 ms).
    pub fn with_poll(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// How long a claim keeps other relays off its rows (default 30 s). Sending stops
    /// early enough for every send to end within it; a relay that dies holding a claim
    /// delays those rows by this much.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// This relay's id, as `outbox.claimed_by` records it.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Publish until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut failures = 0u32;
        loop {
            let pause = match self.relay_once().await {
                Ok(n) if n == self.batch => {
                    failures = 0;
                    Duration::ZERO
                }
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

    /// Claims, sends and marks one batch; returns how many events were published.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        let claimed = match self.claim().await {
            Err(e) if is_undefined_column(&e) => {
                // A database whose outbox predates the claim columns (its services recorded
                // the outbox migration before they existed): add them, idempotently.
                tracing::info!("adding the claim columns to an older outbox table");
                let client = self.pool.get().await.map_err(DbError::from)?;
                client.batch_execute(CLAIM_COLUMNS_SQL).await?;
                self.claim().await?
            }
            other => other?,
        };
        if claimed.is_empty() {
            return Ok(0);
        }
        // Stop starting sends once one could outlive the claim.
        let margin = SEND_TIMEOUT.min(self.lease / 2);
        let send_until = Instant::now() + (self.lease - margin);

        // Per key in order, one at a time; keys in parallel.
        let mut groups: Vec<Vec<Claimed>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for row in claimed {
            let i = *index.entry(row.key.clone()).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[i].push(row);
        }
        let results =
            futures_util::future::join_all(groups.iter().map(|g| self.send_group(g, send_until)))
                .await;
        let mut sent = Vec::new();
        let mut unsent = Vec::new();
        let mut failure = None;
        for (group, (n, err)) in groups.iter().zip(results) {
            sent.extend(group[..n].iter().map(|r| r.id));
            unsent.extend(group[n..].iter().map(|r| r.id));
            if failure.is_none() {
                failure = err;
            }
        }
        self.finish(&sent, &unsent).await?;
        if !sent.is_empty() {
            tracing::debug!(published = sent.len(), "outbox relayed");
        }
        match failure {
            Some(f) => Err(RelayError::Kafka(f)),
            None => Ok(sent.len()),
        }
    }

    /// Claims up to a batch of the oldest unpublished rows that no live claim blocks, in one
    /// short transaction.
    async fn claim(&self) -> Result<Vec<Claimed>, DbError> {
        let (me, batch, lease_ms) = (self.id, self.batch, self.lease.as_secs_f64() * 1000.0);
        db::serializable(&self.pool, move |tx| {
            Box::pin(async move {
                // The window is locked only until this transaction commits; a relay claiming
                // at the same time waits here, then sees these claims.
                let rows = tx
                    .query(
                        "SELECT id, topic, message_key, envelope,
                                COALESCE(claimed_until > now(), false) AS live
                         FROM outbox WHERE published_at IS NULL
                         ORDER BY created_at, id LIMIT $1 FOR UPDATE",
                        &[&((batch * 4) as i64)],
                    )
                    .await?;
                let mut blocked: HashSet<String> = HashSet::new();
                let mut claimed = Vec::new();
                for row in &rows {
                    let key: String = row.try_get("message_key")?;
                    if row.try_get::<_, bool>("live")? {
                        // Held by a relay (maybe a dead one, until its lease ends): neither
                        // it nor a later event with its key may go before it.
                        blocked.insert(key);
                        continue;
                    }
                    if blocked.contains(&key) || claimed.len() >= batch {
                        continue;
                    }
                    claimed.push(Claimed {
                        id: row.try_get("id")?,
                        topic: row.try_get("topic")?,
                        key,
                        envelope: row.try_get("envelope")?,
                    });
                }
                if !claimed.is_empty() {
                    let ids: Vec<Uuid> = claimed.iter().map(|c| c.id).collect();
                    tx.execute(
                        "UPDATE outbox SET claimed_by = $1,
                             claimed_until = now() + $2::FLOAT8 * INTERVAL '1 millisecond'
                         WHERE id = ANY($3)",
                        &[&me, &lease_ms, &ids],
                    )
                    .await?;
                }
                Ok(claimed)
            })
        })
        .await
    }

    /// Sends one key's rows in order, stopping at the first failure; returns how many were
    /// sent, and the failure.
    async fn send_group(&self, rows: &[Claimed], send_until: Instant) -> (usize, Option<String>) {
        for (n, row) in rows.iter().enumerate() {
            if Instant::now() > send_until {
                return (n, None);
            }
            let payload = row.envelope.to_string();
            let event_id = row.id.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "event_id",
                    value: Some(&event_id),
                })
                .insert(Header {
                    key: "type",
                    value: Some(&row.topic),
                });
            let record = FutureRecord::to(&row.topic)
                .key(&row.key)
                .payload(&payload)
                .headers(headers);
            if let Err((e, _)) = self.producer.send(record, SEND_TIMEOUT).await {
                return (n, Some(format!("{}: {e}", row.topic)));
            }
        }
        (rows.len(), None)
    }

    /// Marks `sent` published and releases the claim on `unsent`, in one short transaction.
    async fn finish(&self, sent: &[Uuid], unsent: &[Uuid]) -> Result<(), DbError> {
        let (me, sent, unsent) = (self.id, sent.to_vec(), unsent.to_vec());
        db::serializable(&self.pool, move |tx| {
            let (sent, unsent) = (sent.clone(), unsent.clone());
            Box::pin(async move {
                if !sent.is_empty() {
                    tx.execute(
                        "UPDATE outbox SET published_at = now(), claimed_until = NULL
                         WHERE id = ANY($1) AND published_at IS NULL",
                        &[&sent],
                    )
                    .await?;
                }
                if !unsent.is_empty() {
                    tx.execute(
                        "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL
                         WHERE id = ANY($1) AND claimed_by = $2 AND published_at IS NULL",
                        &[&unsent, &me],
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }
}

fn is_undefined_column(e: &DbError) -> bool {
    let DbError::Query(source) = e else {
        return false;
    };
    source
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(tokio_postgres::Error::code)
        .is_some_and(|c| *c == SqlState::UNDEFINED_COLUMN)
}
