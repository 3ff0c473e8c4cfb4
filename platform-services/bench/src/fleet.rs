//! The fleet under test: the offline infrastructure from `finctl-testkit` and one `serve` and
//! one `worker` container per service image. Every container is removed when its value drops,
//! on success and error paths alike.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bollard::models::{ContainerCreateBody, HostConfig};

use crate::cpus;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, StartContainerOptions,
};
use finctl_engine::Engine;
use futures_util::StreamExt;

/// Short names of the six services; images are `finctl/<name>:latest`.
pub const SERVICES: [&str; 6] = [
    "profile",
    "payment",
    "ledger",
    "wallet",
    "rule-engine",
    "forex",
];

const REDIS_PASSWORD: &str = "bench-secret";

/// PostgreSQL, Redis, Kafka and the IdP, each on a 127.0.0.1 port.
pub struct Infra {
    pub postgres: finctl_testkit::Postgres,
    pub redis: finctl_testkit::Redis,
    pub kafka: finctl_testkit::Kafka,
    pub idp: finctl_testkit::Idp,
}

impl Infra {
    pub async fn start() -> anyhow::Result<Self> {
        let (postgres, redis, kafka, idp) = tokio::try_join!(
            finctl_testkit::postgres(),
            finctl_testkit::redis(REDIS_PASSWORD),
            finctl_testkit::kafka(),
            finctl_testkit::idp(),
        )?;
        Ok(Self {
            postgres,
            redis,
            kafka,
            idp,
        })
    }

    /// One database per service, as in the stack (their migrations are independent).
    pub async fn create_databases(&self) -> anyhow::Result<()> {
        let (client, conn) =
            tokio_postgres::connect(&self.postgres.config(), tokio_postgres::NoTls)
                .await
                .context("connect to the benchmark's PostgreSQL")?;
        let driver = tokio::spawn(conn);
        for svc in SERVICES {
            client
                .batch_execute(&format!("CREATE DATABASE {}", database(svc)))
                .await
                .with_context(|| format!("create database for {svc}"))?;
        }
        driver.abort();
        Ok(())
    }

    /// What `serve` and `worker` of `service` need, pointing at these containers.
    fn env(&self, service: &str, port: u16, rule_engine_port: u16) -> Vec<String> {
        vec![
            format!("PORT={port}"),
            "DB_HOST=127.0.0.1".into(),
            format!("DB_PORT={}", self.postgres.port()),
            format!("DB_NAME={}", database(service)),
            "DB_USER=root".into(),
            format!("REDIS_URL={}", self.redis.url()),
            format!("KAFKA_BROKERS={}", self.kafka.bootstrap()),
            format!("OIDC_ISSUER={}", self.idp.issuer()),
            format!("OIDC_AUDIENCE={}", self.idp.client_id()),
            format!("RULE_ENGINE_URL=http://127.0.0.1:{rule_engine_port}"),
        ]
        .into_iter()
        .chain(
            std::env::var("FLEET_BENCH_WORKER_CONCURRENCY")
                .ok()
                .map(|n| format!("WORKER_CONCURRENCY={n}")),
        )
        // tokio reads it for the size of the services' runtime (default: one per core).
        .chain(
            std::env::var("FLEET_BENCH_SERVICE_THREADS")
                .ok()
                .map(|n| format!("TOKIO_WORKER_THREADS={n}")),
        )
        .collect()
    }
}

fn database(service: &str) -> String {
    format!("bench_{}", service.replace('-', "_"))
}

pub fn image(service: &str) -> String {
    format!("finctl/{service}:latest")
}

/// The service images must exist; building them is `finctl images build`'s job.
pub async fn check_images(engine: &Engine) -> anyhow::Result<()> {
    let mut missing = vec![];
    for svc in SERVICES {
        if engine.api().inspect_image(&image(svc)).await.is_err() {
            missing.push(image(svc));
        }
    }
    anyhow::ensure!(
        missing.is_empty(),
        "missing image(s): {}\nhint: build them with `cargo run -p finctl -- images build`",
        missing.join(", ")
    );
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Serve,
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Serve => "serve",
            Self::Worker => "worker",
        }
    }
}

/// One service container on the host network, so 127.0.0.1 reaches the infrastructure and
/// the benchmark reaches it. Removed on drop.
pub struct ServiceContainer {
    engine: Engine,
    id: String,
    pub name: String,
    pub service: &'static str,
    pub role: Role,
    pub port: u16,
}

/// The 127.0.0.1 port of each service's `serve` and `worker` container.
pub type Ports = HashMap<(&'static str, Role), u16>;

/// Free 127.0.0.1 ports for every container, chosen before any of them starts.
pub fn ports() -> anyhow::Result<Ports> {
    // Hold the listeners until all ports are chosen so no port is handed out twice.
    let mut held = vec![];
    let mut ports = HashMap::new();
    for svc in SERVICES {
        for role in [Role::Serve, Role::Worker] {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            ports.insert((svc, role), l.local_addr()?.port());
            held.push(l);
        }
    }
    Ok(ports)
}

impl ServiceContainer {
    pub async fn start(
        engine: &Engine,
        infra: &Infra,
        service: &'static str,
        role: Role,
        ports: &Ports,
    ) -> anyhow::Result<Self> {
        let port = ports[&(service, role)];
        let name = format!(
            "finctl-bench-{service}-{}-{}",
            role.as_str(),
            std::process::id()
        );
        let body = ContainerCreateBody {
            image: Some(image(service)),
            cmd: Some(vec![role.as_str().to_string()]),
            env: Some(infra.env(service, port, ports[&("rule-engine", Role::Serve)])),
            labels: Some(HashMap::from([(
                finctl_testkit::TEST_LABEL.to_string(),
                std::process::id().to_string(),
            )])),
            host_config: Some(HostConfig {
                network_mode: Some("host".into()),
                cpuset_cpus: cpus::service_core(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let created = engine
            .api()
            .create_container(Some(options), body)
            .await
            .with_context(|| format!("create {name}"))?;
        // From here on the value owns the container, so an early return removes it.
        let container = Self {
            engine: engine.clone(),
            id: created.id,
            name,
            service,
            role,
            port,
        };
        engine
            .api()
            .start_container(&container.id, None::<StartContainerOptions>)
            .await
            .with_context(|| format!("start {}", container.name))?;
        Ok(container)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits for `GET /readiness` to answer 200 (database migrated, Redis and Kafka up).
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()?;
        let url = format!("{}/readiness", self.base_url());
        let started = Instant::now();
        loop {
            let inspect = self.engine.api().inspect_container(&self.id, None).await?;
            if inspect.state.and_then(|s| s.running) != Some(true) {
                anyhow::bail!("{} exited; logs:\n{}", self.name, self.logs().await);
            }
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if started.elapsed() > timeout {
                anyhow::bail!(
                    "{} not ready after {timeout:?}; logs:\n{}",
                    self.name,
                    self.logs().await
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The host PID of the container's main process (the service binary).
    pub async fn pid(&self) -> anyhow::Result<u32> {
        let inspect = self.engine.api().inspect_container(&self.id, None).await?;
        inspect
            .state
            .and_then(|s| s.pid)
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0)
            .with_context(|| format!("{} has no running process", self.name))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    async fn logs(&self) -> String {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail("50")
            .build();
        let mut stream = self.engine.api().logs(&self.id, Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&chunk.to_string());
        }
        text
    }
}

impl Drop for ServiceContainer {
    fn drop(&mut self) {
        finctl_testkit::remove_blocking(self.engine.api(), &self.id);
    }
}
