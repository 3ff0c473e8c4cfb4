//! Images: every image the platform runs, built on this machine from local recipes.
//!
//! A recipe (`compose/images/<name>/image.toml` + `Dockerfile`) says what an image is made of:
//! a parent recipe, Debian packages, Python requirements, a crate to `cargo install`, or (for
//! the base) a debootstrap root filesystem. The platform's own services come from a template
//! recipe applied to every crate under `platform-services/` that names an image in its
//! `[package.metadata.finctl]`. Nothing is pulled: inputs are fetched on the host (where
//! the package archives are reachable) and copied into the build context.

//!
//! This crate depends on the engine layer and on nothing that knows a stack: not the Compose
//! loader, orchestration or the CLI.

mod build;
mod catalog;
mod context;
mod fetch;
mod inputs;
mod recipe;
mod report;

pub use build::Builder;
pub use catalog::{Catalog, Selection};
pub use fetch::cache_dir;
pub use finctl_engine::labels::{
    INPUT_HASH as LABEL_INPUT_HASH, MANAGED as LABEL_MANAGED, RECIPE as LABEL_RECIPE,
};
pub use recipe::{Recipe, RecipeKind};
pub use report::{BuildOptions, BuildOutcome, BuildReport, BuiltImage, ImageState, ImageStatus};
