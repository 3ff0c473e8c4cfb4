//! `cargo bench -p fleet-bench --bench fleet`: the fleet benchmark of issue 4.
//! Tables go to stdout (Markdown), progress to stderr. See `platform-services/BENCHMARKS.md`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use finctl_engine::Engine;
use fleet_bench::fleet::{self, Infra, Role, SERVICES, ServiceContainer};
use fleet_bench::http_load::HttpLoad;
use fleet_bench::job_load::JobLoad;
use fleet_bench::report::{self, HttpRun, JobRun, MemoryRow};
use fleet_bench::{cpus, memory, token, wrk};

/// The service whose HTTP API and worker are loaded.
const TARGET_SERVICE: &str = "forex";
const CONNECTIONS: usize = 64;
const WARMUP: Duration = Duration::from_secs(1);
/// Seconds measured per HTTP scenario; `FLEET_BENCH_SECONDS` overrides.
const MEASURE_SECONDS: u64 = 5;
/// Jobs (and PINGs) per job scenario; `FLEET_BENCH_JOBS` overrides.
const JOBS: usize = 2_000;
const JOBS_IN_FLIGHT: usize = 32;
const IDLE: Duration = Duration::from_secs(2);
const READY_TIMEOUT: Duration = Duration::from_secs(180);
const TOKEN_SOURCE: &str =
    "offline Canaille IdP, password grant for `admin` (RS256, JWKS via OIDC discovery)";

fn main() -> ExitCode {
    // Before the runtime starts its threads, so that they inherit the affinity.
    let mut placement = cpus::pin_load_generator();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    match env_or("FLEET_BENCH_CLIENT_THREADS", 0usize) {
        Ok(0) => {}
        Ok(n) => {
            builder.worker_threads(n);
            placement.push_str(&format!("; load generator on {n} thread(s)"));
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Ok(n) = std::env::var("FLEET_BENCH_SERVICE_THREADS") {
        placement.push_str(&format!("; services' runtimes on {n} thread(s)"));
    }
    eprintln!("fleet-bench: {placement}");
    let rt = builder.enable_all().build().expect("tokio runtime");
    let result = rt.block_on(async {
        let run = run(&placement);
        // Interrupting drops `run`'s future, whose containers remove themselves.
        tokio::select! {
            r = run => r,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a number")),
        _ => Ok(default),
    }
}

async fn run(placement: &str) -> anyhow::Result<()> {
    let measure = Duration::from_secs(env_or("FLEET_BENCH_SECONDS", MEASURE_SECONDS)?);
    let jobs = env_or("FLEET_BENCH_JOBS", JOBS)?;
    let engine = Engine::connect().await?;
    fleet::check_images(&engine).await?;
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    eprintln!("fleet-bench: starting PostgreSQL, Redis, tansu and the IdP");
    let infra = Infra::start().await?;
    infra.create_databases().await?;
    let ports = fleet::ports()?;

    eprintln!(
        "fleet-bench: starting {} service containers",
        SERVICES.len()
    );
    let mut serves = vec![];
    for svc in SERVICES {
        serves.push(ServiceContainer::start(&engine, &infra, svc, Role::Serve, &ports).await?);
    }
    futures_util::future::try_join_all(serves.iter().map(|c| c.wait_ready(READY_TIMEOUT))).await?;
    // Workers after their service: `serve` applies the migrations a worker's tasks use.
    eprintln!("fleet-bench: starting {} worker containers", SERVICES.len());
    let mut workers = vec![];
    for svc in SERVICES {
        workers.push(ServiceContainer::start(&engine, &infra, svc, Role::Worker, &ports).await?);
    }
    futures_util::future::try_join_all(workers.iter().map(|c| c.wait_ready(READY_TIMEOUT))).await?;

    eprintln!("fleet-bench: all ready; idling {IDLE:?} before reading memory");
    tokio::time::sleep(IDLE).await;
    let mut memory_rows = vec![];
    for c in serves.iter().chain(&workers) {
        memory_rows.push(MemoryRow {
            service: c.service,
            role: c.role,
            footprint: memory::footprint(c).await?,
        });
    }

    let target = serves
        .iter()
        .find(|c| c.service == TARGET_SERVICE)
        .context("target service not started")?;
    let token = token::password_grant(&infra.idp).await?;
    check_me(target, &token).await?;

    let addr: SocketAddr = ([127, 0, 0, 1], target.port).into();
    let load = |path: &str, bearer: Option<String>| HttpLoad {
        addr,
        path: path.into(),
        bearer,
        connections: CONNECTIONS,
        warmup: WARMUP,
        measure,
        rate: None,
    };
    eprintln!("fleet-bench: GET /health, {CONNECTIONS} connections");
    let health = load("/health", None).run().await?;
    eprintln!("fleet-bench: GET /me, {CONNECTIONS} connections");
    let me = load("/me", Some(token.clone())).run().await?;
    let rate = env_or("FLEET_BENCH_RATE", report::TARGET_REQS)?;
    eprintln!("fleet-bench: GET /me at a fixed {rate} req/s, {CONNECTIONS} connections");
    let me_at_target = HttpLoad {
        rate: Some(rate),
        ..load("/me", Some(token.clone()))
    }
    .run()
    .await?;
    let wrk = if wrk::installed() {
        eprintln!("fleet-bench: the same two with wrk, as a cross-check");
        let health = wrk::run(addr, "/health", None, CONNECTIONS, measure).await?;
        let me = wrk::run(addr, "/me", Some(&token), CONNECTIONS, measure).await?;
        Some((health, me))
    } else {
        eprintln!("fleet-bench: wrk not installed; no cross-check (apt-get install wrk)");
        None
    };
    let http = HttpRun {
        service: TARGET_SERVICE,
        connections: CONNECTIONS,
        measure,
        health,
        me,
        me_at_target,
        rate,
        wrk,
    };

    let job_load = JobLoad {
        redis_url: infra.redis.url(),
        service: TARGET_SERVICE.into(),
        total: jobs,
        in_flight: JOBS_IN_FLIGHT,
    };
    eprintln!("fleet-bench: {jobs} Redis PINGs");
    let ping = job_load.ping_round_trips().await?;
    eprintln!("fleet-bench: {jobs} {TARGET_SERVICE}.echo jobs");
    let echo = job_load.echo_round_trips().await?;
    let jobs_run = JobRun {
        service: TARGET_SERVICE,
        total: jobs,
        in_flight: JOBS_IN_FLIGHT,
        ping,
        echo,
    };
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    println!("# fleet-bench\n");
    println!(
        "{placement}. Load average before: {}, after: {}.\n",
        load_before
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        load_after
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
    println!(
        "## {}\n\n{}\n",
        report::http_title(&http, TOKEN_SOURCE),
        report::http_table(&http)
    );
    println!(
        "## {}\n\n{}\n",
        report::jobs_title(&jobs_run),
        report::jobs_table(&jobs_run)
    );
    println!(
        "## Idle memory: each service image as a container (host network), {}s after /readiness answered 200\n\n{}",
        IDLE.as_secs(),
        report::memory_table(&memory_rows)
    );
    eprintln!("fleet-bench: removing containers");
    Ok(())
}

/// The token works before it is used for load: `/me` names the user, and no token is a 401.
async fn check_me(target: &ServiceContainer, token: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let url = format!("{}/me", target.base_url());
    let resp = http.get(&url).bearer_auth(token).send().await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    anyhow::ensure!(
        status.is_success() && body["user"]["username"] == token::USERNAME,
        "GET /me with the IdP's token answered {status} {body}"
    );
    let anonymous = http.get(&url).send().await?.status();
    anyhow::ensure!(
        anonymous == reqwest::StatusCode::UNAUTHORIZED,
        "GET /me without a token answered {anonymous}, expected 401"
    );
    Ok(())
}
