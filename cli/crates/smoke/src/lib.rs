//! `finctl smoke-test`: suites of cases run against a running stack.
//!
//! Cases are data: Hurl files under `tests/smoke/<suite>/` ([`hurl_cases`]), one file per
//! service or concern, one case per request entry (named by the comment above it). What is
//! not HTTP, or is one case per thing the stack declares (each service is ready, each declared
//! user's token, each worker takes a job), is built by `finctl` from the stack and the
//! bootstrap declarations and run by [`worker`] and the command itself. Both kinds are
//! [`Case`]s; [`run`] runs them in parallel and [`report`] turns the results into a JUnit
//! file or JSON.

pub mod forge;
pub mod hurl_cases;
pub mod report;
pub mod run;
pub mod worker;

use std::time::Duration;

use serde::Serialize;

/// The suites, in the order they run and are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// Every service ready and answering, directly and through the gateway; the IdP.
    Smoke,
    /// Tokens per declared user, and every way a bad token must be refused.
    Auth,
    /// Each worker takes a job and dead-letters one that always fails.
    Worker,
    /// A payment through the gateway to its final state.
    Flow,
}

impl Suite {
    pub const ALL: [Suite; 4] = [Suite::Smoke, Suite::Auth, Suite::Worker, Suite::Flow];

    pub fn name(self) -> &'static str {
        match self {
            Suite::Smoke => "smoke",
            Suite::Auth => "auth",
            Suite::Worker => "worker",
            Suite::Flow => "flow",
        }
    }

    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "message", rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    /// Why, in one line.
    Failed(String),
    /// Why it could not run here (e.g. forging a token needs the IdP's signing key).
    Skipped(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Passed => "pass",
            Outcome::Failed(_) => "FAIL",
            Outcome::Skipped(_) => "skip",
        }
    }

    pub fn failed(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }
}

/// One case's result.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub suite: Suite,
    pub name: String,
    /// The Compose service the case is about, if one.
    pub service: Option<String>,
    /// Where the case is defined: `tests/smoke/smoke/profile.hurl:12`, or `finctl` for the
    /// cases built from the stack.
    pub source: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    /// On failure: the request, the response status and a body excerpt (secrets masked).
    pub detail: Option<String>,
    /// On failure: the last log lines of the service involved.
    pub log_tail: Option<String>,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// Replaces every secret (tokens, passwords) and anything shaped like a JWT by `***`, so no
/// credential reaches a terminal, a CI log or a JUnit file.
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| s.len() >= 4).collect();
    // Longest first, so a secret that contains another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        out = out.replace(secret.as_str(), "***");
    }
    jwt_shaped().replace_all(&out, "***").into_owned()
}

fn jwt_shaped() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*").expect("regex")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_hides_secrets_and_jwt_shaped_text() {
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";
        let text = format!("Authorization: Bearer {token}; password=hunter22; ok");
        let masked = mask(&text, &["hunter22".into()]);
        assert_eq!(masked, "Authorization: Bearer ***; password=***; ok");
        // An unsigned token's header and claims are masked too.
        assert_eq!(mask("x eyJhbGciOiJub25lIn0.eyJ9. y", &[]), "x *** y");
        // Short values are not masked (they would blank out ordinary words).
        assert_eq!(mask("abc", &["ab".into()]), "abc");
    }

    #[test]
    fn suites_round_trip_by_name() {
        for suite in Suite::ALL {
            assert_eq!(Suite::from_name(suite.name()), Some(suite));
        }
        assert_eq!(Suite::from_name("smoky"), None);
    }
}
