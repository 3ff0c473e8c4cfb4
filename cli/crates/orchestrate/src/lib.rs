//! Running the stack on the Docker engine: `up`'s convergence, readiness, teardown, status,
//! logs. Everything is found through Compose's labels, so finctl and `docker-compose` see the
//! same containers, networks and volumes.
//!
//! Built on the Compose model (`finctl-compose`) and the engine layer (`finctl-engine`); it
//! must not depend on images or the CLI, and prints nothing itself but progress lines.

pub mod labels;
pub mod log_render;
pub mod logs;
pub mod progress;
pub mod readiness;
mod spec;
pub mod status;
pub mod teardown;
pub mod up;

pub use finctl_engine::ContainerInfo;
pub use progress::{PhaseObserver, Progress};
pub use status::ServiceStatus;
pub use up::{Action, Hook, Outcome, ServiceReport, Timeline, UpReport};
