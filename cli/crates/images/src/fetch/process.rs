//! Host commands of a build step: output logged to a file and streamed line by line, and a
//! failure that names the command, its exit and its last lines.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use finctl_error::UserError;

/// A host command that failed: its exit, the log it wrote, and the log's last lines.
#[derive(Debug)]
pub struct StepFailure {
    pub reason: String,
    pub log: PathBuf,
    pub tail: Vec<String>,
}

impl StepFailure {
    pub(super) fn into_user_error(self, message: String, hint: String) -> UserError {
        let mut message = format!("{message}: {}", self.reason);
        for line in &self.tail {
            message.push_str("\n    | ");
            message.push_str(line);
        }
        message.push_str(&format!("\n    (full log: {})", self.log.display()));
        UserError::failure(message, hint)
    }
}

/// Runs a command with stdout and stderr appended to `log`, each line also passed to `on_line`.
pub async fn run_logged(
    cmd: Command,
    log: &Path,
    on_line: &dyn Fn(&str),
) -> Result<(), StepFailure> {
    run(cmd, log, on_line, false).await.map(|_| ())
}

/// Like [`run_logged`], but stdout is returned instead of logged (for JSON output).
pub(super) async fn run_logged_capturing_stdout(
    cmd: Command,
    log: &Path,
    on_line: &dyn Fn(&str),
) -> Result<String, StepFailure> {
    run(cmd, log, on_line, true).await
}

async fn run(
    mut cmd: Command,
    log: &Path,
    on_line: &dyn Fn(&str),
    capture_stdout: bool,
) -> Result<String, StepFailure> {
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    let fail = |reason: String, tail: Vec<String>| StepFailure {
        reason,
        log: log.to_path_buf(),
        tail,
    };
    if let Some(parent) = log.parent() {
        let _ = tokio::fs::create_dir_all(parent).await;
    }
    let mut log_file = tokio::fs::File::create(log)
        .await
        .map_err(|err| fail(format!("cannot write log: {err}"), vec![]))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|err| fail(format!("cannot run `{program}`: {err}"), vec![]))?;
    let stdout = child.stdout.take().map(|s| BufReader::new(s).lines());
    let stderr = child.stderr.take().map(|s| BufReader::new(s).lines());
    let (Some(mut stdout), Some(mut stderr)) = (stdout, stderr) else {
        return Err(fail("no output pipes".into(), vec![]));
    };
    let mut captured = String::new();
    let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        let (line, from_stdout) = tokio::select! {
            line = stdout.next_line(), if out_open => (line, true),
            line = stderr.next_line(), if err_open => (line, false),
        };
        match line {
            Ok(Some(line)) => {
                if from_stdout && capture_stdout {
                    captured.push_str(&line);
                    captured.push('\n');
                    continue;
                }
                let _ = log_file.write_all(line.as_bytes()).await;
                let _ = log_file.write_all(b"\n").await;
                on_line(&line);
                if tail.len() == 12 {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            _ => {
                if from_stdout {
                    out_open = false;
                } else {
                    err_open = false;
                }
            }
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|err| fail(format!("`{program}` did not finish: {err}"), vec![]))?;
    if status.success() {
        Ok(captured)
    } else {
        Err(fail(
            format!("`{program}` exited with {status}"),
            tail.into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failing_command_reports_its_last_lines_and_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("step.log");
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo fetching; echo 'E: Unable to locate package nope' >&2; exit 100",
        ]);
        let failure = run_logged(cmd, &log, &|_| {}).await.unwrap_err();
        assert!(failure.reason.contains("100"), "{}", failure.reason);
        // stdout and stderr are separate pipes: their relative order is not guaranteed.
        assert!(
            failure
                .tail
                .iter()
                .any(|line| line == "E: Unable to locate package nope"),
            "{:?}",
            failure.tail
        );
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(logged.contains("fetching"));
    }
}
