//! `finctl new-service`: a new service from the project's template, registered everywhere
//! the platform needs it, and later brought up to newer template versions or removed.
//!
//! - [`ServiceName`]: what a name may be;
//! - [`Template`]: `templates/service/`, rendered with [`Answers`] (minijinja, strict);
//! - [`plan`]: the files to create and the edits to `Cargo.toml`, the Compose file,
//!   `api-config.yaml` and `topics.yaml`, as a [`ChangeSet`] computed before anything is
//!   written; `--dry-run` prints it, [`ChangeSet::apply`] writes it;
//! - [`git`]: the template's version as a git tree, and an older version read back, so that
//!   [`plan::update`] can merge three ways ([`merge`]) like `copier update`.
//!
//! Depends on finctl-error only: no Docker, no Compose model. The CLI validates the edited
//! files with the real loaders before applying them.

pub mod answers;
pub mod change;
pub mod edit;
pub mod git;
pub mod merge;
mod name;
pub mod plan;
pub mod template;

pub use answers::{Answers, Recorded};
pub use change::{Change, ChangeSet};
pub use name::{InvalidName, MAX_LEN, RESERVED, ServiceName};
pub use template::{Rendered, TEMPLATE_DIR, Template};
