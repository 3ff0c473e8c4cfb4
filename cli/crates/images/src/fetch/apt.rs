//! Debian packages for an image, downloaded by apt inside the base root filesystem so that
//! their versions match the image.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::process::Command;

use super::debootstrap::preflight_root;
use super::process::run_logged;
use super::{COMPLETE, HostCache, Rootfs, io_failure, remove_dir_if_exists, short};
use finctl_env as env;
use finctl_error::UserError;

/// apt lists older than this are refreshed before packages are downloaded.
const APT_LISTS_MAX_AGE: Duration = Duration::from_secs(6 * 3600);

impl HostCache {
    /// Downloads `packages` and their dependencies (as the root filesystem lacks them) into a
    /// folder of .deb files, using apt inside the root filesystem so versions match the image.
    pub async fn debs(
        &self,
        rootfs: &Rootfs,
        recipe: &str,
        packages: &[String],
        hash: &str,
        on_line: &dyn Fn(&str),
    ) -> Result<PathBuf, UserError> {
        let inside = format!("/var/cache/finctl-debs/{recipe}-{}", short(hash));
        let dir = rootfs.dir.join(inside.trim_start_matches('/'));
        if dir.join(COMPLETE).is_file() {
            return Ok(dir);
        }
        preflight_root(
            "downloading Debian packages (apt runs inside the base root filesystem with chroot)",
        )?;
        // The chroot resolves names with the host's resolver.
        let _ = tokio::fs::copy("/etc/resolv.conf", rootfs.dir.join("etc/resolv.conf")).await;
        if lists_are_stale(&rootfs.dir.join("var/lib/apt/lists")) {
            let mut cmd = Command::new("chroot");
            cmd.arg(&rootfs.dir).args(["apt-get", "update", "-q"]);
            run_logged(cmd, &self.log_file("apt-update"), on_line)
                .await
                .map_err(|failure| {
                    failure.into_user_error(
                        "apt-get update in the base root filesystem failed".into(),
                        format!(
                            "check that the Debian mirror is reachable (set {} to use another)",
                            env::FINCTL_DEBIAN_MIRROR
                        ),
                    )
                })?;
        }
        remove_dir_if_exists(&dir).await?;
        tokio::fs::create_dir_all(dir.join("partial"))
            .await
            .map_err(io_failure("create the package folder"))?;
        let mut cmd = Command::new("chroot");
        cmd.arg(&rootfs.dir)
            .args([
                "apt-get",
                "install",
                "-y",
                "-q",
                "--download-only",
                "--no-install-recommends",
            ])
            .arg(format!("-o=Dir::Cache::Archives={inside}"))
            .args(packages);
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        run_logged(cmd, &self.log_file(&format!("apt-{recipe}")), on_line).await.map_err(|failure| {
            failure.into_user_error(
                format!("downloading Debian packages {} failed", packages.join(", ")),
                "check the package names (`apt-cache policy NAME`) and that the Debian mirror is reachable".into(),
            )
        })?;
        let _ = tokio::fs::remove_dir_all(dir.join("partial")).await;
        let _ = tokio::fs::remove_file(dir.join("lock")).await;
        tokio::fs::write(dir.join(COMPLETE), b"")
            .await
            .map_err(io_failure("mark the package folder complete"))?;
        Ok(dir)
    }
}

fn lists_are_stale(lists: &Path) -> bool {
    let newest = std::fs::read_dir(lists)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with("_Packages"))
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max();
    newest.is_none_or(|time| {
        SystemTime::now().duration_since(time).unwrap_or_default() > APT_LISTS_MAX_AGE
    })
}
