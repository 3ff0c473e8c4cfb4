//! [`Test`]: one run of the built `finctl`, in the spirit of casey/just's integration tests.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{Output, Project};

/// Variables of the caller's shell that would change which stack finctl sees (or, `COLUMNS`,
/// how help text wraps); removed from every run unless the test sets them itself.
const ISOLATED: [&str; 5] = [
    "COMPOSE_PROFILES",
    "COMPOSE_FILE",
    "COMPOSE_PROJECT_NAME",
    "FINCTL_PROJECT_DIR",
    "COLUMNS",
];

/// A `finctl` invocation: `Test::new().args([..]).env(..).run().status(0).stdout_contains(..)`.
///
/// Always runs with `NO_COLOR=1` and without the caller's [`ISOLATED`] variables; variables
/// set (or removed) by the test are applied last, in order.
#[derive(Debug, Clone, Default)]
#[must_use = "a Test does nothing until `.run()`"]
pub struct Test {
    args: Vec<OsString>,
    project_dir: Option<PathBuf>,
    /// `None` removes the variable.
    env: Vec<(String, Option<String>)>,
    current_dir: Option<PathBuf>,
    stdin: Option<String>,
}

impl Test {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_owned(), Some(value.into())));
        self
    }

    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.push((key.to_owned(), None));
        self
    }

    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// Piped to finctl's stdin (otherwise stdin is empty, never the test's terminal).
    pub fn stdin(mut self, text: impl Into<String>) -> Self {
        self.stdin = Some(text.into());
        self
    }

    /// `--project-dir DIR`, before the other arguments.
    pub fn project_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.project_dir = Some(dir.into());
        self
    }

    /// [`Self::project_dir`] of a throwaway project, and the project's variables.
    pub fn project(mut self, project: &Project) -> Self {
        self.project_dir = Some(project.dir().to_owned());
        let vars: Vec<_> = project
            .vars()
            .map(|(k, v)| (k.to_owned(), Some(v.to_owned())))
            .collect();
        self.env.splice(0..0, vars);
        self
    }

    /// The command line as a user would type it (for failure reports).
    pub fn command_line(&self) -> String {
        let mut line = String::from("finctl");
        if let Some(dir) = &self.project_dir {
            line.push_str(&format!(" --project-dir {}", dir.display()));
        }
        for arg in &self.args {
            line.push(' ');
            line.push_str(&arg.to_string_lossy());
        }
        line
    }

    /// The isolated command, for a test that needs the process itself (e.g. `logs -f`).
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_finctl"));
        if let Some(dir) = &self.project_dir {
            command.arg("--project-dir").arg(dir);
        }
        command.args(&self.args).env("NO_COLOR", "1");
        for key in ISOLATED {
            command.env_remove(key);
        }
        for (key, value) in &self.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        command
    }

    /// Runs to completion. The run is echoed to stderr, which the test runner shows when the
    /// test fails.
    pub fn run(self) -> Output {
        let mut child = self
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start `{}`: {err}", self.command_line()));
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = self.stdin.clone().unwrap_or_default();
        // A writer thread: a child that does not read its stdin must not block the test.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let output = child.wait_with_output().expect("finctl runs");
        let _ = writer.join();
        let output = Output::new(self.command_line(), output);
        eprintln!("{}", output.report());
        output
    }

    /// `run()`, then [`Output::status`].
    pub fn assert_status(self, code: i32) -> Output {
        self.run().status(code)
    }
}
