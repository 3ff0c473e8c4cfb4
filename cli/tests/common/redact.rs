//! [`Redact`]: the filters that make finctl's output the same text on every run and machine
//! (temp paths, project names, ports, durations, ids, sizes, timestamps, pids), for insta.
//!
//! Tables keep their shape: in a table row (a line that starts with `│`) a placeholder longer
//! or shorter than what it replaces takes or gives the difference from the next run of padding,
//! so columns stay aligned whatever the width of the value that was there.

use regex::Regex;

use super::Project;

/// An ordered list of (pattern, placeholder); the first rules are the most specific.
#[derive(Debug, Clone)]
pub struct Redact {
    rules: Vec<(Regex, String)>,
}

/// What varies from run to run or machine to machine, and its placeholder.
const GENERIC: &[(&str, &str)] = &[
    (r"/tmp/\.tmp[A-Za-z0-9]+", "[TEMP_DIR]"),
    (
        r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?",
        "[TIMESTAMP]",
    ),
    (r"sha256:[0-9a-f]{64}\b", "[IMAGE_ID]"),
    (r"\b[0-9a-f]{64}\b", "[ID]"),
    (r"\b[0-9a-f]{12}\b", "[ID]"),
    (r"\bpid \d+", "pid [PID]"),
    (r"127\.0\.0\.1:\d{4,5}\b", "127.0.0.1:[PORT]"),
    (
        r"\b\d+(?:\.\d+)? ?(?:B|kB|KB|KiB|MB|MiB|GB|GiB|TB|TiB)\b",
        "[SIZE]",
    ),
    (r"\b(?:\d+m)?\d+(?:\.\d+)? ?(?:ns|µs|us|ms|s)\b", "[TIME]"),
];

impl Redact {
    /// The generic rules only.
    pub fn new() -> Self {
        let mut redact = Self { rules: Vec::new() };
        if let Some(home) = std::env::var_os("HOME").filter(|h| h.len() > 1) {
            redact = redact.exact(&home.to_string_lossy(), "[HOME]");
        }
        for (pattern, placeholder) in GENERIC {
            redact = redact.pattern(pattern, placeholder);
        }
        redact
    }

    /// The generic rules after `project`'s own values (see [`Self::values`]).
    pub fn project(project: &Project) -> Self {
        let mut redact = Self::values(project);
        redact.rules.extend(Self::new().rules);
        redact
    }

    /// Only `project`'s own values: its folder, name and port variables. For text that is
    /// otherwise the same on every run (error messages, which may quote durations such as
    /// `90s` that the generic rules would hide).
    pub fn values(project: &Project) -> Self {
        let mut redact = Self { rules: Vec::new() }
            .exact(&project.dir().display().to_string(), "[PROJECT_DIR]")
            .exact(&project.name, "[PROJECT]");
        for (key, value) in project.vars() {
            if key.ends_with("_PORT") {
                redact = redact.pattern(&format!(r"\b{value}\b"), &format!("[{key}]"));
            }
        }
        redact
    }

    /// Also replaces every occurrence of `text`.
    pub fn exact(self, text: &str, placeholder: &str) -> Self {
        self.pattern(&regex::escape(text), placeholder)
    }

    /// Also replaces every match of the regex `pattern`.
    pub fn pattern(mut self, pattern: &str, placeholder: &str) -> Self {
        let regex = Regex::new(pattern).unwrap_or_else(|err| panic!("{pattern}: {err}"));
        self.rules.push((regex, placeholder.to_owned()));
        self
    }

    /// `text` with every rule applied in order, tables kept aligned.
    pub fn apply(&self, text: &str) -> String {
        let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
        for (regex, placeholder) in &self.rules {
            for line in &mut lines {
                *line = if line.starts_with('│') {
                    replace_in_row(line, regex, placeholder)
                } else {
                    regex.replace_all(line, placeholder.as_str()).into_owned()
                };
            }
        }
        lines.join("\n")
    }
}

/// Replaces right to left, so that padding adjusted to the right of a match does not move the
/// matches still to be replaced.
fn replace_in_row(row: &str, regex: &Regex, placeholder: &str) -> String {
    let matches: Vec<(usize, usize)> = regex.find_iter(row).map(|m| (m.start(), m.end())).collect();
    let mut row = row.to_owned();
    for (start, end) in matches.into_iter().rev() {
        let grown = width(placeholder) as isize - width(&row[start..end]) as isize;
        row.replace_range(start..end, placeholder);
        pad(&mut row, start + placeholder.len(), grown);
    }
    row
}

/// Takes `grown` spaces from (or, when negative, gives them to) the first run of padding at or
/// after byte `from`: two or more spaces, or the spaces before the row's closing `│`. At least
/// one space stays.
fn pad(row: &mut String, from: usize, grown: isize) {
    if grown == 0 {
        return;
    }
    let bytes = row.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        if bytes[i] != b' ' {
            i += 1;
            continue;
        }
        let run_end = (i..bytes.len())
            .find(|&j| bytes[j] != b' ')
            .unwrap_or(bytes.len());
        let run = run_end - i;
        if run >= 2 || row[run_end..].starts_with('│') {
            let new_run = (run as isize - grown).max(1) as usize;
            row.replace_range(i..run_end, &" ".repeat(new_run));
            return;
        }
        i = run_end;
    }
}

fn width(text: &str) -> usize {
    text.chars().count()
}
