//! `wrk`, the seeds' load generator, as a cross-check of [`crate::http_load`]: the same
//! endpoint, connections and duration, measured by a C event loop instead of our own
//! client. Skipped when `wrk` is not installed (`apt-get install wrk`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;

use crate::latency::Outcome;

/// wrk's threads: one, so the server keeps the other core.
pub const THREADS: usize = 1;

pub fn installed() -> bool {
    std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok()
}

/// `wrk -t1 -c<connections> -d<measure> --latency [-H Authorization] http://<addr><path>`.
pub async fn run(
    addr: SocketAddr,
    path: &str,
    bearer: Option<&str>,
    connections: usize,
    measure: Duration,
) -> anyhow::Result<Outcome> {
    let mut cmd = tokio::process::Command::new("wrk");
    cmd.arg(format!("-t{THREADS}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", measure.as_secs().max(1)))
        .arg("--latency");
    if let Some(t) = bearer {
        cmd.arg("-H").arg(format!("Authorization: Bearer {t}"));
    }
    let out = cmd
        .arg(format!("http://{addr}{path}"))
        .output()
        .await
        .context("run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "wrk failed ({}): {text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&text).with_context(|| format!("unexpected wrk output:\n{text}"))
}

/// Reads requests, duration, non-2xx count and the 50 % / 99 % latencies from wrk 4's report.
pub fn parse(report: &str) -> anyhow::Result<Outcome> {
    let mut ops = None;
    let mut elapsed = None;
    let mut errors = 0;
    let (mut p50, mut p99) = (None, None);
    for line in report.lines().map(str::trim) {
        if let Some((n, rest)) = line.split_once(" requests in ") {
            ops = Some(n.trim().parse::<usize>()?);
            elapsed = Some(duration(rest.split(',').next().unwrap_or(""))?);
        } else if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors = n.trim().parse()?;
        } else if let Some(v) = line.strip_prefix("50%") {
            p50 = Some(duration(v.trim())?);
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = Some(duration(v.trim())?);
        }
    }
    Ok(Outcome {
        ops: ops.context("no `N requests in T` line")?,
        errors,
        elapsed: elapsed.context("no duration")?,
        p50: p50.context("no 50% line (was --latency given?)")?,
        p99: p99.context("no 99% line (was --latency given?)")?,
    })
}

/// wrk's units: `us`, `ms`, `s`, `m`.
fn duration(v: &str) -> anyhow::Result<Duration> {
    let v = v.trim();
    let split = v
        .find(|c: char| c.is_ascii_alphabetic())
        .with_context(|| format!("no unit in {v:?}"))?;
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().with_context(|| format!("not a number: {v:?}"))?;
    let secs = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => anyhow::bail!("unknown unit in {v:?}"),
    };
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Printed by wrk 4.1.0 (Debian bookworm), `-t1 -c8 -d1s --latency`, against a local
    /// server answering 404.
    const REPORT: &str = "\
Running 1s test @ http://127.0.0.1:18999/nope
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     7.16ms    6.86ms  42.32ms   85.33%
    Req/Sec     0.93k   372.52     1.66k    70.00%
  Latency Distribution
     50%    4.54ms
     75%   10.03ms
     90%   16.39ms
     99%   31.67ms
  925 requests in 1.01s, 469.91KB read
  Non-2xx or 3xx responses: 925
Requests/sec:    918.08
Transfer/sec:    466.39KB
";

    #[test]
    fn reads_wrk_report() {
        let o = parse(REPORT).unwrap();
        assert_eq!((o.ops, o.errors), (925, 925));
        assert_eq!(o.elapsed, Duration::from_millis(1010));
        assert_eq!(o.p50, Duration::from_micros(4540));
        assert_eq!(o.p99, Duration::from_micros(31670));
        assert!((o.per_second() - 915.8).abs() < 0.1);
    }

    #[test]
    fn units_and_missing_latency() {
        assert_eq!(duration("850.00us").unwrap(), Duration::from_micros(850));
        assert_eq!(duration("1.50s").unwrap(), Duration::from_millis(1500));
        assert!(duration("12").is_err());
        let without = REPORT.replace("     99%   31.67ms\n", "");
        let e = parse(&without).unwrap_err().to_string();
        assert!(e.contains("99%"), "{e}");
    }
}
