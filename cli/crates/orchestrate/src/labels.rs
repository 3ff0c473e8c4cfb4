//! The labels of the containers, networks and volumes `up` creates: the service's own, then
//! Compose's (names in [`finctl_engine::labels`]).

use std::collections::HashMap;

use finctl_compose::{Service, Stack};
pub use finctl_engine::labels::*;

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
        (PROFILES.to_owned(), stack.active_profiles.join(",")),
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
