//! `finctl bootstrap`: the stack's databases, Kafka topics and identity realm made to match
//! the declarations under `compose/bootstrap/`, idempotently.
//!
//! Every part works the same way: look up what exists, compare it with what is declared, and
//! produce a plan of [`Change`]s (create, update with the fields that differ, unchanged);
//! only then, unless it is a dry run, apply the plan in order. Nothing is ever deleted. A run
//! interrupted half-way leaves what it made, and the next run finishes the job.
//!
//! [`decl`] reads and validates the files (file, line and value for every problem, before
//! anything is contacted); [`identity`] holds the one trait every identity provider's driver
//! implements, and the comparison they share (with the WSO2 IS driver in
//! [`identity::wso2is`]); [`cockroach`] initializes the three-node CockroachDB cluster of the
//! compose `cluster` profile once and waits for every node to be live.

pub mod cockroach;
pub mod database;
pub mod decl;
pub mod identity;
pub mod kafka;
mod plan;

pub use plan::{Action, Change};
