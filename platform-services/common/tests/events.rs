//! Outbox, relay and idempotent consumer against real Postgres and Kafka (tansu).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use platform_common::config::{EventsConfig, KafkaConfig, RedisConfig};
use platform_common::db::{self, Transaction};
use platform_common::events::{
    self, ConsumeOutcome, EventEnvelope, EventHandler, IdempotentConsumer, OUTBOX_MIGRATION,
    OutboxRelay, Subscription, dlq_header, dlq_topic,
};
use platform_common::jobs::JobClient;
use platform_common::migrate::{self, Migration};
use platform_common::redis_handle::RedisHandle;
use platform_common::service::{Context, EventRuntime, ServiceSpec};
use platform_testing::infra;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use uuid::Uuid;

const TABLE: Migration = Migration {
    version: 1,
    name: "applied",
    sql: "CREATE TABLE applied (event_id UUID NOT NULL)",
};

struct Recorder {
    fail: bool,
}

impl EventHandler for Recorder {
    async fn handle<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        event: &'a EventEnvelope,
    ) -> Result<(), String> {
        tx.execute(
            "INSERT INTO applied (event_id) VALUES ($1)",
            &[&event.event_id],
        )
        .await
        .map_err(|e| e.to_string())?;
        if self.fail {
            Err("handler failed".into())
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn consumer_applies_each_event_once() {
    let (cfg, _g) = infra::postgres().await;
    let pool = db::pool(&cfg, 4);
    migrate::run(&pool, "t", &[TABLE, OUTBOX_MIGRATION])
        .await
        .unwrap();
    let event = EventEnvelope::new("payment.initiated", "svc-test", json!({"id": 1}));

    // A failing handler leaves no trace, so the event can be applied later.
    let failing = IdempotentConsumer::new("c1", pool.clone(), Recorder { fail: true });
    assert!(failing.apply(&event).await.is_err());
    let ok = IdempotentConsumer::new("c1", pool.clone(), Recorder { fail: false });
    assert_eq!(ok.apply(&event).await.unwrap(), ConsumeOutcome::Processed);
    assert_eq!(ok.apply(&event).await.unwrap(), ConsumeOutcome::Duplicate);
    // Another consumer has its own record of what it processed.
    let other = IdempotentConsumer::new("c2", pool.clone(), Recorder { fail: false });
    assert_eq!(
        other.apply(&event).await.unwrap(),
        ConsumeOutcome::Processed
    );
    let n: i64 = pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM applied", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
}

async fn record(pool: &db::Pool, topic: &str, commit: bool) -> EventEnvelope {
    let mut c = pool.get().await.unwrap();
    let tx = c.transaction().await.unwrap();
    let e = EventEnvelope::new(topic, "svc-test", json!({"commit": commit}));
    events::record(&tx, "key-1", &e).await.unwrap();
    if commit {
        tx.commit().await.unwrap()
    } else {
        tx.rollback().await.unwrap()
    }
    e
}

#[tokio::test]
async fn outbox_publishes_exactly_the_committed_events_across_a_relay_restart() {
    let (cfg, _g1) = infra::postgres().await;
    let (brokers, _g2) = infra::kafka().await;
    let pool = db::pool(&cfg, 4);
    migrate::run(&pool, "t", &[OUTBOX_MIGRATION]).await.unwrap();
    let topic = infra::unique("outbox-test");
    events::ensure_topics(&brokers, &[&topic]).await.unwrap();

    let committed = record(&pool, &topic, true).await;
    let rolled_back = record(&pool, &topic, false).await;
    let relay = OutboxRelay::new(pool.clone(), &brokers).unwrap();
    assert_eq!(relay.relay_once().await.unwrap(), 1);
    assert_eq!(
        relay.relay_once().await.unwrap(),
        0,
        "nothing is sent twice"
    );
    drop(relay);

    // Committed while no relay runs; a new relay picks it up.
    let later = record(&pool, &topic, true).await;
    let relay = OutboxRelay::new(pool.clone(), &brokers).unwrap();
    assert_eq!(relay.relay_once().await.unwrap(), 1);

    let consumer: StreamConsumer = events::client_config(&brokers)
        .set("group.id", infra::unique("g"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
            Ok(Ok(m)) => {
                let e: EventEnvelope = serde_json::from_slice(m.payload().unwrap()).unwrap();
                assert_eq!(m.key(), Some(&b"key-1"[..]));
                seen.push(e);
            }
            Ok(Err(e)) => panic!("consume: {e}"),
            Err(_) if seen.len() >= 2 => break,
            Err(_) => {}
        }
    }
    let ids: Vec<_> = seen.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, vec![committed.event_id, later.event_id]);
    assert!(!ids.contains(&rolled_back.event_id));
    assert_eq!(seen[0], committed, "the envelope arrives intact");
}

/// Reads `topic` from the beginning until `n` messages arrived (or 60 s passed).
async fn read_topic(brokers: &str, topic: &str, n: usize) -> Vec<OwnedMessage> {
    let consumer: StreamConsumer = events::client_config(brokers)
        .set("group.id", infra::unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < n && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
            Ok(Ok(m)) => seen.push(m.detach()),
            Ok(Err(e)) => panic!("consume {topic}: {e}"),
            Err(_) => {}
        }
    }
    seen
}

fn header(m: &OwnedMessage, name: &str) -> Option<String> {
    m.headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

async fn applied(pool: &db::Pool) -> Vec<Uuid> {
    pool.get()
        .await
        .unwrap()
        .query("SELECT event_id FROM applied", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Fails every event whose payload says `"poison": true`, counting the attempts.
struct PoisonAware {
    attempts: Arc<AtomicU32>,
}

impl EventHandler for PoisonAware {
    async fn handle<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        event: &'a EventEnvelope,
    ) -> Result<(), String> {
        if event.payload["poison"] == json!(true) {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            return Err("poison: cannot apply".into());
        }
        tx.execute(
            "INSERT INTO applied (event_id) VALUES ($1)",
            &[&event.event_id],
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(())
    }
}

#[tokio::test]
async fn a_poison_event_is_dead_lettered_after_n_attempts_and_its_partition_moves_on() {
    let (cfg, _g1) = infra::postgres().await;
    let (brokers, _g2) = infra::kafka().await;
    let pool = db::pool(&cfg, 4);
    migrate::run(&pool, "t", &[TABLE, OUTBOX_MIGRATION])
        .await
        .unwrap();
    let topic = infra::unique("poison");
    events::ensure_topics(&brokers, &[&topic]).await.unwrap();

    // One key, so one partition and one order: a poison event, a message that is not an
    // envelope, then a good event.
    let poison = EventEnvelope::new(&topic, "svc-test", json!({"poison": true}));
    let good = EventEnvelope::new(&topic, "svc-test", json!({"poison": false}));
    let producer: FutureProducer = events::client_config(&brokers).create().unwrap();
    let poison_bytes = serde_json::to_vec(&poison).unwrap();
    let good_bytes = serde_json::to_vec(&good).unwrap();
    for payload in [&poison_bytes[..], b"not an envelope", &good_bytes[..]] {
        let headers = rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
            key: "type",
            value: Some(topic.as_str()),
        });
        producer
            .send(
                FutureRecord::to(&topic)
                    .key("pay-1")
                    .payload(payload)
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }

    let attempts = Arc::new(AtomicU32::new(0));
    let consumer = IdempotentConsumer::new(
        "poison-consumer",
        pool.clone(),
        PoisonAware {
            attempts: attempts.clone(),
        },
    )
    .with_max_attempts(3)
    .with_backoff(Duration::from_millis(10));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let (brokers, topic) = (brokers.clone(), topic.clone());
        async move {
            consumer
                .run(&brokers, &[&topic], async {
                    let _ = stopped.await;
                })
                .await
        }
    });

    // The good event behind the poison one is applied: the partition is not blocked.
    let deadline = Instant::now() + Duration::from_secs(90);
    while applied(&pool).await.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        applied(&pool).await,
        vec![good.event_id],
        "the event after a poison one is processed"
    );
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "N attempts, then no more"
    );

    let dead = read_topic(&brokers, &dlq_topic(&topic), 2).await;
    assert_eq!(dead.len(), 2, "the poison event and the non-envelope");
    let (first, second) = (&dead[0], &dead[1]);
    assert_eq!(
        first.payload(),
        Some(&poison_bytes[..]),
        "the original payload"
    );
    assert_eq!(first.key(), Some(&b"pay-1"[..]), "the original key");
    assert_eq!(header(first, "type").as_deref(), Some(topic.as_str()));
    assert_eq!(header(first, dlq_header::ATTEMPTS).as_deref(), Some("3"));
    assert!(
        header(first, dlq_header::ERROR)
            .unwrap()
            .contains("poison: cannot apply")
    );
    assert_eq!(
        header(first, dlq_header::ORIGINAL_TOPIC).as_deref(),
        Some(topic.as_str())
    );
    assert_eq!(
        header(first, dlq_header::ORIGINAL_PARTITION).as_deref(),
        Some("0")
    );
    assert_eq!(
        header(first, dlq_header::ORIGINAL_OFFSET).as_deref(),
        Some("0")
    );
    assert_eq!(
        header(first, dlq_header::CONSUMER).as_deref(),
        Some("poison-consumer")
    );
    assert_eq!(second.payload(), Some(&b"not an envelope"[..]));
    assert_eq!(header(second, dlq_header::ATTEMPTS).as_deref(), Some("0"));
    assert_eq!(
        header(second, dlq_header::ORIGINAL_OFFSET).as_deref(),
        Some("1")
    );

    let _ = stop.send(());
    running.await.unwrap().unwrap();

    // The dead-lettered event counts as processed: a redelivery is not tried again.
    let again = IdempotentConsumer::new(
        "poison-consumer",
        pool.clone(),
        PoisonAware {
            attempts: attempts.clone(),
        },
    );
    assert_eq!(
        again.apply(&poison).await.unwrap(),
        ConsumeOutcome::Duplicate
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

/// Migrates, and records `n` events with `key` on `topic`.
async fn outbox_with(pool: &db::Pool, topic: &str, key: &str, n: usize) -> Vec<EventEnvelope> {
    migrate::run(pool, "t", &[OUTBOX_MIGRATION]).await.unwrap();
    let mut out = Vec::new();
    for i in 0..n {
        let mut c = pool.get().await.unwrap();
        let tx = c.transaction().await.unwrap();
        let e = EventEnvelope::new(topic, "svc-test", json!({"i": i}));
        events::record(&tx, key, &e).await.unwrap();
        tx.commit().await.unwrap();
        out.push(e);
    }
    out
}

/// A broker address nothing answers on: a send waits for its message timeout.
const NO_BROKER: &str = "127.0.0.1:9";

async fn claimed_by(pool: &db::Pool, id: Uuid) -> Option<Uuid> {
    pool.get()
        .await
        .unwrap()
        .query_one("SELECT claimed_by FROM outbox WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn the_relay_holds_no_row_lock_while_it_sends() {
    let (cfg, _g) = infra::postgres().await;
    let pool = db::pool(&cfg, 4);
    let event = outbox_with(&pool, "slow.topic", "key-1", 1).await.remove(0);

    // Its send cannot complete: it waits for the broker until the message times out.
    let relay = OutboxRelay::new(pool.clone(), NO_BROKER).unwrap();
    let sending = tokio::spawn(async move { relay.relay_once().await });

    let mut lock_failures = 0;
    let mut unlocked_while_sending = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sending.is_finished() && Instant::now() < deadline {
        let claimed = claimed_by(&pool, event.event_id).await.is_some();
        let mut c = pool.get().await.unwrap();
        let tx = c.transaction().await.unwrap();
        let locked = tx
            .query(
                "SELECT id FROM outbox WHERE id = $1 FOR UPDATE NOWAIT",
                &[&event.event_id],
            )
            .await;
        match locked {
            Ok(rows) => {
                assert_eq!(rows.len(), 1);
                if claimed && !sending.is_finished() {
                    unlocked_while_sending = true;
                    break;
                }
            }
            Err(e) => {
                assert_eq!(
                    e.code(),
                    Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE),
                    "{e}"
                );
                lock_failures += 1;
            }
        }
        drop(tx);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sending.abort();
    assert!(
        unlocked_while_sending,
        "another transaction could lock the claimed row while the relay was sending \
         (it was locked {lock_failures} times)"
    );
}

#[tokio::test]
async fn a_crashed_relays_claim_expires_and_another_relay_sends_its_rows_in_key_order() {
    let (cfg, _g1) = infra::postgres().await;
    let (brokers, _g2) = infra::kafka().await;
    let pool = db::pool(&cfg, 4);
    let topic = infra::unique("crash");
    events::ensure_topics(&brokers, &[&topic]).await.unwrap();
    let first = outbox_with(&pool, &topic, "key-1", 2).await;

    // Relay A claims both rows, then dies in the middle of sending them.
    let a = OutboxRelay::new(pool.clone(), NO_BROKER).unwrap();
    let a_id = a.id();
    let sending = tokio::spawn(async move { a.relay_once().await });
    let deadline = Instant::now() + Duration::from_secs(30);
    while claimed_by(&pool, first[1].event_id).await != Some(a_id) {
        assert!(Instant::now() < deadline, "relay A never claimed the rows");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sending.abort();
    let _ = sending.await;

    // While A's claim lives, relay B leaves its rows alone (and any later event with their
    // key), but sends other keys.
    let other_key = outbox_with(&pool, &topic, "key-2", 1).await.remove(0);
    let b = OutboxRelay::new(pool.clone(), &brokers).unwrap();
    assert_eq!(
        b.relay_once().await.unwrap(),
        1,
        "only the other key's event"
    );
    assert_eq!(b.relay_once().await.unwrap(), 0);

    // A's lease runs out (time is moved rather than waited for).
    pool.get()
        .await
        .unwrap()
        .execute(
            "UPDATE outbox SET claimed_until = now() - INTERVAL '1 second' WHERE claimed_by = $1",
            &[&a_id],
        )
        .await
        .unwrap();
    assert_eq!(b.relay_once().await.unwrap(), 2, "B sends what A claimed");
    assert_eq!(b.relay_once().await.unwrap(), 0);

    let seen = read_topic(&brokers, &topic, 3).await;
    let ids: Vec<Uuid> = seen
        .iter()
        .map(|m| serde_json::from_slice::<EventEnvelope>(m.payload().unwrap()).unwrap())
        .map(|e| e.event_id)
        .collect();
    assert_eq!(
        ids,
        vec![other_key.event_id, first[0].event_id, first[1].event_id]
    );
}

static WIRED_TOPICS: OnceLock<&'static [&'static str]> = OnceLock::new();

fn wired_topics() -> &'static [&'static str] {
    WIRED_TOPICS.get_or_init(|| {
        let topic: &'static str = Box::leak(infra::unique("wired").into_boxed_str());
        Box::leak(vec![topic].into_boxed_slice())
    })
}

#[tokio::test]
async fn the_worker_runs_the_subscriptions_its_service_spec_declares() {
    let (cfg, _g1) = infra::postgres().await;
    let (brokers, _g2) = infra::kafka().await;
    let pool = db::pool(&cfg, 4);
    migrate::run(&pool, "t", &[TABLE, OUTBOX_MIGRATION])
        .await
        .unwrap();
    let spec = ServiceSpec {
        name: "wired",
        migrations: &[],
        publishes: wired_topics(),
        worker_uses_db: true,
        openapi: || utoipa::openapi::OpenApiBuilder::new().build(),
        routes: |_| Ok(axum::Router::new()),
        tasks: |_, _| {},
        consumers: |_| {
            vec![Subscription::new(
                "wired-consumer",
                wired_topics(),
                Recorder { fail: false },
            )]
        },
    };
    let redis = RedisHandle::new(&RedisConfig {
        url: platform_common::Secret::new("redis://127.0.0.1:9/".into()),
        address: "127.0.0.1:9".into(),
    })
    .unwrap();
    let ctx = Context {
        service: "svc-wired".into(),
        name: "wired",
        db: pool.clone(),
        jobs: JobClient::new("wired", redis.clone()),
        redis,
        env: Arc::new(HashMap::<String, String>::new()),
    };
    let runtime = EventRuntime::start(
        &spec,
        &ctx,
        &KafkaConfig {
            brokers: brokers.clone(),
        },
        &EventsConfig::default(),
    )
    .unwrap();

    // Published through the outbox by the worker's relay, applied by its subscription.
    let mut c = pool.get().await.unwrap();
    let tx = c.transaction().await.unwrap();
    let event = EventEnvelope::new(wired_topics()[0], "svc-wired", json!({}));
    events::record(&tx, "key-1", &event).await.unwrap();
    tx.commit().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while applied(&pool).await.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(applied(&pool).await, vec![event.event_id]);
    runtime.stop(Duration::from_secs(10)).await;

    // The dead-letter topic exists too.
    let meta: rdkafka::consumer::BaseConsumer = events::client_config(&brokers).create().unwrap();
    let dlq = dlq_topic(wired_topics()[0]);
    let found = tokio::task::spawn_blocking(move || {
        meta.fetch_metadata(Some(&dlq), Duration::from_secs(10))
            .map(|m| m.topics().iter().any(|t| t.error().is_none()))
    })
    .await
    .unwrap()
    .unwrap();
    assert!(found, "the worker created the dead-letter topic");
}

#[tokio::test]
async fn an_outbox_made_before_the_claim_columns_is_upgraded_in_place() {
    let (cfg, _g1) = infra::postgres().await;
    let (brokers, _g2) = infra::kafka().await;
    let pool = db::pool(&cfg, 4);
    // The outbox as the first version of the migration made it, recorded as applied.
    migrate::run(
        &pool,
        "t",
        &[Migration {
            version: 1000,
            name: "outbox and processed_events",
            sql: "CREATE TABLE outbox (
                id UUID PRIMARY KEY, topic TEXT NOT NULL, message_key TEXT NOT NULL,
                envelope JSONB NOT NULL, created_at TIMESTAMPTZ NOT NULL,
                published_at TIMESTAMPTZ);
            CREATE INDEX outbox_pending ON outbox (published_at, created_at);
            CREATE TABLE processed_events (consumer TEXT NOT NULL, event_id UUID NOT NULL,
                processed_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (consumer, event_id))",
        }],
    )
    .await
    .unwrap();
    let topic = infra::unique("legacy");
    events::ensure_topics(&brokers, &[&topic]).await.unwrap();
    let before = outbox_with(&pool, &topic, "key-1", 1).await;
    // Another service applying the current migration to the shared database adds the columns.
    migrate::run(&pool, "other-service", &[OUTBOX_MIGRATION])
        .await
        .unwrap();
    let relay = OutboxRelay::new(pool.clone(), &brokers).unwrap();
    assert_eq!(relay.relay_once().await.unwrap(), 1);

    // A database where every service recorded the old migration: the relay adds them itself.
    let (cfg, _g3) = infra::postgres().await;
    let pool = db::pool(&cfg, 4);
    migrate::run(
        &pool,
        "t",
        &[Migration {
            version: 1000,
            name: "outbox and processed_events",
            sql: "CREATE TABLE outbox (
                id UUID PRIMARY KEY, topic TEXT NOT NULL, message_key TEXT NOT NULL,
                envelope JSONB NOT NULL, created_at TIMESTAMPTZ NOT NULL,
                published_at TIMESTAMPTZ)",
        }],
    )
    .await
    .unwrap();
    let after = outbox_with(&pool, &topic, "key-1", 1).await;
    let relay = OutboxRelay::new(pool.clone(), &brokers).unwrap();
    assert_eq!(relay.relay_once().await.unwrap(), 1);
    assert_eq!(relay.relay_once().await.unwrap(), 0);

    let ids: Vec<Uuid> = read_topic(&brokers, &topic, 2)
        .await
        .iter()
        .map(|m| serde_json::from_slice::<EventEnvelope>(m.payload().unwrap()).unwrap())
        .map(|e| e.event_id)
        .collect();
    assert_eq!(ids, vec![before[0].event_id, after[0].event_id]);
}
