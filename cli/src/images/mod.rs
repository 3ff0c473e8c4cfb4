//! Images: every image the platform runs, built on this machine from local recipes.
//!
//! A recipe (`compose/images/<name>/image.toml` + `Dockerfile`) says what an image is made of:
//! a parent recipe, Debian packages, Python requirements, a crate to `cargo install`, or (for
//! the base) a debootstrap root filesystem. The platform's own services come from a template
//! recipe applied to every crate under `platform-services/` that names an image in its
//! `[package.metadata.finctl]`. Nothing is pulled: inputs are fetched on the host (where
//! the package archives are reachable) and copied into the build context.

mod build;
mod catalog;
mod fetch;
mod inputs;
mod progress;
mod recipe;

pub use build::{BuildOptions, BuildOutcome, BuildReport, Builder, ImageState, ImageStatus};
pub use catalog::{Catalog, Selection};
pub use recipe::{Recipe, RecipeKind};

/// Label holding the hash of everything an image was built from.
pub const LABEL_INPUT_HASH: &str = "io.finctl.input-hash";
/// Label naming the recipe an image came from.
pub const LABEL_RECIPE: &str = "io.finctl.recipe";
/// Label marking images finctl built (what `nuke` may remove).
pub const LABEL_MANAGED: &str = "io.finctl.managed";
