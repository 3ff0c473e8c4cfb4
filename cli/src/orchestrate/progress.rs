//! One line per service while `up` works: indicatif spinners on a terminal, plain
//! line-per-event output otherwise.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::printer::Printer;

pub struct Progress {
    printer: Printer,
    bars: HashMap<String, ProgressBar>,
    started: Instant,
}

impl Progress {
    pub fn new(printer: &Printer, services: &[String]) -> Self {
        let mut bars = HashMap::new();
        if printer.live_progress() {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let width = services.iter().map(String::len).max().unwrap_or(8);
            let style = ProgressStyle::with_template(&format!(
                "{{spinner}} {{prefix:<{width}}} {{wide_msg}} {{elapsed:>4}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
            for name in services {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(name.clone());
                bar.set_message("pending");
                bar.enable_steady_tick(Duration::from_millis(100));
                bars.insert(name.clone(), bar);
            }
        }
        Self {
            printer: printer.clone(),
            bars,
            started: Instant::now(),
        }
    }

    /// The service moved to `phase` (creating, starting, waiting for health, ...).
    pub fn phase(&self, service: &str, phase: &str) {
        match self.bars.get(service) {
            Some(bar) => bar.set_message(phase.to_owned()),
            None => self.printer.status(&format!(
                "{service}: {phase} ({:.1}s)",
                self.started.elapsed().as_secs_f64()
            )),
        }
    }

    /// The service reached its final state.
    pub fn done(&self, service: &str, outcome: &str) {
        match self.bars.get(service) {
            Some(bar) => bar.finish_with_message(outcome.to_owned()),
            None => self.printer.status(&format!(
                "{service}: {outcome} ({:.1}s)",
                self.started.elapsed().as_secs_f64()
            )),
        }
    }

    /// Stops every line still spinning (Ctrl-C, early exit).
    pub fn abandon(&self) {
        for bar in self.bars.values() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }
}
