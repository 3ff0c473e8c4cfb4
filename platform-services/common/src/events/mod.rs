//! Domain events on Kafka: one JSON envelope, published through a transactional outbox,
//! consumed idempotently; an event that keeps failing goes to `<topic>.dlq`.

mod consumer;
mod envelope;
mod kafka;
mod outbox;
mod relay;

pub use consumer::{
    BoxedHandler, ConsumeOutcome, DEFAULT_MAX_ATTEMPTS, EventHandler, IdempotentConsumer,
    Subscription, dlq_header, dlq_topic,
};
pub use envelope::EventEnvelope;
pub use kafka::{KafkaProbe, client_config, ensure_topics};
pub use outbox::{OUTBOX_MIGRATION, record};
pub use relay::{OutboxRelay, RelayError};
