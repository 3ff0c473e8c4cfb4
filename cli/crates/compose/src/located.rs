//! Declaration files checked before anything is contacted: serde with `deny_unknown_fields`
//! (unknown keys, missing fields, wrong types, located by the path serde was at), then the
//! caller's own checks, each problem with its file, line, path and the offending value.
//! `api-config.yaml` (publish-apis) and `compose/bootstrap/*.yaml` (bootstrap) are read this way.

use std::fmt;
use std::path::{Path, PathBuf};

use finctl_error::UserError;
use serde::de::DeserializeOwned;

use crate::{LineIndex, Segment, display_path};

/// One thing wrong with a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based; `None` when the file's structure could not be followed that far.
    pub line: Option<usize>,
    /// `rest_apis[1].context`.
    pub path: String,
    /// The offending value as written, when there is one.
    pub value: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        if let Some(value) = &self.value {
            write!(f, ": `{value}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A file that failed validation: every problem found, and what was therefore not done.
#[derive(Debug, Clone)]
pub struct Invalid {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
    /// `nothing was published`.
    pub consequence: &'static str,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        write!(
            f,
            "{} is not valid ({count} problem{}); {}:",
            self.file.display(),
            if count == 1 { "" } else { "s" },
            self.consequence
        )?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

impl Invalid {
    /// The error the CLI reports (exit 2), with what to run next.
    pub fn into_user_error(self, hint: impl Into<String>) -> UserError {
        UserError::config(self.to_string(), hint)
    }
}

/// Collects the problems of one file.
pub struct Report<'a> {
    file: PathBuf,
    index: &'a LineIndex,
    consequence: &'static str,
    pub problems: Vec<Problem>,
}

impl<'a> Report<'a> {
    pub fn new(file: &Path, index: &'a LineIndex, consequence: &'static str) -> Self {
        Self {
            file: file.to_path_buf(),
            index,
            consequence,
            problems: Vec::new(),
        }
    }

    /// A problem at `path`, on the line the path's nearest written part is on.
    pub fn add(&mut self, path: &[Segment], value: Option<&str>, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.clone(),
            line: self.index.nearest(path).1,
            path: display_path(path),
            value: value.map(str::to_owned),
            message: message.into(),
        });
    }

    /// The line `path` is written on, when the file gets that far.
    pub fn line(&self, path: &[Segment]) -> Option<usize> {
        self.index.nearest(path).1
    }

    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems, in file order.
    pub fn finish(mut self) -> Invalid {
        self.problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        Invalid {
            file: self.file,
            problems: self.problems,
            consequence: self.consequence,
        }
    }

    /// `Ok(value)` when nothing was reported.
    pub fn result<T>(self, value: T) -> Result<T, Invalid> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self.finish())
        }
    }
}

/// Parses `text` as `T` (an empty file is `T::default()`); a serde error is one [`Problem`]
/// with the path serde was at and, when the parser knew it, the line.
pub fn parse_yaml<T: DeserializeOwned + Default>(
    file: &Path,
    text: &str,
    index: &LineIndex,
    consequence: &'static str,
) -> Result<T, Invalid> {
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    let deserializer = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path: Vec<Segment> = err
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => Some(Segment::Index(*index)),
                serde_path_to_error::Segment::Map { key } => Some(Segment::Key(key.clone())),
                serde_path_to_error::Segment::Enum { variant } => {
                    Some(Segment::Key(variant.clone()))
                }
                serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        let inner = err.into_inner();
        let line = inner
            .location()
            .map(|l| l.line())
            .or_else(|| index.nearest(&path).1);
        // serde_yaml appends " at line L column C"; the line is reported on its own.
        let message = inner.to_string();
        let message = match message.rfind(" at line ") {
            Some(at) => message[..at].to_owned(),
            None => message,
        };
        // ... and prefixes its own path (`ai_apis[0]: `), which is reported on its own too.
        let message = match message.split_once(": ") {
            Some((path, rest)) if !path.contains(' ') => rest.to_owned(),
            _ => message,
        };
        Invalid {
            file: file.to_path_buf(),
            problems: vec![Problem {
                file: file.to_path_buf(),
                line,
                path: display_path(&path),
                value: None,
                message,
            }],
            consequence,
        }
    })
}
