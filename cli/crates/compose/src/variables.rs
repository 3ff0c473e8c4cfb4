//! The variables `${VAR}` interpolation reads: the compose folder's `.env`, overridden by the
//! process environment (docker-compose 1.29's `Environment.from_env_file`).

use std::collections::BTreeMap;
use std::path::Path;

use finctl_error::UserError;

/// Variable name -> value, process environment over `.env`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variables {
    values: BTreeMap<String, String>,
}

impl Variables {
    #[cfg(test)]
    pub fn new(values: BTreeMap<String, String>) -> Self {
        Self { values }
    }

    /// `.env` in `dir` (if present), then `process` on top.
    pub fn layered(dir: &Path, process: &BTreeMap<String, String>) -> Result<Self, UserError> {
        let path = dir.join(".env");
        let mut values = if path.is_file() {
            read_env_file(&path, process)?
        } else {
            BTreeMap::new()
        };
        values.extend(process.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(Self { values })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Reads a dotenv file (`.env`, a service's `env_file`) the way python-dotenv does for
/// Compose: `KEY=VALUE` lines, `#` comments, optional `export `, single quotes literal,
/// double quotes with `\n`/`\"` escapes, inline ` #` comments after unquoted values, and
/// `${VAR}`/`${VAR:-default}` expanded from earlier lines, then `outer`.
pub fn read_env_file(
    path: &Path,
    outer: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, UserError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        UserError::config(
            format!("cannot read {}: {err}", path.display()),
            "check that the file exists and is readable",
        )
    })?;
    parse_env_text(&text, outer).map_err(|(line, message)| {
        UserError::config(
            format!("{}:{line}: {message}", path.display()),
            "write one KEY=VALUE per line",
        )
    })
}

/// [`read_env_file`] on text; errors carry the 1-based line.
pub fn parse_env_text(
    text: &str,
    outer: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, (usize, String)> {
    let mut values = BTreeMap::new();
    for (number, raw) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            // A bare name: python-dotenv yields None and Compose ignores it.
            continue;
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err((number + 1, format!("invalid variable name `{key}`")));
        }
        let value = value.trim_start();
        let value = if let Some(rest) = value.strip_prefix('\'') {
            let end = rest
                .find('\'')
                .ok_or((number + 1, format!("unterminated single quote in `{key}`")))?;
            rest[..end].to_owned()
        } else if let Some(rest) = value.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = rest.chars();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some(other) => out.push(other),
                        None => out.push('\\'),
                    },
                    c => out.push(c),
                }
            }
            if !closed {
                return Err((number + 1, format!("unterminated double quote in `{key}`")));
            }
            expand(&out, &values, outer)
        } else {
            let value = match value.find(" #") {
                Some(at) => &value[..at],
                None => value,
            };
            expand(value.trim_end(), &values, outer)
        };
        values.insert(key.to_owned(), value);
    }
    Ok(values)
}

/// python-dotenv's expansion: `${NAME}` and `${NAME:-default}` only.
fn expand(
    value: &str,
    earlier: &BTreeMap<String, String>,
    outer: &BTreeMap<String, String>,
) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = &rest[start + 2..start + len];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, default),
            None => (inner, ""),
        };
        let found = earlier
            .get(name)
            .or_else(|| outer.get(name))
            .filter(|v| !v.is_empty());
        out.push_str(found.map_or(default, String::as_str));
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dotenv_forms() {
        let outer = BTreeMap::from([("HOME".to_owned(), "/home/u".to_owned())]);
        let text = "\
# comment
A=1
export B = two words # comment
C='lit ${A} #x'
D=\"q\\\"uote\\n\"
E=${A}-${MISSING:-dflt}-${HOME}
EMPTY=
BARE
";
        let values = parse_env_text(text, &outer).unwrap();
        assert_eq!(values["A"], "1");
        assert_eq!(values["B"], "two words");
        assert_eq!(values["C"], "lit ${A} #x");
        assert_eq!(values["D"], "q\"uote\n");
        assert_eq!(values["E"], "1-dflt-/home/u");
        assert_eq!(values["EMPTY"], "");
        assert!(!values.contains_key("BARE"));
    }

    #[test]
    fn rejects_bad_lines() {
        let err = parse_env_text("OK=1\nBAD KEY=2\n", &BTreeMap::new()).unwrap_err();
        assert_eq!(err.0, 2);
        let err = parse_env_text("A='open\n", &BTreeMap::new()).unwrap_err();
        assert_eq!(err.0, 1);
    }

    #[test]
    fn process_environment_wins_over_dotenv() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env"), "A=file\nB=file\n").unwrap();
        let process = BTreeMap::from([("A".to_owned(), "env".to_owned())]);
        let vars = Variables::layered(dir.path(), &process).unwrap();
        assert_eq!(vars.get("A"), Some("env"));
        assert_eq!(vars.get("B"), Some("file"));
    }
}
