//! The labels Compose puts on what it creates; finctl sets the same ones so that
//! `docker-compose ps` (1.29) and `docker compose ps` see finctl's stack as their own.

use std::collections::HashMap;

use crate::stack::{Service, Stack};

pub const PROJECT: &str = "com.docker.compose.project";
pub const SERVICE: &str = "com.docker.compose.service";
pub const CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
pub const ONEOFF: &str = "com.docker.compose.oneoff";
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const VERSION: &str = "com.docker.compose.version";
pub const NETWORK: &str = "com.docker.compose.network";
pub const VOLUME: &str = "com.docker.compose.volume";

/// The Compose version finctl labels as: the one Debian ships, which checks these labels.
pub const COMPOSE_VERSION: &str = "1.29.2";

/// A `label=` filter for everything of `project`.
pub fn project_filter(project: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_owned(), vec![format!("{PROJECT}={project}")])])
}

/// The labels of a service's container: the service's own, then Compose's.
pub fn container(stack: &Stack, service: &Service, config_hash: &str) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = service
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.extend([
        (PROJECT.to_owned(), stack.project_name.clone()),
        (SERVICE.to_owned(), service.name.clone()),
        (CONTAINER_NUMBER.to_owned(), "1".to_owned()),
        (ONEOFF.to_owned(), "False".to_owned()),
        (CONFIG_HASH.to_owned(), config_hash.to_owned()),
        (CONFIG_FILES.to_owned(), stack.config_files_label()),
        (
            WORKING_DIR.to_owned(),
            stack.working_dir.display().to_string(),
        ),
        (VERSION.to_owned(), COMPOSE_VERSION.to_owned()),
    ]);
    labels
}

/// The labels of a network or volume `key` (`kind` is [`NETWORK`] or [`VOLUME`]).
pub fn resource(
    stack: &Stack,
    kind: &str,
    key: &str,
    own: &std::collections::BTreeMap<String, String>,
) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> =
        own.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    labels.extend([
        (PROJECT.to_owned(), stack.project_name.clone()),
        (kind.to_owned(), key.to_owned()),
        (VERSION.to_owned(), COMPOSE_VERSION.to_owned()),
    ]);
    labels
}
