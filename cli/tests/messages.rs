//! What a person reads when no stack is running: every command's `--help`, and the main error
//! messages (exit code + stderr), as insta snapshots under `cli/tests/snapshots/`. Fast: no
//! image, no container. Errors finctl finds before it talks to Docker are provoked with an
//! unreachable `DOCKER_HOST` (which proves they are found first); only the unknown image
//! recipe asks the engine.
//!
//! Updating snapshots after an intended change of output:
//!   cargo insta test -p finctl --test messages --review    (if cargo-insta is installed)
//! or
//!   INSTA_UPDATE=always cargo test -p finctl --test messages && git diff cli/tests/snapshots
//! With `CI=true` a mismatch fails and nothing is written. Leave no `*.snap.new` behind.

mod common;
use common::{Project, Redact, Test};

/// Every command and subcommand; a new one is one line here (and `every_command_has_a_help_snapshot`
/// fails until it is).
const COMMANDS: &[&[&str]] = &[
    &[],
    &["images"],
    &["images", "build"],
    &["images", "list"],
    &["up"],
    &["down"],
    &["nuke"],
    &["ps"],
    &["health"],
    &["logs"],
    &["restart"],
    &["exec"],
    &["urls"],
    &["doctor"],
    &["sql"],
    &["redis"],
    &["topics"],
    &["topics", "list"],
    &["topics", "create"],
    &["publish-apis"],
    &["bootstrap"],
    &["token"],
    &["smoke-test"],
    &["new-service"],
];

const NO_DOCKER: &str = "unix:///nonexistent.sock";

/// A valid two-service stack; the error tests break it one way each.
const STACK: &str = r#"
services:
  db:
    image: finctl/postgres:offline
    ports:
      - "127.0.0.1:${DB_PORT}:26257"
  redis:
    image: finctl/redis:offline
    ports:
      - "127.0.0.1:${CACHE_PORT}:6379"
    depends_on: [db]
"#;

#[test]
fn help_of_every_command() {
    for command in COMMANDS {
        let output = Test::new().args(*command).arg("--help").assert_status(0);
        let name = if command.is_empty() {
            "help_finctl".to_owned()
        } else {
            format!("help_{}", command.join("_"))
        };
        insta::assert_snapshot!(name, output.stdout());
    }
}

/// The commands `finctl [COMMAND] --help` lists, each with its subcommands.
fn listed_commands(prefix: &[&str]) -> Vec<Vec<String>> {
    let output = Test::new().args(prefix).arg("--help").assert_status(0);
    let Some((_, listing)) = output.stdout().split_once("Commands:\n") else {
        return Vec::new();
    };
    let names: Vec<String> = listing
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    let mut commands = Vec::new();
    for name in names {
        let mut command: Vec<String> = prefix.iter().map(|s| (*s).to_owned()).collect();
        command.push(name);
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        let children = listed_commands(&args);
        commands.push(command);
        commands.extend(children);
    }
    commands
}

#[test]
fn every_command_has_a_help_snapshot() {
    let snapshotted: Vec<Vec<String>> = COMMANDS
        .iter()
        .filter(|c| !c.is_empty())
        .map(|c| c.iter().map(|s| (*s).to_owned()).collect())
        .collect();
    let mut listed = listed_commands(&[]);
    listed.sort();
    let mut snapshotted_sorted = snapshotted.clone();
    snapshotted_sorted.sort();
    assert_eq!(
        listed, snapshotted_sorted,
        "COMMANDS is not `finctl --help`'s list"
    );
}

/// Runs `test` and snapshots its exit code and stderr.
fn assert_error_snapshot(name: &str, project: &Project, test: Test) {
    let output = test.run();
    if output.code() == Some(0) {
        output.fail("expected a failure");
    }
    insta::assert_snapshot!(
        name,
        Redact::values(project).apply(&output.code_and_stderr())
    );
}

/// `finctl ARGS` in `project`, with no Docker engine reachable.
fn without_docker(project: &Project, args: &[&str]) -> Test {
    project.finctl().env("DOCKER_HOST", NO_DOCKER).args(args)
}

#[test]
fn error_yaml_syntax() {
    let project = Project::new(
        "finctl-msg",
        "services:\n  db:\n    image: finctl/postgres:offline\n    ports: [\"127.0.0.1:1:2\"\n  redis: {}\n",
    );
    assert_error_snapshot(
        "error_yaml_syntax",
        &project,
        without_docker(&project, &["up"]),
    );
}

#[test]
fn error_unknown_dependency() {
    let project = Project::new(
        "finctl-msg",
        &STACK.replace("depends_on: [db]", "depends_on: [dbb]"),
    );
    assert_error_snapshot(
        "error_unknown_dependency",
        &project,
        without_docker(&project, &["up"]),
    );
}

#[test]
fn error_duplicate_host_port() {
    let project = Project::new("finctl-msg", &STACK.replace("${CACHE_PORT}", "${DB_PORT}"));
    assert_error_snapshot(
        "error_duplicate_host_port",
        &project,
        without_docker(&project, &["up"]),
    );
}

#[test]
fn error_unknown_service_suggests_the_closest() {
    let project = Project::new("finctl-msg", STACK);
    assert_error_snapshot(
        "error_unknown_service",
        &project,
        without_docker(&project, &["up", "redsi"]),
    );
}

#[test]
fn error_bad_timeout() {
    let project = Project::new("finctl-msg", STACK);
    assert_error_snapshot(
        "error_bad_timeout",
        &project,
        without_docker(&project, &["up", "--timeout", "soon"]),
    );
}

#[test]
fn error_docker_unreachable() {
    let project = Project::new("finctl-msg", STACK);
    assert_error_snapshot(
        "error_docker_unreachable",
        &project,
        without_docker(&project, &["ps"]),
    );
}

#[test]
fn error_unknown_image_recipe() {
    let mut project = Project::new("finctl-msg", STACK);
    for (name, toml) in [
        (
            "base",
            "tag = \"t/base:1\"\n[debootstrap]\nsuite = \"bookworm\"\n",
        ),
        ("postgres", "tag = \"t/postgres:1\"\nfrom = \"base\"\n"),
        ("redis", "tag = \"t/redis:1\"\nfrom = \"base\"\n"),
    ] {
        project = project
            .file(&format!("compose/images/{name}/image.toml"), toml)
            .file(
                &format!("compose/images/{name}/Dockerfile"),
                "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
            );
    }
    assert_error_snapshot(
        "error_unknown_image_recipe",
        &project,
        project.finctl().args(["images", "build", "postgress"]),
    );
}

/// The filters themselves: two tables whose hidden values differ in width redact to the same
/// aligned text.
#[test]
fn redaction_does_not_depend_on_the_width_of_what_it_hides() {
    let table = |port: &str, time: &str| {
        let row = format!("127.0.0.1:{port}->6379/tcp");
        let width = row.len().max(5);
        format!(
            "┌{line}┐\n│ service  ports{pad}  ready after │\n╞{eq}╡\n│ cache    {row}  {time:<11} │\n└{line}┘\nReady in {time}.",
            line = "─".repeat(width + 24),
            eq = "═".repeat(width + 24),
            pad = " ".repeat(width - 5),
        )
    };
    let redact = Redact::new();
    let narrow = redact.apply(&table("1024", "0.4s"));
    let wide = redact.apply(&table("61000", "112.5s"));
    assert_eq!(narrow, wide);
    assert_eq!(
        narrow,
        "┌──────────────────────────────────────────────────┐\n\
         │ service  ports                       ready after │\n\
         ╞══════════════════════════════════════════════════╡\n\
         │ cache    127.0.0.1:[PORT]->6379/tcp  [TIME]      │\n\
         └──────────────────────────────────────────────────┘\n\
         Ready in [TIME]."
    );
}
