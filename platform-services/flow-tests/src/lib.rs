//! Issue 15's reliability tests and flow benchmark, as a library the tests and the bench share:
//!
//! - [`fleet`]: real Postgres, Redis and tansu, the test IdP, and every service as separate OS
//!   processes of the `fleet` binary, several per role, each killable (`kill -9`) and
//!   restartable;
//! - [`api`]: a client that retries like a real one (same `Idempotency-Key`);
//! - [`flow`]: users, funded wallets, payments of every kind, each followed until it ends;
//! - [`chaos`]: the monkey that kills processes while payments run;
//! - [`checks`]: the money checks over SQL (conservation, balanced transfers, no hold past its
//!   timeout, nothing posted twice);
//! - [`knobs`]: counts, durations and deadlines from the environment.
//!
//! Dev-only: never a dependency of a shipped crate.

pub mod api;
pub mod chaos;
pub mod checks;
pub mod fleet;
pub mod flow;
pub mod knobs;
