//! The base image's root filesystem: `debootstrap` into the cache, then a tarball of it.

use tokio::process::Command;

use super::process::run_logged;
use super::{COMPLETE, HostCache, Rootfs, io_failure, remove_dir_if_exists, short};
use crate::recipe::DebootstrapSpec;
use finctl_env as env;
use finctl_error::UserError;

impl HostCache {
    /// The debootstrap root filesystem for `spec` (made once per input hash), and a tarball of
    /// it without apt's lists and caches, ready to become an image.
    pub async fn rootfs(
        &self,
        spec: &DebootstrapSpec,
        hash: &str,
        on_line: &dyn Fn(&str),
    ) -> Result<Rootfs, UserError> {
        let dir = self.root.join("rootfs").join(short(hash));
        let tarball = dir.with_extension("tar");
        if !dir.join(COMPLETE).is_file() {
            preflight_debootstrap()?;
            let mirror = super::debian_mirror()?;
            let partial = dir.with_extension("partial");
            remove_dir_if_exists(&partial).await?;
            tokio::fs::create_dir_all(partial.parent().unwrap_or(&self.root))
                .await
                .map_err(io_failure("create the cache folder"))?;
            let mut cmd = Command::new("debootstrap");
            cmd.arg(format!("--variant={}", spec.variant));
            if !spec.include.is_empty() {
                cmd.arg(format!("--include={}", spec.include.join(",")));
            }
            cmd.arg(&spec.suite).arg(&partial).arg(&mirror);
            run_logged(cmd, &self.log_file("debootstrap"), on_line)
                .await
                .map_err(|failure| {
                    failure.into_user_error(
                        format!(
                            "debootstrap of {} from the Debian mirror failed",
                            spec.suite
                        ),
                        format!(
                            "check that {mirror} is reachable (set {} to use another mirror)",
                            env::FINCTL_DEBIAN_MIRROR
                        ),
                    )
                })?;
            tokio::fs::write(partial.join(COMPLETE), b"")
                .await
                .map_err(io_failure("mark the root filesystem complete"))?;
            remove_dir_if_exists(&dir).await?;
            let _ = tokio::fs::remove_file(&tarball).await;
            tokio::fs::rename(&partial, &dir)
                .await
                .map_err(io_failure("move the root filesystem into place"))?;
        }
        if !tarball.is_file() {
            let partial = tarball.with_extension("tar.partial");
            let mut cmd = Command::new("tar");
            cmd.arg("--create")
                .arg("--file")
                .arg(&partial)
                .arg("--directory")
                .arg(&dir)
                .args(["--numeric-owner", "--xattrs", "--one-file-system"])
                .args([
                    "--exclude=./var/lib/apt/lists/*",
                    "--exclude=./var/cache/apt/*",
                    "--exclude=./var/cache/finctl-debs",
                ])
                .args([
                    "--exclude=./dev/*",
                    "--exclude=./proc/*",
                    "--exclude=./sys/*",
                ])
                .arg(format!("--exclude=./{COMPLETE}"))
                .arg(".");
            run_logged(cmd, &self.log_file("rootfs-tar"), on_line)
                .await
                .map_err(|failure| {
                    failure.into_user_error(
                        "packing the root filesystem failed".into(),
                        "check free disk space (`df -h`)".into(),
                    )
                })?;
            tokio::fs::rename(&partial, &tarball)
                .await
                .map_err(io_failure("move the root filesystem tarball into place"))?;
        }
        Ok(Rootfs { dir, tarball })
    }
}

fn preflight_debootstrap() -> Result<(), UserError> {
    let found = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .chain(["/usr/sbin".into(), "/sbin".into()])
                .any(|dir| dir.join("debootstrap").is_file())
        })
        .unwrap_or(false);
    if !found {
        return Err(UserError::failure(
            "debootstrap is not installed; it makes the base image's root filesystem",
            "install it: `sudo apt-get install debootstrap`",
        ));
    }
    preflight_root("debootstrap (building the base image)")
}

pub(super) fn preflight_root(what: &str) -> Result<(), UserError> {
    if is_root() {
        Ok(())
    } else {
        Err(UserError::failure(
            format!("{what} needs root"),
            "run the build as root, e.g. `sudo -E finctl images build` (only the first build needs it; later ones reuse the cache)",
        ))
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("Uid:")
                    .map(|rest| rest.split_whitespace().nth(1) == Some("0"))
            })
        })
        .unwrap_or(false)
}
