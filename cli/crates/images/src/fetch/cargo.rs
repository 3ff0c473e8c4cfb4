//! Rust binaries for images: `cargo install` of a pinned crate (tansu), and the platform's
//! own services built from this workspace.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::HostCache;
use super::process::{run_logged, run_logged_capturing_stdout};
use crate::recipe::{CargoSpec, ServiceBinary};
use finctl_error::UserError;

impl HostCache {
    /// `cargo install` of a pinned crate, once per version and feature set.
    pub async fn cargo_install(
        &self,
        spec: &CargoSpec,
        on_line: &dyn Fn(&str),
    ) -> Result<PathBuf, UserError> {
        let mut name = format!("{}-{}", spec.crate_name, spec.version);
        if !spec.features.is_empty() {
            name.push('-');
            name.push_str(&spec.features.join("+"));
        }
        let root = self.root.join("cargo").join(name);
        let bin_dir = root.join("bin");
        if spec.bins.iter().all(|bin| bin_dir.join(bin).is_file()) {
            return Ok(bin_dir);
        }
        let mut cmd = Command::new("cargo");
        cmd.args(["install", "--locked", "--version", &spec.version])
            .arg("--root")
            .arg(&root)
            .env("CARGO_TARGET_DIR", self.root.join("cargo-target"));
        if !spec.features.is_empty() {
            cmd.args(["--features", &spec.features.join(",")]);
        }
        cmd.arg(&spec.crate_name);
        for bin in &spec.bins {
            cmd.args(["--bin", bin]);
        }
        run_logged(cmd, &self.log_file(&format!("cargo-install-{}", spec.crate_name)), on_line).await.map_err(|failure| {
            failure.into_user_error(
                format!("cargo install {}@{} failed", spec.crate_name, spec.version),
                "check that crates.io is reachable and the C build tools are installed (`apt-get install build-essential cmake`)".into(),
            )
        })?;
        Ok(bin_dir)
    }
}

/// Builds the platform's service binaries in release mode, returning each binary's path.
pub async fn build_services(
    project_root: &Path,
    services: &[ServiceBinary],
    log: &Path,
    on_line: &dyn Fn(&str),
) -> Result<Vec<PathBuf>, UserError> {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(project_root).args([
        "build",
        "--release",
        "--message-format=json-render-diagnostics",
    ]);
    for service in services {
        cmd.args(["-p", &service.package, "--bin", &service.bin]);
    }
    let output = run_logged_capturing_stdout(cmd, log, on_line)
        .await
        .map_err(|failure| {
            failure.into_user_error(
                "cargo build --release of the platform services failed".into(),
                "fix the compile error above, then build again".into(),
            )
        })?;
    let mut paths = Vec::new();
    for service in services {
        let path = output
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|msg| {
                msg["reason"] == "compiler-artifact"
                    && msg["target"]["name"] == service.bin.as_str()
            })
            .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
            .ok_or_else(|| {
                UserError::failure(
                    format!(
                        "cargo built no binary `{}` in package `{}`",
                        service.bin, service.package
                    ),
                    "set [package.metadata.finctl] bin = \"NAME\" to the binary's name",
                )
            })?;
        paths.push(path);
    }
    Ok(paths)
}
