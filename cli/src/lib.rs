//! finctl: one binary to run the fintech platform locally and in CI.
//!
//! `main` parses the command line, runs one command and turns its outcome into an exit code
//! (0 ok, 1 failure, 2 usage or configuration error, or an `exec`ed command's own code).
//!
//! This crate is the binary's edge: the clap types (`cli`), one module per command
//! (`commands`) and the [`printer::Printer`]. The work is done by the libraries under
//! `cli/crates/`: `finctl-compose` (the model), `finctl-engine` (Docker), `finctl-images`,
//! `finctl-orchestrate`; nothing depends on this crate.

pub mod cli;
mod commands;
pub mod printer;

use std::process::ExitCode;

use clap::Parser;

pub use finctl_error::ExitStatus;

/// Entry point shared by the binary and tests.
pub fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version on stdout with success, usage errors on stderr.
            let _ = err.print();
            return if err.use_stderr() {
                ExitStatus::Usage.into()
            } else {
                ExitStatus::Success.into()
            };
        }
    };
    let printer = printer::Printer::new(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            printer.error(&anyhow::Error::new(err).context("failed to start the async runtime"));
            return ExitStatus::Failure.into();
        }
    };
    match runtime.block_on(commands::run(cli, &printer)) {
        Ok(status) => status.into(),
        Err(err) => {
            printer.error(&err);
            finctl_error::status_of(&err).into()
        }
    }
}
