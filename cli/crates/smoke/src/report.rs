//! The run's results as a JUnit file (`--junit`) and as JSON (`--json`).
//!
//! JUnit: one `<testsuite>` per suite, one `<testcase>` per case (`classname` =
//! `smoke.<suite>.<service>`), failures with their one-line message as `message` and the
//! request/response and log tail as the failure's text, skipped cases with their reason.
//! GitLab, GitHub (test-reporter actions) and Jenkins read this shape.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use crate::{CaseResult, Outcome, Suite};

/// Totals of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

pub fn totals(results: &[CaseResult]) -> Totals {
    let mut t = Totals::default();
    for r in results {
        match r.outcome {
            Outcome::Passed => t.passed += 1,
            Outcome::Failed(_) => t.failed += 1,
            Outcome::Skipped(_) => t.skipped += 1,
        }
    }
    t
}

/// The JSON document `--json` prints.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    pub totals: Totals,
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    pub cases: &'a [CaseResult],
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// The text of a case's failure: its detail, then the service's log tail.
pub fn failure_text(case: &CaseResult) -> String {
    let mut text = String::new();
    if let Some(detail) = &case.detail {
        text.push_str(detail);
        text.push('\n');
    }
    if let Some(tail) = &case.log_tail {
        text.push_str(&format!(
            "last log lines of {}:\n{tail}\n",
            case.service.as_deref().unwrap_or("the service")
        ));
    }
    text
}

/// The JUnit XML of a run.
pub fn junit(results: &[CaseResult], elapsed: Duration) -> anyhow::Result<String> {
    let mut report = Report::new("finctl smoke-test");
    report.set_time(elapsed);
    for suite in Suite::ALL {
        let cases: Vec<&CaseResult> = results.iter().filter(|r| r.suite == suite).collect();
        if cases.is_empty() {
            continue;
        }
        let mut ts = TestSuite::new(suite.name());
        ts.set_time(cases.iter().map(|c| c.duration).sum());
        for case in cases {
            let status = match &case.outcome {
                Outcome::Passed => TestCaseStatus::success(),
                Outcome::Failed(message) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(message.as_str()).set_type("failure");
                    let text = failure_text(case);
                    if !text.is_empty() {
                        status.set_description(text);
                    }
                    status
                }
                Outcome::Skipped(reason) => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(reason.as_str());
                    status
                }
            };
            let mut tc = TestCase::new(case.name.as_str(), status);
            let classname = match &case.service {
                Some(service) => format!("smoke.{}.{service}", suite.name()),
                None => format!("smoke.{}", suite.name()),
            };
            tc.set_classname(classname)
                .set_time(case.duration)
                .set_system_out(format!("source: {}\n", case.source));
            ts.add_test_case(tc);
        }
        report.add_test_suite(ts);
    }
    Ok(report.to_string()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(suite: Suite, name: &str, outcome: Outcome) -> CaseResult {
        CaseResult {
            suite,
            name: name.into(),
            service: Some("profile".into()),
            source: "tests/smoke/smoke/profile.hurl:3".into(),
            outcome,
            duration: Duration::from_millis(12),
            detail: Some("request:  GET http://127.0.0.1:8001/health\nresponse: 503".into()),
            log_tail: Some("profile | boom".into()),
        }
    }

    #[test]
    fn junit_has_a_suite_per_suite_and_a_testcase_per_case_with_failures() {
        let results = [
            case(Suite::Smoke, "profile: health", Outcome::Passed),
            case(
                Suite::Smoke,
                "profile: readiness",
                Outcome::Failed("HTTP 503, want 200".into()),
            ),
            case(
                Suite::Auth,
                "expired token",
                Outcome::Skipped("needs the key".into()),
            ),
        ];
        let xml = junit(&results, Duration::from_secs(1)).unwrap();
        let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(parsed.test_suites.len(), 2);
        assert_eq!(parsed.tests, 3);
        assert_eq!(parsed.failures, 1);
        let smoke = &parsed.test_suites[0];
        assert_eq!(smoke.name.as_str(), "smoke");
        assert_eq!(smoke.test_cases.len(), 2);
        assert!(xml.contains("HTTP 503, want 200"), "{xml}");
        assert!(
            xml.contains("profile | boom"),
            "the log tail is in the failure: {xml}"
        );
        assert!(xml.contains("<skipped"), "{xml}");
        assert_eq!(
            totals(&results),
            Totals {
                passed: 1,
                failed: 1,
                skipped: 1
            }
        );
    }
}
