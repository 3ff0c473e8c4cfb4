//! Python packages for an image: `pip install --target` for the image's interpreter.

use std::path::PathBuf;

use tokio::process::Command;

use super::process::run_logged;
use super::{COMPLETE, HostCache, io_failure, remove_dir_if_exists, short};
use crate::recipe::PipSpec;
use finctl_error::UserError;

impl HostCache {
    /// `pip install --target` of the requirements, for the image's Python (not the host's).
    pub async fn site_packages(
        &self,
        spec: &PipSpec,
        python: &str,
        hash: &str,
        on_line: &dyn Fn(&str),
    ) -> Result<PathBuf, UserError> {
        let dir = self.root.join("pip").join(short(hash));
        if dir.join(COMPLETE).is_file() {
            return Ok(dir.join("site-packages"));
        }
        let partial = dir.with_extension("partial");
        remove_dir_if_exists(&partial).await?;
        let mut cmd = Command::new("python3");
        cmd.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--disable-pip-version-check",
        ])
        .arg("--target")
        .arg(partial.join("site-packages"))
        // Wheels for the image's interpreter and glibc, whatever Python the host runs.
        .args([
            "--python-version",
            python,
            "--implementation",
            "cp",
            "--only-binary=:all:",
        ])
        .args([
            "--platform",
            "manylinux2014_x86_64",
            "--platform",
            "manylinux_2_28_x86_64",
        ])
        .args([
            "--platform",
            "manylinux_2_34_x86_64",
            "--platform",
            "manylinux_2_36_x86_64",
        ])
        .args(&spec.requirements);
        run_logged(cmd, &self.log_file("pip"), on_line).await.map_err(|failure| {
            failure.into_user_error(
                format!("pip install of {} failed", spec.requirements.join(" ")),
                "check the requirement pins and that PyPI is reachable (`pip download --no-deps NAME`)".into(),
            )
        })?;
        tokio::fs::write(partial.join(COMPLETE), b"")
            .await
            .map_err(io_failure("mark site-packages complete"))?;
        remove_dir_if_exists(&dir).await?;
        tokio::fs::rename(&partial, &dir)
            .await
            .map_err(io_failure("move site-packages into place"))?;
        Ok(dir.join("site-packages"))
    }
}
