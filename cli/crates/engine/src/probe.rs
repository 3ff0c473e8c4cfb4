//! A check run inside a container, as `docker exec` would: its exit code and output.

use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt;

use crate::Engine;
use crate::error::{ApiResultExt, EngineError};

/// Runs `cmd` in the container; its exit code and combined output.
pub async fn run_probe(
    engine: &Engine,
    id: &str,
    cmd: &[String],
    timeout: Duration,
) -> Result<(Option<i64>, String), EngineError> {
    let exec = engine
        .api()
        .create_exec(
            id,
            CreateExecOptions {
                cmd: Some(cmd.to_vec()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .what(|| format!("creating a probe exec in {id}"))?;
    let mut output = String::new();
    let run = async {
        if let StartExecResults::Attached {
            output: mut out, ..
        } = engine
            .api()
            .start_exec(&exec.id, None)
            .await
            .what(|| format!("starting the probe exec in {id}"))?
        {
            while let Some(Ok(chunk)) = out.next().await {
                output.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            }
        }
        Ok::<(), EngineError>(())
    };
    if tokio::time::timeout(timeout.max(Duration::from_millis(200)), run)
        .await
        .is_err()
    {
        return Ok((None, format!("healthcheck timed out after {timeout:?}")));
    }
    let inspect = engine
        .api()
        .inspect_exec(&exec.id)
        .await
        .what(|| format!("reading the probe's exit code in {id}"))?;
    Ok((inspect.exit_code, output.trim_end().to_owned()))
}
