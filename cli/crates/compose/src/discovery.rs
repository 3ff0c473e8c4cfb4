//! Which Compose files make up the stack when the user names none, some, or this
//! repository's layout: Compose's conventions (`-f`, `COMPOSE_FILE`, `compose.yaml` found by
//! walking up) next to finctl's own `compose/docker-compose.yml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::load::LoadOptions;
use finctl_env::{COMPOSE_FILE, COMPOSE_PATH_SEPARATOR};
use finctl_error::UserError;

/// `-f -`: the file is read from stdin.
pub const STDIN: &str = "-";

/// The names Compose looks for in each folder, in order; the first one present wins.
pub const COMPOSE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// What the command line and the environment say about where the stack is.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// `-f` files in order (relative to the current directory; `-` is stdin).
    pub files: Vec<PathBuf>,
    /// `--project-dir`.
    pub project_dir: Option<PathBuf>,
    /// `--offline`: adds `compose/offline.yml` in this repository's layout.
    pub offline: bool,
    /// Where to start walking up, and what relative paths are relative to.
    pub current_dir: PathBuf,
    /// Read for `COMPOSE_FILE` and `COMPOSE_PATH_SEPARATOR`.
    pub environment: BTreeMap<String, String>,
}

impl Discovery {
    /// The files and working directory, in this order:
    /// 1. `--project-dir` holding `compose/docker-compose.yml`: that file (plus
    ///    `compose/offline.yml` with `--offline`), then the `-f` files merged after it;
    /// 2. `-f` files, else `COMPOSE_FILE`: those files; the working directory is
    ///    `--project-dir` if given, else the first file's folder (the current directory for
    ///    `-`);
    /// 3. `--project-dir` alone: Compose's names in that folder;
    /// 4. walking up from the current directory, in each folder `compose/docker-compose.yml`
    ///    (this repository's layout) then Compose's names, with an `.override` file beside a
    ///    Compose name merged after it.
    pub fn resolve(&self) -> Result<LoadOptions, UserError> {
        let named = if self.files.is_empty() {
            self.compose_file_variable()
        } else {
            self.files.iter().map(|f| self.absolute(f)).collect()
        };
        if let Some(dir) = &self.project_dir {
            let dir = self.absolute(dir);
            if let Some(mut files) = repository_layout(&dir, self.offline) {
                // As before Compose's conventions: `compose/` is the working directory.
                files.extend(named);
                return Ok(LoadOptions::new(files));
            }
            if !named.is_empty() {
                return Ok(LoadOptions::new(named).with_working_dir(dir));
            }
            return compose_names(&dir)
                .map(LoadOptions::new)
                .ok_or_else(|| not_a_project(&dir));
        }
        if !named.is_empty() {
            let working_dir = match named[0].to_str() {
                Some(STDIN) => self.current_dir.clone(),
                _ => named[0]
                    .parent()
                    .map_or_else(|| self.current_dir.clone(), Path::to_path_buf),
            };
            return Ok(LoadOptions::new(named).with_working_dir(working_dir));
        }
        self.current_dir
            .ancestors()
            .find_map(|dir| {
                repository_layout(dir, self.offline).or_else(|| compose_names(dir))
            })
            .map(LoadOptions::new)
            .ok_or_else(|| {
                UserError::config(
                    format!(
                        "no compose/docker-compose.yml, compose.yaml or docker-compose.yml in {} or any parent",
                        self.current_dir.display()
                    ),
                    "run finctl inside the project, pass -f FILE, set COMPOSE_FILE, or pass --project-dir DIR",
                )
            })
    }

    /// `COMPOSE_FILE`, split on `COMPOSE_PATH_SEPARATOR` (default `:`, as on Unix).
    fn compose_file_variable(&self) -> Vec<PathBuf> {
        let Some(value) = self.environment.get(COMPOSE_FILE) else {
            return Vec::new();
        };
        let separator = self
            .environment
            .get(COMPOSE_PATH_SEPARATOR)
            .filter(|s| !s.is_empty())
            .map_or(":", String::as_str);
        split_paths(value, separator)
            .map(|f| self.absolute(Path::new(f)))
            .collect()
    }

    fn absolute(&self, path: &Path) -> PathBuf {
        if path.is_absolute() || path.to_str() == Some(STDIN) {
            path.to_path_buf()
        } else {
            self.current_dir.join(path)
        }
    }
}

/// `COMPOSE_FILE`'s entries, empty ones skipped.
pub fn split_paths<'a>(value: &'a str, separator: &'a str) -> impl Iterator<Item = &'a str> {
    value.split(separator).filter(|p| !p.is_empty())
}

/// `compose/docker-compose.yml` (plus `compose/offline.yml` when `offline`) in `dir`.
fn repository_layout(dir: &Path, offline: bool) -> Option<Vec<PathBuf>> {
    let compose = dir.join("compose");
    let main = compose.join("docker-compose.yml");
    if !main.is_file() {
        return None;
    }
    let mut files = vec![main];
    if offline {
        files.push(compose.join("offline.yml"));
    }
    Some(files)
}

/// The first of [`COMPOSE_NAMES`] in `dir`, then its override file if present.
pub fn compose_names(dir: &Path) -> Option<Vec<PathBuf>> {
    let name = COMPOSE_NAMES.iter().find(|n| dir.join(n).is_file())?;
    let stem = name.split('.').next().unwrap_or_default();
    let mut files = vec![dir.join(name)];
    files.extend(
        ["yaml", "yml"]
            .iter()
            .map(|ext| dir.join(format!("{stem}.override.{ext}")))
            .find(|f| f.is_file()),
    );
    Some(files)
}

fn not_a_project(dir: &Path) -> UserError {
    UserError::config(
        format!(
            "{} is not a finctl project: it has no compose/docker-compose.yml, compose.yaml or docker-compose.yml",
            dir.display()
        ),
        "pass --project-dir with the folder that holds them, or name the files with -f",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temp folder with `files` (empty ones are enough: discovery does not read them).
    fn folder(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "services: {}\n").unwrap();
        }
        dir
    }

    fn discovery(current_dir: &Path) -> Discovery {
        Discovery {
            current_dir: current_dir.to_path_buf(),
            ..Discovery::default()
        }
    }

    fn names(options: &LoadOptions, root: &Path) -> Vec<String> {
        options
            .files
            .iter()
            .map(|f| f.strip_prefix(root).unwrap_or(f).display().to_string())
            .collect()
    }

    #[test]
    fn compose_names_are_tried_in_composes_order() {
        let all = folder(&COMPOSE_NAMES);
        assert_eq!(
            compose_names(all.path()).unwrap(),
            vec![all.path().join("compose.yaml")]
        );
        let later = folder(&["docker-compose.yml", "compose.yml"]);
        assert_eq!(
            compose_names(later.path()).unwrap(),
            vec![later.path().join("compose.yml")]
        );
        assert_eq!(compose_names(folder(&[]).path()), None);
    }

    #[test]
    fn an_override_file_beside_the_found_one_is_merged_after_it() {
        let dir = folder(&["docker-compose.yml", "docker-compose.override.yml"]);
        let found = discovery(dir.path()).resolve().unwrap();
        assert_eq!(
            names(&found, dir.path()),
            ["docker-compose.yml", "docker-compose.override.yml"]
        );
        assert_eq!(found.working_dir, None, "the first file's folder");
    }

    #[test]
    fn walking_up_the_nearest_folder_wins_and_the_repository_layout_first_in_it() {
        let dir = folder(&[
            "compose.yaml",
            "a/compose/docker-compose.yml",
            "a/compose/offline.yml",
            "a/docker-compose.yml",
            "a/b/c/.keep",
        ]);
        let mut from_c = discovery(&dir.path().join("a/b/c"));
        assert_eq!(
            names(&from_c.resolve().unwrap(), dir.path()),
            ["a/compose/docker-compose.yml"]
        );
        from_c.offline = true;
        assert_eq!(
            names(&from_c.resolve().unwrap(), dir.path()),
            ["a/compose/docker-compose.yml", "a/compose/offline.yml"]
        );
        assert_eq!(
            names(&discovery(dir.path()).resolve().unwrap(), dir.path()),
            ["compose.yaml"]
        );
    }

    #[test]
    fn nothing_found_is_a_configuration_error() {
        let dir = folder(&[]);
        let err = discovery(dir.path()).resolve().unwrap_err();
        assert!(err.to_string().contains("compose.yaml"), "{err}");
    }

    #[test]
    fn files_replace_discovery_and_set_the_working_directory() {
        let dir = folder(&["compose.yaml", "x/stack.yml"]);
        let found = Discovery {
            files: vec!["x/stack.yml".into(), "-".into()],
            ..discovery(dir.path())
        }
        .resolve()
        .unwrap();
        assert_eq!(names(&found, dir.path()), ["x/stack.yml", "-"]);
        assert_eq!(found.working_dir, Some(dir.path().join("x")));

        let stdin_first = Discovery {
            files: vec!["-".into()],
            ..discovery(dir.path())
        }
        .resolve()
        .unwrap();
        assert_eq!(stdin_first.working_dir, Some(dir.path().to_path_buf()));
    }

    #[test]
    fn project_dir_with_files_is_their_working_directory_without_a_compose_folder() {
        let dir = folder(&["x/stack.yml"]);
        let found = Discovery {
            files: vec![dir.path().join("x/stack.yml")],
            project_dir: Some(dir.path().to_path_buf()),
            ..discovery(Path::new("/"))
        }
        .resolve()
        .unwrap();
        assert_eq!(found.working_dir, Some(dir.path().to_path_buf()));
    }

    #[test]
    fn project_dir_with_the_repository_layout_merges_files_after_it() {
        let dir = folder(&["compose/docker-compose.yml", "extra.yml"]);
        let found = Discovery {
            files: vec!["extra.yml".into()],
            project_dir: Some(dir.path().to_path_buf()),
            ..discovery(dir.path())
        }
        .resolve()
        .unwrap();
        assert_eq!(
            names(&found, dir.path()),
            ["compose/docker-compose.yml", "extra.yml"]
        );
        assert_eq!(found.working_dir, None, "compose/, as before");
    }

    #[test]
    fn project_dir_without_any_compose_file_is_refused() {
        let dir = folder(&[]);
        let err = Discovery {
            project_dir: Some(dir.path().to_path_buf()),
            ..discovery(dir.path())
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("is not a finctl project"), "{err}");
    }

    #[test]
    fn compose_file_is_split_on_colons_or_the_path_separator() {
        assert_eq!(
            split_paths("a.yml:b.yml::c.yml", ":").collect::<Vec<_>>(),
            ["a.yml", "b.yml", "c.yml"]
        );
        let dir = folder(&["compose.yaml"]);
        let mut found = discovery(dir.path());
        found.environment = BTreeMap::from([(COMPOSE_FILE.to_owned(), "a.yml:/b.yml".to_owned())]);
        assert_eq!(
            names(&found.resolve().unwrap(), dir.path()),
            ["a.yml", "/b.yml"]
        );
        found.environment.extend([
            (COMPOSE_FILE.to_owned(), "a.yml;b:1.yml".to_owned()),
            (COMPOSE_PATH_SEPARATOR.to_owned(), ";".to_owned()),
        ]);
        assert_eq!(
            names(&found.resolve().unwrap(), dir.path()),
            ["a.yml", "b:1.yml"]
        );
    }

    #[test]
    fn files_given_win_over_compose_file() {
        let dir = folder(&[]);
        let found = Discovery {
            files: vec!["given.yml".into()],
            environment: BTreeMap::from([(COMPOSE_FILE.to_owned(), "env.yml".to_owned())]),
            ..discovery(dir.path())
        }
        .resolve()
        .unwrap();
        assert_eq!(names(&found, dir.path()), ["given.yml"]);
    }
}
