//! All output goes through one [`Printer`]: stdout carries only data a script could read
//! (tables, or JSON with `--json`); progress, logs and errors go to stderr. `NO_COLOR` and
//! non-terminal streams turn colour off, and output reads correctly without it.

use std::io::{IsTerminal, Write};

use owo_colors::OwoColorize;

pub use finctl_progress::Verbosity;

use crate::cli::GlobalArgs;

#[derive(Debug, Clone)]
pub struct Printer {
    verbosity: Verbosity,
    color: bool,
    stderr_is_terminal: bool,
    json: bool,
}

impl Printer {
    pub fn new(global: &GlobalArgs) -> Self {
        let verbosity = if global.quiet {
            Verbosity::Quiet
        } else if global.verbose > 0 {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        };
        let stderr_is_terminal = std::io::stderr().is_terminal();
        let color = std::env::var_os(finctl_env::NO_COLOR).is_none_or(|value| value.is_empty())
            && stderr_is_terminal;
        Self {
            verbosity,
            color,
            stderr_is_terminal,
            json: global.json,
        }
    }

    /// A printer for tests and library callers: plain, no colour, no progress bars.
    pub fn plain() -> Self {
        Self {
            verbosity: Verbosity::Normal,
            color: false,
            stderr_is_terminal: false,
            json: false,
        }
    }

    /// A printer for work done while `up`'s progress lines are on screen: no data, no status,
    /// only warnings and errors.
    pub fn silent() -> Self {
        Self {
            verbosity: Verbosity::Quiet,
            color: false,
            stderr_is_terminal: false,
            json: true,
        }
    }

    pub fn json(&self) -> bool {
        self.json
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// Progress bars only when stderr is a terminal and the user did not ask for quiet.
    pub fn live_progress(&self) -> bool {
        self.stderr_is_terminal && self.verbosity != Verbosity::Quiet
    }

    pub fn color(&self) -> bool {
        self.color
    }

    /// How the libraries show progress under this printer's settings.
    pub fn progress(&self) -> finctl_progress::Options {
        finctl_progress::Options {
            verbosity: self.verbosity,
            live: self.live_progress(),
        }
    }

    /// Data for scripts: always printed, on stdout.
    pub fn data(&self, text: &str) {
        self.data_line(text);
    }

    /// One line of streamed data (logs); false once stdout is closed (piped into `head`), so
    /// the caller can stop quietly.
    pub fn data_line(&self, text: &str) -> bool {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}").and_then(|()| out.flush()).is_ok()
    }

    /// Raw bytes of another program's stdout (`exec`), passed through as they come.
    pub fn stdout_bytes(&self, bytes: &[u8]) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(bytes).and_then(|()| out.flush());
    }

    /// Raw bytes of another program's stderr (`exec`), passed through as they come.
    pub fn stderr_bytes(&self, bytes: &[u8]) {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(bytes).and_then(|()| err.flush());
    }

    /// Redraws a screen in place (`--watch`): clears the terminal, then prints `text` on
    /// stdout.
    pub fn redraw(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "\x1b[2J\x1b[H{text}").and_then(|()| out.flush());
    }

    /// A status line on stderr, hidden by `-q`.
    pub fn status(&self, text: &str) {
        if self.verbosity >= Verbosity::Normal {
            eprintln!("{text}");
        }
    }

    /// Detail shown with `-v`.
    pub fn detail(&self, text: &str) {
        if self.verbosity >= Verbosity::Verbose {
            eprintln!("{text}");
        }
    }

    /// Detail of a failure (a service's last log lines): on stderr, even with `-q`.
    pub fn diagnostic(&self, text: &str) {
        eprintln!("{text}");
    }

    pub fn warn(&self, text: &str) {
        if self.color {
            eprintln!("{}: {text}", "warning".yellow().bold());
        } else {
            eprintln!("warning: {text}");
        }
    }

    /// An error with its cause chain and, when known, a hint on what to do next.
    pub fn error(&self, err: &anyhow::Error) {
        let label = if self.color {
            "error".red().bold().to_string()
        } else {
            "error".to_string()
        };
        eprintln!("{label}: {err}");
        for cause in err.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        if let Some(hint) = finctl_error::hint_of(err) {
            let label = if self.color {
                "hint".cyan().bold().to_string()
            } else {
                "hint".to_string()
            };
            eprintln!("{label}: {hint}");
        }
    }
}
