//! Environment variables the test helpers read, in one place.
//!
//! Each names a server already running on 127.0.0.1 to use instead of starting a container.

/// Port of a PostgreSQL server (user root, trust auth).
pub const TEST_DB_PORT: &str = "FINCTL_TEST_DB_PORT";
/// URL of a Redis server, `redis://[:password@]127.0.0.1:port`.
pub const TEST_REDIS_URL: &str = "FINCTL_TEST_REDIS_URL";
/// `host:port[,host:port]` of a Kafka-compatible broker.
pub const TEST_KAFKA_BROKERS: &str = "FINCTL_TEST_KAFKA_BROKERS";
