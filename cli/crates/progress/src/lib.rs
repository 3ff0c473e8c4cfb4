//! Progress on anything slow, shared by image builds and orchestration: one live line per
//! item (an image, a service) while stderr is a terminal, and plain lines otherwise, so CI
//! logs read the same story.
//!
//! Everything goes to stderr; stdout stays for data. This crate depends on nothing of
//! finctl's: the binary's `Printer` decides the [`Options`] and hands them in.

use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub verbosity: Verbosity,
    /// Live spinners (stderr is a terminal and the user did not ask for quiet).
    pub live: bool,
}

impl Options {
    /// Plain lines at normal verbosity: for tests and library callers.
    pub fn plain() -> Self {
        Self {
            verbosity: Verbosity::Normal,
            live: false,
        }
    }
}

/// A group of lines, one per item, aligned on the longest name.
pub struct Progress {
    multi: Option<MultiProgress>,
    options: Options,
    width: usize,
    started: Instant,
}

impl Progress {
    pub fn new<S: AsRef<str>>(options: Options, names: &[S]) -> Self {
        let multi = options
            .live
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let width = names.iter().map(|n| n.as_ref().len()).max().unwrap_or(4);
        Self {
            multi,
            options,
            width,
            started: Instant::now(),
        }
    }

    /// The line of one item, starting now.
    pub fn line(&self, name: &str) -> Line {
        let bar = self.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner:.cyan}} {{prefix:<{}}} {{elapsed:>4}}  {{wide_msg}}",
                    self.width
                ))
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(name.to_owned());
            bar.set_message("pending");
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Line {
            bar,
            name: format!("{name:<width$}", width = self.width),
            options: self.options,
            group_started: self.started,
            started: Instant::now(),
        }
    }
}

/// One item's line.
pub struct Line {
    bar: Option<ProgressBar>,
    name: String,
    options: Options,
    group_started: Instant,
    started: Instant,
}

impl Line {
    /// A new phase (fetching packages, starting, waiting for health, ...).
    pub fn set(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(message.to_owned()),
            None => self.plain(message),
        }
    }

    /// A line of tool output: the live line's tail on a terminal; printed with `-v`.
    pub fn output(&self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        if let Some(bar) = &self.bar {
            bar.set_message(line.chars().take(90).collect::<String>());
        }
        if self.options.verbosity >= Verbosity::Verbose {
            let text = format!("  {} | {line}", self.name.trim_end());
            match &self.bar {
                Some(bar) => bar.println(text),
                None => eprintln!("{text}"),
            }
        }
    }

    /// Time since this line started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The final word on this item, left on screen: `✓`/`✗` when `ok` is known.
    pub fn finish(&self, ok: Option<bool>, message: &str) {
        let text = match ok {
            Some(true) => format!("✓ {message}"),
            Some(false) => format!("✗ {message}"),
            None => message.to_owned(),
        };
        match &self.bar {
            Some(bar) => {
                bar.set_style(
                    ProgressStyle::with_template("  {prefix} {elapsed:>4}  {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.finish_with_message(text);
            }
            // The final word says its own time where it matters ("built ... in 4.2s").
            None => {
                if self.options.verbosity >= Verbosity::Normal {
                    eprintln!("{}  {text}", self.name);
                }
            }
        }
    }

    /// Stops the spinner where it is (Ctrl-C, early exit).
    pub fn abandon(&self) {
        if let Some(bar) = &self.bar
            && !bar.is_finished()
        {
            bar.abandon();
        }
    }

    fn plain(&self, message: &str) {
        if self.options.verbosity >= Verbosity::Normal {
            eprintln!(
                "{}  {message} ({:.1}s)",
                self.name,
                self.group_started.elapsed().as_secs_f64()
            );
        }
    }
}

/// A duration as the tables and progress lines show it: `4.2s`.
pub fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}
