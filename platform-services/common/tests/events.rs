//! Outbox, relay and idempotent consumer against real Postgres and Kafka (tansu).

use std::time::{Duration, Instant};

use platform_common::db::{self, Transaction};
use platform_common::events::{
    self, ConsumeOutcome, EventEnvelope, EventHandler, IdempotentConsumer, OUTBOX_MIGRATION,
    OutboxRelay,
};
use platform_common::migrate::{self, Migration};
use platform_testing::infra;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use serde_json::json;

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
