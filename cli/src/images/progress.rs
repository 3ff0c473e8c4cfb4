//! Progress for image builds: one live line per image on a terminal, plain lines otherwise.

use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::printer::{Printer, Verbosity};

pub struct Progress {
    multi: Option<MultiProgress>,
    printer: Printer,
    width: usize,
}

impl Progress {
    pub fn new(printer: &Printer, names: &[&str]) -> Self {
        let multi = printer
            .live_progress()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let width = names.iter().map(|n| n.len()).max().unwrap_or(4);
        Self {
            multi,
            printer: printer.clone(),
            width,
        }
    }

    pub fn image(&self, name: &str) -> ImageProgress {
        let bar = self.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{{spinner:.cyan}} {{prefix:<{}}} {{elapsed:>4}}  {{msg}}",
                    self.width
                ))
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(name.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        ImageProgress {
            bar,
            name: format!("{name:<width$}", width = self.width),
            printer: self.printer.clone(),
            started: Instant::now(),
        }
    }
}

pub struct ImageProgress {
    bar: Option<ProgressBar>,
    name: String,
    printer: Printer,
    started: Instant,
}

impl ImageProgress {
    /// A new phase (fetching packages, building, ...): always shown.
    pub fn step(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(message.to_string()),
            None => self.printer.status(&format!("{}  {message}", self.name)),
        }
    }

    /// A line of tool output: the live line's tail on a terminal; printed with `-v`.
    pub fn line(&self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        if let Some(bar) = &self.bar {
            let short: String = line.chars().take(90).collect();
            bar.set_message(short);
        }
        if self.printer.verbosity() >= Verbosity::Verbose {
            match &self.bar {
                Some(bar) => bar.println(format!("  {} | {line}", self.name.trim_end())),
                None => self
                    .printer
                    .detail(&format!("  {} | {line}", self.name.trim_end())),
            }
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The final word on this image, left on screen.
    pub fn finish(&self, ok: bool, message: &str) {
        let mark = if ok { "✓" } else { "✗" };
        match &self.bar {
            Some(bar) => {
                bar.set_style(
                    ProgressStyle::with_template("{prefix} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(format!("{mark} {}", self.name));
                bar.finish_with_message(message.to_string());
            }
            None => self
                .printer
                .status(&format!("{}  {mark} {message}", self.name)),
        }
    }
}
