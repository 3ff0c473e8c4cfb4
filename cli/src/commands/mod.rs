//! One module per command; `run` dispatches.

mod images;

use crate::cli::{Cli, Commands, ImagesCommand};
use crate::error::ExitStatus;
use crate::printer::Printer;

pub async fn run(cli: Cli, printer: &Printer) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Commands::Images(ImagesCommand::Build(args)) => {
            images::build(&cli.global, args, printer).await
        }
        Commands::Images(ImagesCommand::List(args)) => {
            images::list(&cli.global, args, printer).await
        }
    }
}
