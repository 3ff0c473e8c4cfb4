//! [`Redact`]: the filters that make finctl's output the same text on every run and machine
//! (temp paths, project names, ports, durations, ids, sizes, timestamps, pids), for insta.
//!
//! Tables keep their shape: each table is cut into cells at its header's column starts, each
//! cell is redacted, and the table is drawn again at the widths the cells have now, so the
//! snapshot does not depend on how wide the values that were there were.

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
            // As a path only: `/root` but not the user in `postgresql://root@`.
            let home = regex::escape(&home.to_string_lossy());
            redact = redact.pattern(&format!(r"(^|[^/\w]){home}(/|$|\s)"), "${1}[HOME]${2}");
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

    /// Also replaces every match of the regex `pattern` (`placeholder` may name its groups:
    /// `${1}`).
    pub fn pattern(mut self, pattern: &str, placeholder: &str) -> Self {
        let regex = Regex::new(pattern).unwrap_or_else(|err| panic!("{pattern}: {err}"));
        self.rules.push((regex, placeholder.to_owned()));
        self
    }

    /// `text` with every rule applied in order, tables kept aligned.
    pub fn apply(&self, text: &str) -> String {
        let mut out = Vec::new();
        let mut lines = text.split('\n').peekable();
        while let Some(line) = lines.next() {
            if !line.starts_with('┌') {
                out.push(self.line(line));
                continue;
            }
            let mut table = Vec::new();
            while let Some(row) = lines.next_if(|l| !l.starts_with('└')) {
                table.push(row);
            }
            let bottom = lines.next();
            match self.table(&table) {
                Some(rendered) if bottom.is_some() => out.extend(rendered),
                _ => {
                    out.push(self.line(line));
                    out.extend(table.iter().map(|row| self.line(row)));
                    out.extend(bottom.map(|row| self.line(row)));
                }
            }
        }
        out.join("\n")
    }

    fn line(&self, line: &str) -> String {
        self.rules
            .iter()
            .fold(line.to_owned(), |line, (regex, placeholder)| {
                regex.replace_all(&line, placeholder.as_str()).into_owned()
            })
    }

    /// A comfy-table `UTF8_BORDERS_ONLY` table (the lines between `┌` and `└`): cells cut at
    /// the header's column starts, redacted, and drawn again at the widths they have now.
    fn table(&self, lines: &[&str]) -> Option<Vec<String>> {
        let rows: Vec<Vec<char>> = lines
            .iter()
            .filter(|l| l.starts_with('│'))
            .map(|l| {
                let chars: Vec<char> = l.chars().collect();
                chars[1..chars.len().saturating_sub(1).max(1)].to_vec()
            })
            .collect();
        let header = rows.first()?;
        // A column starts after the leading pad, or after two spaces (the pads of two cells).
        let starts: Vec<usize> = (1..header.len())
            .filter(|&i| {
                header[i] != ' ' && (i == 1 || (header[i - 1] == ' ' && header[i - 2] == ' '))
            })
            .collect();
        if starts.first() != Some(&1) {
            return None;
        }
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                (0..starts.len())
                    .map(|c| {
                        let end = starts
                            .get(c + 1)
                            .copied()
                            .unwrap_or(row.len())
                            .min(row.len());
                        let cell: String = row[starts[c].min(end)..end].iter().collect();
                        self.line(cell.trim())
                    })
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = (0..starts.len())
            .map(|c| {
                cells
                    .iter()
                    .map(|r| r[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let inner = widths.iter().sum::<usize>() + 2 * widths.len();
        let separator = lines.iter().position(|l| l.starts_with('╞'));
        let mut out = vec![format!("┌{}┐", "─".repeat(inner))];
        for (i, row) in cells.iter().enumerate() {
            if separator.is_some() && i == 1 {
                out.push(format!("╞{}╡", "═".repeat(inner)));
            }
            let padded: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            out.push(format!("│ {} │", padded.join("  ")));
        }
        out.push(format!("└{}┘", "─".repeat(inner)));
        Some(out)
    }
}
