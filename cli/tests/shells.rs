//! `finctl doctor`, `sql`, `redis` and `topics` against the real Docker engine.
//!
//! Each test writes its own small Compose project (the offline PostgreSQL, Redis and Kafka
//! stand-ins under the platform's service names) with a project name and 127.0.0.1 ports of
//! its own, so it never touches a developer's running stack, and removes it when it ends.

use std::net::TcpListener;

mod common;
use common::{Project, free_port, stdout};

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

/// The stack above, with PostgreSQL published on `db_port`.
fn project(db_port: u16) -> Project {
    Project::new("finctl-shells", STACK)
        .env("DB_PORT", &db_port.to_string())
        .env("REDIS_PASSWORD", "shells-secret")
}

fn up(project: &Project) {
    let output = project.run(&["up", "--timeout", "2m"]);
    assert_eq!(output.status.code(), Some(0), "up failed");
}

#[test]
fn doctor_names_the_process_holding_a_port() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let project = project(port);
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
    let project = project(free_port());
    up(&project);

    let output = project.run(&["doctor"]);
    assert_eq!(output.status.code(), Some(0), "doctor failed");
    assert!(stdout(&output).contains("held by this stack's"));
    let output = project.run(&["--json", "doctor"]);
    let checks: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(checks.as_array().unwrap().iter().all(|c| c["ok"] == true));
}

#[test]
fn sql_and_redis_shells_answer_through_pipes() {
    let project = project(free_port());
    up(&project);

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
    let project = project(free_port());
    up(&project);

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
