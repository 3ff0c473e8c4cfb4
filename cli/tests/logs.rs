//! `finctl logs` on a throwaway project of `finctl/base:bookworm`: a service that writes lines
//! in platform-common's JSON format and a plain one, shown readable, raw, as JSON and filtered
//! by level; a one-shot whose last line has no newline.

use serde_json::Value;

mod common;
use common::{Project, Redact, Test};

/// What `app` writes, in order (the JSON lines as platform-common's tracing layer writes them).
const LINES: [&str; 4] = [
    r#"{"timestamp":"2026-12-02T06:58:52.123456Z","level":"INFO","message":"request finished","status":200,"target":"svc_wallet::http","span":{"request_id":"req-1","trace_id":"4bf92f35","name":"request"}}"#,
    r#"{"timestamp":"2026-12-02T06:58:53.5Z","level":"WARN","message":"slow query","sql":"SELECT 1","target":"platform_common::db"}"#,
    "plain line",
    "[1,2,3]",
];

fn stack() -> String {
    let echoes: String = LINES
        .iter()
        .map(|line| format!("        echo '{line}'\n"))
        .collect();
    format!(
        r#"
services:
  app:
    image: finctl/base:bookworm
    restart: unless-stopped
    command:
      - sh
      - -c
      - |
{echoes}        exec sleep infinity
  job:
    image: finctl/base:bookworm
    restart: "no"
    command: ["sh", "-c", "echo first; printf 'last line without newline'"]
"#
    )
}

#[test]
fn logs_are_readable_raw_json_and_filtered_by_level() {
    let project = Project::new("finctl-logs", &stack());
    project
        .finctl()
        .args(["up", "--timeout", "1m"])
        .assert_status(0);

    let readable = project.finctl().args(["logs", "app"]).assert_status(0);
    insta::assert_snapshot!(
        "logs_readable",
        Redact::project(&project).apply(readable.stdout())
    );

    let raw = project
        .finctl()
        .args(["logs", "--raw", "app"])
        .assert_status(0);
    let after_prefix: Vec<&str> = raw
        .stdout()
        .lines()
        .map(|line| line.strip_prefix("app | ").expect("the prefix"))
        .collect();
    assert_eq!(after_prefix, LINES);

    let json = project
        .finctl()
        .args(["--json", "logs", "app"])
        .assert_status(0);
    let objects: Vec<Value> = json
        .stdout()
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(objects.len(), LINES.len());
    assert!(objects.iter().all(|object| object["service"] == "app"));
    assert_eq!(objects[0]["message"], "request finished");
    assert_eq!(objects[0]["span"]["request_id"], "req-1");
    assert_eq!(objects[2]["message"], "plain line");
    assert_eq!(objects[3]["message"], "[1,2,3]");

    let warn = project
        .finctl()
        .args(["logs", "--level", "warn", "app"])
        .assert_status(0);
    let lines: Vec<&str> = warn.stdout().lines().collect();
    assert_eq!(lines.len(), 3, "the INFO line is filtered out: {lines:?}");
    assert!(lines[0].contains("WARN  slow query"));
    assert!(!warn.stdout().contains("request finished"));

    // A last line without a newline is shown too.
    let job = project.finctl().args(["logs", "job"]).assert_status(0);
    assert_eq!(
        job.stdout(),
        "job | first\njob | last line without newline\n"
    );
}

#[test]
fn a_bad_level_is_a_usage_error_naming_the_accepted_ones() {
    Test::new()
        .args(["logs", "--level", "loud"])
        .assert_status(2)
        .stderr_contains("'loud'")
        .stderr_contains("trace, debug, info, warn, error");
}

#[test]
fn raw_and_json_together_are_refused() {
    Test::new()
        .args(["--json", "logs", "--raw"])
        .assert_status(2)
        .stderr_contains("--raw and --json cannot be used together");
}
