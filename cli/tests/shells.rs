//! `finctl doctor`, `sql`, `redis` and `topics` against the real Docker engine.
//!
//! Each test writes its own small Compose project (the offline PostgreSQL, Redis and Kafka
//! stand-ins under the platform's service names) with a project name and 127.0.0.1 ports of
//! its own, so it never touches a developer's running stack, and removes it when it ends.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

const STACK: &str = r#"
services:
  cockroach:
    image: finctl/postgres:offline
    entrypoint: ["/usr/local/bin/postgres-entrypoint"]
    ports:
      - "127.0.0.1:${DB_PORT}:26257"
    deploy:
      resources:
        limits:
          memory: 512M
    healthcheck:
      test: ["CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-p", "26257", "-U", "root", "-d", "defaultdb"]
      interval: 30s
      timeout: 3s
      retries: 15
      start_period: 30s

  redis:
    image: finctl/redis:offline
    command: ["redis-server", "--port", "6379", "--requirepass", "${REDIS_PASSWORD}"]
    environment:
      REDISCLI_AUTH: ${REDIS_PASSWORD}
    ports:
      - "127.0.0.1:${CACHE_PORT}:6379"
    healthcheck:
      test: ["CMD-SHELL", "redis-cli -p 6379 ping | grep -q PONG"]
      interval: 30s
      timeout: 3s
      retries: 5

  redpanda:
    image: finctl/kafka:offline
    entrypoint: ["/usr/local/bin/tansu"]
    command: ["broker"]
    environment:
      CLUSTER_ID: finctl-test
      LISTENER_URL: tcp://0.0.0.0:9092
      ADVERTISED_LISTENER_URL: tcp://redpanda:9092
      STORAGE_ENGINE: memory://tansu/
    healthcheck:
      test: ["CMD", "/usr/local/bin/tansu", "topic", "list", "--broker", "tcp://127.0.0.1:9092"]
      interval: 30s
      timeout: 3s
      retries: 15
      start_period: 5s
"#;

/// A Compose project in a temp dir, with its own name and ports; `down --volumes` on drop.
struct Project {
    dir: tempfile::TempDir,
    name: String,
    env: Vec<(String, String)>,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Project {
    fn new(db_port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("compose")).unwrap();
        std::fs::write(dir.path().join("compose/docker-compose.yml"), STACK).unwrap();
        let name = format!(
            "finctl-shells-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let env = vec![
            ("COMPOSE_PROJECT_NAME".to_owned(), name.clone()),
            ("DB_PORT".to_owned(), db_port.to_string()),
            ("CACHE_PORT".to_owned(), free_port().to_string()),
            ("REDIS_PASSWORD".to_owned(), "shells-secret".to_owned()),
            ("NO_COLOR".to_owned(), "1".to_owned()),
        ];
        Self { dir, name, env }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_finctl"));
        command
            .arg("--project-dir")
            .arg(self.dir.path())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("COMPOSE_PROFILES")
            .env_remove("FINCTL_PROJECT_DIR");
        command
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
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

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    fn up(&self) {
        let output = self.run(&["up", "--timeout", "2m"]);
        assert_eq!(output.status.code(), Some(0), "up failed");
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.command(&["down", "--volumes"]).output();
        let filter = format!("label=com.docker.compose.project={}", self.name);
        if let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-fv"])
                    .args(&ids)
                    .output();
            }
        }
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn doctor_names_the_process_holding_a_port() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let project = Project::new(port);
    let output = project.run(&["doctor"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    let line = text
        .lines()
        .find(|l| l.contains(&format!("port 127.0.0.1:{port}")))
        .unwrap_or_else(|| panic!("no line for port {port} in:\n{text}"));
    assert!(line.starts_with('✗'), "{line}");
    assert!(
        line.contains(&format!("pid {}", std::process::id())),
        "the holder (this test) is not named: {line}"
    );
    assert!(text.contains("hint:"), "{text}");
    drop(listener);
}

#[test]
fn doctor_passes_on_a_healthy_stack() {
    let project = Project::new(free_port());
    project.up();

    let output = project.run(&["doctor"]);
    assert_eq!(output.status.code(), Some(0), "doctor failed");
    assert!(stdout(&output).contains("held by this stack's"));
    let output = project.run(&["--json", "doctor"]);
    let checks: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(checks.as_array().unwrap().iter().all(|c| c["ok"] == true));
}

#[test]
fn sql_and_redis_shells_answer_through_pipes() {
    let project = Project::new(free_port());
    project.up();

    let output = project.run_with_stdin(&["sql"], "select 41+1\n");
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).contains("42"), "{}", stdout(&output));

    // psql's own exit code comes through.
    let output = project.run(&["sql", "--", "-v", "ON_ERROR_STOP=1", "-c", "select nope"]);
    assert_ne!(output.status.code(), Some(0));

    let output = project.run(&["redis", "--", "ping"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout(&output).trim(), "PONG");
}

#[test]
fn topics_create_then_list_shows_it() {
    let project = Project::new(free_port());
    project.up();

    let output = project.run(&["topics", "create", "shells.created", "--partitions", "2"]);
    assert_eq!(output.status.code(), Some(0));

    let output = project.run(&["--json", "topics", "list"]);
    assert_eq!(output.status.code(), Some(0));
    let topics: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let created = topics
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "shells.created")
        .unwrap_or_else(|| panic!("shells.created not listed: {topics}"));
    assert_eq!(created["partitions"], 2);

    // The default action is list, as a table.
    let output = project.run(&["topics"]);
    assert!(stdout(&output).contains("shells.created"));
}
