//! `finctl exec`: the command's exit code becomes finctl's.

use std::io::{IsTerminal, Write};
use std::process::Stdio;

use anyhow::Context;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::cli::{ExecArgs, GlobalArgs};
use crate::docker::Engine;
use crate::error::{ExitStatus, UserError};
use crate::orchestrate::inventory;
use crate::printer::Printer;

pub async fn exec(
    global: &GlobalArgs,
    args: ExecArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let stack = super::compose::load(global, &args.stack, printer)?;
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
    let created = engine
        .api()
        .create_exec(
            &container,
            CreateExecOptions {
                cmd: Some(args.command.clone()),
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(tty),
                user: args.user.clone(),
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("creating the exec in {container}"))?;
    let started = engine
        .api()
        .start_exec(
            &created.id,
            Some(StartExecOptions {
                detach: false,
                tty,
                output_capacity: None,
            }),
        )
        .await
        .context("starting the exec")?;
    let saved = if tty { raw_terminal() } else { None };
    if let StartExecResults::Attached {
        mut output,
        mut input,
    } = started
    {
        let pump = tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let _ = tokio::io::copy(&mut stdin, &mut input).await;
            let _ = input.shutdown().await;
        });
        while let Some(chunk) = output.next().await {
            match chunk {
                Ok(bollard::container::LogOutput::StdErr { message }) => {
                    let mut err = std::io::stderr().lock();
                    let _ = err.write_all(&message);
                    let _ = err.flush();
                }
                Ok(other) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&other.into_bytes());
                    let _ = out.flush();
                }
                Err(_) => break,
            }
        }
        pump.abort();
    }
    if let Some(saved) = saved {
        restore_terminal(&saved);
    }
    let inspect = engine.api().inspect_exec(&created.id).await?;
    let code = inspect.exit_code.unwrap_or(1);
    let _ = std::io::stdout().flush();
    // ExitStatus knows 0/1/2; exec passes the command's own code through unchanged.
    std::process::exit(i32::try_from(code).unwrap_or(1));
}

/// Puts the terminal in raw mode (through stty: no terminal crate needed); the old settings.
fn raw_terminal() -> Option<String> {
    let saved = std::process::Command::new("stty")
        .arg("-g")
        .stdin(Stdio::inherit())
        .output()
        .ok()?;
    let saved = String::from_utf8_lossy(&saved.stdout).trim().to_owned();
    std::process::Command::new("stty")
        .args(["raw", "-echo"])
        .stdin(Stdio::inherit())
        .status()
        .ok()?;
    Some(saved)
}

fn restore_terminal(saved: &str) {
    let _ = std::process::Command::new("stty")
        .arg(saved)
        .stdin(Stdio::inherit())
        .status();
}
