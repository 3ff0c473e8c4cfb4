//! A command run in a container with its input and output attached (`finctl exec`, the
//! shells): the caller pumps the streams, then asks for the exit code.

use anyhow::Context;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures_util::Stream;
use tokio::io::AsyncWrite;

use crate::Engine;

/// What to run and how.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub command: Vec<String>,
    /// `user[:group]` inside the container.
    pub user: Option<String>,
    /// Allocate a terminal (stdout and stderr then arrive as one stream).
    pub tty: bool,
}

/// A started exec: its output, its input, and a handle for the exit code.
pub struct Attached {
    pub output:
        std::pin::Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    pub input: std::pin::Pin<Box<dyn AsyncWrite + Send>>,
    pub handle: ExecHandle,
}

/// Which exec it was, to ask the engine how it ended.
pub struct ExecHandle {
    id: String,
    engine: Engine,
}

impl ExecHandle {
    /// The command's exit code, once its output has ended.
    pub async fn exit_code(&self) -> anyhow::Result<i64> {
        let inspect = self
            .engine
            .api()
            .inspect_exec(&self.id)
            .await
            .context("reading the exec's exit code")?;
        Ok(inspect.exit_code.unwrap_or(1))
    }
}

/// Starts `options.command` in `container` with stdin, stdout and stderr attached.
pub async fn exec_attached(
    engine: &Engine,
    container: &str,
    options: &ExecOptions,
) -> anyhow::Result<Attached> {
    let created = engine
        .api()
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(options.command.clone()),
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(options.tty),
                user: options.user.clone(),
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
                tty: options.tty,
                output_capacity: None,
            }),
        )
        .await
        .context("starting the exec")?;
    match started {
        StartExecResults::Attached { output, input } => Ok(Attached {
            output,
            input,
            handle: ExecHandle {
                id: created.id,
                engine: engine.clone(),
            },
        }),
        StartExecResults::Detached => anyhow::bail!("the engine started the exec detached"),
    }
}
