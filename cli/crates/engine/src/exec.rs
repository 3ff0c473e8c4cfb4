//! A command run in a container with its input and output attached (`finctl exec`, the
//! shells): the caller pumps the streams, then asks for the exit code.

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures_util::Stream;
use tokio::io::AsyncWrite;

use crate::Engine;
use crate::error::{ApiResultExt, EngineError};

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
    pub async fn exit_code(&self) -> Result<i64, EngineError> {
        let inspect = self
            .engine
            .api()
            .inspect_exec(&self.id)
            .await
            .what(|| format!("reading the exit code of exec {}", self.id))?;
        Ok(inspect.exit_code.unwrap_or(1))
    }
}

/// Starts `options.command` in `container` with stdin, stdout and stderr attached.
pub async fn exec_attached(
    engine: &Engine,
    container: &str,
    options: &ExecOptions,
) -> Result<Attached, EngineError> {
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
        .what(|| format!("creating the exec in {container}"))?;
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
        .what(|| format!("starting the exec in {container}"))?;
    match started {
        StartExecResults::Attached { output, input } => Ok(Attached {
            output,
            input,
            handle: ExecHandle {
                id: created.id,
                engine: engine.clone(),
            },
        }),
        StartExecResults::Detached => Err(EngineError::Detached {
            container: container.to_owned(),
        }),
    }
}
