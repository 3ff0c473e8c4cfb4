//! Running the stack on the Docker engine: `up`'s convergence, readiness, teardown, status.
//!
//! Everything is found through Compose's labels, so finctl and `docker-compose` see the same
//! containers, networks and volumes.

pub mod inventory;
pub mod labels;
pub mod logs;
pub mod progress;
pub mod readiness;
mod spec;
pub mod status;
pub mod teardown;
pub mod up;

pub use inventory::ContainerInfo;
pub use progress::Progress;
pub use status::ServiceStatus;
pub use up::{Action, Outcome, ServiceReport, UpReport};
