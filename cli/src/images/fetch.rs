//! Inputs fetched on the host, where the package archives are reachable, then copied into
//! build contexts so that no `RUN` step needs the network. Heavy results are cached under
//! the cache folder and reused while their inputs are unchanged; each lands under its final
//! name only when complete, so an interrupted fetch is simply redone.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use super::recipe::{CargoSpec, DebootstrapSpec, PipSpec, ServiceBinary};
use crate::env_vars;
use crate::error::UserError;

/// Marker written last into a cached folder: its presence means the folder is complete.
const COMPLETE: &str = ".finctl-complete";
/// apt lists older than this are refreshed before packages are downloaded.
const APT_LISTS_MAX_AGE: Duration = Duration::from_secs(6 * 3600);

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
            let mirror = debian_mirror()?;
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
                            env_vars::FINCTL_DEBIAN_MIRROR
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
                            env_vars::FINCTL_DEBIAN_MIRROR
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

/// A debootstrap result: the folder (apt runs in it) and a tarball of it (the image).
#[derive(Debug, Clone)]
pub struct Rootfs {
    pub dir: PathBuf,
    pub tarball: PathBuf,
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

/// The Debian mirror: `$FINCTL_DEBIAN_MIRROR`, else the first main-archive source apt uses here.
pub fn debian_mirror() -> Result<String, UserError> {
    if let Ok(mirror) = std::env::var(env_vars::FINCTL_DEBIAN_MIRROR) {
        if !mirror.trim().is_empty() {
            return Ok(mirror.trim().to_string());
        }
    }
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let found = match file.extension().and_then(|e| e.to_str()) {
            Some("sources") => mirror_from_deb822(&text),
            Some("list") => mirror_from_one_line(&text),
            _ => None,
        };
        if let Some(mirror) = found {
            return Ok(mirror);
        }
    }
    Err(UserError::failure(
        "found no Debian mirror in /etc/apt/sources.list or /etc/apt/sources.list.d",
        format!(
            "set {} to a Debian mirror URL",
            env_vars::FINCTL_DEBIAN_MIRROR
        ),
    ))
}

/// `deb [options] URI SUITE COMPONENTS` lines; security archives are skipped.
fn mirror_from_one_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| line.starts_with("deb "))
        .find_map(|line| {
            let mut words = line.split_whitespace().skip(1);
            let mut uri = words.next()?;
            if uri.starts_with('[') {
                // Options: `[a=b c=d]`, possibly spread over several words.
                if !uri.ends_with(']') {
                    words.find(|w| w.ends_with(']'))?;
                }
                uri = words.next()?;
            }
            (!uri.contains("security")).then(|| uri.to_string())
        })
}

/// deb822 stanzas: `Types: deb` with `URIs:`; security archives are skipped.
fn mirror_from_deb822(text: &str) -> Option<String> {
    text.split("\n\n").find_map(|stanza| {
        let field = |name: &str| {
            stanza.lines().find_map(|line| {
                line.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .map(|v| v.trim().to_string())
            })
        };
        let types = field("Types")?;
        let uri = field("URIs")?.split_whitespace().next()?.to_string();
        let suites = field("Suites").unwrap_or_default();
        (types.split_whitespace().any(|t| t == "deb")
            && !uri.contains("security")
            && !suites.contains("security"))
        .then_some(uri)
    })
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

fn preflight_root(what: &str) -> Result<(), UserError> {
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

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(16)]
}

async fn remove_dir_if_exists(dir: &Path) -> Result<(), UserError> {
    match tokio::fs::remove_dir_all(dir).await {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(io_failure("clear a stale cache folder")(err))
        }
        _ => Ok(()),
    }
}

fn io_failure(what: &'static str) -> impl Fn(std::io::Error) -> UserError {
    move |err| {
        UserError::failure(
            format!("cannot {what}: {err}"),
            "check free disk space and permissions on the cache folder (FINCTL_CACHE_DIR)",
        )
    }
}

/// A host command that failed: its exit, the log it wrote, and the log's last lines.
#[derive(Debug)]
pub struct StepFailure {
    pub reason: String,
    pub log: PathBuf,
    pub tail: Vec<String>,
}

impl StepFailure {
    fn into_user_error(self, message: String, hint: String) -> UserError {
        let mut message = format!("{message}: {}", self.reason);
        for line in &self.tail {
            message.push_str("\n    | ");
            message.push_str(line);
        }
        message.push_str(&format!("\n    (full log: {})", self.log.display()));
        UserError::failure(message, hint)
    }
}

/// Runs a command with stdout and stderr appended to `log`, each line also passed to `on_line`.
pub async fn run_logged(
    cmd: Command,
    log: &Path,
    on_line: &dyn Fn(&str),
) -> Result<(), StepFailure> {
    run(cmd, log, on_line, false).await.map(|_| ())
}

/// Like [`run_logged`], but stdout is returned instead of logged (for JSON output).
async fn run_logged_capturing_stdout(
    cmd: Command,
    log: &Path,
    on_line: &dyn Fn(&str),
) -> Result<String, StepFailure> {
    run(cmd, log, on_line, true).await
}

async fn run(
    mut cmd: Command,
    log: &Path,
    on_line: &dyn Fn(&str),
    capture_stdout: bool,
) -> Result<String, StepFailure> {
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    let fail = |reason: String, tail: Vec<String>| StepFailure {
        reason,
        log: log.to_path_buf(),
        tail,
    };
    if let Some(parent) = log.parent() {
        let _ = tokio::fs::create_dir_all(parent).await;
    }
    let mut log_file = tokio::fs::File::create(log)
        .await
        .map_err(|err| fail(format!("cannot write log: {err}"), vec![]))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|err| fail(format!("cannot run `{program}`: {err}"), vec![]))?;
    let stdout = child.stdout.take().map(|s| BufReader::new(s).lines());
    let stderr = child.stderr.take().map(|s| BufReader::new(s).lines());
    let (Some(mut stdout), Some(mut stderr)) = (stdout, stderr) else {
        return Err(fail("no output pipes".into(), vec![]));
    };
    let mut captured = String::new();
    let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        let (line, from_stdout) = tokio::select! {
            line = stdout.next_line(), if out_open => (line, true),
            line = stderr.next_line(), if err_open => (line, false),
        };
        match line {
            Ok(Some(line)) => {
                if from_stdout && capture_stdout {
                    captured.push_str(&line);
                    captured.push('\n');
                    continue;
                }
                let _ = log_file.write_all(line.as_bytes()).await;
                let _ = log_file.write_all(b"\n").await;
                on_line(&line);
                if tail.len() == 12 {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            _ => {
                if from_stdout {
                    out_open = false;
                } else {
                    err_open = false;
                }
            }
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|err| fail(format!("`{program}` did not finish: {err}"), vec![]))?;
    if status.success() {
        Ok(captured)
    } else {
        Err(fail(
            format!("`{program}` exited with {status}"),
            tail.into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_mirror_from_deb822_skipping_security() {
        let text = "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n\nTypes: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n";
        assert_eq!(
            mirror_from_deb822(text).as_deref(),
            Some("http://mirror.example/debian")
        );
    }

    #[test]
    fn reads_the_mirror_from_one_line_sources() {
        let text = "# comment\ndeb [signed-by=/x.gpg] http://mirror.example/debian bookworm main\n";
        assert_eq!(
            mirror_from_one_line(text).as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(
            mirror_from_one_line(
                "deb http://mirror.example/debian-security bookworm-security main"
            ),
            None
        );
    }

    #[tokio::test]
    async fn a_failing_command_reports_its_last_lines_and_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("step.log");
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo fetching; echo 'E: Unable to locate package nope' >&2; exit 100",
        ]);
        let failure = run_logged(cmd, &log, &|_| {}).await.unwrap_err();
        assert!(failure.reason.contains("100"), "{}", failure.reason);
        // stdout and stderr are separate pipes: their relative order is not guaranteed.
        assert!(
            failure
                .tail
                .iter()
                .any(|line| line == "E: Unable to locate package nope"),
            "{:?}",
            failure.tail
        );
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(logged.contains("fetching"));
    }
}
