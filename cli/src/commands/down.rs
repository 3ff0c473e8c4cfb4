//! `finctl down` and `finctl nuke`.

use crate::cli::{DownArgs, GlobalArgs, NukeArgs};
use crate::docker::Engine;
use crate::error::ExitStatus;
use crate::orchestrate::teardown;
use crate::printer::Printer;

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
    removed.images = teardown::remove_managed_images(&engine).await?;
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
