//! The service template: `templates/service/`, read from the working tree or from a git tree
//! (an older version, for `--update`), rendered with the answers.
//!
//! Layout (see templates/service/README.md):
//! - `template.toml`: `version`, raised with every change generated services should take up;
//! - `crate/**`: rendered to `platform-services/<name>/**`;
//! - `smoke/service.hurl.j2`: rendered to `tests/smoke/smoke/<name>.hurl`;
//! - `stack/compose.yml.j2`, `stack/api.yaml.j2`, `stack/topic.yaml.j2`: the entries added to
//!   `compose/docker-compose.yml`, `api-config.yaml` and `compose/bootstrap/topics.yaml`.
//!
//! A trailing `.j2` is dropped from every file name; path components may hold expressions
//! (`{{ name|snake_case }}`). Anything else in the folder (its README) is documentation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use finctl_error::UserError;
use heck::{ToKebabCase, ToShoutySnakeCase, ToSnakeCase, ToTitleCase, ToUpperCamelCase};
use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Deserialize;

use crate::answers::Answers;

/// Where the template lives in a project.
pub const TEMPLATE_DIR: &str = "templates/service";
const MANIFEST: &str = "template.toml";
const CRATE_DIR: &str = "crate/";
const SMOKE_FILE: &str = "smoke/service.hurl.j2";
const COMPOSE_SNIPPET: &str = "stack/compose.yml.j2";
const API_SNIPPET: &str = "stack/api.yaml.j2";
const TOPIC_SNIPPET: &str = "stack/topic.yaml.j2";

/// The template's files, by path relative to its folder (`/`-separated), and its version.
#[derive(Debug, Clone)]
pub struct Template {
    /// Where it was read from, for messages: a folder or `git tree <id>`.
    pub origin: String,
    pub version: u32,
    files: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: u32,
    #[allow(dead_code)]
    description: Option<String>,
}

/// What the template makes of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// New files, by project-relative path: the crate and its smoke cases.
    pub files: BTreeMap<PathBuf, String>,
    /// Service entries for the Compose file's `services:`.
    pub compose: String,
    /// The API's item for `api-config.yaml`'s `rest_apis:`.
    pub api: String,
    /// The topic's item for `topics.yaml`'s `topics:`, when the service publishes one.
    pub topic: Option<String>,
}

impl Template {
    /// Reads the template folder of the working tree.
    pub fn read_dir(dir: &Path) -> Result<Self, UserError> {
        if !dir.join(MANIFEST).is_file() {
            return Err(UserError::config(
                format!(
                    "no service template: {} is missing",
                    dir.join(MANIFEST).display()
                ),
                format!("run finctl in a project that has {TEMPLATE_DIR}/ (or pass --project-dir)"),
            ));
        }
        let mut files = BTreeMap::new();
        for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
            let entry = entry.map_err(|err| {
                UserError::config(
                    format!("cannot read the template {}: {err}", dir.display()),
                    "check the folder's permissions",
                )
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let relative = entry
                .path()
                .strip_prefix(dir)
                .expect("walkdir yields paths below its root");
            let key = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let text = std::fs::read_to_string(entry.path()).map_err(|err| {
                UserError::config(
                    format!("cannot read {}: {err}", entry.path().display()),
                    "template files must be UTF-8 text",
                )
            })?;
            files.insert(key, text);
        }
        Self::from_files(dir.display().to_string(), files)
    }

    /// A template from its files (path -> text); checks `template.toml`.
    pub fn from_files(origin: String, files: BTreeMap<String, String>) -> Result<Self, UserError> {
        let manifest_text = files.get(MANIFEST).ok_or_else(|| {
            UserError::config(
                format!("{origin}: the template has no {MANIFEST}"),
                "a template folder starts with template.toml (`version = N`)",
            )
        })?;
        let manifest: Manifest = toml::from_str(manifest_text).map_err(|err| {
            UserError::config(
                format!("{origin}/{MANIFEST}: {}", err.message()),
                "it holds `version = N` (a whole number) and an optional `description`",
            )
        })?;
        for required in [COMPOSE_SNIPPET, API_SNIPPET] {
            if !files.contains_key(required) {
                return Err(UserError::config(
                    format!("{origin}: the template has no {required}"),
                    "see templates/service/README.md for the files a template holds",
                ));
            }
        }
        Ok(Self {
            origin,
            version: manifest.version,
            files,
        })
    }

    /// Renders every file for `answers`. Undefined variables, unknown filters and syntax
    /// errors name the template file and line.
    pub fn render(&self, answers: &Answers) -> Result<Rendered, UserError> {
        let env = environment();
        let context = minijinja::context! {
            name => answers.name.as_str(),
            port => answers.port,
            description => answers.description.as_str(),
            worker => answers.worker,
            template_version => self.version,
        };
        let render = |name: &str, source: &str| -> Result<String, UserError> {
            env.render_named_str(name, source, &context)
                .map_err(|err| self.render_error(name, &err))
        };
        let crate_dir = PathBuf::from("platform-services").join(answers.name.as_str());
        let mut files = BTreeMap::new();
        for (path, source) in &self.files {
            let target = if let Some(inner) = path.strip_prefix(CRATE_DIR) {
                let inner = render(&format!("{path} (its path)"), inner)?;
                crate_dir.join(inner.strip_suffix(".j2").unwrap_or(&inner))
            } else if path == SMOKE_FILE {
                PathBuf::from("tests/smoke/smoke").join(format!("{}.hurl", answers.name))
            } else {
                continue;
            };
            files.insert(target, render(path, source)?);
        }
        let snippet = |path: &str| -> Result<Option<String>, UserError> {
            match self.files.get(path) {
                Some(source) => {
                    let text = render(path, source)?;
                    Ok((!text.trim().is_empty()).then_some(text))
                }
                None => Ok(None),
            }
        };
        Ok(Rendered {
            files,
            compose: snippet(COMPOSE_SNIPPET)?.unwrap_or_default(),
            api: snippet(API_SNIPPET)?.unwrap_or_default(),
            topic: snippet(TOPIC_SNIPPET)?,
        })
    }

    fn render_error(&self, name: &str, err: &minijinja::Error) -> UserError {
        let line = err.line().map(|l| format!(":{l}")).unwrap_or_default();
        let detail = err.detail().map(|d| format!(": {d}")).unwrap_or_default();
        UserError::config(
            format!("{}/{name}{line}: {}{detail}", self.origin, err.kind()),
            "fix the template; it sees name, port, description, worker and template_version, \
             and the filters snake_case, pascal_case, kebab_case, title_case, shouty_snake_case",
        )
    }
}

/// Jinja as the template's README describes it: strict about undefined values, block tags
/// on their own lines leave no blank lines, files keep their last newline.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Generated source is not HTML: nothing is escaped, whatever the file's extension.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .expect("the default delimiters are valid"),
    );
    env.add_filter("snake_case", |s: String| s.to_snake_case());
    env.add_filter("pascal_case", |s: String| s.to_upper_camel_case());
    env.add_filter("kebab_case", |s: String| s.to_kebab_case());
    env.add_filter("title_case", |s: String| s.to_title_case());
    env.add_filter("shouty_snake_case", |s: String| s.to_shouty_snake_case());
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServiceName;

    fn template(extra: &[(&str, &str)]) -> Template {
        let mut files: BTreeMap<String, String> = [
            (MANIFEST, "version = 3\n"),
            (
                COMPOSE_SNIPPET,
                "  {{ name }}:\n    image: finctl/{{ name }}\n",
            ),
            (API_SNIPPET, "  - context: /api/{{ name }}\n"),
            (
                TOPIC_SNIPPET,
                "{% if worker %}\n  - name: {{ name }}.created\n{% endif %}\n",
            ),
            ("README.md", "documentation {{ not rendered }}\n"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in extra {
            files.insert((*k).to_owned(), (*v).to_owned());
        }
        Template::from_files("templates/service".into(), files).unwrap()
    }

    fn answers(worker: bool) -> Answers {
        Answers {
            name: ServiceName::parse("fx-audit").unwrap(),
            port: 8007,
            description: "Audit \"trail\"".into(),
            worker,
        }
    }

    #[test]
    fn files_land_in_the_crate_and_the_smoke_folder_with_filters_applied() {
        let t = template(&[
            (
                "crate/src/lib.rs.j2",
                "pub struct {{ name|pascal_case }}; // {{ name|snake_case }} {{ name|shouty_snake_case }} {{ name|title_case }} v{{ template_version }}\n",
            ),
            (
                "crate/migrations/0001_{{ name|snake_case }}.sql",
                "-- {{ port }}\n",
            ),
            (
                SMOKE_FILE,
                "{% raw %}GET {{gateway_url}}{% endraw %}/api/{{ name }}\n",
            ),
        ]);
        let r = t.render(&answers(true)).unwrap();
        let keys: Vec<_> = r.files.keys().map(|p| p.display().to_string()).collect();
        assert_eq!(
            keys,
            [
                "platform-services/fx-audit/migrations/0001_fx_audit.sql",
                "platform-services/fx-audit/src/lib.rs",
                "tests/smoke/smoke/fx-audit.hurl",
            ]
        );
        assert_eq!(
            r.files[Path::new("platform-services/fx-audit/src/lib.rs")],
            "pub struct FxAudit; // fx_audit FX_AUDIT Fx Audit v3\n"
        );
        assert_eq!(
            r.files[Path::new("tests/smoke/smoke/fx-audit.hurl")],
            "GET {{gateway_url}}/api/fx-audit\n"
        );
        assert_eq!(r.compose, "  fx-audit:\n    image: finctl/fx-audit\n");
        assert_eq!(r.topic.as_deref(), Some("  - name: fx-audit.created\n"));
    }

    #[test]
    fn an_empty_snippet_means_none() {
        let r = template(&[]).render(&answers(false)).unwrap();
        assert_eq!(r.topic, None);
    }

    #[test]
    fn an_undefined_variable_names_file_and_line() {
        let t = template(&[("crate/src/main.rs.j2", "fn main() {}\n// {{ nmae }}\n")]);
        let err = t.render(&answers(true)).unwrap_err();
        assert!(
            err.message
                .starts_with("templates/service/crate/src/main.rs.j2:2: undefined value"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_template_without_its_manifest_or_with_a_bad_version_is_refused() {
        let err = Template::from_files("t".into(), BTreeMap::new()).unwrap_err();
        assert!(err.message.contains("no template.toml"), "{}", err.message);
        let files = BTreeMap::from([(MANIFEST.to_owned(), "version = \"one\"\n".to_owned())]);
        let err = Template::from_files("t".into(), files).unwrap_err();
        assert!(
            err.message.starts_with("t/template.toml: "),
            "{}",
            err.message
        );
    }
}
