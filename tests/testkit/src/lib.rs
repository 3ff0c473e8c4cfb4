//! Throwaway infrastructure for tests: the platform's own offline images (PostgreSQL, Redis,
//! the tansu Kafka broker, the Canaille IdP) started as real containers on 127.0.0.1 ports,
//! and removed when their handle drops.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let pg = finctl_testkit::postgres().await?;
//! // e.g. tokio_postgres::connect(&pg.config(), NoTls)
//! assert!(pg.config().starts_with("host=127.0.0.1"));
//! # Ok(()) }
//! ```
//!
//! A missing image is built first by finctl itself (idempotent: an up-to-date image is
//! reused), so a test never depends on a hand-started server.
//!
//! Depends on the engine layer (`finctl-engine`) only: never on the CLI, orchestration or
//! the image builder, so a service crate's tests do not compile them.

mod container;
mod images;

use std::time::Duration;

pub use container::{Container, free_port, remove_blocking};

/// The label every test container carries, so stragglers of a killed run can be found.
pub const TEST_LABEL: &str = "io.finctl.test";

/// PostgreSQL 15 (the CockroachDB stand-in): user `root`, trust auth, database `defaultdb`.
pub struct Postgres {
    pub container: Container,
}

impl Postgres {
    pub fn port(&self) -> u16 {
        self.container.host_port(26257)
    }

    /// A libpq/tokio-postgres key=value connection string.
    pub fn config(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=root dbname=defaultdb connect_timeout=5",
            self.port()
        )
    }

    pub fn url(&self) -> String {
        format!("postgres://root@127.0.0.1:{}/defaultdb", self.port())
    }
}

pub async fn postgres() -> anyhow::Result<Postgres> {
    let container = Container::builder("postgres", "finctl/postgres:offline")
        .port(26257)
        .health(&[
            "pg_isready",
            "-q",
            "-h",
            "127.0.0.1",
            "-p",
            "26257",
            "-U",
            "root",
            "-d",
            "defaultdb",
        ])
        .start()
        .await?;
    container.wait_healthy(Duration::from_secs(60)).await?;
    Ok(Postgres { container })
}

/// Redis with `--requirepass`.
pub struct Redis {
    pub container: Container,
    pub password: String,
}

impl Redis {
    pub fn port(&self) -> u16 {
        self.container.host_port(6379)
    }

    pub fn url(&self) -> String {
        format!("redis://:{}@127.0.0.1:{}/", self.password, self.port())
    }
}

pub async fn redis(password: &str) -> anyhow::Result<Redis> {
    let container = Container::builder("redis", "finctl/redis:offline")
        .port(6379)
        .command(&["redis-server", "--requirepass", password])
        .health(&[
            "sh",
            "-c",
            &format!("redis-cli --no-auth-warning -a '{password}' ping | grep -q PONG"),
        ])
        .start()
        .await?;
    container.wait_healthy(Duration::from_secs(30)).await?;
    Ok(Redis {
        container,
        password: password.to_string(),
    })
}

/// The tansu broker, advertising its 127.0.0.1 address so host clients can follow metadata.
pub struct Kafka {
    pub container: Container,
    port: u16,
}

impl Kafka {
    /// `bootstrap.servers` for a client on this machine.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

pub async fn kafka() -> anyhow::Result<Kafka> {
    kafka_advertising(None).await
}

/// The tansu broker advertising `host:9092` (as the stack's broker advertises `redpanda:9092`,
/// a name only containers resolve), or its 127.0.0.1 address when `host` is None.
pub async fn kafka_advertising(host: Option<&str>) -> anyhow::Result<Kafka> {
    let port = container::free_port()?;
    let advertised = match host {
        Some(host) => format!("tcp://{host}:9092"),
        None => format!("tcp://127.0.0.1:{port}"),
    };
    let container = Container::builder("kafka", "finctl/kafka:offline")
        .fixed_port(9092, port)
        .env("ADVERTISED_LISTENER_URL", &advertised)
        .health(&["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9092"])
        .start()
        .await?;
    container.wait_healthy(Duration::from_secs(30)).await?;
    Ok(Kafka { container, port })
}

/// The Canaille IdP, with its issuer set to the 127.0.0.1 address tests reach it on.
pub struct Idp {
    pub container: Container,
    port: u16,
}

impl Idp {
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `iss` of its tokens (equal to the base URL here).
    pub fn issuer(&self) -> String {
        self.base_url()
    }

    /// The confidential client `finctl bootstrap identity` makes (compose/bootstrap/).
    pub fn client_id(&self) -> &'static str {
        "finctl"
    }

    pub fn client_secret(&self) -> &'static str {
        "finctl-dev-secret"
    }

    /// The image's one seeded client, with which bootstrap configures it.
    pub fn admin_client(&self) -> (&'static str, &'static str) {
        ("finctl-admin", "finctl-admin-dev-secret")
    }
}

pub async fn idp() -> anyhow::Result<Idp> {
    let port = container::free_port()?;
    let container = Container::builder("idp", "finctl/idp:offline")
        .fixed_port(8080, port)
        .env("IDP_ISSUER", &format!("http://127.0.0.1:{port}"))
        .health(&["/usr/local/bin/idp-healthcheck"])
        .start()
        .await?;
    container.wait_healthy(Duration::from_secs(120)).await?;
    Ok(Idp { container, port })
}
