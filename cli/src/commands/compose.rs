//! What the stack commands share: loading the stack the flags describe.

use crate::cli::{GlobalArgs, StackArgs};
use crate::printer::Printer;
use finctl_compose::Project;
use finctl_compose::{self as stack, LoadOptions, Stack};

/// Loads and checks the stack (exit 2 on any problem, before Docker is touched).
pub fn load(global: &GlobalArgs, args: &StackArgs, printer: &Printer) -> anyhow::Result<Stack> {
    let project = Project::locate(global.project_dir.as_deref())?;
    let options = LoadOptions::for_project(&project, args.offline, &args.files)
        .with_profiles(args.profiles.clone());
    let stack = stack::load(&options)?;
    for warning in &stack.warnings {
        printer.warn(warning);
    }
    Ok(stack)
}
