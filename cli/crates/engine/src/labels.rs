//! The labels Compose puts on what it creates, and finctl's own image labels. finctl sets the
//! Compose ones too, so that `docker-compose ps` (1.29) and `docker compose ps` see finctl's
//! stack as their own.

use std::collections::HashMap;

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
/// finctl's own: the profiles a container's stack was started with, comma-separated (Compose
/// records the files and folder but not the profiles).
pub const PROFILES: &str = "io.finctl.profiles";

/// The Compose version finctl labels as: the one Debian ships, which checks these labels.
pub const COMPOSE_VERSION: &str = "1.29.2";

/// A `label=` filter for everything of `project`.
pub fn project_filter(project: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_owned(), vec![format!("{PROJECT}={project}")])])
}

/// Label holding the hash of everything an image was built from.
pub const INPUT_HASH: &str = "io.finctl.input-hash";
/// Label naming the recipe an image came from.
pub const RECIPE: &str = "io.finctl.recipe";
/// Label marking images finctl built (what `nuke` may remove).
pub const MANAGED: &str = "io.finctl.managed";
