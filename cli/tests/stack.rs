//! `finctl up/down/ps/health/logs` against the real Docker engine, with the offline images.
//!
//! Each test writes its own small Compose project into a temp dir (PostgreSQL, a one-shot, Redis
//! from the offline images) with a project name and 127.0.0.1 ports of its own, so it never
//! touches a developer's running stack, and removes everything it created when it ends.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{ImageGuard, Project, docker_ids, image_id, stacks::DB_BOOTSTRAP_CACHE as STACK};

/// The `action` `up --json` reports for each service.
fn actions(report: &Value) -> Vec<(String, String)> {
    let mut actions: Vec<(String, String)> = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_owned(),
                s["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    actions.sort();
    actions
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn check_status_schema(rows: &Value) {
    let rows = rows.as_array().expect("an array");
    assert!(!rows.is_empty());
    for row in rows {
        let object = row.as_object().expect("objects");
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "container",
                "exit_code",
                "health",
                "ok",
                "one_shot",
                "ports",
                "service",
                "state"
            ]
        );
        assert!(row["service"].is_string());
        assert!(row["container"].is_string() || row["container"].is_null());
        assert!(
            [
                "missing",
                "created",
                "running",
                "restarting",
                "paused",
                "exited",
                "dead"
            ]
            .contains(&row["state"].as_str().unwrap()),
            "state {}",
            row["state"]
        );
        assert!(
            ["healthy", "unhealthy", "starting", "none"].contains(&row["health"].as_str().unwrap())
        );
        assert!(row["exit_code"].is_i64() || row["exit_code"].is_null());
        assert!(
            row["ports"]
                .as_array()
                .unwrap()
                .iter()
                .all(Value::is_string)
        );
        assert!(row["one_shot"].is_boolean());
        assert!(row["ok"].is_boolean());
    }
}

#[test]
fn up_down_round_trip_seen_by_docker_compose() {
    let project = Project::new("finctl-test", STACK);
    // Before up: every service missing, health fails.
    let rows = project
        .finctl()
        .args(["--json", "health"])
        .assert_status(1)
        .json();
    check_status_schema(&rows);
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "missing")
    );

    let started = Instant::now();
    let report = project
        .finctl()
        .args(["--json", "up", "--timeout", "2m"])
        .assert_status(0)
        .json();
    assert_eq!(
        actions(&report),
        pairs(&[
            ("bootstrap", "created"),
            ("cache", "created"),
            ("db", "created")
        ])
    );
    // The db healthcheck's interval is 30s: being ready well before it proves the
    // on-demand probe, not Docker's schedule, saw the readiness.
    assert!(
        started.elapsed() < Duration::from_secs(28),
        "{:?}",
        started.elapsed()
    );

    let rows = project
        .finctl()
        .args(["--json", "health"])
        .assert_status(0)
        .json();
    check_status_schema(&rows);
    let row = |service: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["service"] == service)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("bootstrap")["state"], "exited");
    assert_eq!(row("bootstrap")["exit_code"], 0);
    assert_eq!(row("bootstrap")["one_shot"], true);
    assert_eq!(row("cache")["state"], "running");
    let cache_port = project.var("CACHE_PORT");
    assert_eq!(
        row("cache")["ports"],
        serde_json::json!([format!("127.0.0.1:{cache_port}->6379/tcp")])
    );
    // Limits from deploy.resources reached Docker.
    let inspect = Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
        ])
        .arg(project.container("db"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        "536870912 1000000000"
    );

    // Dependency order: bootstrap ran after db was up, cache started after bootstrap finished.
    let time = |container: &str, field: &str| {
        let out = Command::new("docker")
            .args(["inspect", "-f", &format!("{{{{.State.{field}}}}}")])
            .arg(project.container(container))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert!(time("bootstrap", "StartedAt") > time("db", "StartedAt"));
    assert!(time("cache", "StartedAt") > time("bootstrap", "FinishedAt"));

    // docker-compose 1.29 sees finctl's containers as its own.
    project.assert_docker_compose_lists(&project.compose_file(), &["db", "bootstrap", "cache"]);

    project
        .finctl()
        .args(["down", "--volumes"])
        .assert_status(0);
    assert!(project.labelled(&["ps", "-a"]).is_empty());
    assert!(project.labelled(&["network", "ls"]).is_empty());
    assert!(project.labelled(&["volume", "ls"]).is_empty());
}

#[test]
fn up_is_idempotent_recreates_changed_and_repairs_killed() {
    let project = Project::new("finctl-test", STACK);
    project
        .finctl()
        .args(["--json", "up", "--timeout", "2m"])
        .assert_status(0)
        .json();
    let db_id = docker_ids(&["inspect", "-f", "{{.Id}}", &project.container("db")]);

    // Running stack: nothing changes, quickly.
    let started = Instant::now();
    let report = project
        .finctl()
        .args(["--json", "up"])
        .assert_status(0)
        .json();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        actions(&report),
        pairs(&[
            ("bootstrap", "unchanged"),
            ("cache", "unchanged"),
            ("db", "unchanged")
        ])
    );

    // A changed service is recreated, and only it.
    let override_file = project.dir().join("greeting.yml");
    std::fs::write(
        &override_file,
        "services:\n  cache:\n    environment:\n      GREETING: changed\n",
    )
    .unwrap();
    let file = override_file.to_str().unwrap();
    let report = project
        .finctl()
        .args(["--json", "up", "-f", file])
        .assert_status(0)
        .json();
    assert_eq!(
        actions(&report),
        pairs(&[
            ("bootstrap", "unchanged"),
            ("cache", "recreated"),
            ("db", "unchanged")
        ])
    );
    assert_eq!(
        docker_ids(&["inspect", "-f", "{{.Id}}", &project.container("db")]),
        db_id
    );

    // `logs -f` follows the cache across a restart.
    let mut follower = project
        .finctl()
        .args(["logs", "-f", "--file", file, "cache"])
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let ready_lines = |rx: &std::sync::mpsc::Receiver<String>, want: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = 0;
        while seen < want && Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                assert!(line.starts_with("cache |"), "prefix missing: {line}");
                if line.contains("Ready to accept connections") {
                    seen += 1;
                }
            }
        }
        seen
    };
    assert_eq!(ready_lines(&rx, 1), 1);

    // A killed container is repaired by the next `up` (the follower sees it start again).
    let kill = Command::new("docker")
        .args(["kill", &project.container("cache")])
        .output()
        .unwrap();
    assert!(kill.status.success());
    let report = project
        .finctl()
        .args(["--json", "up", "-f", file])
        .assert_status(0)
        .json();
    assert_eq!(
        actions(&report),
        pairs(&[
            ("bootstrap", "unchanged"),
            ("cache", "started"),
            ("db", "unchanged")
        ])
    );
    assert_eq!(ready_lines(&rx, 1), 1, "logs -f did not follow the restart");

    // `restart` waits for readiness; the follower keeps following.
    project
        .finctl()
        .args(["restart", "-f", file, "cache"])
        .assert_status(0);
    assert_eq!(
        ready_lines(&rx, 1),
        1,
        "logs -f did not follow `finctl restart`"
    );

    // `exec` passes the command's exit code and output through.
    let output = project
        .finctl()
        .args(["exec", "-f", file, "cache", "--"])
        .args(["sh", "-c", "echo $GREETING; exit 7"])
        .assert_status(7);
    assert_eq!(output.stdout().trim(), "changed");
    let _ = follower.kill();
    let _ = follower.wait();
}

#[test]
fn failing_healthcheck_fails_up_and_leaves_the_rest_running() {
    let project = Project::new("finctl-test", STACK);
    project
        .finctl()
        .args(["up", "--profile", "broken", "--timeout", "2m"])
        .assert_status(1)
        .stderr_contains("broken: its healthcheck fails")
        // its logs
        .stderr_contains("it will never be healthy")
        // its healthcheck's output
        .stderr_contains("probe says no");

    let rows = project
        .finctl()
        .args(["--json", "health", "--profile", "broken"])
        .assert_status(1)
        .json();
    for row in rows.as_array().unwrap() {
        let ok = row["service"] != "broken";
        assert_eq!(row["ok"], ok, "{row}");
    }
    assert_eq!(
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["service"] == "broken")
            .unwrap()["health"],
        "unhealthy"
    );
}

#[test]
fn crash_looping_service_fails_fast() {
    let project = Project::new("finctl-test", STACK);
    let started = Instant::now();
    project
        .finctl()
        .args(["up", "--timeout", "2m", "crashing"])
        .assert_status(1)
        .stderr_contains("exit code 3")
        // its logs
        .stderr_contains("cannot start");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn bad_input_fails_before_touching_docker() {
    let project = Project::new("finctl-test", STACK);
    project
        .finctl()
        .args(["up", "cahce"])
        .assert_status(2)
        .stderr_contains("no service `cahce`")
        .stderr_contains("did you mean `cache`?");

    project
        .finctl()
        .args(["up", "--timeout", "soon"])
        .assert_status(2);

    let broken = project.dir().join("cycle.yml");
    std::fs::write(&broken, "services:\n  db:\n    depends_on: [cache]\n").unwrap();
    project
        .finctl()
        .args(["up", "-f"])
        .arg(&broken)
        .assert_status(2);
    assert!(project.labelled(&["ps", "-a"]).is_empty());
}

#[test]
fn nuke_removes_the_stack_and_only_its_own_images() {
    // An image of this test's own, marked as built by finctl: finctl/redis:offline plus the
    // managed label (docker commit: no build context, no registry).
    let tag = format!("finctl-test-nuke-{}:latest", std::process::id());
    let guard = ImageGuard(tag.clone());
    let scratch = docker_ids(&["create", "finctl/redis:offline"]);
    assert_eq!(scratch.len(), 1, "docker create finctl/redis:offline");
    let committed = Command::new("docker")
        .args(["commit", "--change", "LABEL io.finctl.managed=true"])
        .args([&scratch[0], &tag])
        .output()
        .unwrap();
    let _ = Command::new("docker").args(["rm", &scratch[0]]).output();
    assert!(committed.status.success(), "docker commit: {committed:?}");

    let project = Project::new(
        "finctl-test",
        &format!(
            r#"
services:
  app:
    image: {tag}
    command: ["redis-server", "--port", "6379"]
    restart: unless-stopped
    volumes:
      - app-data:/data
volumes:
  app-data:
"#
        ),
    );
    project
        .finctl()
        .args(["--json", "up", "--timeout", "1m"])
        .assert_status(0)
        .json();
    assert_eq!(project.labelled(&["ps", "-a"]).len(), 1);
    assert_eq!(project.labelled(&["volume", "ls"]).len(), 1);

    let removed = project
        .finctl()
        .args(["--json", "nuke"])
        .assert_status(0)
        .json();
    assert_eq!(
        removed["containers"].as_array().unwrap().len(),
        1,
        "{removed}"
    );
    assert_eq!(removed["volumes"].as_array().unwrap().len(), 1, "{removed}");
    // Only this stack's image: finctl/redis:offline is finctl-built too, but this stack does
    // not use it.
    assert_eq!(removed["images"], serde_json::json!([tag]), "{removed}");
    assert!(project.labelled(&["ps", "-a"]).is_empty());
    assert!(project.labelled(&["volume", "ls"]).is_empty());
    assert!(project.labelled(&["network", "ls"]).is_empty());
    assert!(image_id(&tag).is_none(), "{tag} is still there");
    assert!(
        image_id("finctl/redis:offline").is_some(),
        "another image was removed"
    );
    drop(guard);
}
