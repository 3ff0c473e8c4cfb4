//! `up`'s progress: one line per planned service, on the shared progress lines.

use std::collections::HashMap;

use finctl_progress::{Line, Options};

use crate::readiness::Observer;

pub struct Progress {
    lines: HashMap<String, Line>,
}

impl Progress {
    pub fn new(options: Options, services: &[String]) -> Self {
        let group = finctl_progress::Progress::new(options, services);
        let lines = services
            .iter()
            .map(|name| (name.clone(), group.line(name)))
            .collect();
        Self { lines }
    }

    /// The service moved to `phase` (creating, starting, waiting for health, ...).
    pub fn phase(&self, service: &str, phase: &str) {
        if let Some(line) = self.lines.get(service) {
            line.set(phase);
        }
    }

    /// The service reached its final state.
    pub fn done(&self, service: &str, outcome: &str) {
        if let Some(line) = self.lines.get(service) {
            line.finish(None, outcome);
        }
    }

    /// Stops every line still spinning (Ctrl-C, early exit).
    pub fn abandon(&self) {
        self.lines.values().for_each(Line::abandon);
    }
}

/// Shows what waiting for one service is doing on that service's line.
pub struct PhaseObserver<'a> {
    pub progress: &'a Progress,
    pub service: &'a str,
}

impl Observer for PhaseObserver<'_> {
    fn waiting(&self, what: &str) {
        self.progress.phase(self.service, what);
    }
}
