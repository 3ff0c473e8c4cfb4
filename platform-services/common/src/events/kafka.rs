use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::health::{Probe, ProbeFuture};

/// Settings every client shares.
pub fn client_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("socket.timeout.ms", "5000")
        .set("log_level", "4");
    c
}

/// Creates the topics that do not exist yet (brokers here do not auto-create on produce).
pub async fn ensure_topics(brokers: &str, topics: &[&str]) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(brokers).create()?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for r in admin.create_topics(&new, &opts).await? {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(KafkaError::AdminOp(code)).inspect_err(|_| {
                    tracing::warn!(topic = %t, ?code, "could not create topic");
                });
            }
        }
    }
    Ok(())
}

/// Readiness of the broker: a metadata request answered in time.
pub struct KafkaProbe {
    brokers: String,
    client: OnceLock<Arc<BaseConsumer>>,
}

impl KafkaProbe {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            client: OnceLock::new(),
        }
    }
}

impl Probe for KafkaProbe {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let client = match self.client.get() {
                Some(c) => c.clone(),
                None => {
                    let c: BaseConsumer = client_config(&self.brokers)
                        .create()
                        .map_err(|e| e.to_string())?;
                    self.client.get_or_init(|| Arc::new(c)).clone()
                }
            };
            tokio::task::spawn_blocking(move || {
                client
                    .fetch_metadata(None, Duration::from_millis(1500))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())?
        })
    }
}
