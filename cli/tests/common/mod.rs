//! A throwaway Compose project for the CLI tests that drive the real Docker engine: its own
//! temp dir, project name and 127.0.0.1 ports, so it never touches a developer's running
//! stack, and everything it created removed when it drops.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A Compose project in a temp dir; `down --volumes` (and removal by label of whatever that
/// missed) on drop. `DB_PORT` and `CACHE_PORT` are free ports unless set with [`Self::env`].
pub struct Project {
    dir: tempfile::TempDir,
    pub name: String,
    env: Vec<(String, String)>,
}

impl Project {
    /// `stack` becomes `compose/docker-compose.yml`; the project is named `<prefix>-<pid>-<n>`.
    pub fn new(prefix: &str, stack: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("compose")).unwrap();
        std::fs::write(dir.path().join("compose/docker-compose.yml"), stack).unwrap();
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let env = vec![
            ("COMPOSE_PROJECT_NAME".to_owned(), name.clone()),
            ("DB_PORT".to_owned(), free_port().to_string()),
            ("CACHE_PORT".to_owned(), free_port().to_string()),
            ("NO_COLOR".to_owned(), "1".to_owned()),
        ];
        Self { dir, name, env }
    }

    /// Sets (or replaces) a variable of every command's environment.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// A variable of the commands' environment.
    pub fn var(&self, key: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{key} is not set"))
    }

    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn compose_file(&self) -> PathBuf {
        self.dir.path().join("compose/docker-compose.yml")
    }

    /// The container of `service`, named as docker-compose 1.x names it.
    pub fn container(&self, service: &str) -> String {
        format!("{}_{service}_1", self.name)
    }

    /// `finctl` run in this project, isolated from the caller's own settings.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_finctl"));
        command
            .arg("--project-dir")
            .arg(self.dir.path())
            .args(args)
            .envs(self.vars())
            .env_remove("COMPOSE_PROFILES")
            .env_remove("FINCTL_PROJECT_DIR");
        command
    }

    /// Runs `finctl args` with `stdin` piped in; echoes the command and its output.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        eprintln!(
            "$ finctl {}\n-> {:?}\n{}{}",
            args.join(" "),
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    /// Runs and parses stdout as JSON.
    pub fn json(&self, args: &[&str]) -> (Option<i32>, Value) {
        let output = self.run(args);
        let value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|err| panic!("stdout of {args:?} is not JSON: {err}"));
        (output.status.code(), value)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.command(&["down", "--volumes"]).output();
        // Whatever `down` missed (a crash mid-test): remove by label.
        let filter = format!("label=com.docker.compose.project={}", self.name);
        for kind in [
            &["ps", "-aq"][..],
            &["network", "ls", "-q"],
            &["volume", "ls", "-q"],
        ] {
            let Ok(out) = Command::new("docker")
                .args(kind)
                .args(["--filter", &filter])
                .output()
            else {
                continue;
            };
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if ids.is_empty() {
                continue;
            }
            let remove: &[&str] = match kind[0] {
                "ps" => &["rm", "-fv"],
                "network" => &["network", "rm"],
                _ => &["volume", "rm", "-f"],
            };
            let _ = Command::new("docker").args(remove).args(&ids).output();
        }
    }
}

/// A command's stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}
