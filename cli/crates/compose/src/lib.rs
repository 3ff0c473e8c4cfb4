//! The stack as Compose defines it, loaded and checked without touching Docker: where the
//! project is, its Compose files merged and interpolated, the service model, and the plan
//! (start order, critical path).
//!
//! This crate must not depend on Docker (bollard), the engine layer, images, orchestration
//! or the CLI: everything here runs, and fails with file, line and value, before anything
//! is created.
//!
//! ```no_run
//! # fn main() -> Result<(), finctl_error::UserError> {
//! use finctl_compose::{LoadOptions, Project, load};
//!
//! let project = Project::locate(None)?;
//! let stack = load(&LoadOptions::for_project(&project, true, &[]).with_profiles(vec!["services".into()]))?;
//! let plan = stack.plan(&[])?; // or named services
//! for wave in &plan.waves {
//!     // start every service of the wave, wait for the conditions of the next one
//! }
//! # Ok(()) }
//! ```
//!
//! Loading follows docker-compose 1.29 (the Compose Debian ships) and the Compose
//! specification: files merged in `-f` order (see `merge.rs`), `${VAR}` from `.env` and the
//! environment, anchors and `<<` merge keys, profiles. Every error names the
//! file and line it comes from and exits 2 before anything is created.

mod config_hash;
mod discovery;
mod healthcheck;
mod interpolate;
mod line_index;
mod load;
pub mod located;
mod merge;
mod model;
mod mount;
mod plan;
mod port;
mod project;
mod service;
mod service_reader;
mod source;
mod units;
mod variables;

#[cfg(test)]
mod tests;

pub use discovery::{COMPOSE_NAMES, Discovery, STDIN, compose_names, split_paths};
pub use healthcheck::Healthcheck;
pub use line_index::{LineIndex, Segment, display_path};
pub use load::{LoadOptions, load};
pub use model::{Network, Resource, Stack, Volume, closest};
pub use mount::{Mount, MountSource};
pub use plan::Plan;
pub use port::PortBinding;
pub use project::Project;
pub use service::{Condition, Resources, RestartPolicy, Service, UNSERVED_PORTS_LABEL};
pub use units::{format_bytes, parse_bytes, parse_duration};
pub use variables::Variables;
