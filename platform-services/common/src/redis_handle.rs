//! One Redis client per process, connected lazily so a Redis outage at start does not
//! crash the service (readiness reports it instead).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, RedisError};
use tokio::sync::OnceCell;

use crate::config::{ConfigError, RedisConfig};
use crate::env;

#[derive(Clone)]
pub struct RedisHandle {
    client: Client,
    shared: Arc<OnceCell<ConnectionManager>>,
}

impl RedisHandle {
    pub fn new(cfg: &RedisConfig) -> Result<Self, ConfigError> {
        let client = Client::open(cfg.url.expose().as_str()).map_err(|e| ConfigError::Invalid {
            name: env::REDIS_URL,
            value: "[redacted]".into(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            client,
            shared: Arc::new(OnceCell::new()),
        })
    }

    /// The shared, auto-reconnecting connection for ordinary (non-blocking) commands.
    pub async fn conn(&self) -> Result<ConnectionManager, RedisError> {
        self.shared
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Duration::from_secs(2))
                    .set_response_timeout(Duration::from_secs(3))
                    .set_number_of_retries(2)
                    .set_max_delay(500);
                ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await
            .cloned()
    }

    /// A connection of its own, for blocking commands (`BLMOVE`, `BLPOP`) that would stall
    /// every other user of a shared connection. `block` is the longest block it will issue.
    pub async fn dedicated(&self, block: Duration) -> Result<MultiplexedConnection, RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(block + Duration::from_secs(3));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }
}
