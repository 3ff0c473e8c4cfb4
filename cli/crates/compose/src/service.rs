//! One service of the stack, resolved: every Compose key finctl applies, typed and checked.
//! [`crate::service_reader`] builds it from the merged YAML.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::healthcheck::Healthcheck;
use super::mount::Mount;
use super::port::PortBinding;

/// When a dependency counts as ready for the services that wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Condition {
    /// Its container is running.
    Started,
    /// Its healthcheck passes.
    Healthy,
    /// It ran to completion with exit code 0 (one-shot jobs).
    CompletedSuccessfully,
}

impl Condition {
    pub fn as_compose(self) -> &'static str {
        match self {
            Self::Started => "service_started",
            Self::Healthy => "service_healthy",
            Self::CompletedSuccessfully => "service_completed_successfully",
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_compose())
    }
}

/// `restart:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    OnFailure {
        max_retries: Option<u32>,
    },
}

impl RestartPolicy {
    /// Docker's name for the policy.
    pub fn docker_name(self) -> &'static str {
        match self {
            Self::No => "no",
            Self::Always => "always",
            Self::UnlessStopped => "unless-stopped",
            Self::OnFailure { .. } => "on-failure",
        }
    }
}

/// CPU and memory limits (`deploy.resources`, or the v2 keys `cpus`/`mem_limit`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Resources {
    pub cpus: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub memory_reservation_bytes: Option<u64>,
}

impl Resources {
    /// Docker's `NanoCpus`.
    pub fn nano_cpus(&self) -> Option<i64> {
        self.cpus.map(|c| (c * 1e9).round() as i64)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub image: Option<String>,
    /// `build.context`, absolute.
    pub build_context: Option<PathBuf>,
    /// `None`: the image's CMD. `Some(vec![])` is an explicit empty command.
    pub command: Option<Vec<String>>,
    /// `None`: the image's ENTRYPOINT.
    pub entrypoint: Option<Vec<String>>,
    /// `env_file` contents, then `environment` (names without a value taken from the
    /// environment, dropped when unset there).
    pub environment: BTreeMap<String, String>,
    pub ports: Vec<PortBinding>,
    pub volumes: Vec<Mount>,
    /// `None`: the image's HEALTHCHECK, if any.
    pub healthcheck: Option<Healthcheck>,
    pub depends_on: BTreeMap<String, Condition>,
    pub profiles: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub restart: RestartPolicy,
    pub resources: Resources,
    pub labels: BTreeMap<String, String>,
    /// Networks (top-level keys) -> aliases. Defaults to `default`.
    pub networks: BTreeMap<String, Vec<String>>,
    pub network_mode: Option<String>,
    pub container_name: Option<String>,
    pub hostname: Option<String>,
    pub stop_signal: Option<String>,
    pub stop_grace_period: Option<Duration>,
    pub init: Option<bool>,
    pub read_only: bool,
    pub tmpfs: Vec<String>,
    pub extra_hosts: Vec<String>,
    /// SHA-256 of the resolved configuration; see [`Service::config_hash`].
    /// See [`Service::config_hash`].
    pub(crate) config_digest: String,
}

impl Service {
    /// Enabled by the active profiles: no profiles, or at least one of them active.
    pub fn is_enabled(&self, active_profiles: &[String]) -> bool {
        self.profiles.is_empty() || self.profiles.iter().any(|p| active_profiles.contains(p))
    }

    /// Whether it is a one-shot job (`restart: "no"` and something waits for it to complete)
    /// is decided by its dependents; this says whether any healthcheck applies that finctl
    /// knows of (an image's own HEALTHCHECK is only known to Docker).
    pub fn has_healthcheck(&self) -> bool {
        self.healthcheck
            .as_ref()
            .is_some_and(|h| h.test.is_some() && !h.is_disabled())
    }

    /// The published TCP ports something in the container serves: every `ports` entry but
    /// the container ports the [`UNSERVED_PORTS_LABEL`] names.
    pub fn served_ports(&self) -> impl Iterator<Item = &PortBinding> {
        let unserved: Vec<u16> = self
            .labels
            .get(UNSERVED_PORTS_LABEL)
            .map(|list| {
                list.split(',')
                    .filter_map(|p| p.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        self.ports
            .iter()
            .filter(move |p| p.protocol == "tcp" && !unserved.contains(&p.target))
    }
}

/// The label naming container ports that are published but that nothing serves (an offline
/// stand-in without the upstream image's second listener or admin UI): comma-separated.
pub const UNSERVED_PORTS_LABEL: &str = "io.finctl.unserved-ports";
