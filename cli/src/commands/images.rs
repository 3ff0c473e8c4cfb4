//! `finctl images build` and `finctl images list`.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};

use crate::cli::{GlobalArgs, ImagesBuildArgs, ImagesListArgs};
use crate::printer::Printer;
use finctl_compose::Project;
use finctl_engine::Engine;
use finctl_error::{ExitStatus, UserError};
use finctl_images::{BuildOptions, BuildOutcome, Builder, Catalog, ImageState, Selection};

/// The project's image recipes: `compose/images/` and the service crates.
pub(super) fn catalog(project: &Project) -> Result<Catalog, UserError> {
    Catalog::load(&project.image_recipes_dir(), &project.services_dir())
}

/// A builder for the project's images, caching under `FINCTL_CACHE_DIR`.
pub(super) fn builder(engine: &Engine, project: &Project, catalog: Catalog) -> Builder {
    Builder::new(
        engine.clone(),
        project.root().to_path_buf(),
        catalog,
        finctl_images::cache_dir(),
    )
}

async fn connect_builder(global: &GlobalArgs) -> anyhow::Result<Builder> {
    let project = Project::locate(global.project_dir.as_deref())?;
    // Recipes are read before the engine is touched: a bad recipe fails without side effects.
    let catalog = catalog(&project)?;
    let engine = Engine::connect().await?;
    Ok(builder(&engine, &project, catalog))
}

pub async fn build(
    global: &GlobalArgs,
    args: ImagesBuildArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let builder = connect_builder(global).await?;
    let selection = Selection {
        offline: args.offline,
        names: args.names,
    };
    let report = builder
        .build(
            &selection,
            BuildOptions {
                force: args.force,
                no_cache: args.no_cache,
            },
            printer.progress(),
        )
        .await?;
    if printer.json() {
        printer.data(&serde_json::to_string_pretty(&report.images)?);
    } else {
        let mut table = Table::new();
        table
            .load_preset(UTF8_BORDERS_ONLY)
            .set_header(["image", "tag", "result", "time"]);
        for image in &report.images {
            let result = match &image.outcome {
                BuildOutcome::Built => "built".to_string(),
                BuildOutcome::UpToDate => "up to date".to_string(),
                BuildOutcome::Failed { .. } => "FAILED".to_string(),
                BuildOutcome::Skipped { because } => format!("skipped ({because})"),
            };
            table.add_row([
                image.name.clone(),
                image.tag.clone(),
                result,
                format!("{:.1}s", image.seconds),
            ]);
        }
        printer.data(&table.to_string());
        let built = report
            .images
            .iter()
            .filter(|i| i.outcome == BuildOutcome::Built)
            .count();
        if built == 0 && !report.failed() {
            printer.status("All images are up to date; nothing was rebuilt.");
        }
    }
    for image in &report.images {
        if let BuildOutcome::Failed { error, hint } = &image.outcome {
            let failure = UserError {
                message: format!("{}: {error}", image.name),
                hint: hint.clone(),
                status: ExitStatus::Failure,
                source: None,
            };
            printer.error(&anyhow::Error::new(failure));
        }
    }
    Ok(if report.failed() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

pub async fn list(
    global: &GlobalArgs,
    args: ImagesListArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let builder = connect_builder(global).await?;
    let statuses = builder
        .status(&Selection {
            offline: args.offline,
            names: vec![],
        })
        .await?;
    if printer.json() {
        printer.data(&serde_json::to_string_pretty(&statuses)?);
        return Ok(ExitStatus::Success);
    }
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "image",
        "tag",
        "state",
        "size",
        "input hash",
    ]);
    for status in &statuses {
        let state = match status.state {
            ImageState::UpToDate => "up to date",
            ImageState::Stale => "stale",
            ImageState::Missing => "missing",
            ImageState::Present => "present",
        };
        let size = status
            .size_bytes
            .map(|b| format!("{:.0} MB", b as f64 / 1e6))
            .unwrap_or_default();
        let hash = status
            .built_hash
            .as_deref()
            .map(|h| h[..h.len().min(12)].to_string())
            .unwrap_or_default();
        table.add_row([
            status.name.clone(),
            status.tag.clone(),
            state.to_string(),
            size,
            hash,
        ]);
    }
    printer.data(&table.to_string());
    Ok(ExitStatus::Success)
}
