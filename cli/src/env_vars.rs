//! Every environment variable finctl reads, in one place.

/// Overrides where the project (the folder holding `compose/`) is.
pub const FINCTL_PROJECT_DIR: &str = "FINCTL_PROJECT_DIR";
/// Overrides where heavy build artefacts are cached (default `~/.cache/finctl`).
pub const FINCTL_CACHE_DIR: &str = "FINCTL_CACHE_DIR";
/// Overrides the Debian mirror used by debootstrap and package downloads
/// (default: read from the machine's apt sources).
pub const FINCTL_DEBIAN_MIRROR: &str = "FINCTL_DEBIAN_MIRROR";
/// Standard: disables coloured output when set to anything.
pub const NO_COLOR: &str = "NO_COLOR";
/// Standard: where `~` is.
pub const HOME: &str = "HOME";
/// Standard: XDG cache root.
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
/// Standard: the Docker engine address (`unix:///...` or `tcp://...`).
pub const DOCKER_HOST: &str = "DOCKER_HOST";
