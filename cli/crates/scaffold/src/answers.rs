//! The answers a service was generated with, and the template version they were rendered
//! from: recorded with the crate so that `--update` can render the same service from the old
//! and the new template, and `--remove` can find what was added.

use std::path::{Path, PathBuf};

use finctl_error::UserError;
use serde::{Deserialize, Serialize};

use crate::ServiceName;

/// The file, inside the generated crate.
pub const ANSWERS_FILE: &str = ".finctl-service.toml";

/// What `finctl new-service` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    pub name: ServiceName,
    /// The host port its API is published on (127.0.0.1).
    pub port: u16,
    pub description: String,
    /// Whether it has a worker container (jobs, outbox relay).
    pub worker: bool,
}

/// The answers and the template they were rendered from, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub answers: Answers,
    pub template_version: u32,
    /// The git tree id of `templates/service/` it was rendered from; `None` outside git.
    pub template_tree: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    port: u16,
    description: String,
    worker: bool,
    template: TemplateRef,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateRef {
    version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tree: Option<String>,
}

const HEADER: &str = "\
# Written by `finctl new-service`: the answers this service was generated with and the
# template it was rendered from. `finctl new-service --update NAME` renders that template
# version again as the base of a three-way merge, and `--remove NAME` uses it to take out
# what was added. Keep this file; edit it only to change an answer for the next --update.
";

impl Recorded {
    /// Where the answers of `name` are stored, relative to the project.
    pub fn path(name: &ServiceName) -> PathBuf {
        PathBuf::from("platform-services")
            .join(name.as_str())
            .join(ANSWERS_FILE)
    }

    pub fn to_toml(&self) -> String {
        let file = File {
            name: self.answers.name.to_string(),
            port: self.answers.port,
            description: self.answers.description.clone(),
            worker: self.answers.worker,
            template: TemplateRef {
                version: self.template_version,
                tree: self.template_tree.clone(),
            },
        };
        format!(
            "{HEADER}{}",
            toml::to_string(&file).expect("answers serialise")
        )
    }

    /// Reads the answers of a generated service; `None` when it has none (it was not made
    /// by `finctl new-service`).
    pub fn read(root: &Path, name: &ServiceName) -> Result<Option<Self>, UserError> {
        let path = root.join(Self::path(name));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(UserError::config(
                    format!("cannot read {}: {err}", path.display()),
                    "check the file's permissions",
                ));
            }
        };
        Self::parse(&path, &text).map(Some)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, UserError> {
        let bad = |message: String| {
            UserError::config(
                format!("{}: {message}", path.display()),
                "restore the file from git (it is written by `finctl new-service`)",
            )
        };
        let file: File = toml::from_str(text).map_err(|err| {
            let line = err
                .span()
                .map(|span| format!("line {}: ", text[..span.start].lines().count().max(1)))
                .unwrap_or_default();
            bad(format!("{line}{}", err.message()))
        })?;
        let name = ServiceName::parse(&file.name).map_err(|err| bad(err.to_string()))?;
        Ok(Self {
            answers: Answers {
                name,
                port: file.port,
                description: file.description,
                worker: file.worker,
            },
            template_version: file.template.version,
            template_tree: file.template.tree,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answers_survive_a_round_trip() {
        let recorded = Recorded {
            answers: Answers {
                name: ServiceName::parse("fx-audit").unwrap(),
                port: 8007,
                description: "Audit \"trail\" of FX".into(),
                worker: false,
            },
            template_version: 2,
            template_tree: Some("0123abcd".into()),
        };
        let text = recorded.to_toml();
        assert!(text.starts_with("# Written by `finctl new-service`"));
        assert_eq!(
            Recorded::parse(Path::new("a.toml"), &text).unwrap(),
            recorded
        );
    }

    #[test]
    fn a_damaged_file_names_its_line() {
        let err = Recorded::parse(
            Path::new("p/.finctl-service.toml"),
            "name = \"x\"\nport = \"eighty\"\n",
        )
        .unwrap_err();
        assert!(
            err.message.starts_with("p/.finctl-service.toml: line 2: "),
            "{}",
            err.message
        );
    }
}
