//! `finctl exec`: the command's exit code becomes finctl's.

use std::io::IsTerminal;

use bollard::container::LogOutput;
use futures_util::StreamExt;
use rustix::termios::{OptionalActions, Termios, tcgetattr, tcsetattr};
use tokio::io::AsyncWriteExt;

use crate::cli::{ExecArgs, GlobalArgs};
use crate::printer::Printer;
use finctl_engine as inventory;
use finctl_engine::{Attached, Engine, ExecOptions};
use finctl_error::{ExitStatus, UserError};

pub async fn exec(
    global: &GlobalArgs,
    args: ExecArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let stack = super::compose::load(global, &args.stack, printer).await?;
    let service = stack.service(&args.service)?;
    let container = stack.container_name(service, 1);
    let engine = Engine::connect().await?;
    match inventory::inspect(&engine, &container).await? {
        Some(info) if info.running() => {}
        Some(info) => {
            return Err(UserError::failure(
                format!("{} is not running (state {})", info.name, info.state),
                format!("start it with `finctl up {}`", args.service),
            )
            .into());
        }
        None => {
            return Err(UserError::failure(
                format!("{} has no container", args.service),
                format!("start it with `finctl up {}`", args.service),
            )
            .into());
        }
    }
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let Attached {
        mut output,
        mut input,
        handle,
    } = inventory::exec_attached(
        &engine,
        &container,
        &ExecOptions {
            command: args.command.clone(),
            user: args.user.clone(),
            tty,
        },
    )
    .await?;
    // Restored when dropped, on every path out of here.
    let _raw = if tty { RawTerminal::enter() } else { None };
    let pump = tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let _ = tokio::io::copy(&mut stdin, &mut input).await;
        let _ = input.shutdown().await;
    });
    while let Some(chunk) = output.next().await {
        match chunk {
            Ok(LogOutput::StdErr { message }) => printer.stderr_bytes(&message),
            Ok(other) => printer.stdout_bytes(&other.into_bytes()),
            Err(_) => break,
        }
    }
    pump.abort();
    let code = handle.exit_code().await?;
    // The command's own exit code becomes finctl's, unchanged.
    Ok(ExitStatus::from_child(code))
}

/// The terminal in raw mode (termios, as `docker exec -it` does) until dropped.
struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    fn enter() -> Option<Self> {
        let stdin = rustix::stdio::stdin();
        let saved = tcgetattr(stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(stdin, OptionalActions::Now, &raw).ok()?;
        Some(Self { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = tcsetattr(rustix::stdio::stdin(), OptionalActions::Now, &self.saved);
    }
}
