//! [`Output`]: what one finctl run printed, with assertions that show the whole run on failure.

use serde_json::Value;

/// A finished run. Every assertion panics with the command line, exit code, stdout and stderr.
#[derive(Debug, Clone)]
pub struct Output {
    command_line: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Output {
    pub(super) fn new(command_line: String, output: std::process::Output) -> Self {
        Self {
            command_line,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The exit code; `None` when a signal ended the process.
    pub fn code(&self) -> Option<i32> {
        self.code
    }

    pub fn stdout(&self) -> &str {
        &self.stdout
    }

    pub fn stderr(&self) -> &str {
        &self.stderr
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| self.fail(&format!("stdout is not JSON: {err}")))
    }

    /// Asserts the exit code.
    pub fn status(self, code: i32) -> Self {
        if self.code != Some(code) {
            self.fail(&format!("expected exit code {code}"));
        }
        self
    }

    pub fn stdout_contains(self, text: &str) -> Self {
        if !self.stdout.contains(text) {
            self.fail(&format!("stdout does not contain {text:?}"));
        }
        self
    }

    pub fn stderr_contains(self, text: &str) -> Self {
        if !self.stderr.contains(text) {
            self.fail(&format!("stderr does not contain {text:?}"));
        }
        self
    }

    /// The exit code, then stderr: what a person reads when a command fails.
    pub fn code_and_stderr(&self) -> String {
        format!("exit code: {}\n{}", self.exit(), self.stderr)
    }

    fn exit(&self) -> String {
        self.code
            .map_or_else(|| "none (killed by a signal)".to_owned(), |c| c.to_string())
    }

    /// The run as a block of text: command, exit code, stdout, stderr.
    pub fn report(&self) -> String {
        format!(
            "$ {}\nexit code: {}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.command_line,
            self.exit(),
            self.stdout,
            self.stderr
        )
    }

    /// Panics with `why` and the whole run.
    pub fn fail(&self, why: &str) -> ! {
        panic!("{why}\n{}", self.report())
    }
}
