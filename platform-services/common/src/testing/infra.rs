//! Where integration tests get real Postgres, Redis and Kafka.
//!
//! Today each comes from an environment variable naming a server the test run provides
//! (`FINCTL_TEST_DB_PORT`, `FINCTL_TEST_REDIS_URL`, `FINCTL_TEST_KAFKA_BROKERS`, all on
//! 127.0.0.1). When the workspace's `finctl-testkit` lands, each function body becomes one
//! call to it (`finctl_testkit::postgres()`, `::redis(..)`, `::kafka()`), holding the
//! container in the returned guard. Tests that use these are `#[ignore]`d until then.

use std::any::Any;

use crate::config::{DbConfig, RedisConfig};
use crate::secret::Secret;

/// Keeps whatever provides the server alive (a container, later) for the test's duration.
pub struct Guard(#[allow(dead_code)] Option<Box<dyn Any + Send + Sync>>);

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: this test needs a real server (see platform_common::testing::infra)"
        )
    })
}

/// A fresh, empty database on the test server.
pub async fn postgres() -> (DbConfig, Guard) {
    let port: u16 = var("FINCTL_TEST_DB_PORT")
        .parse()
        .expect("FINCTL_TEST_DB_PORT is a port");
    let base = DbConfig {
        host: "127.0.0.1".into(),
        port,
        name: "defaultdb".into(),
        user: "root".into(),
        password: None,
    };
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let pool = crate::db::pool(&base, 1);
    let client = pool
        .get()
        .await
        .expect("connect to the test database server");
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    (DbConfig { name, ..base }, Guard(None))
}

pub async fn redis() -> (RedisConfig, Guard) {
    let url = var("FINCTL_TEST_REDIS_URL");
    (
        RedisConfig {
            address: url.clone(),
            url: Secret::new(url),
        },
        Guard(None),
    )
}

/// `host:port` of a Kafka-compatible broker.
pub async fn kafka() -> (String, Guard) {
    (var("FINCTL_TEST_KAFKA_BROKERS"), Guard(None))
}

/// A name no other test uses, for queues and topics.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}
