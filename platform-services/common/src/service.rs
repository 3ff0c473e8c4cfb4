//! The binary every service ships: `serve`, `worker`, `migrate`, `healthcheck`.
//!
//! A service's `main` is one call: `platform_common::service::main(SPEC)`.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use deadpool_postgres::Pool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utoipa::openapi::OpenApi;

use crate::auth::{JwksOptions, TokenVerifier};
use crate::config::{
    self, ConfigError, DbConfig, EnvSource, EventsConfig, HttpConfig, JobConfig, KafkaConfig,
    OidcConfig, OtlpConfig, ProcessEnv, RedisConfig,
};
use crate::events::{KafkaProbe, OutboxRelay, Subscription, ensure_topics};
use crate::health::{PostgresProbe, Readiness, RedisProbe};
use crate::jobs::{JobClient, TaskRegistry, Worker, WorkerOptions, register_smoke_tasks};
use crate::metrics::Metrics;
use crate::migrate::Migration;
use crate::redis_handle::RedisHandle;
use crate::{env, http, migrate, telemetry};

/// What makes one service different from another.
pub struct ServiceSpec {
    /// Short name: `profile`, `rule-engine`, ... (queue `<name>-tasks`, service `svc-<name>`).
    pub name: &'static str,
    pub migrations: &'static [Migration],
    /// Topics the service emits through its outbox; the worker relays them.
    pub publishes: &'static [&'static str],
    /// Whether the worker's own tasks need the database.
    pub worker_uses_db: bool,
    pub openapi: fn() -> OpenApi,
    /// The service's own routes, state applied. Service settings are read here.
    pub routes: fn(&Context) -> Result<Router, ConfigError>,
    /// The service's own tasks, besides `<name>.echo` which every worker has.
    pub tasks: fn(&mut TaskRegistry, &Context),
    /// The events the service consumes: the worker runs each subscription (an
    /// `IdempotentConsumer`, dead-lettering to `<topic>.dlq`), creates its topics and their
    /// dead-letter topics when missing, and stops it on shutdown. `|_| Vec::new()` for none.
    pub consumers: fn(&Context) -> Vec<Subscription>,
}

/// What handlers and tasks get from the platform.
#[derive(Clone)]
pub struct Context {
    /// `svc-<name>` unless `SERVICE_NAME` says otherwise.
    pub service: String,
    pub name: &'static str,
    pub db: Pool,
    pub redis: RedisHandle,
    pub jobs: JobClient,
    pub env: Arc<dyn EnvSource + Send + Sync>,
}

/// What the binary was asked to do: its only argument. Four words need no argument parser,
/// and keeping clap out keeps every service's build (and its tests' build) smaller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    /// Serve the HTTP API on 0.0.0.0:$PORT (the default).
    Serve,
    /// Run background jobs from `<service>-tasks` (and relay the outbox, and consume events).
    Worker,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Exit 0 if GET http://127.0.0.1:$PORT/health answers 200, else 1.
    Healthcheck,
}

/// The usage text printed for `--help` and with a usage error.
fn usage(program: &str) -> String {
    format!(
        "A finctl platform service\n\n\
         Usage: {program} [COMMAND]\n\n\
         Commands:\n  \
         serve        Serve the HTTP API on 0.0.0.0:$PORT (the default)\n  \
         worker       Run background jobs from <service>-tasks (and relay the outbox, and consume events)\n  \
         migrate      Apply pending database migrations and exit\n  \
         healthcheck  Exit 0 if GET http://127.0.0.1:$PORT/health answers 200, else 1\n"
    )
}

/// What the arguments ask for: a command, or help to print (`Ok(None)`); an error names the
/// argument that is not understood.
fn parse_args(args: &[String]) -> Result<Option<Command>, String> {
    match args {
        [] => Ok(Some(Command::Serve)),
        [one] => match one.as_str() {
            "serve" => Ok(Some(Command::Serve)),
            "worker" => Ok(Some(Command::Worker)),
            "migrate" => Ok(Some(Command::Migrate)),
            "healthcheck" => Ok(Some(Command::Healthcheck)),
            "-h" | "--help" | "help" => Ok(None),
            other => Err(format!("unrecognized command `{other}`")),
        },
        [_, extra, ..] => Err(format!("unexpected argument `{extra}`")),
    }
}

/// Errors at the edge, sorted by what the user should do about them.
enum Failure {
    Config(ConfigError),
    Runtime(anyhow::Error),
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::Runtime(e)
    }
}

pub fn main(spec: ServiceSpec) -> ExitCode {
    main_with_args(spec, std::env::args().collect())
}

/// [`main`] with the arguments given rather than read from the process (`args[0]` is the
/// program name): for a binary that hosts several services, such as the flow tests' `fleet`.
pub fn main_with_args(spec: ServiceSpec, args: Vec<String>) -> ExitCode {
    let mut argv = args.into_iter();
    let program = argv.next().unwrap_or_else(|| spec.name.to_owned());
    let args: Vec<String> = argv.collect();
    let command = match parse_args(&args) {
        Ok(Some(command)) => command,
        Ok(None) => {
            print!("{}", usage(&program));
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{}", usage(&program));
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(async {
        match command {
            Command::Serve => serve(&spec).await,
            Command::Worker => worker(&spec).await,
            Command::Migrate => migrate_cmd(&spec).await,
            Command::Healthcheck => return healthcheck().await,
        }
        .map(|()| ExitCode::SUCCESS)
    });
    match result {
        Ok(code) => code,
        Err(Failure::Config(e)) => {
            eprintln!("error: invalid configuration: {e}");
            eprintln!("hint: set the variable in the service's environment (compose file or .env)");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn service_name(env: &dyn EnvSource, spec: &ServiceSpec) -> String {
    env.var(env::SERVICE_NAME)
        .unwrap_or_else(|| format!("svc-{}", spec.name))
}

fn context(
    spec: &ServiceSpec,
    env: Arc<dyn EnvSource + Send + Sync>,
    db: &DbConfig,
    redis: &RedisConfig,
) -> Result<Context, ConfigError> {
    let redis = RedisHandle::new(redis)?;
    Ok(Context {
        service: service_name(env.as_ref(), spec),
        name: spec.name,
        db: crate::db::pool(db, 16),
        jobs: JobClient::new(spec.name, redis.clone()),
        redis,
        env,
    })
}

async fn serve(spec: &ServiceSpec) -> Result<(), Failure> {
    let env: Arc<dyn EnvSource + Send + Sync> = Arc::new(ProcessEnv);
    let http_cfg = HttpConfig::from_env(env.as_ref())?;
    let db_cfg = DbConfig::from_env(env.as_ref())?;
    let redis_cfg = RedisConfig::from_env(env.as_ref())?;
    let kafka_cfg = KafkaConfig::from_env(env.as_ref())?;
    let oidc = OidcConfig::from_env(env.as_ref())?;
    let otlp = OtlpConfig::from_env(env.as_ref())?;
    let migrate_on_start = config::flag(env.as_ref(), env::MIGRATE_ON_START, true)?;
    let ctx = context(spec, env.clone(), &db_cfg, &redis_cfg)?;
    let telemetry = telemetry::init(&ctx.service, otlp.as_ref())?;
    let served = serve_http(spec, &ctx, &http_cfg, &kafka_cfg, &oidc, migrate_on_start).await;
    telemetry.shutdown().await;
    served
}

/// The HTTP API, until SIGTERM or Ctrl-C.
async fn serve_http(
    spec: &ServiceSpec,
    ctx: &Context,
    http_cfg: &HttpConfig,
    kafka_cfg: &KafkaConfig,
    oidc: &OidcConfig,
    migrate_on_start: bool,
) -> Result<(), Failure> {
    let routes = (spec.routes)(ctx)?;

    let migrated = Arc::new(AtomicBool::new(!migrate_on_start));
    if migrate_on_start {
        tokio::spawn(migrate_until_done(
            ctx.db.clone(),
            spec.name,
            spec.migrations,
            migrated.clone(),
        ));
    }
    let readiness = Readiness::new(ctx.service.clone())
        .with(PostgresProbe {
            pool: ctx.db.clone(),
            migrated,
        })
        .with(RedisProbe(ctx.redis.clone()))
        .with(KafkaProbe::new(kafka_cfg.brokers.clone()));
    let verifier = TokenVerifier::new(oidc, JwksOptions::default());
    let app = http::router(
        http::Platform {
            service: ctx.service.clone(),
            verifier: Arc::new(verifier),
            readiness: Arc::new(readiness),
            metrics: Arc::new(Metrics::new(&ctx.service)),
        },
        routes,
        http::openapi(&ctx.service, (spec.openapi)()),
    );
    let addr = std::net::SocketAddr::from(([0, 0, 0, 0], http_cfg.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    tracing::info!(%addr, issuer = %oidc.issuer, "serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| anyhow::anyhow!("server failed: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

async fn migrate_until_done(
    pool: Pool,
    name: &'static str,
    migrations: &'static [Migration],
    done: Arc<AtomicBool>,
) {
    let mut delay = Duration::from_millis(500);
    loop {
        match migrate::run(&pool, name, migrations).await {
            Ok(_) => {
                done.store(true, Ordering::Release);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "migrations not applied yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn worker(spec: &ServiceSpec) -> Result<(), Failure> {
    let env: Arc<dyn EnvSource + Send + Sync> = Arc::new(ProcessEnv);
    let http_cfg = HttpConfig::from_env(env.as_ref())?;
    let redis_cfg = RedisConfig::from_env(env.as_ref())?;
    let job_cfg = JobConfig::from_env(env.as_ref())?;
    let events_cfg = EventsConfig::from_env(env.as_ref())?;
    let db_env = DbConfig::from_env(env.as_ref());
    // Without DB settings, a pool that is never used: building it does not connect.
    let db_cfg = db_env.as_ref().cloned().unwrap_or(DbConfig {
        host: "unused".into(),
        port: 26257,
        name: "unused".into(),
        user: "unused".into(),
        password: None,
    });
    let otlp = OtlpConfig::from_env(env.as_ref())?;
    let ctx = context(spec, env.clone(), &db_cfg, &redis_cfg)?;
    let subscriptions = (spec.consumers)(&ctx);
    let needs_db = spec.worker_uses_db || !spec.publishes.is_empty() || !subscriptions.is_empty();
    if needs_db {
        db_env?;
    }
    let kafka_cfg = if spec.publishes.is_empty() && subscriptions.is_empty() {
        None
    } else {
        Some(KafkaConfig::from_env(env.as_ref())?)
    };
    let telemetry = telemetry::init(&ctx.service, otlp.as_ref())?;
    let worked = work(
        spec,
        &ctx,
        &http_cfg,
        &job_cfg,
        kafka_cfg.as_ref().map(|k| (k, &events_cfg, subscriptions)),
        needs_db,
    )
    .await;
    telemetry.shutdown().await;
    worked
}

/// Jobs, the event runtime (relay and consumers, when the service publishes or consumes)
/// and the health routes, until SIGTERM or Ctrl-C.
async fn work(
    spec: &ServiceSpec,
    ctx: &Context,
    http_cfg: &HttpConfig,
    job_cfg: &JobConfig,
    events: Option<(&KafkaConfig, &EventsConfig, Vec<Subscription>)>,
    needs_db: bool,
) -> Result<(), Failure> {
    let metrics = Arc::new(Metrics::new(&ctx.service));
    let mut tasks = TaskRegistry::default();
    register_smoke_tasks(&mut tasks, spec.name);
    (spec.tasks)(&mut tasks, ctx);

    let mut readiness = Readiness::new(ctx.service.clone()).with(RedisProbe(ctx.redis.clone()));
    if needs_db {
        readiness = readiness.with(PostgresProbe {
            pool: ctx.db.clone(),
            migrated: Arc::new(AtomicBool::new(true)),
        });
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut background = tokio::task::JoinSet::new();
    let events = match events {
        Some((kafka, events_cfg, subscriptions)) => {
            readiness = readiness.with(KafkaProbe::new(kafka.brokers.clone()));
            Some(EventRuntime::start_with(
                ctx,
                spec.publishes,
                subscriptions,
                kafka,
                events_cfg,
            )?)
        }
        None => None,
    };
    let health = worker_health_router(ctx.service.clone(), Arc::new(readiness), metrics.clone());
    let addr = std::net::SocketAddr::from(([0, 0, 0, 0], http_cfg.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    background.spawn({
        let rx = stop_rx.clone();
        async move {
            let _ = axum::serve(listener, health)
                .with_graceful_shutdown(stopped(rx))
                .await;
        }
    });

    let worker = Worker::new(
        spec.name,
        ctx.redis.clone(),
        tasks,
        WorkerOptions::from(job_cfg),
    )
    .with_metrics(metrics);
    worker
        .run(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        })
        .await;
    let grace = Duration::from_secs(5);
    let _ = tokio::time::timeout(grace, async {
        if let Some(events) = events {
            events.stop(grace).await;
        }
        while background.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// The event side of a worker: the outbox relay when the service publishes, and one
/// consumer per subscription, each a task until [`EventRuntime::stop`].
pub struct EventRuntime {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: tokio::task::JoinSet<()>,
}

impl EventRuntime {
    /// Starts what a worker of `spec` runs besides jobs: the relay of `spec.publishes`
    /// (whose topics are created when missing) and every subscription of `spec.consumers`.
    pub fn start(
        spec: &ServiceSpec,
        ctx: &Context,
        kafka: &KafkaConfig,
        events: &EventsConfig,
    ) -> anyhow::Result<Self> {
        Self::start_with(ctx, spec.publishes, (spec.consumers)(ctx), kafka, events)
    }

    fn start_with(
        ctx: &Context,
        publishes: &'static [&'static str],
        subscriptions: Vec<Subscription>,
        kafka: &KafkaConfig,
        events: &EventsConfig,
    ) -> anyhow::Result<Self> {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        if !publishes.is_empty() {
            let brokers = kafka.brokers.clone();
            tasks.spawn(async move {
                // Bootstrap creates topics; this is a safety net for a fresh broker.
                if let Err(e) = ensure_topics(&brokers, publishes).await {
                    tracing::warn!(error = %e, "could not ensure topics exist");
                }
            });
            let relay = OutboxRelay::new(ctx.db.clone(), &kafka.brokers)
                .map_err(|e| anyhow::anyhow!("kafka producer: {e}"))?
                .with_poll(events.outbox_poll)
                .with_lease(events.outbox_lease);
            tasks.spawn(relay.run(stopped(rx.clone())));
        }
        for subscription in subscriptions {
            let consumer = subscription
                .consumer(ctx.db.clone())
                .with_max_attempts(events.max_attempts)
                .with_group_instance_id(events.group_instance_id.clone());
            let topics = subscription.topics();
            let brokers = kafka.brokers.clone();
            let rx = rx.clone();
            tasks.spawn(async move {
                let name = consumer.name().to_owned();
                tracing::info!(consumer = %name, ?topics, "consuming");
                if let Err(e) = consumer.run(&brokers, topics, stopped(rx)).await {
                    tracing::error!(consumer = %name, error = %e, "event consumer stopped");
                }
            });
        }
        Ok(Self { stop, tasks })
    }

    /// Tells every task to stop, and waits for them at most `grace` (then aborts them).
    pub async fn stop(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.shutdown().await;
    }
}

/// Workers answer `/health`, `/readiness` and `/metrics` too, so one image healthcheck fits both.
fn worker_health_router(
    service: String,
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
) -> Router {
    let s = service.clone();
    Router::new()
        .route(
            "/health",
            get(move || {
                let s = s.clone();
                async move { axum::Json(serde_json::json!({"status": "ok", "service": s})) }
            }),
        )
        .route(
            "/readiness",
            get(move || {
                let r = readiness.clone();
                async move {
                    let report = r.report().await;
                    let code = if report.ready() {
                        axum::http::StatusCode::OK
                    } else {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    };
                    (code, axum::Json(report))
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        m.render(),
                    )
                }
            }),
        )
}

async fn migrate_cmd(spec: &ServiceSpec) -> Result<(), Failure> {
    let db_cfg = DbConfig::from_env(&ProcessEnv)?;
    // Nothing here is traced: logs only.
    let _logs_only = telemetry::init(&format!("svc-{}", spec.name), None)?;
    let pool = crate::db::pool(&db_cfg, 1);
    let applied = migrate::run(&pool, spec.name, spec.migrations)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "migrating {} on {}:{}/{}: {e}",
                spec.name,
                db_cfg.host,
                db_cfg.port,
                db_cfg.name
            )
        })?;
    println!(
        "{}: {} migration(s) applied, {} known",
        spec.name,
        applied.len(),
        spec.migrations.len()
    );
    Ok(())
}

/// `GET /health` over a raw socket: images have no curl, and this needs no HTTP client.
async fn healthcheck() -> Result<ExitCode, Failure> {
    let cfg = HttpConfig::from_env(&ProcessEnv)?;
    Ok(probe_health(cfg.port).await)
}

/// Exit 0 if `GET http://127.0.0.1:<port>/health` answers 200 within 3 s, else 1 with the
/// reason on stderr: the `healthcheck` command of every image (the services', the gateway's).
pub async fn probe_health(port: u16) -> ExitCode {
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf[..n]).to_string())
    };
    match tokio::time::timeout(Duration::from_secs(3), probe).await {
        Ok(Ok(head)) if head.split_whitespace().nth(1) == Some("200") => ExitCode::SUCCESS,
        Ok(Ok(head)) => {
            eprintln!("unhealthy: {}", head.lines().next().unwrap_or(""));
            ExitCode::from(1)
        }
        Ok(Err(e)) => {
            eprintln!("unhealthy: {e}");
            ExitCode::from(1)
        }
        Err(_) => {
            eprintln!("unhealthy: no answer within 3s");
            ExitCode::from(1)
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown requested");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Command>, String> {
        parse_args(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn the_command_is_the_one_argument_and_serve_by_default() {
        assert_eq!(parse(&[]), Ok(Some(Command::Serve)));
        assert_eq!(parse(&["serve"]), Ok(Some(Command::Serve)));
        assert_eq!(parse(&["worker"]), Ok(Some(Command::Worker)));
        assert_eq!(parse(&["migrate"]), Ok(Some(Command::Migrate)));
        assert_eq!(parse(&["healthcheck"]), Ok(Some(Command::Healthcheck)));
        assert_eq!(parse(&["--help"]), Ok(None));
    }

    #[test]
    fn anything_else_is_named_in_the_error() {
        assert_eq!(
            parse(&["wrker"]),
            Err("unrecognized command `wrker`".to_owned())
        );
        assert_eq!(
            parse(&["worker", "--now"]),
            Err("unexpected argument `--now`".to_owned())
        );
        assert!(usage("wallet").contains("Usage: wallet [COMMAND]"));
    }
}
