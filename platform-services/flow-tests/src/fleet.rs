//! The whole fleet on this machine: real Postgres, Redis and tansu (Kafka) containers from
//! `platform_testing::infra`, the in-process test IdP, and every service as separate OS
//! processes of the `fleet` binary (`fleet <service> serve|worker`), several per role where
//! it matters. Any process can be killed with SIGKILL and started again on the same port.
//!
//! Each process writes its stdout and stderr to `<log dir>/<name>.log` (appended across
//! restarts). The folder is printed when the fleet starts and, with the tail of every log, when
//! a test panics; it is removed after a passing test unless `FLOW_KEEP_LOGS=1`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use platform_common::config::DbConfig;
use platform_common::env as service_env;
use platform_testing::{TestIdp, TestKey, infra};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::knobs;

/// Topics of the payment flow (issue 15's contract) that exist before any process starts:
/// tansu does not create topics on produce or subscribe. Every service's own `publishes`
/// (`fleet topics`) and a `<topic>.dlq` for each are added.
pub const FLOW_TOPICS: &[&str] = &[
    "payment.initiated",
    "payment.screened",
    "payment.hold_requested",
    "payment.post_requested",
    "payment.void_requested",
    "payment.completed",
    "payment.failed",
    "forex.converted",
    "forex.conversion_failed",
    "ledger.hold_placed",
    "ledger.hold_failed",
    "ledger.posted",
    "ledger.post_failed",
    "ledger.voided",
];

/// What a process runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// How many processes of each service and role, and extra environment for all of them.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    bin: PathBuf,
    processes: Vec<(&'static str, Role, usize)>,
    extra_env: Vec<(String, String)>,
    ready_timeout: Duration,
}

impl FleetOptions {
    /// The fleet of the flow tests: two payment APIs, one API of every other service; two
    /// payment and two ledger workers, one wallet and one forex worker (`FLOW_PAYMENT_APIS`
    /// and `FLOW_WORKERS` change the twos). `bin` is the `fleet` binary:
    /// `env!("CARGO_BIN_EXE_fleet")` in a test or bench of this crate.
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        let apis = knobs::number(knobs::PAYMENT_APIS, 2usize);
        let workers = knobs::number(knobs::WORKERS, 2usize);
        Self {
            bin: bin.into(),
            processes: vec![
                ("rule-engine", Role::Serve, 1),
                ("profile", Role::Serve, 1),
                ("ledger", Role::Serve, 1),
                ("wallet", Role::Serve, 1),
                ("forex", Role::Serve, 1),
                ("payment", Role::Serve, apis),
                ("ledger", Role::Worker, workers),
                ("wallet", Role::Worker, 1),
                ("forex", Role::Worker, 1),
                ("payment", Role::Worker, workers),
            ],
            extra_env: Vec::new(),
            ready_timeout: Duration::from_secs(120),
        }
    }

    /// `n` processes of `service` in `role` (0 removes them).
    pub fn processes(mut self, service: &'static str, role: Role, n: usize) -> Self {
        self.processes
            .retain(|(s, r, _)| !(*s == service && *r == role));
        if n > 0 {
            self.processes.push((service, role, n));
        }
        self
    }

    /// An environment variable for every process (after the harness's own: it wins).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.extra_env.push((name.to_string(), value.to_string()));
        self
    }

    fn services(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for (s, _, n) in &self.processes {
            if *n > 0 && !out.contains(s) {
                out.push(s);
            }
        }
        out
    }
}

/// One process of the fleet, as the chaos task sees it.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub index: usize,
    /// `<service>-<role>-<n>`, also its log's name.
    pub name: String,
    pub service: &'static str,
    pub role: Role,
    pub port: u16,
}

impl ProcInfo {
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

struct Running {
    child: Option<Child>,
    starts: usize,
}

/// The running fleet; every process is killed when it drops.
pub struct Fleet {
    pub idp: TestIdp,
    pub db: DbConfig,
    pub redis_url: String,
    pub brokers: String,
    bin: PathBuf,
    logs: PathBuf,
    dir: Option<tempfile::TempDir>,
    env: Vec<(String, String)>,
    infos: Vec<ProcInfo>,
    running: Vec<Mutex<Running>>,
    ready_timeout: Duration,
    _infra: Vec<infra::Guard>,
}

impl Fleet {
    /// Starts the infrastructure, creates the topics, applies every service's migrations,
    /// starts every process and waits until each answers `GET /readiness` with 200.
    pub async fn start(opts: FleetOptions) -> anyhow::Result<Self> {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("flow-fleet-")
            .tempdir()
            .context("log folder")?;
        let logs = dir.path().to_path_buf();
        eprintln!("flow-tests: fleet logs in {}", logs.display());

        let ((db, g1), (redis, g2), (brokers, g3), idp) = tokio::join!(
            infra::postgres(),
            infra::redis(),
            infra::kafka(),
            TestIdp::start()
        );
        let redis_url = redis.url.expose().clone();

        // Topics: the flow's, every service's own, and their dead-letter twins.
        let mut topics: Vec<String> = FLOW_TOPICS.iter().map(|t| t.to_string()).collect();
        let listed = Command::new(&opts.bin)
            .arg("topics")
            .output()
            .await
            .context("run `fleet topics`")?;
        anyhow::ensure!(listed.status.success(), "`fleet topics` failed");
        topics.extend(
            String::from_utf8_lossy(&listed.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty()),
        );
        topics.sort();
        topics.dedup();
        let dlq: Vec<String> = topics.iter().map(|t| format!("{t}.dlq")).collect();
        topics.extend(dlq);
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        retry(Duration::from_secs(30), || {
            platform_common::events::ensure_topics(&brokers, &names)
        })
        .await
        .context("create topics")?;

        // Ports first: every process learns every API's address.
        let mut infos = Vec::new();
        for (service, role, n) in &opts.processes {
            for i in 1..=*n {
                infos.push(ProcInfo {
                    index: infos.len(),
                    name: format!("{service}-{}-{i}", role.as_str()),
                    service,
                    role: *role,
                    port: platform_testing::free_port().context("free port")?,
                });
            }
        }
        let rates = logs.join("rates.json");
        std::fs::write(&rates, rates_file()).context("write the forex rates file")?;

        let mut env: Vec<(String, String)> = vec![
            (service_env::DB_HOST.into(), db.host.clone()),
            (service_env::DB_PORT.into(), db.port.to_string()),
            (service_env::DB_NAME.into(), db.name.clone()),
            (service_env::DB_USER.into(), db.user.clone()),
            (service_env::REDIS_URL.into(), redis_url.clone()),
            (service_env::KAFKA_BROKERS.into(), brokers.clone()),
            (
                service_env::RUST_LOG.into(),
                std::env::var(knobs::FLEET_LOG).unwrap_or_else(|_| "info".into()),
            ),
            // The harness migrates once, before anything starts.
            (service_env::MIGRATE_ON_START.into(), "false".into()),
            (
                service_env::FOREX_RATES_FILE.into(),
                rates.display().to_string(),
            ),
            // A killed worker's jobs come back after 5 s rather than 30.
            (service_env::JOB_LEASE_SECONDS.into(), "5".into()),
            (service_env::JOB_BACKOFF_BASE_MS.into(), "200".into()),
            // A killed worker's claimed outbox rows (and later events of their payments) go
            // out after 5 s rather than 30: as long as a payment's hold lasts, a relay crash
            // would otherwise let the hold expire.
            (service_env::OUTBOX_LEASE_MS.into(), "5000".into()),
            // The flow's payers are not KYC-verified: the gate is the payment service's own
            // tests' business; here payments up to the rule engine's limits go through.
            (
                service_env::PAYMENT_KYC_THRESHOLD.into(),
                "1000000000000".into(),
            ),
        ];
        env.extend(idp.env());
        // Service-to-service addresses: the first API process of each service. Variables a
        // service does not read are harmless.
        for service in opts.services() {
            if let Some(api) = infos
                .iter()
                .find(|p| p.service == service && p.role == Role::Serve)
            {
                let var = format!("{}_URL", service.to_uppercase().replace('-', "_"));
                env.push((var, api.base_url()));
            }
        }
        env.extend(opts.extra_env.iter().cloned());

        let running = infos
            .iter()
            .map(|_| {
                Mutex::new(Running {
                    child: None,
                    starts: 0,
                })
            })
            .collect();
        let fleet = Self {
            idp,
            db,
            redis_url,
            brokers,
            bin: opts.bin.clone(),
            logs,
            dir: Some(dir),
            env,
            infos,
            running,
            ready_timeout: opts.ready_timeout,
            _infra: vec![g1, g2, g3],
        };

        if let Err(e) = fleet.start_processes(&opts).await {
            // Keep the logs of a fleet that did not start.
            let mut fleet = fleet;
            if let Some(dir) = fleet.dir.take() {
                let _ = dir.keep();
            }
            return Err(e.context(format!("logs in {}", fleet.logs.display())));
        }
        eprintln!(
            "flow-tests: {} processes ready in {:.1} s",
            fleet.infos.len(),
            started.elapsed().as_secs_f64()
        );
        Ok(fleet)
    }

    async fn start_processes(&self, opts: &FleetOptions) -> anyhow::Result<()> {
        for service in opts.services() {
            self.migrate(service).await?;
        }
        for i in 0..self.infos.len() {
            self.spawn(i).await?;
        }
        let waits = (0..self.infos.len()).map(|i| self.wait_ready(i));
        for r in futures_util::future::join_all(waits).await {
            r?;
        }
        Ok(())
    }

    /// `fleet <service> migrate`, once; its output goes to `migrate-<service>.log`.
    async fn migrate(&self, service: &str) -> anyhow::Result<()> {
        let log = self.logs.join(format!("migrate-{service}.log"));
        let out = std::fs::File::create(&log)?;
        let status = Command::new(&self.bin)
            .args([service, "migrate"])
            .env_clear()
            .envs(base_env())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(out.try_clone()?)
            .stderr(out)
            .status()
            .await?;
        if !status.success() {
            bail!(
                "`fleet {service} migrate` failed ({status}):\n{}",
                tail(&log, 30)
            );
        }
        Ok(())
    }

    async fn spawn(&self, i: usize) -> anyhow::Result<()> {
        let info = &self.infos[i];
        let mut running = self.running[i].lock().await;
        let path = self.log_path(i);
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        running.starts += 1;
        {
            use std::io::Write as _;
            writeln!(
                log,
                "===== flow-tests: start #{} of {} on port {} =====",
                running.starts, info.name, info.port
            )?;
        }
        let service_name = format!("svc-{}", info.name);
        let child = Command::new(&self.bin)
            .args([info.service, info.role.as_str()])
            .env_clear()
            .envs(base_env())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(service_env::PORT, info.port.to_string())
            .env(service_env::SERVICE_NAME, service_name)
            // Static membership: a restarted worker takes its partitions back at once.
            .env(service_env::KAFKA_GROUP_INSTANCE_ID, &info.name)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", info.name))?;
        running.child = Some(child);
        Ok(())
    }

    /// Waits until process `i` answers `GET /readiness` with 200; fails at once if it exits.
    pub async fn wait_ready(&self, i: usize) -> anyhow::Result<()> {
        let info = &self.infos[i];
        let url = format!("{}/readiness", info.base_url());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()?;
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            {
                let mut running = self.running[i].lock().await;
                match running.child.as_mut() {
                    None => bail!("{} is not running", info.name),
                    Some(child) => {
                        if let Some(status) = child.try_wait()? {
                            running.child = None;
                            bail!(
                                "{} exited ({status}) before it was ready:\n{}",
                                info.name,
                                tail(&self.log_path(i), 30)
                            );
                        }
                    }
                }
            }
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not ready after {:?}:\n{}",
                    info.name,
                    self.ready_timeout,
                    tail(&self.log_path(i), 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGKILL (`kill -9`) process `i` and reap it.
    pub async fn kill(&self, i: usize) -> anyhow::Result<()> {
        let mut running = self.running[i].lock().await;
        if let Some(mut child) = running.child.take() {
            // tokio's start_kill is SIGKILL on Unix.
            child.start_kill().ok();
            child.wait().await?;
        }
        Ok(())
    }

    /// `kill -9` process `i` if it runs, start it again (same port, same environment) and
    /// wait until it is ready.
    pub async fn restart(&self, i: usize) -> anyhow::Result<()> {
        self.kill(i).await?;
        self.spawn(i).await?;
        self.wait_ready(i).await
    }

    /// Every process of the fleet.
    pub fn processes(&self) -> &[ProcInfo] {
        &self.infos
    }

    /// The base URLs of `service`'s API processes.
    pub fn urls(&self, service: &str) -> Vec<String> {
        self.infos
            .iter()
            .filter(|p| p.service == service && p.role == Role::Serve)
            .map(ProcInfo::base_url)
            .collect()
    }

    /// How often process `i` has been started.
    pub async fn starts(&self, i: usize) -> usize {
        self.running[i].lock().await.starts
    }

    /// Processes that exited on their own (not killed by the harness): name and exit status.
    pub async fn exited(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, r) in self.running.iter().enumerate() {
            let mut r = r.lock().await;
            if let Some(child) = r.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                out.push((self.infos[i].name.clone(), status.to_string()));
                r.child = None;
            }
        }
        out
    }

    /// A bearer token for `user` (its `sub` and username) with `roles`, valid for an hour.
    pub fn token(&self, user: &str, roles: &[&str]) -> String {
        let mut claims = self.idp.claims(user, roles);
        claims["exp"] = serde_json::json!(jsonwebtoken_now() + 3600);
        platform_testing::sign(&claims, TestKey::A)
    }

    /// A SQL connection to the fleet's database.
    pub async fn sql(&self) -> anyhow::Result<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::connect(
            &format!(
                "host={} port={} user={} dbname={} connect_timeout=5",
                self.db.host, self.db.port, self.db.user, self.db.name
            ),
            tokio_postgres::NoTls,
        )
        .await
        .context("connect to the fleet's database")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// A Redis connection to the fleet's Redis.
    pub async fn redis(&self) -> anyhow::Result<redis::aio::MultiplexedConnection> {
        Ok(redis::Client::open(self.redis_url.as_str())?
            .get_multiplexed_async_connection()
            .await?)
    }

    pub fn log_dir(&self) -> &Path {
        &self.logs
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.logs.join(format!("{}.log", self.infos[i].name))
    }

    /// The last `lines` lines of every process's log.
    pub fn tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for (i, p) in self.infos.iter().enumerate() {
            let _ = writeln!(
                out,
                "----- {} ({}) -----\n{}",
                p.name,
                self.log_path(i).display(),
                tail(&self.log_path(i), lines)
            );
        }
        out
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for r in &self.running {
            if let Ok(mut r) = r.try_lock()
                && let Some(child) = r.child.as_mut()
            {
                let _ = child.start_kill();
            }
        }
        let keep = std::thread::panicking() || knobs::flag(knobs::KEEP_LOGS);
        if std::thread::panicking() {
            eprintln!(
                "flow-tests: the test failed; the fleet's logs are kept in {}\n{}",
                self.logs.display(),
                self.tails(25)
            );
        }
        if keep && let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
    }
}

/// What every process inherits from the test's own environment: nothing that configures a
/// service (DB_HOST and friends of a developer's shell must not leak in).
fn base_env() -> Vec<(String, String)> {
    ["PATH", "HOME", "TMPDIR", "LANG"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect()
}

fn jsonwebtoken_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The bundled reference rates, stamped now: rates are refused when stale.
fn rates_file() -> String {
    serde_json::json!({
        "as_of": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "base": "USD",
        "note": "flow-tests: the bundled reference rates, as of the test's start",
        "rates": {
            "USD": "1.00000000",
            "EUR": "0.92340000",
            "GBP": "0.78910000",
            "CHF": "0.88120000",
            "JPY": "155.12000000",
        }
    })
    .to_string()
}

/// The last `lines` lines of a file (empty when unreadable).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs `f` until it succeeds or `within` has passed (then its last error).
pub async fn retry<T, E, F, Fut>(within: Duration, mut f: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + within;
    let mut delay = Duration::from_millis(100);
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}
