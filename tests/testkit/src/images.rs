//! Makes sure an offline image exists before a test starts it. A missing one is built by
//! finctl itself, `finctl images build --offline RECIPE`, as a user would build it
//! (idempotent: an up-to-date image is reused), so the kit needs only the engine layer.

use std::path::PathBuf;

use tokio::sync::Mutex;

use finctl_engine::Engine;

/// One build at a time per test binary; builds are idempotent across binaries.
static BUILD: Mutex<()> = Mutex::const_new(());

fn workspace_root() -> PathBuf {
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
    // `cargo run` of the release binary: a different profile from the test build, so it
    // does not wait on the lock of the `cargo test` that runs us.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = tokio::process::Command::new(cargo)
        .current_dir(workspace_root())
        .args(["run", "--release", "-q", "-p", "finctl", "--"])
        .args(["images", "build", "--offline", recipe])
        .status()
        .await?;
    anyhow::ensure!(
        status.success(),
        "`finctl images build --offline {recipe}` failed ({status}); its output is above"
    );
    Ok(())
}
