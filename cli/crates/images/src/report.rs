//! What a build or `images list` says about each image.

use serde::Serialize;

/// What `images list` reports for one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageStatus {
    pub name: String,
    pub tag: String,
    pub state: ImageState,
    pub offline_only: bool,
    /// The input hash the image carries, if it exists.
    pub built_hash: Option<String>,
    pub size_bytes: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageState {
    UpToDate,
    Stale,
    Missing,
    /// Exists, but freshness is only known after building its inputs (service binaries).
    Present,
}

/// What happened to one image in a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum BuildOutcome {
    Built,
    UpToDate,
    Failed {
        error: String,
        /// What to do about it.
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
    },
    /// Not attempted because an image it is built FROM failed.
    Skipped {
        because: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub images: Vec<BuiltImage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuiltImage {
    pub name: String,
    pub tag: String,
    #[serde(flatten)]
    pub outcome: BuildOutcome,
    pub seconds: f64,
    pub input_hash: Option<String>,
}

impl BuildReport {
    pub fn failed(&self) -> bool {
        self.images.iter().any(|image| {
            matches!(
                image.outcome,
                BuildOutcome::Failed { .. } | BuildOutcome::Skipped { .. }
            )
        })
    }
}

/// How to build.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOptions {
    /// Rebuild the named images (all selected ones when none are named) even when up to date.
    pub force: bool,
    /// Ignore the engine's layer cache (a truly cold build; host-side fetches stay cached).
    pub no_cache: bool,
}
