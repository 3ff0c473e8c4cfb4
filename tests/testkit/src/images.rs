//! Makes sure an offline image exists before a test starts it, using finctl's own builder.

use std::path::PathBuf;

use tokio::sync::Mutex;

use finctl::docker::Engine;
use finctl::images::{BuildOptions, BuildOutcome, Builder, Catalog, Selection};
use finctl::printer::Printer;
use finctl::project::{self, Project};

/// One build at a time per test binary; builds are idempotent across binaries.
static BUILD: Mutex<()> = Mutex::const_new(());

fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds `recipe` (and its parents) unless the image under `tag` already exists.
pub async fn ensure(engine: &Engine, recipe: &str, tag: &str) -> anyhow::Result<()> {
    if engine.api().inspect_image(tag).await.is_ok() {
        return Ok(());
    }
    let _guard = BUILD.lock().await;
    if engine.api().inspect_image(tag).await.is_ok() {
        return Ok(());
    }
    eprintln!("finctl-testkit: image {tag} is missing; building it (finctl images build {recipe})");
    let project = Project::locate(Some(&project_root()))?;
    let catalog = Catalog::load(&project)?;
    let builder = Builder::new(engine.clone(), project, catalog, project::cache_dir());
    let selection = Selection {
        offline: true,
        names: vec![recipe.to_string()],
    };
    let report = builder
        .build(&selection, BuildOptions::default(), &Printer::plain())
        .await?;
    if let Some(failed) = report.images.iter().find(|i| {
        matches!(
            i.outcome,
            BuildOutcome::Failed { .. } | BuildOutcome::Skipped { .. }
        )
    }) {
        anyhow::bail!("building {} failed: {:?}", failed.name, failed.outcome);
    }
    Ok(())
}
