//! Benchmark: bringing the offline stack up, measured against docker-compose and against the
//! critical-path bound, plus no-op `up`, `health`, and finctl's own peak memory, in one run.
//!
//! `cargo bench -p finctl --bench stack` (needs Docker and the offline images; missing ones
//! are built first, untimed). It drives the real `finctl` binary of this build and
//! docker-compose on the same files (`compose/docker-compose.yml` + `compose/offline.yml`),
//! the same images and the same project, taking the stack down with its volumes before every
//! cold start, so each start begins from nothing (fresh database, fresh IdP seed).
//!
//! - finctl: `finctl up --offline`, from nothing until it exits 0 (every service ready).
//! - docker-compose: `docker-compose up -d`, then polling Docker every 100 ms until every
//!   service is healthy (one-shots: exited 0), as a script around docker-compose would.
//! - The critical-path bound: each service alone (its dependencies already up, untimed), from
//!   `finctl up --offline SERVICE` to ready; the sum along the longest dependency chain
//!   (`Plan::critical_path_weighted`) is the least any orchestrator could take.
//! - No-op `up` and `health` on the running stack, once Docker has run each healthcheck
//!   (until then `health` runs the `starting` ones itself, which costs what they cost).
//! - Peak memory: the largest resident set of any finctl process above (from `wait4`).
//!
//! `FINCTL_BENCH_ROUNDS` (default 3) sets the number of cold starts of each tool; medians are
//! reported. The stack is left down at the end. No threshold is asserted: the table shows
//! each ratio next to its target.

use std::collections::{BTreeMap, BTreeSet};
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

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let project = Project::locate(Some(&root))?;
    let stack = stack::load(&LoadOptions::for_project(&project, true, &[]))?;
    let plan = stack.plan(&[])?;
    let rounds: usize = std::env::var("FINCTL_BENCH_ROUNDS")
        .ok()
        .map(|r| r.parse())
        .transpose()
        .context("FINCTL_BENCH_ROUNDS must be a whole number")?
        .unwrap_or(3)
        .max(1);
    let runtime = tokio::runtime::Runtime::new()?;
    let bench = Bench {
        root: project.root().to_path_buf(),
        stack,
        engine: runtime.block_on(Engine::connect())?,
        runtime,
    };

    eprintln!("preparing: build missing offline images, take the stack down (not timed)");
    bench.finctl(&["images", "build", "--offline"])?.ok()?;
    bench.reset()?;

    let mut finctl_cold = Vec::new();
    let mut compose_cold = Vec::new();
    let mut noop_up = Vec::new();
    let mut health = Vec::new();
    let mut peak_kib = 0;
    for round in 1..=rounds {
        eprintln!("round {round}/{rounds}: finctl up --offline from nothing");
        let run = bench.finctl(&["up", "--offline"])?.ok()?;
        peak_kib = peak_kib.max(run.peak_kib);
        finctl_cold.push(run.elapsed);
        eprintln!("  {:.2}s", run.elapsed.as_secs_f64());
        // The quick commands are measured on a settled stack: right after `up`, Docker still
        // says `starting` for services whose first interval has not passed, and `health`
        // then runs those checks itself (the IdP's is a Python script: a few hundred ms).
        bench.wait_settled()?;
        for _ in 0..QUICK_REPEATS {
            let run = bench.finctl(&["up", "--offline"])?.ok()?;
            peak_kib = peak_kib.max(run.peak_kib);
            noop_up.push(run.elapsed);
            let run = bench.finctl(&["health", "--offline"])?.ok()?;
            peak_kib = peak_kib.max(run.peak_kib);
            health.push(run.elapsed);
        }
        bench.reset()?;

        eprintln!("round {round}/{rounds}: docker-compose up -d, then poll until healthy");
        let elapsed = bench.compose_up()?;
        compose_cold.push(elapsed);
        eprintln!("  {:.2}s", elapsed.as_secs_f64());
        bench.reset()?;
    }

    eprintln!("critical path: each service alone, its dependencies already up");
    let mut alone = BTreeMap::new();
    for service in &plan.order {
        let dependencies = dependency_closure(&plan, service);
        if !dependencies.is_empty() {
            let mut args = vec!["up", "--offline"];
            args.extend(dependencies.iter().map(String::as_str));
            bench.finctl(&args)?.ok()?;
        }
        let run = bench.finctl(&["up", "--offline", service])?.ok()?;
        peak_kib = peak_kib.max(run.peak_kib);
        eprintln!("  {service}: {:.2}s", run.elapsed.as_secs_f64());
        alone.insert(service.clone(), run.elapsed);
        bench.reset()?;
    }
    let (chain, bound) = plan.critical_path_weighted(|s| alone[s]);

    let finctl = median(&finctl_cold);
    let compose = median(&compose_cold);
    let noop = median(&noop_up);
    let health = median(&health);
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "measurement (median)",
        "finctl",
        "baseline",
        "ratio",
        "target",
    ]);
    table.add_row([
        format!(
            "up from nothing to all {} ready, vs docker-compose up -d + polling",
            plan.order.len()
        ),
        secs(finctl),
        secs(compose),
        format!("{:.2}x faster", ratio(compose, finctl)),
        "≥ 2x faster".into(),
    ]);
    table.add_row([
        "up from nothing, vs the critical-path bound".into(),
        secs(finctl),
        secs(bound),
        format!("{:.2}x the bound", ratio(finctl, bound)),
        "≤ 1.3x".into(),
    ]);
    table.add_row([
        "no-op up on the running, settled stack".into(),
        millis(noop),
        String::new(),
        String::new(),
        "< 1 s".into(),
    ]);
    table.add_row([
        "health on the running, settled stack".into(),
        millis(health),
        String::new(),
        String::new(),
        "< 200 ms".into(),
    ]);
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

    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "service",
        "alone: start to ready",
        "on the critical path",
    ]);
    for service in &plan.order {
        table.add_row([
            service.clone(),
            secs(alone[service]),
            if chain.contains(service) { "yes" } else { "" }.into(),
        ]);
    }
    println!(
        "\nThe critical-path bound: {} = {}\n{table}",
        chain.join(" -> "),
        secs(bound)
    );
    println!(
        "\nraw (s): finctl {:?}; docker-compose {:?}",
        finctl_cold
            .iter()
            .map(Duration::as_secs_f64)
            .collect::<Vec<_>>(),
        compose_cold
            .iter()
            .map(Duration::as_secs_f64)
            .collect::<Vec<_>>()
    );
    Ok(())
}

struct Bench {
    root: PathBuf,
    stack: Stack,
    engine: Engine,
    runtime: tokio::runtime::Runtime,
}

struct Run {
    elapsed: Duration,
    code: i32,
    peak_kib: u64,
    what: String,
}

impl Run {
    fn ok(self) -> anyhow::Result<Self> {
        ensure!(self.code == 0, "`{}` exited {}", self.what, self.code);
        Ok(self)
    }
}

impl Bench {
    /// Runs this build's finctl binary quietly; its output goes to a log under target/.
    fn finctl(&self, args: &[&str]) -> anyhow::Result<Run> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_finctl"));
        command
            .arg("--project-dir")
            .arg(&self.root)
            .arg("-q")
            .args(args);
        run(command, &format!("finctl {}", args.join(" ")))
    }

    fn compose(&self) -> Command {
        let compose = self.root.join("compose");
        let mut command = Command::new("docker-compose");
        command
            .current_dir(&self.root)
            .arg("-f")
            .arg(compose.join("docker-compose.yml"))
            .arg("-f")
            .arg(compose.join("offline.yml"));
        command
    }

    /// Takes the stack down with its volumes, whichever tool started it (both label the
    /// containers with the same Compose project).
    fn reset(&self) -> anyhow::Result<()> {
        self.finctl(&["down", "--offline", "--volumes"])?.ok()?;
        Ok(())
    }

    /// Waits (up to a minute) until Docker has run every healthcheck at least once since
    /// the containers started, so none is `starting` any more.
    fn wait_settled(&self) -> anyhow::Result<()> {
        self.runtime.block_on(async {
            let start = Instant::now();
            loop {
                let containers =
                    inventory::project_containers(&self.engine, &self.stack.project_name).await?;
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
    fn compose_up(&self) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let mut command = self.compose();
        command.args(["up", "-d", "--no-build"]);
        run(command, "docker-compose up -d")?.ok()?;
        self.runtime.block_on(async {
            loop {
                let containers =
                    inventory::project_containers(&self.engine, &self.stack.project_name).await?;
                let rows = status::rows(&self.stack, &containers);
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

/// Runs `command` to completion with its output in a log file, and measures its wall time and
/// peak resident set (`wait4`'s `ru_maxrss`, which covers this process alone, not its
/// children).
fn run(mut command: Command, what: &str) -> anyhow::Result<Run> {
    let log = log_path();
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    let start = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
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
    Ok(Run {
        elapsed,
        code,
        peak_kib: usage.ru_maxrss as u64,
        what: what.to_owned(),
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
