//! Inputs fetched on the host, where the package archives are reachable, then copied into
//! build contexts so that no `RUN` step needs the network. Heavy results are cached under
//! the cache folder and reused while their inputs are unchanged; each lands under its final
//! name only when complete, so an interrupted fetch is simply redone.

mod apt;
mod cargo;
mod debootstrap;
mod mirror;
mod pip;
mod process;

use std::path::{Path, PathBuf};

use finctl_env as env;
use finctl_error::UserError;

pub use cargo::build_services;
pub use mirror::debian_mirror;

/// Marker written last into a cached folder: its presence means the folder is complete.
const COMPLETE: &str = ".finctl-complete";

/// Where fetched inputs are cached, and where step logs go.
#[derive(Debug, Clone)]
pub struct HostCache {
    root: PathBuf,
}

impl HostCache {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    fn log_file(&self, name: &str) -> PathBuf {
        self.logs().join(format!("{name}.log"))
    }
}

/// A debootstrap result: the folder (apt runs in it) and a tarball of it (the image).
#[derive(Debug, Clone)]
pub struct Rootfs {
    pub dir: PathBuf,
    pub tarball: PathBuf,
}

/// Where heavy artefacts (the base root filesystem, the tansu build, pip downloads) are cached:
/// `$FINCTL_CACHE_DIR`, else `$XDG_CACHE_HOME/finctl`, else `~/.cache/finctl`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(env::FINCTL_CACHE_DIR) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os(env::XDG_CACHE_HOME) {
        return PathBuf::from(dir).join("finctl");
    }
    let home = std::env::var_os(env::HOME).map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache").join("finctl")
}

pub(crate) fn short(hash: &str) -> &str {
    &hash[..hash.len().min(16)]
}

pub(crate) async fn remove_dir_if_exists(dir: &Path) -> Result<(), UserError> {
    match tokio::fs::remove_dir_all(dir).await {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(io_failure("clear a stale cache folder")(err))
        }
        _ => Ok(()),
    }
}

pub(crate) fn io_failure(what: &'static str) -> impl Fn(std::io::Error) -> UserError {
    move |err| {
        UserError::failure(
            format!("cannot {what}: {err}"),
            format!(
                "check free disk space and permissions on the cache folder (set {} to move it)",
                env::FINCTL_CACHE_DIR
            ),
        )
    }
}
