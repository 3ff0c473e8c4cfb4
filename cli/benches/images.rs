//! Benchmark: cold and warm build time of each image, measured in one run.
//!
//! `cargo bench -p finctl --bench images` (needs Docker, root and the host caches of a first
//! build). For every offline image, parents first:
//! - cold: `--force --no-cache`, so the engine rebuilds every layer (host-side inputs such as
//!   debootstrap output, .deb files, wheels and the tansu binary stay cached: they are fetched
//!   once per machine, not per build);
//! - warm: a second build with nothing changed, i.e. the input-hash check alone.
//!
//! The table shows both and the warm/cold ratio; no absolute threshold is asserted.

use std::time::Instant;

use comfy_table::Table;
use comfy_table::presets::UTF8_BORDERS_ONLY;
use finctl_compose::Project;
use finctl_engine::Engine;
use finctl_images::{BuildOptions, BuildOutcome, Builder, Catalog, Selection};
use finctl_progress::Options;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let project = Project::locate(Some(&root))?;
    let catalog = Catalog::load(&project.image_recipes_dir(), &project.services_dir())?;
    let names: Vec<String> = std::env::var("FINCTL_BENCH_IMAGES")
        .map(|list| list.split(',').map(str::to_string).collect())
        .unwrap_or_else(|_| {
            ["base", "postgres", "redis", "kafka", "idp"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
    let builder = Builder::new(
        Engine::connect().await?,
        project.root().to_path_buf(),
        catalog,
        finctl_images::cache_dir(),
    );
    let printer = Options::plain();

    eprintln!("preparing: make sure every image and host cache exists (not timed)");
    let all = Selection {
        offline: true,
        names: names.clone(),
    };
    let report = builder
        .build(&all, BuildOptions::default(), printer)
        .await?;
    anyhow::ensure!(
        !report.failed(),
        "the images must build before they can be measured"
    );

    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "image",
        "cold build (s)",
        "warm build (s)",
        "warm / cold",
    ]);
    for name in &names {
        let one = Selection {
            offline: true,
            names: vec![name.clone()],
        };
        let cold = Instant::now();
        let report = builder
            .build(
                &one,
                BuildOptions {
                    force: true,
                    no_cache: true,
                },
                printer,
            )
            .await?;
        let cold = cold.elapsed();
        anyhow::ensure!(
            report
                .images
                .iter()
                .any(|i| &i.name == name && i.outcome == BuildOutcome::Built)
        );
        let warm = Instant::now();
        let report = builder
            .build(&one, BuildOptions::default(), printer)
            .await?;
        let warm = warm.elapsed();
        anyhow::ensure!(
            report
                .images
                .iter()
                .all(|i| i.outcome == BuildOutcome::UpToDate),
            "warm build rebuilt"
        );
        table.add_row([
            name.clone(),
            format!("{:.2}", cold.as_secs_f64()),
            format!("{:.3}", warm.as_secs_f64()),
            format!("{:.4}", warm.as_secs_f64() / cold.as_secs_f64()),
        ]);
    }
    println!("{table}");
    Ok(())
}
