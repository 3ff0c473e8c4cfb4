//! Readiness: each dependency probed concurrently, with a time limit, reported by name.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use serde::Serialize;
use utoipa::ToSchema;

use crate::redis_handle::RedisHandle;

pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// One dependency check.
pub trait Probe: Send + Sync {
    fn name(&self) -> &'static str;
    fn check(&self) -> ProbeFuture<'_>;
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckReport {
    /// `up` or `down`.
    pub status: &'static str,
    pub latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessReport {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    pub service: String,
    pub checks: BTreeMap<&'static str, CheckReport>,
}

impl ReadinessReport {
    pub fn ready(&self) -> bool {
        self.status == "ready"
    }
}

pub struct Readiness {
    service: String,
    probes: Vec<Arc<dyn Probe>>,
    timeout: Duration,
}

impl Readiness {
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            probes: Vec::new(),
            timeout: Duration::from_secs(2),
        }
    }

    pub fn with(mut self, probe: impl Probe + 'static) -> Self {
        self.probes.push(Arc::new(probe));
        self
    }

    pub async fn report(&self) -> ReadinessReport {
        let checks = futures_util::future::join_all(self.probes.iter().map(|p| async move {
            let start = Instant::now();
            let outcome = match tokio::time::timeout(self.timeout, p.check()).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {:?}", self.timeout)),
            };
            let latency_ms = start.elapsed().as_millis() as u64;
            let report = match outcome {
                Ok(()) => CheckReport {
                    status: "up",
                    latency_ms,
                    error: None,
                },
                Err(e) => CheckReport {
                    status: "down",
                    latency_ms,
                    error: Some(e),
                },
            };
            (p.name(), report)
        }))
        .await;
        let all_up = checks.iter().all(|(_, c)| c.status == "up");
        ReadinessReport {
            status: if all_up { "ready" } else { "not_ready" },
            service: self.service.clone(),
            checks: checks.into_iter().collect(),
        }
    }
}

pub struct PostgresProbe {
    pub pool: Pool,
    /// False until this process has applied (or found applied) its migrations.
    pub migrated: Arc<AtomicBool>,
}

impl Probe for PostgresProbe {
    fn name(&self) -> &'static str {
        "database"
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(|e| e.to_string())?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| e.to_string())?;
            if !self.migrated.load(Ordering::Acquire) {
                return Err("migrations not applied yet".into());
            }
            Ok(())
        })
    }
}

pub struct RedisProbe(pub RedisHandle);

impl Probe for RedisProbe {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let mut c = self.0.conn().await.map_err(|e| e.to_string())?;
            let pong: String = redis::cmd("PING")
                .query_async(&mut c)
                .await
                .map_err(|e| e.to_string())?;
            if pong == "PONG" {
                Ok(())
            } else {
                Err(format!("unexpected reply {pong:?}"))
            }
        })
    }
}

/// A probe that always answers the same; for tests and for optional dependencies.
pub struct StaticProbe(pub &'static str, pub Result<(), String>);

impl Probe for StaticProbe {
    fn name(&self) -> &'static str {
        self.0
    }

    fn check(&self) -> ProbeFuture<'_> {
        let r = self.1.clone();
        Box::pin(async move { r })
    }
}
