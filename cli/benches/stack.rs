//! Benchmark: bringing a stack up, measured against docker-compose and against the
//! critical-path bound, plus no-op `up`, `health`, and finctl's own peak memory, in one run;
//! on two stacks: the platform (offline profile) and a small foreign Compose file.
//!
//! `cargo bench -p finctl --bench stack` (needs Docker and the offline images; missing ones
//! are built first, untimed). It drives the real `finctl` binary of this build and
//! docker-compose on the same files, the same images and the same project, taking the stack
//! down with its volumes before every cold start, so each start begins from nothing (fresh
//! database, fresh IdP seed).
//!
//! The stacks (`FINCTL_BENCH_STACKS`, default `platform,foreign`):
//! - platform: `compose/docker-compose.yml` + `compose/offline.yml` (`--offline`).
//! - foreign: a Compose file of three services in an empty folder, named with `-f`: a one-shot
//!   init, a database whose healthcheck has a 10 s interval and passes after about 2 s, and
//!   an app that depends on both (what a Compose user brings from elsewhere).
//!
//! For each:
//! - finctl: `finctl up`, from nothing until it exits 0 (every service ready); its `--json`
//!   report gives each service's timeline, printed for the median run.
//! - docker-compose: `docker-compose up -d`, then polling Docker every 100 ms until every
//!   service is healthy (one-shots: exited 0), as a script around docker-compose would.
//! - The critical-path bound: each service alone (its dependencies already up, untimed), from
//!   `finctl up SERVICE` to ready; the sum along the longest dependency chain
//!   (`Plan::critical_path_weighted`) is the least any orchestrator could take.
//! - No-op `up` and `health` on the running stack, once Docker has run each healthcheck
//!   (until then `health` runs the `starting` ones itself, which costs what they cost).
//! - Peak memory: the largest resident set of any finctl process above (from `wait4`).
//!
//! `FINCTL_BENCH_ROUNDS` (default 3) sets the number of cold starts of each tool; medians are
//! reported. The stacks are left down at the end. No threshold is asserted: the table shows
//! each ratio next to its target.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use comfy_table::Table;
use comfy_table::presets::UTF8_BORDERS_ONLY;
use finctl_compose::{self as stack, LoadOptions, Plan, Project, Stack};
use finctl_engine::{self as inventory, Engine};
use finctl_orchestrate::status;

const POLL: Duration = Duration::from_millis(100);
const COLD_START_LIMIT: Duration = Duration::from_secs(300);
const QUICK_REPEATS: usize = 5;

/// The foreign stack: nothing of this repository's layout, only Compose.
const FOREIGN: &str = r#"
services:
  init:
    image: finctl/base:bookworm
    command: ["true"]
  db:
    image: finctl/redis:offline
    command: ["sh", "-c", "sleep 2; exec redis-server --port 6379"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 10s
  app:
    image: finctl/base:bookworm
    command: ["sleep", "infinity"]
    restart: unless-stopped
    stop_grace_period: 1s
    depends_on:
      init:
        condition: service_completed_successfully
      db:
        condition: service_healthy
"#;

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let project = Project::locate(Some(&root))?;
    let rounds: usize = std::env::var("FINCTL_BENCH_ROUNDS")
        .ok()
        .map(|r| r.parse())
        .transpose()
        .context("FINCTL_BENCH_ROUNDS must be a whole number")?
        .unwrap_or(3)
        .max(1);
    let wanted = std::env::var("FINCTL_BENCH_STACKS").unwrap_or_else(|_| "platform,foreign".into());
    let runtime = tokio::runtime::Runtime::new()?;
    let engine = runtime.block_on(Engine::connect())?;

    let build_images = |names: &[&str]| -> anyhow::Result<()> {
        eprintln!("preparing: build missing offline images (not timed)");
        let images = Command::new(env!("CARGO_BIN_EXE_finctl"))
            .arg("--project-dir")
            .arg(project.root())
            .args(["-q", "images", "build", "--offline"])
            .args(names)
            .stdin(Stdio::null())
            .status()?;
        ensure!(images.success(), "building the offline images failed");
        Ok(())
    };

    let foreign_dir = tempfile::tempdir()?;
    let mut subjects = Vec::new();
    for name in wanted.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        subjects.push(match name {
            "platform" => {
                build_images(&[])?;
                let stack = stack::load(&LoadOptions::for_project(&project, true, &[]))?;
                Subject {
                    title: "the platform (offline)".into(),
                    before: vec!["--project-dir".into(), project.root().into()],
                    after: vec!["--offline".into()],
                    compose: vec![
                        "-f".into(),
                        project.compose_dir().join("docker-compose.yml").into(),
                        "-f".into(),
                        project.compose_dir().join("offline.yml").into(),
                    ],
                    compose_dir: project.root().to_path_buf(),
                    stack,
                }
            }
            "foreign" => {
                build_images(&["base", "redis"])?;
                let file = foreign_dir.path().join("compose.yml");
                std::fs::write(&file, FOREIGN)?;
                let name = "finctl-bench-foreign".to_owned();
                let stack = stack::load(
                    &LoadOptions::new(vec![file.clone()]).with_project_name(Some(name.clone())),
                )?;
                Subject {
                    title: "a foreign Compose file (3 services, -f)".into(),
                    before: vec![
                        "-f".into(),
                        file.clone().into(),
                        "-p".into(),
                        name.clone().into(),
                    ],
                    after: Vec::new(),
                    compose: vec!["-f".into(), file.into(), "-p".into(), name.into()],
                    compose_dir: foreign_dir.path().to_path_buf(),
                    stack,
                }
            }
            other => bail!("FINCTL_BENCH_STACKS: unknown stack `{other}` (platform, foreign)"),
        });
    }
    let bench = Bench { engine, runtime };
    let mut results = Vec::new();
    for subject in &subjects {
        results.push(bench.measure(subject, rounds)?);
    }

    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "measurement (median)",
        "finctl",
        "baseline",
        "ratio",
        "target",
    ]);
    let mut peak_kib = 0;
    for (subject, result) in subjects.iter().zip(&results) {
        peak_kib = peak_kib.max(result.peak_kib);
        let services = subject.stack.plan(&[])?.order.len();
        let finctl = median(&result.finctl_cold);
        let compose = median(&result.compose_cold);
        table.add_row([
            format!(
                "{}: up from nothing to all {services} ready, vs docker-compose up -d + polling",
                subject.title
            ),
            secs(finctl),
            secs(compose),
            format!("{:.2}x faster", ratio(compose, finctl)),
            "≥ 2x faster".into(),
        ]);
        table.add_row([
            format!(
                "{}: up from nothing, vs the critical-path bound",
                subject.title
            ),
            secs(finctl),
            secs(result.bound),
            format!("{:.2}x the bound", ratio(finctl, result.bound)),
            "≤ 1.3x".into(),
        ]);
        table.add_row([
            format!("{}: no-op up on the running, settled stack", subject.title),
            millis(median(&result.noop_up)),
            String::new(),
            String::new(),
            "< 150 ms".into(),
        ]);
        table.add_row([
            format!("{}: health on the running, settled stack", subject.title),
            millis(median(&result.health)),
            String::new(),
            String::new(),
            "< 200 ms".into(),
        ]);
    }
    table.add_row([
        "finctl peak memory (max RSS of any run)".into(),
        format!("{:.1} MB", peak_kib as f64 / 1024.0),
        String::new(),
        String::new(),
        "< 50 MB".into(),
    ]);
    println!(
        "\nfinctl up vs docker-compose ({rounds} cold starts each, {QUICK_REPEATS} per round of the quick commands)\n{table}"
    );

    for (subject, result) in subjects.iter().zip(&results) {
        let plan = subject.stack.plan(&[])?;
        let mut table = Table::new();
        table.load_preset(UTF8_BORDERS_ONLY).set_header([
            "service",
            "alone: start to ready",
            "on the critical path",
        ]);
        for service in &plan.order {
            table.add_row([
                service.clone(),
                secs(result.alone[service]),
                if result.chain.contains(service) {
                    "yes"
                } else {
                    ""
                }
                .into(),
            ]);
        }
        println!(
            "\n{}: the critical-path bound {} = {}\n{table}",
            subject.title,
            result.chain.join(" -> "),
            secs(result.bound)
        );
        if let Some(timeline) = &result.timeline {
            println!(
                "\n{}: where the median finctl run's time went (seconds since `up` began)\n{timeline}",
                subject.title
            );
        }
        println!(
            "raw (s): finctl {:?}; docker-compose {:?}",
            result
                .finctl_cold
                .iter()
                .map(Duration::as_secs_f64)
                .collect::<Vec<_>>(),
            result
                .compose_cold
                .iter()
                .map(Duration::as_secs_f64)
                .collect::<Vec<_>>()
        );
    }
    Ok(())
}

/// A stack to measure, and how each tool names it.
struct Subject {
    title: String,
    /// finctl's arguments before the command (`--project-dir`, `-f`, `-p`) ...
    before: Vec<OsString>,
    /// ... and after it (`--offline`).
    after: Vec<OsString>,
    /// docker-compose's arguments before its command.
    compose: Vec<OsString>,
    compose_dir: PathBuf,
    stack: Stack,
}

#[derive(Default)]
struct Measured {
    finctl_cold: Vec<Duration>,
    compose_cold: Vec<Duration>,
    noop_up: Vec<Duration>,
    health: Vec<Duration>,
    peak_kib: u64,
    alone: BTreeMap<String, Duration>,
    chain: Vec<String>,
    bound: Duration,
    /// The per-service timeline of the median cold `up`, as a table.
    timeline: Option<String>,
}

struct Bench {
    engine: Engine,
    runtime: tokio::runtime::Runtime,
}

struct Run {
    elapsed: Duration,
    code: i32,
    peak_kib: u64,
    what: String,
    stdout: String,
}

impl Run {
    fn ok(self) -> anyhow::Result<Self> {
        ensure!(self.code == 0, "`{}` exited {}", self.what, self.code);
        Ok(self)
    }
}

impl Bench {
    fn measure(&self, subject: &Subject, rounds: usize) -> anyhow::Result<Measured> {
        let plan = subject.stack.plan(&[])?;
        let mut m = Measured::default();
        self.reset(subject)?;
        let mut reports = Vec::new();
        for round in 1..=rounds {
            eprintln!(
                "{}: round {round}/{rounds}: finctl up from nothing",
                subject.title
            );
            let run = self.finctl(subject, &["--json", "up"], &[])?.ok()?;
            m.peak_kib = m.peak_kib.max(run.peak_kib);
            m.finctl_cold.push(run.elapsed);
            reports.push((run.elapsed, run.stdout));
            eprintln!("  {:.2}s", run.elapsed.as_secs_f64());
            // The quick commands are measured on a settled stack: right after `up`, Docker
            // still says `starting` for services whose first interval has not passed, and
            // `health` then runs those checks itself (the IdP's is a Python script).
            self.wait_settled(subject)?;
            for _ in 0..QUICK_REPEATS {
                let run = self.finctl(subject, &["up"], &[])?.ok()?;
                m.peak_kib = m.peak_kib.max(run.peak_kib);
                m.noop_up.push(run.elapsed);
                let run = self.finctl(subject, &["health"], &[])?.ok()?;
                m.peak_kib = m.peak_kib.max(run.peak_kib);
                m.health.push(run.elapsed);
            }
            self.reset(subject)?;

            eprintln!(
                "{}: round {round}/{rounds}: docker-compose up -d, then poll until healthy",
                subject.title
            );
            let elapsed = self.compose_up(subject)?;
            m.compose_cold.push(elapsed);
            eprintln!("  {:.2}s", elapsed.as_secs_f64());
            self.reset(subject)?;
        }
        reports.sort_by_key(|(elapsed, _)| *elapsed);
        m.timeline = reports
            .get(reports.len() / 2)
            .and_then(|(_, json)| timeline_table(json));

        eprintln!(
            "{}: critical path: each service alone, its dependencies already up",
            subject.title
        );
        for service in &plan.order {
            let dependencies = dependency_closure(&plan, service);
            if !dependencies.is_empty() {
                let names: Vec<&str> = dependencies.iter().map(String::as_str).collect();
                self.finctl(subject, &["up"], &names)?.ok()?;
            }
            let run = self.finctl(subject, &["up"], &[service])?.ok()?;
            m.peak_kib = m.peak_kib.max(run.peak_kib);
            eprintln!("  {service}: {:.2}s", run.elapsed.as_secs_f64());
            m.alone.insert(service.clone(), run.elapsed);
            self.reset(subject)?;
        }
        let (chain, bound) = plan.critical_path_weighted(|s| m.alone[s]);
        m.chain = chain;
        m.bound = bound;
        Ok(m)
    }

    /// Runs this build's finctl binary quietly on `subject`: `command` (global flags such as
    /// `--json` first, then the subcommand), the subject's flags, then `rest`. Its stderr goes
    /// to a log under target/.
    fn finctl(&self, subject: &Subject, command: &[&str], rest: &[&str]) -> anyhow::Result<Run> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_finctl"));
        cmd.args(&subject.before)
            .arg("-q")
            .args(command)
            .args(&subject.after)
            .args(rest);
        run(
            cmd,
            &format!("finctl {} {}", command.join(" "), rest.join(" ")),
        )
    }

    /// Takes the stack down with its volumes, whichever tool started it (both label the
    /// containers with the same Compose project).
    fn reset(&self, subject: &Subject) -> anyhow::Result<()> {
        self.finctl(subject, &["down"], &["--volumes"])?.ok()?;
        Ok(())
    }

    /// Waits (up to a minute) until Docker has run every healthcheck at least once since
    /// the containers started, so none is `starting` any more.
    fn wait_settled(&self, subject: &Subject) -> anyhow::Result<()> {
        self.runtime.block_on(async {
            let start = Instant::now();
            loop {
                let containers =
                    inventory::project_containers(&self.engine, &subject.stack.project_name)
                        .await?;
                if containers
                    .iter()
                    .all(|c| c.health.as_deref() != Some("starting"))
                    || start.elapsed() > Duration::from_secs(60)
                {
                    return Ok(());
                }
                tokio::time::sleep(POLL).await;
            }
        })
    }

    /// `docker-compose up -d` then polling Docker until every service is ready, by Docker's
    /// own health state (no healthcheck is run on demand: that is finctl's advantage).
    fn compose_up(&self, subject: &Subject) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let mut command = Command::new("docker-compose");
        command
            .current_dir(&subject.compose_dir)
            .args(&subject.compose)
            .args(["up", "-d", "--no-build"]);
        run(command, "docker-compose up -d")?.ok()?;
        self.runtime.block_on(async {
            loop {
                let containers =
                    inventory::project_containers(&self.engine, &subject.stack.project_name)
                        .await?;
                let rows = status::rows(&subject.stack, &containers);
                if rows.iter().all(|r| r.ok) {
                    return Ok(start.elapsed());
                }
                if let Some(failed) = rows.iter().find(|r| r.state == "exited" && !r.ok) {
                    bail!(
                        "docker-compose: {} exited {:?}",
                        failed.service,
                        failed.exit_code
                    );
                }
                if start.elapsed() > COLD_START_LIMIT {
                    bail!("docker-compose: not all healthy after {COLD_START_LIMIT:?}");
                }
                tokio::time::sleep(POLL).await;
            }
        })
    }
}

/// `up --json`'s per-service timelines as a table, in the order the services were ready.
fn timeline_table(json: &str) -> Option<String> {
    let report: serde_json::Value = serde_json::from_str(json).ok()?;
    let mut services: Vec<&serde_json::Value> = report["services"].as_array()?.iter().collect();
    services.sort_by_key(|s| s["timeline"]["ready_ms"].as_u64().unwrap_or(u64::MAX));
    let at = |v: &serde_json::Value| {
        v.as_u64()
            .map_or_else(|| "-".to_owned(), |ms| format!("{:.2}", ms as f64 / 1000.0))
    };
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "service",
        "waited on deps",
        "created",
        "started",
        "first probe",
        "ready",
        "bootstrapped",
        "probes",
    ]);
    for s in services {
        let t = &s["timeline"];
        table.add_row([
            s["service"].as_str().unwrap_or_default().to_owned(),
            at(&t["waited_on_dependencies_ms"]),
            at(&t["created_ms"]),
            at(&t["started_ms"]),
            at(&t["first_probe_ms"]),
            at(&t["ready_ms"]),
            at(&t["bootstrapped_ms"]),
            t["probes"].to_string(),
        ]);
    }
    Some(table.to_string())
}

/// Runs `command` to completion with its output in a log file, and measures its wall time and
/// peak resident set (`wait4`'s `ru_maxrss`, which covers this process alone, not its
/// children).
fn run(mut command: Command, what: &str) -> anyhow::Result<Run> {
    let log = log_path();
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    let stdout_file = tempfile::tempfile()?;
    let start = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(stdout_file.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("cannot run `{what}`"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, written by wait4 before it is read; the child is ours and
    // not waited for elsewhere (its `Child` handle is dropped without waiting).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed();
    ensure!(reaped == pid, "wait4 failed for `{what}`");
    drop(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    if code != 0 {
        eprintln!("`{what}` exited {code}; its output is in {}", log.display());
    }
    let mut stdout = String::new();
    {
        use std::io::{Read, Seek};
        let mut file = stdout_file;
        file.rewind()?;
        file.read_to_string(&mut stdout)?;
    }
    Ok(Run {
        elapsed,
        code,
        peak_kib: usage.ru_maxrss as u64,
        what: what.to_owned(),
        stdout,
    })
}

fn log_path() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let _ = std::fs::create_dir_all(&dir);
    dir.join("bench-stack.log")
}

/// Everything `service` waits for, directly or not.
fn dependency_closure(plan: &Plan, service: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = plan.dependencies[service]
        .keys()
        .map(String::as_str)
        .collect();
    while let Some(next) = todo.pop() {
        if seen.insert(next.to_owned()) {
            todo.extend(plan.dependencies[next].keys().map(String::as_str));
        }
    }
    seen
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(f64::EPSILON)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn millis(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}
