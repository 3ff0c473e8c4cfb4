//! `finctl down` and `finctl nuke`.

use std::collections::BTreeSet;

use crate::cli::{DownArgs, GlobalArgs, NukeArgs};
use crate::docker::Engine;
use crate::error::ExitStatus;
use crate::images::Catalog;
use crate::orchestrate::teardown;
use crate::printer::Printer;
use crate::project::Project;
use crate::stack::Stack;

pub async fn down(
    global: &GlobalArgs,
    args: DownArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let stack = super::compose::load(global, &args.stack, printer)?;
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
    let stack = super::compose::load(global, &args.stack, printer)?;
    let engine = Engine::connect().await?;
    let mut removed = teardown::down(&engine, &stack.project_name, true).await?;
    removed.images = teardown::remove_managed_images(&engine, &own_images(global, &stack)).await?;
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

/// The image tags `nuke` may remove: those the stack's services use and those the project's
/// image recipes build (the base image among them). Only images finctl built are removed.
fn own_images(global: &GlobalArgs, stack: &Stack) -> BTreeSet<String> {
    let mut tags: BTreeSet<String> = stack
        .services
        .values()
        .filter_map(|s| s.image.clone())
        .map(|image| {
            if image
                .rsplit('/')
                .next()
                .is_some_and(|last| last.contains(':'))
            {
                image
            } else {
                format!("{image}:latest")
            }
        })
        .collect();
    // A project without recipes (or with a broken one: `images build` reports that) still
    // has its stack's images.
    if let Ok(project) = Project::locate(global.project_dir.as_deref())
        && let Ok(catalog) = Catalog::load(&project)
    {
        tags.extend(catalog.recipes().map(|r| r.tag.clone()));
    }
    tags
}
