//! `finctl down` and `finctl nuke`.

use std::collections::BTreeSet;

use crate::cli::{DownArgs, GlobalArgs, NukeArgs};
use crate::printer::Printer;
use finctl_compose::Project;
use finctl_compose::Stack;
use finctl_engine::Engine;
use finctl_error::ExitStatus;
use finctl_orchestrate::teardown;

pub async fn down(
    global: &GlobalArgs,
    args: DownArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let stack = super::compose::load(global, &args.stack, printer).await?;
    let engine = Engine::connect().await?;
    let removed = teardown::down(&engine, &stack.project_name, args.volumes).await?;
    if printer.json() {
        printer.data(&serde_json::to_string_pretty(&removed)?);
    } else {
        printer.status(&format!(
            "Removed {} containers, {} networks, {} volumes of project {}.",
            removed.containers.len(),
            removed.networks.len(),
            removed.volumes.len(),
            stack.project_name
        ));
    }
    Ok(ExitStatus::Success)
}

pub async fn nuke(
    global: &GlobalArgs,
    args: NukeArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let stack = super::compose::load(global, &args.stack, printer).await?;
    let engine = Engine::connect().await?;
    let mut removed = teardown::down(&engine, &stack.project_name, true).await?;
    let own = own_images(&engine, global, &stack).await?;
    removed.images = teardown::remove_managed_images(&engine, &own).await?;
    if printer.json() {
        printer.data(&serde_json::to_string_pretty(&removed)?);
    } else {
        printer.status(&format!(
            "Removed {} containers, {} networks, {} volumes, {} images.",
            removed.containers.len(),
            removed.networks.len(),
            removed.volumes.len(),
            removed.images.len()
        ));
        printer.status("Rebuild with `finctl images build --offline`.");
    }
    Ok(ExitStatus::Success)
}

/// The images `nuke` may remove: those the stack's services use and those the project's
/// image recipes build (the base image among them), as image ids: Docker resolves each
/// reference (`name` means `name:latest`). Only images finctl built are then removed.
async fn own_images(
    engine: &Engine,
    global: &GlobalArgs,
    stack: &Stack,
) -> anyhow::Result<BTreeSet<String>> {
    let mut references: BTreeSet<String> = stack
        .services
        .values()
        .filter_map(|s| s.image.clone())
        .collect();
    // A project without recipes (or with a broken one: `images build` reports that) still
    // has its stack's images.
    if let Ok(project) = Project::locate(global.project_dir.as_deref())
        && let Ok(catalog) = super::images::catalog(&project)
    {
        references.extend(catalog.recipes().map(|r| r.tag.clone()));
    }
    let mut ids = BTreeSet::new();
    for reference in references {
        match engine.api().inspect_image(&reference).await {
            Ok(image) => ids.extend(image.id),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(err) => {
                return Err(
                    anyhow::Error::new(err).context(format!("inspecting image {reference}"))
                );
            }
        }
    }
    Ok(ids)
}
