//! One Compose file as read from disk: its YAML (anchors and merge keys applied), where each
//! key is written, and how to name a place in it in an error.

use std::fmt;
use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::interpolate::{InterpolationError, interpolate};
use super::line_index::{LineIndex, Segment, display_path};
use super::variables::Variables;
use finctl_error::UserError;

/// A place in a Compose file: `compose/docker-compose.yml:42`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.file),
            None => f.write_str(&self.file),
        }
    }
}

/// A configuration error at `location`: `file:line: what` plus a hint (exit 2).
pub fn invalid(location: &Location, what: impl fmt::Display, hint: impl Into<String>) -> UserError {
    UserError::config(format!("{location}: {what}"), hint)
}

/// The top-level sections Compose interpolates (it leaves `x-*` extensions alone).
const INTERPOLATED: [&str; 5] = ["services", "networks", "volumes", "secrets", "configs"];

#[derive(Debug, Clone)]
pub struct SourceFile {
    /// How messages name the file (relative to the current directory when possible).
    pub display: String,
    pub index: LineIndex,
    pub document: Mapping,
}

impl SourceFile {
    /// Reads `path`; `-` is stdin, named `<stdin>` in messages.
    pub fn read(path: &Path) -> Result<Self, UserError> {
        if path.as_os_str() == crate::discovery::STDIN {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|err| {
                UserError::config(
                    format!("cannot read the Compose file from stdin: {err}"),
                    "pipe a Compose file into `finctl -f -`",
                )
            })?;
            return Self::parse("<stdin>".to_owned(), &text);
        }
        let display = display_name(path);
        let text = std::fs::read_to_string(path).map_err(|err| {
            UserError::config(
                format!("cannot read {display}: {err}"),
                "check the -f/--file paths and --project-dir",
            )
        })?;
        Self::parse(display, &text)
    }

    pub fn parse(display: String, text: &str) -> Result<Self, UserError> {
        let mut value: Value = serde_yaml::from_str(text).map_err(|err| {
            let location = Location {
                file: display.clone(),
                line: err.location().map(|l| l.line()),
            };
            invalid(
                &location,
                format_args!("invalid YAML: {err}"),
                "fix the YAML syntax (indentation, quoting, a missing `:`)",
            )
        })?;
        value.apply_merge().map_err(|err| {
            invalid(
                &Location {
                    file: display.clone(),
                    line: None,
                },
                format_args!("invalid YAML merge key `<<`: {err}"),
                "`<<:` takes an alias (*name) of a mapping, or a list of them",
            )
        })?;
        let document = match value {
            Value::Mapping(mapping) => mapping,
            Value::Null => {
                return Err(invalid(
                    &Location {
                        file: display,
                        line: None,
                    },
                    "the file is empty",
                    "a Compose file needs at least a `services:` section",
                ));
            }
            _ => {
                return Err(invalid(
                    &Location {
                        file: display,
                        line: Some(1),
                    },
                    "the top level is not a mapping",
                    "a Compose file is a mapping with `services:`, `volumes:`, `networks:`",
                ));
            }
        };
        Ok(Self {
            display,
            index: LineIndex::new(text),
            document,
        })
    }

    /// Where `path` (or its nearest written ancestor) is in this file.
    pub fn location(&self, path: &[Segment]) -> Location {
        Location {
            file: self.display.clone(),
            line: self.index.nearest(path).1,
        }
    }

    /// Interpolates every string value of the sections Compose interpolates.
    pub fn interpolate(
        &mut self,
        vars: &Variables,
        unset: &mut Vec<String>,
    ) -> Result<(), UserError> {
        let mut document = std::mem::take(&mut self.document);
        let result = (|| {
            for section in INTERPOLATED {
                if let Some(value) = document.get_mut(section) {
                    let mut path = vec![Segment::key(section)];
                    self.interpolate_value(value, &mut path, vars, unset)?;
                }
            }
            Ok(())
        })();
        self.document = document;
        result
    }

    fn interpolate_value(
        &self,
        value: &mut Value,
        path: &mut Vec<Segment>,
        vars: &Variables,
        unset: &mut Vec<String>,
    ) -> Result<(), UserError> {
        match value {
            Value::String(text) => {
                *text = interpolate(text, vars, unset).map_err(|err| {
                    let location = self.location(path);
                    let at = display_path(path);
                    match err {
                        InterpolationError::Required { name, message } => invalid(
                            &location,
                            format_args!("{at}: required variable {name} is not set: {message}"),
                            format!("set {name} in the environment or in compose/.env"),
                        ),
                        InterpolationError::Invalid { reason } => invalid(
                            &location,
                            format_args!("{at}: invalid interpolation in `{text}`: {reason}"),
                            "write `${VAR}`, `${VAR:-default}` or `${VAR:?message}`; `$$` is a literal `$`",
                        ),
                    }
                })?;
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(Segment::Index(i));
                    self.interpolate_value(item, path, vars, unset)?;
                    path.pop();
                }
            }
            Value::Mapping(mapping) => {
                for (key, item) in mapping.iter_mut() {
                    path.push(Segment::Key(key_text(key)));
                    self.interpolate_value(item, path, vars, unset)?;
                    path.pop();
                }
            }
            Value::Tagged(tagged) => {
                self.interpolate_value(&mut tagged.value, path, vars, unset)?
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
        Ok(())
    }
}

/// The files of one stack, in `-f` order (later files override earlier ones).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub files: Vec<SourceFile>,
}

impl Sources {
    /// The file that wrote `path` last (overrides win), else the deepest written ancestor.
    pub fn locate(&self, path: &[Segment]) -> Location {
        if let Some(file) = self
            .files
            .iter()
            .rev()
            .find(|f| f.index.line_of(path).is_some())
        {
            return file.location(path);
        }
        let best = self
            .files
            .iter()
            .rev()
            .map(|f| (f.index.nearest(path).0, f))
            .max_by_key(|(len, _)| *len);
        match best {
            Some((_, file)) => file.location(path),
            None => Location {
                file: "<no file>".to_owned(),
                line: None,
            },
        }
    }

    /// The sequence item under `parent` whose text is `text`, else [`Sources::locate`] of parent.
    pub fn locate_item(&self, parent: &[Segment], text: &str) -> Location {
        for file in self.files.iter().rev() {
            if let Some(line) = file.index.item_line(parent, text) {
                return Location {
                    file: file.display.clone(),
                    line: Some(line),
                };
            }
        }
        self.locate(parent)
    }
}

/// A mapping key as text (keys are strings in Compose; numbers are shown as written).
pub fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

/// `path` relative to the current directory when it is below it.
fn display_name(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}
