//! One module per command; `run` dispatches.

mod bootstrap;
mod compose;
mod doctor;
mod down;
mod exec;
mod images;
mod logs;
mod new_service;
mod ps;
mod publish;
mod restart;
mod shells;
mod smoke;
mod token;
mod topics;
mod up;
mod urls;

use crate::cli::{Cli, Commands, ImagesCommand};
use crate::printer::Printer;
use finctl_error::ExitStatus;

pub async fn run(cli: Cli, printer: &Printer) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Commands::Images(ImagesCommand::Build(args)) => {
            images::build(&cli.global, args, printer).await
        }
        Commands::Images(ImagesCommand::List(args)) => {
            images::list(&cli.global, args, printer).await
        }
        Commands::Up(args) => up::up(&cli.global, args, printer).await,
        Commands::Down(args) => down::down(&cli.global, args, printer).await,
        Commands::Nuke(args) => down::nuke(&cli.global, args, printer).await,
        Commands::Ps(args) => ps::ps(&cli.global, args, printer).await,
        Commands::Health(args) => ps::health(&cli.global, args, printer).await,
        Commands::Logs(args) => logs::logs(&cli.global, args, printer).await,
        Commands::Restart(args) => restart::restart(&cli.global, args, printer).await,
        Commands::Exec(args) => exec::exec(&cli.global, args, printer).await,
        Commands::Urls(args) => urls::urls(&cli.global, args, printer).await,
        Commands::Doctor(args) => doctor::doctor(&cli.global, args, printer).await,
        Commands::Sql(args) => shells::sql(&cli.global, args, printer).await,
        Commands::Redis(args) => shells::redis(&cli.global, args, printer).await,
        Commands::PublishApis(args) => publish::publish_apis(&cli.global, args, printer).await,
        Commands::Topics(args) => topics::topics(&cli.global, args, printer).await,
        Commands::Bootstrap(args) => bootstrap::bootstrap(&cli.global, args, printer).await,
        Commands::Token(args) => token::token(&cli.global, args, printer).await,
        Commands::SmokeTest(args) => smoke::smoke_test(&cli.global, args, printer).await,
        Commands::NewService(args) => new_service::new_service(&cli.global, args, printer).await,
    }
}
