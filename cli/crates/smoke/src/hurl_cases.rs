//! Cases in Hurl files: `tests/smoke/<suite>/<name>.hurl`.
//!
//! Why Hurl: it is a plain-text format many teams already write (`hurl --test`), readable
//! without knowing Rust, with what these checks need built in: captures (a token, an id),
//! JSONPath asserts, `{{variables}}` (base URLs, users, tokens: secrets are masked), and
//! `[Options] retry` for results that become true eventually, with a bounded number of tries
//! instead of fixed sleeps. The `hurl` crate runs the files in-process, so no binary is
//! installed beside finctl.
//!
//! Each request entry of a file is one case, named by the comment lines right above it (or by
//! its request line). A file's entries run in order (later ones may use what earlier ones
//! captured); files run in parallel. The file's service is its name (`profile.hurl`), or a
//! `# service: NAME` line at its top.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hurl::runner::{self, RunnerOptionsBuilder, Value, VariableSet};
use hurl::util::logger::{Logger, LoggerOptionsBuilder, Verbosity};
use hurl::util::term::{Stderr, Stdout, WriteMode};
use hurl_core::ast::SourceInfo;
use hurl_core::error::{DisplaySourceError, OutputFormat};
use hurl_core::input::Input;
use hurl_core::parser;

use crate::{CaseResult, Outcome, Suite, mask};

/// A case file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCaseFile {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for BadCaseFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for BadCaseFile {}

/// One request entry of a file.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub line: usize,
    /// The `{{variables}}` it uses.
    pub variables: BTreeSet<String>,
}

/// A parsed case file.
#[derive(Debug, Clone)]
pub struct CaseFile {
    pub path: PathBuf,
    /// The path as shown to people: relative to the project (`tests/smoke/smoke/profile.hurl`).
    pub display: String,
    pub suite: Suite,
    pub service: Option<String>,
    content: String,
    pub entries: Vec<Entry>,
}

/// Reads every `*.hurl` under `dir/<suite>/`, in name order; any file that does not parse,
/// or a folder that names no suite, is an error with file and line.
pub fn load(dir: &Path, shown_from: &Path) -> Result<Vec<CaseFile>, BadCaseFile> {
    let shown = |p: &Path| {
        p.strip_prefix(shown_from)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    let mut files = Vec::new();
    let Ok(read) = std::fs::read_dir(dir) else {
        return Ok(files);
    };
    let mut folders: Vec<PathBuf> = read.filter_map(|e| e.ok().map(|e| e.path())).collect();
    folders.sort();
    for folder in folders {
        if !folder.is_dir() {
            continue;
        }
        let name = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(suite) = Suite::from_name(&name) else {
            return Err(BadCaseFile {
                file: shown(&folder),
                line: 0,
                message: format!(
                    "`{name}` is not a suite: case folders are {}",
                    Suite::ALL.map(Suite::name).join(", ")
                ),
            });
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map_err(|err| BadCaseFile {
                file: shown(&folder),
                line: 0,
                message: err.to_string(),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "hurl"))
            .collect();
        paths.sort();
        for path in paths {
            let content = std::fs::read_to_string(&path).map_err(|err| BadCaseFile {
                file: shown(&path),
                line: 0,
                message: err.to_string(),
            })?;
            files.push(parse(&path, shown(&path), suite, content)?);
        }
    }
    Ok(files)
}

/// Parses one file's text.
pub fn parse(
    path: &Path,
    display: String,
    suite: Suite,
    content: String,
) -> Result<CaseFile, BadCaseFile> {
    let content = content.trim_start_matches('\u{feff}').to_owned();
    let hurl = parser::parse_hurl_file(&content).map_err(|err| BadCaseFile {
        file: display.clone(),
        line: err.pos.line,
        message: err.description(),
    })?;
    if hurl.entries.is_empty() {
        return Err(BadCaseFile {
            file: display,
            line: 1,
            message: "no request in this file: a case file holds one or more Hurl entries".into(),
        });
    }
    let lines: Vec<&str> = content.lines().collect();
    let starts: Vec<usize> = hurl
        .entries
        .iter()
        .map(|e| e.request.url.source_info.start.line)
        .collect();
    let mut entries = Vec::new();
    for (i, entry) in hurl.entries.iter().enumerate() {
        let line = starts[i];
        let comments: Vec<String> = entry
            .request
            .line_terminators
            .iter()
            .filter_map(|t| t.comment.as_ref())
            .map(|c| c.value.trim().to_owned())
            .filter(|c| !c.is_empty() && !c.starts_with("service:"))
            .collect();
        let name = match comments.last() {
            Some(comment) => comment.clone(),
            None => lines
                .get(line.saturating_sub(1))
                .map_or_else(String::new, |l| l.trim().to_owned()),
        };
        let end = starts.get(i + 1).copied().unwrap_or(lines.len() + 1);
        let text = lines[line.saturating_sub(1)..(end - 1).min(lines.len())].join("\n");
        entries.push(Entry {
            name,
            line,
            variables: variables_in(&text),
        });
    }
    let service = lines
        .iter()
        .take_while(|l| l.trim_start().starts_with('#') || l.trim().is_empty())
        .find_map(|l| {
            l.trim_start()
                .trim_start_matches('#')
                .trim()
                .strip_prefix("service:")
                .map(|s| s.trim().to_owned())
        })
        .or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()));
    Ok(CaseFile {
        path: path.to_owned(),
        display,
        suite,
        service,
        content,
        entries,
    })
}

/// The names inside `{{ }}` (Hurl's functions, `newUuid` and `newDate`, included).
fn variables_in(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        rest = &rest[start + 2..];
        let name: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
    }
    found
}

/// The variables a run gives its files.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    pub plain: BTreeMap<String, String>,
    /// Tokens and passwords: masked in every output.
    pub secrets: BTreeMap<String, String>,
    /// Variables finctl could not provide here, with the reason; entries using them are
    /// skipped with that reason.
    pub unavailable: BTreeMap<String, String>,
}

impl Variables {
    pub fn secret_values(&self) -> Vec<String> {
        self.secrets.values().cloned().collect()
    }

    fn to_hurl(&self) -> VariableSet {
        let mut set = VariableSet::new();
        for (k, v) in &self.plain {
            set.insert(k.clone(), Value::String(v.clone()));
        }
        for (k, v) in &self.secrets {
            set.insert_secret(k.clone(), v.clone());
        }
        set
    }
}

/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl CaseFile {
    /// The case named `entry` would be skipped: the first unavailable variable it uses.
    fn skip_reason(&self, entry: &Entry, vars: &Variables) -> Option<String> {
        entry
            .variables
            .iter()
            .find_map(|v| vars.unavailable.get(v).cloned())
    }

    /// Runs the file (blocking: call it from a blocking thread); one result per entry.
    pub fn run(&self, vars: &Variables) -> Vec<CaseResult> {
        let secrets = vars.secret_values();
        let options = RunnerOptionsBuilder::new()
            .continue_on_error(true)
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            .build();
        let logger = LoggerOptionsBuilder::new()
            .color(false)
            .verbosity(None::<Verbosity>)
            .build();
        let input = Input::new(&self.display);
        let Ok(hurl) = parser::parse_hurl_file(&self.content) else {
            return self.all(Outcome::Failed("the file no longer parses".into()));
        };
        // Buffered: the runner's own messages stay out of finctl's output (they are
        // rendered per case below, masked).
        let mut stdout = Stdout::new(WriteMode::Buffered);
        let mut log = Logger::new(&logger, Stderr::new(WriteMode::Buffered), &secrets);
        let result = runner::run_entries(
            &hurl.entries,
            &self.content,
            Some(&input),
            &options,
            &vars.to_hurl(),
            &mut stdout,
            None,
            &mut log,
        );
        // Retried entries appear once per attempt: the last attempt decides.
        let mut last: BTreeMap<usize, &runner::EntryResult> = BTreeMap::new();
        let mut time: BTreeMap<usize, Duration> = BTreeMap::new();
        for entry in &result.entries {
            let index = entry.entry_index.get();
            last.insert(index, entry);
            *time.entry(index).or_default() += entry.transfer_duration;
        }
        self.entries
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let index = i + 1;
                let mut case = self.result(entry, Outcome::Passed);
                case.duration = time.get(&index).copied().unwrap_or_default();
                if let Some(reason) = self.skip_reason(entry, vars) {
                    case.outcome = Outcome::Skipped(reason);
                    return case;
                }
                let Some(ran) = last.get(&index) else {
                    case.outcome = Outcome::Failed("not run".into());
                    return case;
                };
                if let Some(error) = ran.errors.first() {
                    let first_line = mask(&error.description(), &secrets);
                    let rendered = error.render(
                        &self.display,
                        &self.content,
                        Some(ran.source_info),
                        OutputFormat::Plain,
                    );
                    let detail =
                        exchange(ran).map_or(rendered.clone(), |x| format!("{rendered}\n{x}"));
                    case.outcome = Outcome::Failed(format!(
                        "{first_line} ({}:{})",
                        self.display,
                        line_of(error.source_info)
                    ));
                    case.detail = Some(mask(&detail, &secrets));
                }
                case
            })
            .collect()
    }

    /// Every entry with one outcome (the file could not run, or the stack is not there).
    pub fn all(&self, outcome: Outcome) -> Vec<CaseResult> {
        self.entries
            .iter()
            .map(|e| self.result(e, outcome.clone()))
            .collect()
    }

    fn result(&self, entry: &Entry, outcome: Outcome) -> CaseResult {
        CaseResult {
            suite: self.suite,
            name: self.case_name(entry),
            service: self.service.clone(),
            source: format!("{}:{}", self.display, entry.line),
            outcome,
            duration: Duration::ZERO,
            detail: None,
            log_tail: None,
        }
    }

    /// `profile: health, directly`: the file's name, then the entry's.
    pub fn case_name(&self, entry: &Entry) -> String {
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{stem}: {}", entry.name)
    }
}

fn line_of(info: SourceInfo) -> usize {
    info.start.line
}

/// The last call of an entry: request line, response status and a body excerpt.
fn exchange(entry: &runner::EntryResult) -> Option<String> {
    let call = entry.calls.last()?;
    let body = String::from_utf8_lossy(&call.response.body);
    let excerpt: String = body.chars().take(400).collect();
    let more = if body.chars().count() > 400 {
        " ..."
    } else {
        ""
    };
    Some(format!(
        "request:  {} {}\nresponse: {}\nbody:     {}{more}",
        call.request.method,
        call.request.url,
        call.response.status,
        excerpt.trim()
    ))
}

#[cfg(test)]
mod tests;
