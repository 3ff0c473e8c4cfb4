//! The tests' and the benchmark's settings, from the environment, with the numbers as
//! defaults. Every run is bounded: a hard deadline ends it whatever the services do.

use std::time::Duration;

/// Payments in the chaos test (issue 15: 1,000).
pub const CHAOS_PAYMENTS: &str = "FLOW_CHAOS_PAYMENTS";
/// Milliseconds between two kills in the chaos test (default 3,000: "every few seconds").
pub const CHAOS_KILL_EVERY_MS: &str = "FLOW_CHAOS_KILL_EVERY_MS";
/// Hard limit on one test, in seconds, setup and settling included (default 480 for chaos,
/// 300 for the others). A test that reaches it fails; it never hangs CI.
pub const DEADLINE_SECS: &str = "FLOW_DEADLINE_SECS";
/// Payments the clients keep in flight at once (default 16).
pub const CONCURRENCY: &str = "FLOW_CONCURRENCY";
/// Processes per role: `FLOW_PAYMENT_APIS` (2), `FLOW_WORKERS` (2 payment, ledger workers;
/// 1 of the others unless set).
pub const PAYMENT_APIS: &str = "FLOW_PAYMENT_APIS";
pub const WORKERS: &str = "FLOW_WORKERS";
/// The benchmark: payments (default 2,000) and ledger transfers (default 5,000) measured.
pub const BENCH_PAYMENTS: &str = "FLOW_BENCH_PAYMENTS";
pub const BENCH_TRANSFERS: &str = "FLOW_BENCH_TRANSFERS";
/// Keep every process's log folder even when the test passes (it is printed either way).
pub const KEEP_LOGS: &str = "FLOW_KEEP_LOGS";
/// `RUST_LOG` of the fleet's processes (default `info`).
pub const FLEET_LOG: &str = "FLOW_FLEET_LOG";

/// A number from the environment, or `default` when unset or empty; a malformed value panics
/// with the variable's name (a test setting, not user input).
pub fn number<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        _ => default,
    }
}

pub fn flag(name: &str) -> bool {
    matches!(
        std::env::var(name).as_deref().map(str::trim),
        Ok("1" | "true" | "yes" | "on")
    )
}

/// The hard deadline of one test: `FLOW_DEADLINE_SECS`, else `default`.
pub fn deadline(default: Duration) -> Duration {
    Duration::from_secs(number(DEADLINE_SECS, default.as_secs()))
}
