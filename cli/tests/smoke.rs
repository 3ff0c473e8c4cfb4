//! `finctl smoke-test` as CI runs it: against the offline stack of the README's first command
//! (brought up here if it is not running, and then taken down again).
//!
//! One test in steps, because steps stop containers of the shared stack: run in parallel,
//! the passing run would see the stopped service. Bad case files need no stack and run on
//! their own.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{Teardown, Test, docker};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn finctl() -> Test {
    Test::new().project_dir(root())
}

/// The failed cases of a `--json` report: (name, service).
fn failed(report: &Value) -> Vec<(String, String)> {
    report["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["result"] == "failed")
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                c["service"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn container(service: &str) -> String {
    let ps = finctl()
        .args(["--json", "ps", "--offline"])
        .run()
        .status(0)
        .json();
    ps.as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == service)
        .and_then(|s| s["container"].as_str())
        .unwrap_or_else(|| panic!("the {service} container: {ps}"))
        .to_owned()
}

/// Starts a stopped service again and waits until the stack is healthy (also when an
/// assertion fails).
struct Restore(&'static str);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = finctl()
            .args([
                "up",
                "--offline",
                "--no-bootstrap",
                "--no-publish",
                "--timeout",
                "3m",
                self.0,
            ])
            .command()
            .output();
    }
}

#[test]
fn smoke_test_passes_on_the_stack_and_fails_exactly_what_is_stopped() {
    let _guard = Teardown::up_offline();
    let dir = tempfile::tempdir().unwrap();

    // --- every suite passes on a healthy stack, with a JUnit file --------------------------
    let junit = dir.path().join("reports/smoke.xml");
    let started = Instant::now();
    let run = finctl()
        .args(["--json", "smoke-test", "--offline", "--junit"])
        .arg(&junit)
        .run();
    let took = started.elapsed();
    let report = run.json();
    assert_eq!(
        failed(&report),
        [] as [(String, String); 0],
        "{}",
        run.report()
    );
    assert_eq!(run.code(), Some(0), "{}", run.report());
    let cases = report["cases"].as_array().unwrap();
    let passed = report["totals"]["passed"].as_u64().unwrap();
    assert!(
        passed >= 90,
        "most cases run and pass here: {}",
        report["totals"]
    );
    // On the offline IdP nothing is skipped: its private key makes every bad token.
    assert_eq!(report["totals"]["skipped"], 0, "{}", report["totals"]);
    for suite in ["smoke", "auth", "worker", "flow"] {
        assert!(
            cases.iter().any(|c| c["suite"] == suite),
            "suite {suite} ran"
        );
    }
    let xml = std::fs::read_to_string(&junit).expect("the JUnit file");
    let parsed = quick_junit::Report::deserialize_from_str(&xml).expect("JUnit XML");
    assert_eq!(parsed.tests, cases.len(), "one testcase per case");
    assert_eq!(parsed.failures, 0);
    assert_eq!(parsed.test_suites.len(), 4, "a testsuite per suite");
    // No token, in any output.
    for (what, text) in [
        ("stdout", run.stdout()),
        ("stderr", run.stderr()),
        ("JUnit", &xml),
    ] {
        assert!(!text.contains("eyJ"), "a JWT in {what}");
    }
    eprintln!("smoke-test, every suite: {took:?}");

    // --- smoke and auth alone: the figure the README quotes -------------------------------
    let started = Instant::now();
    finctl()
        .args(["smoke-test", "--offline", "smoke", "auth"])
        .run()
        .status(0);
    eprintln!("smoke-test smoke auth: {:?}", started.elapsed());

    // --- the table and live lines, without --json -------------------------------------------
    let plain = finctl()
        .args(["smoke-test", "--offline", "smoke", "--service", "forex"])
        .run()
        .status(0);
    assert!(
        plain.stdout().contains("forex: health, directly"),
        "{}",
        plain.report()
    );
    assert!(plain.stderr().contains("pass  smoke"), "{}", plain.report());
    assert!(plain.stderr().contains("0 failed"), "{}", plain.report());

    // --- a stopped service: exactly its cases fail, named, with its log tail ---------------
    {
        let _restore = Restore("ledger");
        docker(&["stop", &container("ledger")]);
        let junit = dir.path().join("stopped.xml");
        let run = finctl()
            .args(["--json", "smoke-test", "--offline", "smoke", "--junit"])
            .arg(&junit)
            .run()
            .status(1);
        let report = run.json();
        let failures = failed(&report);
        assert!(!failures.is_empty(), "{}", run.report());
        let parsed = quick_junit::Report::deserialize_from_str(
            &std::fs::read_to_string(&junit).expect("the JUnit file of a failing run"),
        )
        .expect("JUnit XML");
        assert_eq!(parsed.failures, failures.len(), "the JUnit failure count");
        assert_eq!(parsed.tests, report["cases"].as_array().unwrap().len());
        assert!(
            failures.iter().all(|(_, service)| service == "ledger"),
            "only ledger's cases fail: {failures:?}"
        );
        assert!(
            failures.iter().any(|(name, _)| name == "ready: ledger"),
            "{failures:?}"
        );
        let ready = report["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "ready: ledger")
            .unwrap();
        assert!(
            ready["message"].as_str().unwrap().contains("exited"),
            "{ready}"
        );
        assert!(
            ready["log_tail"].as_str().is_some_and(|t| !t.is_empty()),
            "its last log lines: {ready}"
        );
        let text = finctl()
            .args(["smoke-test", "--offline", "smoke", "--service", "ledger"])
            .run()
            .status(1);
        assert!(
            text.stdout().contains("FAIL smoke / ready: ledger"),
            "{}",
            text.report()
        );
        assert!(
            text.stdout().contains("last log lines of ledger"),
            "{}",
            text.report()
        );
    }

    // --- a stopped worker: its worker cases fail within the timeout -----------------------
    {
        let _restore = Restore("wallet-worker");
        docker(&["stop", &container("wallet-worker")]);
        let started = Instant::now();
        let run = finctl()
            .args([
                "--json",
                "smoke-test",
                "--offline",
                "worker",
                "--timeout",
                "5s",
            ])
            .run()
            .status(1);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
        let failures = failed(&run.json());
        assert_eq!(
            failures,
            [
                ("echo: wallet".to_owned(), "wallet-worker".to_owned()),
                ("dead letter: wallet".to_owned(), "wallet-worker".to_owned())
            ],
            "{}",
            run.report()
        );
    }
}

#[test]
fn a_case_file_that_does_not_parse_names_file_and_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("smoke")).unwrap();
    std::fs::write(
        dir.path().join("smoke/broken.hurl"),
        "# fine\nGET http://127.0.0.1:1/health\nHTTP 2x0\n",
    )
    .unwrap();
    let run = finctl()
        .args(["smoke-test", "--offline", "--list", "--dir"])
        .arg(dir.path())
        .run()
        .status(2);
    assert!(run.stderr().contains("broken.hurl:3"), "{}", run.report());

    std::fs::create_dir_all(dir.path().join("smoky")).unwrap();
    std::fs::remove_file(dir.path().join("smoke/broken.hurl")).unwrap();
    let run = finctl()
        .args(["smoke-test", "--offline", "--dir"])
        .arg(dir.path())
        .run()
        .status(2);
    assert!(
        run.stderr().contains("`smoky` is not a suite"),
        "{}",
        run.report()
    );

    finctl()
        .args(["smoke-test", "--offline", "--service", "ledgr", "--list"])
        .run()
        .status(2);
    // A selection with no case in it is a mistake, not a pass.
    finctl()
        .args(["smoke-test", "--offline", "auth", "--service", "profile"])
        .run()
        .status(2)
        .stderr_contains("no case of auth is about profile");
}

#[test]
fn list_shows_every_case_without_a_stack() {
    let run = finctl()
        .args(["--json", "smoke-test", "--offline", "--list"])
        .run()
        .status(0);
    let cases = run.json();
    let cases = cases.as_array().unwrap();
    let names: Vec<&str> = cases.iter().filter_map(|c| c["name"].as_str()).collect();
    for want in [
        "ready: ledger",
        "token: auditor (user, issuer, audience, roles)",
        "me: finance through the gateway",
        "echo: payment",
        "dead letter: forex",
        "payment: across currencies to payment.completed on its topic",
        "profile: health, directly",
        "bad-tokens: an expired token: 401 at the gateway",
        "payment: the idempotent retry returns the same payment",
    ] {
        assert!(names.contains(&want), "{want} listed: {names:?}");
    }
    let only = finctl()
        .args([
            "--json",
            "smoke-test",
            "--offline",
            "--list",
            "worker",
            "--service",
            "payment",
        ])
        .run()
        .status(0)
        .json();
    let only: Vec<&str> = only
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(only, ["echo: payment", "dead letter: payment"]);
}

#[test]
fn without_a_stack_each_service_fails_once_with_the_hint_and_the_rest_is_skipped() {
    // A project name no container carries: the stack is not there.
    let run = finctl()
        .args([
            "--json",
            "-p",
            "finctl-smoke-absent",
            "smoke-test",
            "--offline",
        ])
        .run()
        .status(1);
    let report = run.json();
    let cases = report["cases"].as_array().unwrap();
    let failures: Vec<&Value> = cases.iter().filter(|c| c["result"] == "failed").collect();
    assert!(!failures.is_empty(), "{}", run.report());
    for case in &failures {
        let name = case["name"].as_str().unwrap();
        assert!(
            name.starts_with("ready: "),
            "only the ready cases fail: {name}"
        );
        assert!(
            case["message"].as_str().unwrap().contains("finctl up"),
            "{case}"
        );
    }
    let services: std::collections::BTreeSet<&str> = failures
        .iter()
        .filter_map(|c| c["service"].as_str())
        .collect();
    assert_eq!(
        services.len(),
        failures.len(),
        "one failed case per service"
    );
    assert!(
        services.contains("ledger") && services.contains("gateway"),
        "{services:?}"
    );
    assert_eq!(
        report["totals"]["skipped"].as_u64().unwrap() as usize,
        cases.len() - failures.len(),
        "everything else is skipped"
    );
    assert!(
        run.stderr().is_empty() || !run.stderr().contains("error"),
        "{}",
        run.report()
    );
}
