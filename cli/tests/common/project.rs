//! [`Project`]: a throwaway Compose project for the CLI tests that drive the real Docker
//! engine: its own temp dir, project name and 127.0.0.1 ports, so it never touches a
//! developer's running stack, and everything it created removed when it drops.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::Test;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    finctl_testkit::free_port().expect("a free port on 127.0.0.1")
}

/// `docker ARGS`' stdout, split on whitespace (ids, names).
pub fn docker_ids(args: &[&str]) -> Vec<String> {
    let out = Command::new("docker").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
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
        Self::with_file(prefix, "compose/docker-compose.yml", stack)
    }

    /// Compose's layout: `stack` becomes `compose.yaml` in the project folder, no `compose/`.
    pub fn compose_yaml(prefix: &str, stack: &str) -> Self {
        Self::with_file(prefix, "compose.yaml", stack)
    }

    fn with_file(prefix: &str, path: &str, stack: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, stack).unwrap();
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let env = vec![
            ("COMPOSE_PROJECT_NAME".to_owned(), name.clone()),
            ("DB_PORT".to_owned(), free_port().to_string()),
            ("CACHE_PORT".to_owned(), free_port().to_string()),
            ("KAFKA_PORT".to_owned(), free_port().to_string()),
        ];
        Self { dir, name, env }
    }

    /// Writes `text` to `path` (relative to the project folder), creating its folders.
    pub fn file(self, path: &str, text: &str) -> Self {
        let path = self.dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        self
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

    /// Asserts that `docker-compose -p NAME -f FILE ps` (docker-compose 1.29, with this
    /// project's variables) lists the containers of `services`: it sees finctl's as its own.
    pub fn assert_docker_compose_lists(&self, file: &Path, services: &[&str]) {
        let compose = Command::new("docker-compose")
            .arg("-p")
            .arg(&self.name)
            .arg("-f")
            .arg(file)
            .arg("ps")
            .envs(self.vars())
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&compose.stdout);
        assert!(
            compose.status.success(),
            "{}",
            String::from_utf8_lossy(&compose.stderr)
        );
        for service in services {
            assert!(
                listing.contains(&self.container(service)),
                "docker-compose ps misses {service}:\n{listing}"
            );
        }
    }

    /// `finctl` run in this project.
    pub fn finctl(&self) -> Test {
        Test::new().project(self)
    }

    /// The ids of this project's containers, networks or volumes (`kind`: `ps -a`,
    /// `network ls`, `volume ls`), by Compose's project label.
    pub fn labelled(&self, kind: &[&str]) -> Vec<String> {
        let filter = format!("label=com.docker.compose.project={}", self.name);
        let mut args = kind.to_vec();
        args.extend(["-q", "--filter", &filter]);
        docker_ids(&args)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.finctl().args(["down", "--volumes"]).command().output();
        // Whatever `down` missed (a crash mid-test): remove by label.
        for (kind, remove) in [
            (&["ps", "-a"][..], &["rm", "-fv"][..]),
            (&["network", "ls"], &["network", "rm"]),
            (&["volume", "ls"], &["volume", "rm", "-f"]),
        ] {
            let ids = self.labelled(kind);
            if !ids.is_empty() {
                let _ = Command::new("docker").args(remove).args(&ids).output();
            }
        }
    }
}
