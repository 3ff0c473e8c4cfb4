//! A `volumes:` entry of a service: a named volume, a bind mount, an anonymous volume or a
//! tmpfs, at a path in the container.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A volume declared in the top-level `volumes:` (key as written there).
    Volume(String),
    /// A host path, made absolute against the compose folder.
    Bind(PathBuf),
    /// A volume Docker creates for this container only.
    Anonymous,
    Tmpfs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: MountSource,
    pub target: String,
    pub read_only: bool,
}

impl Mount {
    /// Parses one entry; relative bind paths are resolved against `working_dir`.
    pub fn parse(entry: &Value, working_dir: &Path, home: Option<&Path>) -> Result<Mount, String> {
        match entry {
            Value::String(spec) => Self::parse_short(spec, working_dir, home),
            Value::Mapping(map) => {
                let get = |key: &str| map.get(key).and_then(Value::as_str);
                let target = get("target").ok_or("a long-syntax volume needs `target`")?;
                let read_only = map
                    .get("read_only")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let source = match (get("type").unwrap_or("volume"), get("source")) {
                    ("volume", Some(name)) if !name.is_empty() => {
                        MountSource::Volume(name.to_owned())
                    }
                    ("volume", _) => MountSource::Anonymous,
                    ("bind", Some(path)) => MountSource::Bind(resolve(path, working_dir, home)),
                    ("bind", None) => return Err("a bind mount needs `source`".to_owned()),
                    ("tmpfs", _) => MountSource::Tmpfs,
                    (other, _) => {
                        return Err(format!(
                            "unsupported volume type `{other}` (volume, bind or tmpfs)"
                        ));
                    }
                };
                check_target(target)?;
                Ok(Mount {
                    source,
                    target: target.to_owned(),
                    read_only,
                })
            }
            _ => Err("a volume is a string like \"data:/var/lib/data\" or a mapping".to_owned()),
        }
    }

    fn parse_short(spec: &str, working_dir: &Path, home: Option<&Path>) -> Result<Mount, String> {
        let parts: Vec<&str> = spec.split(':').collect();
        let (source, target, mode) = match parts.as_slice() {
            [target] => (None, *target, ""),
            [source, target] => (Some(*source), *target, ""),
            [source, target, mode] => (Some(*source), *target, *mode),
            _ => return Err(format!("`{spec}` is not SOURCE:TARGET[:MODE]")),
        };
        check_target(target)?;
        let source = match source {
            None => MountSource::Anonymous,
            Some(s) if s.starts_with('/') || s.starts_with('.') || s.starts_with('~') => {
                MountSource::Bind(resolve(s, working_dir, home))
            }
            Some("") => return Err(format!("`{spec}`: empty source")),
            Some(name) => MountSource::Volume(name.to_owned()),
        };
        let read_only = mode.split(',').any(|m| m == "ro");
        Ok(Mount {
            source,
            target: target.to_owned(),
            read_only,
        })
    }
}

fn check_target(target: &str) -> Result<(), String> {
    if target.starts_with('/') {
        Ok(())
    } else {
        Err(format!("the container path `{target}` is not absolute"))
    }
}

fn resolve(path: &str, working_dir: &Path, home: Option<&Path>) -> PathBuf {
    if let (Some(rest), Some(home)) = (path.strip_prefix('~'), home) {
        return home.join(rest.trim_start_matches('/'));
    }
    let joined = working_dir.join(path);
    // Lexical clean-up of "./" and "../" without touching the file system.
    let mut clean = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(spec: &str) -> Result<Mount, String> {
        Mount::parse(
            &Value::from(spec),
            Path::new("/p/compose"),
            Some(Path::new("/home/u")),
        )
    }

    #[test]
    fn short_forms() {
        let m = parse("data:/var/lib/data").unwrap();
        assert_eq!(m.source, MountSource::Volume("data".into()));
        assert_eq!(m.target, "/var/lib/data");
        let m = parse("./conf:/etc/conf:ro").unwrap();
        assert_eq!(m.source, MountSource::Bind("/p/compose/conf".into()));
        assert!(m.read_only);
        let m = parse("../seed.toml:/etc/seed.toml").unwrap();
        assert_eq!(m.source, MountSource::Bind("/p/seed.toml".into()));
        assert_eq!(
            parse("~/x:/x").unwrap().source,
            MountSource::Bind("/home/u/x".into())
        );
        assert_eq!(parse("/cache").unwrap().source, MountSource::Anonymous);
        assert!(parse("data:relative").is_err());
        assert!(parse("a:b:c:d").is_err());
    }

    #[test]
    fn long_form() {
        let entry: Value = serde_yaml::from_str("{type: tmpfs, target: /tmp}").unwrap();
        let m = Mount::parse(&entry, Path::new("/p"), None).unwrap();
        assert_eq!(m.source, MountSource::Tmpfs);
        let entry: Value =
            serde_yaml::from_str("{type: bind, source: ./x, target: /x, read_only: true}").unwrap();
        let m = Mount::parse(&entry, Path::new("/p"), None).unwrap();
        assert_eq!(
            (m.source, m.read_only),
            (MountSource::Bind("/p/x".into()), true)
        );
    }
}
