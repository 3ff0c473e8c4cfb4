//! The CockroachDB cluster of the compose `cluster` profile: three nodes (`roach1..3`) that
//! start with `--join` and wait until someone runs `cockroach init` once. Bootstrap does that
//! on the first node, then waits until every node is live, so that the databases it creates
//! next are replicated as declared rather than on whichever nodes happened to be up.
//!
//! The commands run inside the node containers through [`Exec`], so this module needs no
//! Cockroach binary and no Docker client of its own (and tests answer as Cockroach does).
//!
//! What the commands answer, as CockroachDB documents it (`cockroach init`, `cockroach node
//! status`, and the "cannot dial server" troubleshooting entry):
//! - `cockroach init` prints `Cluster successfully initialized` and exits 0 the first time;
//!   afterwards it exits 1 with `ERROR: cluster has already been initialized`.
//! - A node that is not listening yet: exit 1, `ERROR: cannot dial server.` / `Is the server
//!   running?` … `connect: connection refused` (or `no such host` while the container's name
//!   is not in DNS yet). Both are worth waiting for.
//! - `cockroach node status --format=csv`: a header
//!   `id,address,sql_address,build,started_at,updated_at,locality,is_available,is_live`
//!   and one row per node that ever joined; a node that is down is listed with
//!   `is_live=false`, one that never joined is not listed at all.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{anyhow, bail};
use async_trait::async_trait;
use tokio::time::Instant;

use crate::{Action, Change};

/// The port every node listens on for RPC and SQL.
pub const PORT: u16 = 26257;

/// Runs a command in a container (`docker exec`, or a fake in tests).
#[async_trait]
pub trait Exec: Send + Sync {
    /// The exit code and the command's stdout and stderr together. `Err` only when the
    /// command could not be run at all (no such container, engine unreachable).
    async fn exec(&self, container: &str, cmd: &[String]) -> anyhow::Result<(i64, String)>;
}

/// Initializes the cluster of `nodes` (container names; the first one runs the commands)
/// once, then waits until all of them are live. `timeout` bounds the whole wait: nodes that
/// are still starting are retried until then.
///
/// Returns the plan row: `Create` when this call initialized the cluster, `Unchanged` when it
/// already was.
pub async fn init_cluster(
    exec: &dyn Exec,
    nodes: &[String],
    timeout: Duration,
) -> anyhow::Result<Change> {
    let Some(first) = nodes.first() else {
        bail!(
            "no CockroachDB node to initialize: the cluster profile names roach1, roach2, roach3"
        );
    };
    let deadline = Instant::now() + timeout;
    let pause = poll_interval(timeout);
    let host = format!("--host={}:{PORT}", host_of(first));

    let init: Vec<String> = ["cockroach", "init", "--insecure", &host]
        .map(String::from)
        .to_vec();
    let action = loop {
        let (code, out) = exec
            .exec(first, &init)
            .await
            .map_err(|e| anyhow!("cannot run `cockroach init` in container {first}: {e:#}"))?;
        if code == 0 {
            break Action::Create;
        }
        if out.contains("cluster has already been initialized") {
            break Action::Unchanged;
        }
        if !not_up_yet(&out) {
            bail!(
                "`{}` in {first} failed (exit {code}): {}",
                init.join(" "),
                last_lines(&out)
            );
        }
        if Instant::now() + pause > deadline {
            bail!(
                "CockroachDB on {first} did not accept `cockroach init` within {}: {}; is the `cluster` profile up (`docker compose --profile cluster ps`)?",
                human(timeout),
                last_lines(&out)
            );
        }
        tokio::time::sleep(pause).await;
    };

    let status: Vec<String> = [
        "cockroach",
        "node",
        "status",
        "--insecure",
        &host,
        "--format=csv",
    ]
    .map(String::from)
    .to_vec();
    let wanted: BTreeSet<&str> = nodes.iter().map(|n| host_of(n)).collect();
    loop {
        let (code, out) = exec.exec(first, &status).await.map_err(|e| {
            anyhow!("cannot run `cockroach node status` in container {first}: {e:#}")
        })?;
        let (live, last) = if code == 0 {
            let live = live_hosts(&out)?;
            let missing: Vec<&str> = wanted
                .iter()
                .copied()
                .filter(|n| !live.contains(*n))
                .collect();
            if missing.is_empty() {
                return Ok(Change::new("database", "cluster", nodes.join(","), action));
            }
            (live, missing.join(", "))
        } else if not_up_yet(&out) {
            (
                BTreeSet::new(),
                wanted.iter().copied().collect::<Vec<_>>().join(", "),
            )
        } else {
            bail!(
                "`{}` in {first} failed (exit {code}): {}",
                status.join(" "),
                last_lines(&out)
            );
        };
        if Instant::now() + pause > deadline {
            let live = if live.is_empty() {
                "none".to_string()
            } else {
                live.into_iter().collect::<Vec<_>>().join(", ")
            };
            bail!(
                "CockroachDB node(s) {last} did not join the cluster within {} (live: {live}); see `docker compose logs {}`",
                human(timeout),
                last.split(", ").next().unwrap_or(first)
            );
        }
        tokio::time::sleep(pause).await;
    }
}

/// Polls often enough to notice a node quickly, rarely enough not to flood the engine.
fn poll_interval(timeout: Duration) -> Duration {
    (timeout / 20).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// The answers of a node that is not listening (or not resolvable) yet.
fn not_up_yet(out: &str) -> bool {
    let lower = out.to_ascii_lowercase();
    [
        "connection refused",
        "cannot dial server",
        "is the server running",
        "no such host",
        "server is not ready",
        "node is not ready",
    ]
    .iter()
    .any(|s| lower.contains(s))
}

/// `roach1:26257` → `roach1`; a name without a port stays as it is.
fn host_of(node: &str) -> &str {
    match node.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => node,
    }
}

/// The hosts of the rows with `is_live` true in `node status --format=csv`. Warnings may come
/// before the header (stdout and stderr are one stream), so the header is searched for.
fn live_hosts(out: &str) -> anyhow::Result<BTreeSet<String>> {
    let mut lines = out.lines().map(str::trim).filter(|l| !l.is_empty());
    let (address, is_live) = lines
        .by_ref()
        .map(split_csv)
        .find_map(|cols| {
            let address = cols.iter().position(|c| c == "address")?;
            let is_live = cols.iter().position(|c| c == "is_live")?;
            Some((address, is_live))
        })
        .ok_or_else(|| {
            anyhow!(
                "`cockroach node status --format=csv` printed no header with address and is_live: {}",
                last_lines(out)
            )
        })?;
    Ok(lines
        .map(split_csv)
        .filter(|row| row.get(is_live).is_some_and(|v| v == "true"))
        .filter_map(|row| row.get(address).map(|a| host_of(a).to_string()))
        .collect())
}

/// One CSV line; quoted fields (a locality such as `"region=eu,zone=a"`) may hold commas.
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    out.push(field);
    out
}

/// The end of a command's output, where Cockroach puts the reason.
fn last_lines(out: &str) -> String {
    let lines: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(4);
    let text = lines[start..].join(" / ");
    if text.is_empty() {
        "no output".to_string()
    } else {
        text
    }
}

fn human(d: Duration) -> String {
    if d.as_secs() >= 1 && d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
