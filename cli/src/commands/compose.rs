//! What the stack commands share: loading the stack the flags describe.

use crate::cli::{GlobalArgs, StackArgs};
use crate::printer::Printer;
use finctl_compose::{self as stack, Discovery, Stack};
use finctl_error::UserError;

/// Loads and checks the stack (exit 2 on any problem, before Docker is touched). `-f` and
/// `--profile` given before the command come first, then those after it.
pub fn load(global: &GlobalArgs, args: &StackArgs, printer: &Printer) -> anyhow::Result<Stack> {
    load_with(global, args, printer, &|path| path.to_path_buf())
}

/// [`load`], with each Compose file's path passed through `file` first (new-service checks an
/// edited copy standing in for the real file).
pub fn load_with(
    global: &GlobalArgs,
    args: &StackArgs,
    printer: &Printer,
    file: &dyn Fn(&std::path::Path) -> std::path::PathBuf,
) -> anyhow::Result<Stack> {
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
    let mut options = discovery.resolve()?;
    options.files = options.files.iter().map(|f| file(f)).collect();
    let options = options
        .with_profiles([&global.profiles[..], &args.profiles[..]].concat())
        .with_project_name(global.project_name.clone());
    let stack = stack::load(&options)?;
    for warning in &stack.warnings {
        printer.warn(warning);
    }
    Ok(stack)
}
