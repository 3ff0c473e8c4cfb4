//! Compose's ways of naming a project, each driving a real three-service stack through
//! `up`, `ps` and `down`: `-f` before and after the command, `COMPOSE_FILE`, `compose.yaml`
//! found by walking up from a subfolder, and `-f -` (stdin). docker-compose 1.29 must see the
//! same project. Then the errors: a missing `-f` file, bad YAML on stdin.

mod common;
use std::path::Path;

use common::{Project, Test};

/// A one-shot, a database that is healthy after about 2 s (its healthcheck's interval is
/// 10 s: waiting for Docker's verdict would take that long) and a long-running app waiting
/// for both; no published ports.
const STACK: &str = r#"
services:
  init:
    image: finctl/base:bookworm
    command: ["true"]
  db:
    image: finctl/redis:offline
    command: ["sh", "-c", "sleep 2; exec redis-server --port 6379"]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 10s
  app:
    image: finctl/base:bookworm
    command: ["sleep", "infinity"]
    # Not a one-shot: it restarts, so it is ready once running.
    restart: unless-stopped
    stop_grace_period: 1s
    depends_on:
      init:
        condition: service_completed_successfully
      db:
        condition: service_healthy
"#;

const NO_DOCKER: &str = "unix:///nonexistent.sock";

/// `up`, `ps`, `logs`, `down` through `finctl(command)`; in between docker-compose, given
/// the file and the project name, lists the same containers.
fn up_ps_down(project: &Project, finctl: impl Fn(&[&str]) -> Test) {
    let report = finctl(&["--json", "up", "--timeout", "90s"])
        .assert_status(0)
        .json();
    // The database was seen healthy by finctl's own on-demand check, not Docker's (whose
    // first run comes 10 s after the start).
    let db = report["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["service"] == "db")
        .expect("db in the report");
    assert!(
        db["timeline"]["probes"].as_u64().unwrap_or(0) >= 1,
        "{db:#}"
    );
    assert!(db["timeline"]["first_probe_ms"].is_u64(), "{db:#}");

    finctl(&["logs", "db"])
        .assert_status(0)
        .stdout_contains("Ready to accept connections");

    let rows = finctl(&["--json", "ps"]).assert_status(0).json();
    let rows = rows.as_array().expect("an array");
    let mut services: Vec<&str> = rows.iter().filter_map(|r| r["service"].as_str()).collect();
    services.sort_unstable();
    assert_eq!(services, ["app", "db", "init"]);
    for row in rows {
        assert_eq!(row["ok"], true, "{row}");
    }

    project
        .assert_docker_compose_lists(&project.dir().join("compose.yaml"), &["init", "db", "app"]);

    finctl(&["down"]).assert_status(0);
    assert!(project.labelled(&["ps", "-a"]).is_empty());
}

fn file_of(project: &Project) -> String {
    project.dir().join("compose.yaml").display().to_string()
}

#[test]
fn file_before_the_command() {
    let project = Project::compose_yaml("finctl-disc-before", STACK);
    let file = file_of(&project);
    up_ps_down(&project, |command| {
        Test::new()
            .args(["-f", &file, "-p", &project.name])
            .args(command)
            .current_dir("/")
    });
}

#[test]
fn file_after_the_command() {
    let project = Project::compose_yaml("finctl-disc-after", STACK);
    let file = file_of(&project);
    up_ps_down(&project, |command| {
        Test::new()
            .args(command)
            .args(["--file", &file, "--project-name", &project.name])
            .current_dir("/")
    });
}

#[test]
fn compose_file_variable() {
    let project = Project::compose_yaml("finctl-disc-env", STACK);
    // A second file, `:`-separated, merged after the first.
    let extra = project.dir().join("extra.yml");
    std::fs::write(
        &extra,
        "services:\n  app:\n    environment:\n      FROM: extra\n",
    )
    .unwrap();
    let files = format!("{}:{}", file_of(&project), extra.display());
    up_ps_down(&project, |command| {
        Test::new()
            .args(command)
            .env("COMPOSE_FILE", &files)
            .env("COMPOSE_PROJECT_NAME", &project.name)
            .current_dir("/")
    });
}

#[test]
fn compose_yaml_found_walking_up_from_a_subfolder() {
    let project = Project::compose_yaml("finctl-disc-walk", STACK);
    let subfolder = project.dir().join("src/deep");
    std::fs::create_dir_all(&subfolder).unwrap();
    up_ps_down(&project, |command| {
        Test::new()
            .args(command)
            .env("COMPOSE_PROJECT_NAME", &project.name)
            .current_dir(&subfolder)
    });
}

#[test]
fn file_from_stdin() {
    let project = Project::compose_yaml("finctl-disc-stdin", STACK);
    up_ps_down(&project, |command| {
        Test::new()
            .args(["-f", "-", "-p", &project.name])
            .args(command)
            .stdin(STACK)
            .current_dir(project.dir())
    });
}

#[test]
fn file_before_logs_is_the_file_and_logs_f_still_follows() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compose.yaml");
    std::fs::write(&file, STACK).unwrap();
    // The stack is loaded from `-f FILE` (the typo is found in it) before anything follows.
    Test::new()
        .args(["-f"])
        .arg(&file)
        .args(["logs", "-f", "apq"])
        .env("DOCKER_HOST", NO_DOCKER)
        .current_dir("/")
        .assert_status(2)
        .stderr_contains("did you mean `app`?");
}

#[test]
fn project_dir_with_file_needs_no_compose_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stack.yml"), STACK).unwrap();
    Test::new()
        .args(["up", "-f"])
        .arg(dir.path().join("stack.yml"))
        .arg("--project-dir")
        .arg(dir.path())
        .args(["apq"])
        .env("DOCKER_HOST", NO_DOCKER)
        .assert_status(2)
        .stderr_contains("did you mean `app`?");
}

#[test]
fn a_missing_file_is_named() {
    Test::new()
        .args(["-f", "/nonexistent/compose.yml", "ps"])
        .env("DOCKER_HOST", NO_DOCKER)
        .current_dir("/")
        .assert_status(2)
        .stderr_contains("cannot read nonexistent/compose.yml");
}

#[test]
fn bad_yaml_from_stdin_names_stdin_and_the_line() {
    Test::new()
        .args(["-f", "-", "ps"])
        .stdin("services:\n  app:\n    image: [\n")
        .env("DOCKER_HOST", NO_DOCKER)
        .current_dir(Path::new("/"))
        .assert_status(2)
        .stderr_contains("<stdin>:4: invalid YAML");
}

#[test]
fn profile_before_or_after_the_command_enables_services() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  a:\n    image: finctl/base:bookworm\n    depends_on: [b]\n    profiles: [tools]\n  b:\n    image: finctl/base:bookworm\n    profiles: [other]\n",
    )
    .unwrap();
    // Without --profile, `a` is off and nothing is checked; with it, its dependency on `b`
    // (in another profile) is refused: the profile reached the loader.
    for args in [
        &["--profile", "tools", "ps"][..],
        &["ps", "--profile", "tools"],
    ] {
        Test::new()
            .args(args)
            .env("DOCKER_HOST", NO_DOCKER)
            .current_dir(dir.path())
            .assert_status(2)
            .stderr_contains("`b` is not enabled by the active profiles");
    }
    Test::new()
        .arg("ps")
        .env("DOCKER_HOST", NO_DOCKER)
        .current_dir(dir.path())
        .assert_status(1)
        .stderr_contains("the Docker engine is not running");
}

/// A service that restarts never, has no healthcheck and no ports, and that nothing waits on
/// may be a server (`sleep infinity`) or a task (`true`): as with docker compose, `up` is done
/// once it stays up or has exited 0, and `health` counts both as ok.
#[test]
fn a_sidecar_without_restart_policy_is_ready_once_up_and_a_task_once_done() {
    let project = Project::compose_yaml(
        "finctl-disc-sidecar",
        r#"
services:
  side:
    image: finctl/base:bookworm
    command: ["sleep", "infinity"]
    stop_grace_period: 1s
  once:
    image: finctl/base:bookworm
    command: ["true"]
  broken:
    image: finctl/base:bookworm
    command: ["false"]
    profiles: [broken]
"#,
    );
    let file = file_of(&project);
    let finctl = |command: &[&str]| {
        Test::new()
            .args(["-f", &file, "-p", &project.name])
            .args(command)
            .current_dir("/")
    };
    // A regression waits for `side` to exit: the short timeout turns that into a failure.
    finctl(&["up", "--timeout", "30s"]).assert_status(0);
    finctl(&["health"]).assert_status(0);
    let rows = finctl(&["--json", "ps"]).assert_status(0).json();
    for row in rows.as_array().expect("an array") {
        assert_eq!(row["ok"], true, "{row}");
    }
    // A task that exits non-zero still fails `up`.
    finctl(&["--profile", "broken", "up", "--timeout", "30s", "broken"])
        .assert_status(1)
        .stderr_contains("exit code 1");
    finctl(&["down"]).assert_status(0);
}

/// `up` records how the stack was started (files, folder, profiles) on its containers; run
/// without `-f` or `--profile`, every later command acts on that stack, not on what
/// discovery alone finds; a flag that says otherwise wins, with one warning line.
#[test]
fn plain_commands_act_on_the_stack_as_it_was_started() {
    let project = Project::compose_yaml("finctl-disc-started", STACK);
    std::fs::write(
        project.dir().join("extra.yml"),
        r#"
services:
  extra:
    image: finctl/base:bookworm
    command: ["sleep", "infinity"]
    restart: unless-stopped
    stop_grace_period: 1s
  tool:
    image: finctl/base:bookworm
    command: ["sleep", "infinity"]
    restart: unless-stopped
    stop_grace_period: 1s
    profiles: [tools]
"#,
    )
    .unwrap();
    let finctl = |command: &[&str]| {
        Test::new()
            .args(command)
            .env("COMPOSE_PROJECT_NAME", &project.name)
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROFILES")
            .current_dir(project.dir())
    };
    finctl(&[
        "-f",
        "compose.yaml",
        "-f",
        "extra.yml",
        "--profile",
        "tools",
        "up",
        "--timeout",
        "90s",
    ])
    .assert_status(0);

    // Discovery alone finds compose.yaml; the running stack adds extra.yml and the profile.
    let ps = finctl(&["--json", "ps"]).assert_status(0);
    assert!(!ps.stderr().contains("warning"), "{}", ps.report());
    let rows = ps.json();
    let mut services: Vec<&str> = rows
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|r| r["service"].as_str())
        .collect();
    services.sort_unstable();
    assert_eq!(services, ["app", "db", "extra", "init", "tool"]);
    for row in rows.as_array().unwrap() {
        assert_eq!(row["ok"], true, "{row}");
    }
    finctl(&["health"]).assert_status(0);

    // Flags that contradict the running stack win, and one line says so.
    let contradicted = finctl(&["-f", "compose.yaml", "health"]).run();
    let warnings: Vec<&str> = contradicted
        .stderr()
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", contradicted.report());
    assert!(
        warnings[0].contains("was started with -f compose.yaml -f extra.yml --profile tools"),
        "{}",
        contradicted.report()
    );
    assert!(
        warnings[0].contains("acting on -f compose.yaml"),
        "{}",
        contradicted.report()
    );

    // A plain `up` repairs the stack as it was started, rather than dropping extra and tool.
    let stop = std::process::Command::new("docker")
        .args(["stop", "-t", "1", &project.container("tool")])
        .output()
        .expect("docker stop");
    assert!(stop.status.success(), "{stop:?}");
    let report = finctl(&["--json", "up", "--timeout", "90s"])
        .assert_status(0)
        .json();
    let mut up: Vec<&str> = report["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s["service"].as_str())
        .collect();
    up.sort_unstable();
    assert_eq!(up, ["app", "db", "extra", "init", "tool"]);
    let tool = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "tool")
        .unwrap();
    assert_eq!(tool["action"], "started", "{tool:#}");

    // A plain `down` takes down all of it, extra.yml's and the profile's containers too.
    finctl(&["down"]).assert_status(0);
    assert!(project.labelled(&["ps", "-a"]).is_empty());
}

/// As with `docker compose -p NAME ps`: with a project name and no Compose file where it runs,
/// finctl acts on the running stack of that name as it was started; without a running stack
/// the error says no file was found.
#[test]
fn a_project_name_alone_finds_the_running_stack() {
    let project = Project::compose_yaml("finctl-disc-name", STACK);
    let file = file_of(&project);
    Test::new()
        .args(["-f", &file, "-p", &project.name, "up", "--timeout", "90s"])
        .current_dir("/")
        .assert_status(0);
    let elsewhere = tempfile::tempdir().unwrap();
    let rows = Test::new()
        .args(["--json", "-p", &project.name, "ps"])
        .env_remove("COMPOSE_FILE")
        .current_dir(elsewhere.path())
        .assert_status(0)
        .json();
    let mut services: Vec<&str> = rows
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|r| r["service"].as_str())
        .collect();
    services.sort_unstable();
    assert_eq!(services, ["app", "db", "init"]);
    Test::new()
        .args(["-p", &project.name, "down"])
        .env_remove("COMPOSE_FILE")
        .current_dir(elsewhere.path())
        .assert_status(0);
    assert!(project.labelled(&["ps", "-a"]).is_empty());
    // Nothing of that name runs any more: the usual error.
    Test::new()
        .args(["-p", &project.name, "ps"])
        .env_remove("COMPOSE_FILE")
        .current_dir(elsewhere.path())
        .assert_status(2)
        .stderr_contains("no compose/docker-compose.yml, compose.yaml or docker-compose.yml");
}
