//! The command line: one `Commands` enum, one module per command under `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Exit codes:
  0  the command did what was asked
  1  something failed (a build, an unhealthy service, a failed test)
  2  bad arguments or configuration; nothing was changed

Environment:
  FINCTL_PROJECT_DIR    the project folder (default: found by walking up to compose/)
  FINCTL_CACHE_DIR      where heavy build artefacts are cached (default: ~/.cache/finctl)
  FINCTL_DEBIAN_MIRROR  Debian mirror for image builds (default: read from apt's sources)
  DOCKER_HOST           the Docker engine (default: the local socket)
  NO_COLOR              disable colour";

#[derive(Debug, Parser)]
#[command(
    name = "finctl",
    version,
    about = "Run the fintech platform locally and in CI: images, stack, bootstrap, tests.",
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print machine-readable JSON on stdout (read commands).
    #[arg(long, global = true)]
    pub json: bool,

    /// The project folder (holds compose/docker-compose.yml).
    #[arg(long, global = true, value_name = "DIR", env = "FINCTL_PROJECT_DIR")]
    pub project_dir: Option<PathBuf>,

    /// Only print errors and data.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail (build output, each step).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Build and list the platform's container images.
    #[command(subcommand)]
    Images(ImagesCommand),
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Build images from local recipes; up-to-date images are skipped.
    ///
    /// Every image is labelled with a hash of its inputs (recipe files, packages, binaries,
    /// parent image); an image whose label matches is left alone. Nothing is ever pulled
    /// from a registry: the base image comes from debootstrap, packages from Debian's
    /// archive and PyPI fetched on this machine, binaries from cargo.
    #[command(after_help = "\
Examples:
  finctl images build --offline        every image, third-party stand-ins included
  finctl images build                  the base and the platform's own service images
  finctl images build postgres redis   just these (and what they are built FROM)
  finctl images build --force kafka    rebuild even if up to date")]
    Build(ImagesBuildArgs),

    /// List the images finctl knows, whether each is built and up to date.
    #[command(after_help = "\
Examples:
  finctl images list
  finctl images list --json | jq '.[] | select(.state != \"up-to-date\")'")]
    List(ImagesListArgs),
}

#[derive(Debug, Args)]
pub struct ImagesBuildArgs {
    /// Also build the offline stand-ins for third-party images (database, cache, broker, IdP).
    #[arg(long)]
    pub offline: bool,

    /// Rebuild the named images (or all selected) even when their input hash matches.
    #[arg(long)]
    pub force: bool,

    /// With --force: ignore the engine's layer cache too (host-side downloads stay cached).
    #[arg(long, requires = "force")]
    pub no_cache: bool,

    /// Images to build (recipe names, e.g. `base`, `postgres`, `profile`); default: all selected.
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImagesListArgs {
    /// Include the offline stand-ins.
    #[arg(long)]
    pub offline: bool,
}
