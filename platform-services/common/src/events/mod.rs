//! Domain events on Kafka: one JSON envelope, published through a transactional outbox,
//! consumed idempotently.

mod consumer;
mod envelope;
mod kafka;
mod outbox;
mod relay;

pub use consumer::{ConsumeOutcome, EventHandler, IdempotentConsumer};
pub use envelope::EventEnvelope;
pub use kafka::{KafkaProbe, client_config, ensure_topics};
pub use outbox::{OUTBOX_MIGRATION, record};
pub use relay::OutboxRelay;
