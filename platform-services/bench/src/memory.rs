//! A container's idle memory: Docker's stats (`memory_stats.usage` less the page cache) and the
//! resident set (`VmRSS`) of its main process.

use anyhow::Context as _;
use bollard::query_parameters::StatsOptionsBuilder;
use futures_util::StreamExt;

use crate::fleet::ServiceContainer;

#[derive(Debug, Clone, Copy)]
pub struct Footprint {
    /// `memory_stats.usage` minus `cache` (cgroup v1) or `file` (cgroup v2), bytes.
    pub cgroup_bytes: u64,
    /// `VmRSS` of the container's main process, when its `/proc` entry is readable here.
    pub rss_bytes: Option<u64>,
}

pub async fn footprint(container: &ServiceContainer) -> anyhow::Result<Footprint> {
    let options = StatsOptionsBuilder::default()
        .stream(false)
        .one_shot(true)
        .build();
    let stats = container
        .engine()
        .api()
        .stats(container.id(), Some(options))
        .next()
        .await
        .context("no stats from Docker")?
        .with_context(|| format!("stats of {}", container.name))?;
    let mem = stats
        .memory_stats
        .with_context(|| format!("no memory stats for {}", container.name))?;
    let usage = mem.usage.unwrap_or(0);
    let detail = mem.stats.unwrap_or_default();
    let cache = ["total_cache", "cache", "file"]
        .iter()
        .find_map(|k| detail.get(*k).copied())
        .unwrap_or(0);
    let rss_bytes = match container.pid().await {
        Ok(pid) => vm_rss(pid),
        Err(_) => None,
    };
    Ok(Footprint {
        cgroup_bytes: usage.saturating_sub(cache),
        rss_bytes,
    })
}

fn vm_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

/// `VmRSS:     1208 kB` -> bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_in_bytes() {
        let status = "Name:\tforex\nVmHWM:\t  9000 kB\nVmRSS:\t    1208 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(1208 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }
}
