//! Runs cases in parallel: Hurl files on blocking threads (a file's entries in order), the
//! cases finctl builds as futures; each result is handed to a callback as it arrives (live
//! progress), and all of them are returned in their suite's order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::hurl_cases::{CaseFile, Variables};
use crate::{CaseResult, Outcome, Suite};

/// A case finctl builds from the stack: its future yields the outcome and, on failure, the
/// detail to show.
pub struct Builtin {
    pub suite: Suite,
    pub name: String,
    pub service: Option<String>,
    pub run: BoxFuture<'static, (Outcome, Option<String>)>,
}

/// What is run: a case file (many cases), or one built case.
pub enum Job {
    File(CaseFile),
    Case(Builtin),
    /// A case decided before running (the stack is not there, a service is not ready).
    Decided(CaseResult),
}

impl Job {
    /// The results this job would give, all with `outcome` (for --fail-fast's leftovers).
    fn all(self, outcome: Outcome) -> Vec<CaseResult> {
        match self {
            Job::File(file) => file.all(outcome),
            Job::Case(case) => vec![built(&case, outcome, None, Duration::ZERO)],
            Job::Decided(mut result) => {
                result.outcome = outcome;
                vec![result]
            }
        }
    }
}

fn built(case: &Builtin, outcome: Outcome, detail: Option<String>, took: Duration) -> CaseResult {
    CaseResult {
        suite: case.suite,
        name: case.name.clone(),
        service: case.service.clone(),
        source: "finctl".into(),
        outcome,
        duration: took,
        detail,
        log_tail: None,
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How many jobs run at once.
    pub parallel: usize,
    /// Start nothing new once a case failed; what did not start is reported skipped.
    pub fail_fast: bool,
}

/// Runs `jobs`; `on_result` sees each result as it arrives. Results come back sorted by
/// suite, in the order the jobs were given within a suite.
pub async fn run(
    jobs: Vec<Job>,
    vars: Arc<Variables>,
    options: Options,
    mut on_result: impl FnMut(&CaseResult),
) -> Vec<CaseResult> {
    let mut pending = jobs.into_iter().enumerate();
    let mut running = FuturesUnordered::new();
    let mut results: Vec<(usize, CaseResult)> = Vec::new();
    let mut failed = false;
    let start = |(order, job): (usize, Job),
                 vars: Arc<Variables>|
     -> BoxFuture<'static, (usize, Vec<CaseResult>)> {
        Box::pin(async move {
            let results = match job {
                Job::File(file) => tokio::task::spawn_blocking(move || file.run(&vars))
                    .await
                    .unwrap_or_else(|err| {
                        vec![CaseResult {
                            suite: Suite::Smoke,
                            name: "case file".into(),
                            service: None,
                            source: "finctl".into(),
                            outcome: Outcome::Failed(format!("the runner stopped: {err}")),
                            duration: Duration::ZERO,
                            detail: None,
                            log_tail: None,
                        }]
                    }),
                Job::Case(mut case) => {
                    let began = Instant::now();
                    let (outcome, detail) = (&mut case.run).await;
                    vec![built(&case, outcome, detail, began.elapsed())]
                }
                Job::Decided(result) => vec![result],
            };
            (order, results)
        })
    };
    loop {
        while running.len() < options.parallel.max(1) && !(failed && options.fail_fast) {
            let Some(next) = pending.next() else { break };
            running.push(start(next, vars.clone()));
        }
        let Some((order, batch)) = running.next().await else {
            break;
        };
        for result in batch {
            failed |= result.outcome.failed();
            on_result(&result);
            results.push((order, result));
        }
    }
    // --fail-fast: what never started.
    for (order, job) in pending {
        for result in job.all(Outcome::Skipped(
            "not run: --fail-fast and an earlier case failed".into(),
        )) {
            on_result(&result);
            results.push((order, result));
        }
    }
    results.sort_by_key(|(order, r)| (r.suite, *order));
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, outcome: Outcome, delay_ms: u64) -> Job {
        Job::Case(Builtin {
            suite: Suite::Worker,
            name: name.into(),
            service: None,
            run: Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                (outcome, None)
            }),
        })
    }

    #[tokio::test]
    async fn cases_run_in_parallel_and_come_back_in_order() {
        let jobs = vec![
            case("slow", Outcome::Passed, 200),
            case("fast", Outcome::Failed("no".into()), 1),
        ];
        let mut seen = Vec::new();
        let began = Instant::now();
        let results = run(
            jobs,
            Arc::default(),
            Options {
                parallel: 4,
                fail_fast: false,
            },
            |r| seen.push(r.name.clone()),
        )
        .await;
        assert_eq!(seen, ["fast", "slow"], "reported as they finish");
        assert_eq!(
            results.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["slow", "fast"]
        );
        assert!(
            began.elapsed() < Duration::from_millis(400),
            "both ran at once"
        );
        assert!(results[0].duration >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn fail_fast_starts_nothing_after_a_failure() {
        let jobs = vec![
            case("first", Outcome::Failed("no".into()), 1),
            case("second", Outcome::Passed, 1),
        ];
        let results = run(
            jobs,
            Arc::default(),
            Options {
                parallel: 1,
                fail_fast: true,
            },
            |_| {},
        )
        .await;
        assert!(results[0].outcome.failed());
        assert!(
            matches!(&results[1].outcome, Outcome::Skipped(why) if why.contains("--fail-fast"))
        );
    }
}
