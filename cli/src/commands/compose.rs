//! What the stack commands share: loading the stack the flags describe.

use crate::cli::{GlobalArgs, StackArgs};
use crate::printer::Printer;
use finctl_compose::{self as stack, Discovery, Stack};
use finctl_error::UserError;

/// Loads and checks the stack (exit 2 on any problem, before Docker is touched). `-f` and
/// `--profile` given before the command come first, then those after it.
pub fn load(global: &GlobalArgs, args: &StackArgs, printer: &Printer) -> anyhow::Result<Stack> {
    let current_dir = std::env::current_dir().map_err(|err| {
        UserError::config(
            format!("cannot read the current directory: {err}"),
            "cd into the project",
        )
    })?;
    let discovery = Discovery {
        files: [&global.files[..], &args.files[..]].concat(),
        project_dir: global.project_dir.clone(),
        offline: args.offline,
        current_dir,
        environment: std::env::vars().collect(),
    };
    let options = discovery
        .resolve()?
        .with_profiles([&global.profiles[..], &args.profiles[..]].concat())
        .with_project_name(global.project_name.clone());
    let stack = stack::load(&options)?;
    for warning in &stack.warnings {
        printer.warn(warning);
    }
    Ok(stack)
}
