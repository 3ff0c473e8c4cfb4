//! `finctl doctor`, `sql`, `redis` and `topics` against the real Docker engine.
//!
//! Each test writes its own small Compose project (the offline PostgreSQL, Redis and Kafka
//! stand-ins under the platform's service names) with a project name and 127.0.0.1 ports of
//! its own, so it never touches a developer's running stack, and removes it when it ends.

use std::net::TcpListener;

mod common;
use common::{Project, free_port, stacks::PLATFORM_STAND_INS as STACK};

/// [`STACK`], with PostgreSQL published on `db_port`.
fn project(db_port: u16) -> Project {
    Project::new("finctl-shells", STACK)
        .env("DB_PORT", &db_port.to_string())
        .env("REDIS_PASSWORD", "shells-secret")
}

fn up(project: &Project) {
    project
        .finctl()
        .args(["up", "--timeout", "2m"])
        .assert_status(0);
}

#[test]
fn doctor_names_the_process_holding_a_port() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let project = project(port);
    let output = project
        .finctl()
        .arg("doctor")
        .assert_status(1)
        .stdout_contains("hint:");
    let line = output
        .stdout()
        .lines()
        .find(|l| l.contains(&format!("port 127.0.0.1:{port}")))
        .unwrap_or_else(|| output.fail(&format!("no line for port {port}")));
    assert!(line.starts_with('✗'), "{line}");
    assert!(
        line.contains(&format!("pid {}", std::process::id())),
        "the holder (this test) is not named: {line}"
    );
    drop(listener);
}

#[test]
fn doctor_passes_on_a_healthy_stack() {
    let project = project(free_port());
    up(&project);

    project
        .finctl()
        .arg("doctor")
        .assert_status(0)
        .stdout_contains("held by this stack's");
    let checks = project.finctl().args(["--json", "doctor"]).run().json();
    assert!(checks.as_array().unwrap().iter().all(|c| c["ok"] == true));
}

#[test]
fn sql_and_redis_shells_answer_through_pipes() {
    let project = project(free_port());
    up(&project);

    project
        .finctl()
        .arg("sql")
        .stdin("select 41+1\n")
        .assert_status(0)
        .stdout_contains("42");

    // psql's own exit code comes through.
    let output = project
        .finctl()
        .args(["sql", "--", "-v", "ON_ERROR_STOP=1", "-c", "select nope"])
        .run();
    if output.code() == Some(0) {
        output.fail("psql's failure did not come through");
    }

    let output = project
        .finctl()
        .args(["redis", "--", "ping"])
        .assert_status(0);
    assert_eq!(output.stdout().trim(), "PONG");
}

#[test]
fn topics_create_then_list_shows_it() {
    let project = project(free_port());
    up(&project);

    project
        .finctl()
        .args(["topics", "create", "shells.created", "--partitions", "2"])
        .assert_status(0);

    let topics = project
        .finctl()
        .args(["--json", "topics", "list"])
        .assert_status(0)
        .json();
    let created = topics
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "shells.created")
        .unwrap_or_else(|| panic!("shells.created not listed: {topics}"));
    assert_eq!(created["partitions"], 2);

    // The default action is list, as a table.
    project
        .finctl()
        .arg("topics")
        .run()
        .stdout_contains("shells.created");
}
