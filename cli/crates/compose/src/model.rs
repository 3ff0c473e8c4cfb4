//! The loaded stack: services, networks, volumes and the Compose project they belong to.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::service::Service;
use finctl_error::UserError;

/// A top-level `networks:` or `volumes:` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resource {
    /// The key in the Compose file.
    pub key: String,
    /// Docker's name: `name:` when given, else `<project>_<key>` (Compose's naming).
    pub docker_name: String,
    /// Created outside the stack; never created or removed by it.
    pub external: bool,
    pub driver: Option<String>,
    pub labels: BTreeMap<String, String>,
}

pub type Network = Resource;
pub type Volume = Resource;

#[derive(Debug, Clone)]
pub struct Stack {
    /// The Compose project name (`com.docker.compose.project`); see [`super::load`].
    pub project_name: String,
    /// The folder of the first file: relative paths, `.env` and the
    /// `com.docker.compose.project.working_dir` label.
    pub working_dir: PathBuf,
    /// The files read, in order (`com.docker.compose.project.config_files`).
    pub files: Vec<PathBuf>,
    /// `--profile` values, else `COMPOSE_PROFILES`.
    pub active_profiles: Vec<String>,
    /// Every service defined, enabled by the profiles or not.
    pub services: BTreeMap<String, Service>,
    /// Includes the implicit `default` network when a service uses it.
    pub networks: BTreeMap<String, Network>,
    pub volumes: BTreeMap<String, Volume>,
    /// Things worth telling the user that do not stop the load (unset variables).
    pub warnings: Vec<String>,
}

impl Stack {
    /// The services the active profiles enable, by name.
    pub fn enabled_services(&self) -> impl Iterator<Item = &Service> {
        self.services
            .values()
            .filter(|s| s.is_enabled(&self.active_profiles))
    }

    /// The service called `name`, or an error suggesting the closest name.
    pub fn service(&self, name: &str) -> Result<&Service, UserError> {
        self.services.get(name).ok_or_else(|| {
            let hint = match closest(name, self.services.keys()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!(
                    "the services are: {}",
                    self.services.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            };
            UserError::config(format!("no service `{name}` in the stack"), hint)
        })
    }

    /// Compose 1.29's container name for a service: `<project>_<service>_<n>`, unless the
    /// service sets `container_name`.
    pub fn container_name(&self, service: &Service, number: u32) -> String {
        service
            .container_name
            .clone()
            .unwrap_or_else(|| format!("{}_{}_{number}", self.project_name, service.name))
    }

    /// The `com.docker.compose.project.config_files` label value.
    pub fn config_files_label(&self) -> String {
        self.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The name in `candidates` closest to `name` (Jaro-Winkler), if any is close enough.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a String>) -> Option<&'a String> {
    candidates
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score >= 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
