//! Where integration tests get real Postgres, Redis and Kafka: throwaway containers of the
//! platform's offline images from `finctl-testkit`, removed when the returned [`Guard`]
//! drops.
//!
//! For a quick loop on a developer machine, servers already running on 127.0.0.1 can be
//! named instead: see [`crate::env`].

use std::any::Any;

use platform_common::Secret;
use platform_common::config::{DbConfig, RedisConfig};

use crate::env;

/// Keeps the container alive for the test's duration.
pub struct Guard(#[allow(dead_code)] Option<Box<dyn Any + Send + Sync>>);

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A fresh, empty database on a real PostgreSQL server.
pub async fn postgres() -> (DbConfig, Guard) {
    let (port, guard) = match var(env::TEST_DB_PORT) {
        Some(p) => (
            p.parse()
                .unwrap_or_else(|_| panic!("{} is a port", env::TEST_DB_PORT)),
            Guard(None),
        ),
        None => {
            let pg = finctl_testkit::postgres()
                .await
                .expect("start a PostgreSQL container (finctl-testkit)");
            (pg.port(), Guard(Some(Box::new(pg))))
        }
    };
    let base = DbConfig {
        host: "127.0.0.1".into(),
        port,
        name: "defaultdb".into(),
        user: "root".into(),
        password: None,
    };
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let pool = platform_common::db::pool(&base, 1);
    let client = pool
        .get()
        .await
        .expect("connect to the test database server");
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    (DbConfig { name, ..base }, guard)
}

pub async fn redis() -> (RedisConfig, Guard) {
    let (url, guard) = match var(env::TEST_REDIS_URL) {
        Some(u) => (u, Guard(None)),
        None => {
            let r = finctl_testkit::redis("test-secret")
                .await
                .expect("start a Redis container (finctl-testkit)");
            (r.url(), Guard(Some(Box::new(r))))
        }
    };
    (
        RedisConfig {
            address: "127.0.0.1".into(),
            url: Secret::new(url),
        },
        guard,
    )
}

/// `host:port` of a Kafka-compatible broker.
pub async fn kafka() -> (String, Guard) {
    match var(env::TEST_KAFKA_BROKERS) {
        Some(b) => (b, Guard(None)),
        None => {
            let k = finctl_testkit::kafka()
                .await
                .expect("start a Kafka container (finctl-testkit)");
            (k.bootstrap(), Guard(Some(Box::new(k))))
        }
    }
}

/// A name no other test uses, for queues and topics.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}
