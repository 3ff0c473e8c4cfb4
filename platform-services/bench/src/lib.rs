//! The fleet benchmark of issue 4, run as `cargo bench -p fleet-bench --bench fleet`.
//!
//! It starts the offline infrastructure (PostgreSQL, Redis, tansu, the Canaille IdP) through
//! `finctl-testkit`, runs every service image as a `serve` and a `worker` container on the host
//! network (all traffic stays on 127.0.0.1), and measures:
//!
//! - HTTP: authenticated `GET /me` against unauthenticated `GET /health` on the same service,
//!   by our own load generator and, when installed, by `wrk` as a cross-check;
//! - jobs: `<service>.echo` round trips through the Redis wire format (JOBS.md) against a Redis
//!   `PING` round trip;
//! - memory: each container's idle footprint.
//!
//! Every number is printed next to a baseline from the same run; nothing is asserted.

pub mod cpus;
pub mod fleet;
pub mod http_load;
pub mod job_load;
pub mod latency;
pub mod memory;
pub mod report;
pub mod token;
pub mod wrk;
