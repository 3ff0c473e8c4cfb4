//! The one harness of the CLI tests: [`Test`] runs the built `finctl` isolated from the
//! caller's settings and returns an [`Output`] to assert on; [`Project`] is a throwaway Compose
//! project (temp dir, project name, 127.0.0.1 ports of its own, removed on drop); [`Redact`]
//! turns output into stable text for insta snapshots.
//!
//! ```ignore
//! let project = Project::new("finctl-test", STACK);
//! project.finctl().args(["up", "cahce"]).run().status(2).stderr_contains("did you mean `cache`?");
//! ```

// Each test binary uses a different part of this module.
#![allow(dead_code, unused_imports)]

mod image;
mod output;
mod platform;
mod project;
mod redact;
pub mod stacks;
mod test;

pub use image::{ImageGuard, image_id};
pub use output::Output;
pub use platform::{Teardown, docker, repo_finctl};
pub use project::{Project, docker_ids, free_port};
pub use redact::Redact;
pub use test::Test;
