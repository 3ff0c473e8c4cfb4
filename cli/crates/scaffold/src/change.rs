//! Every change a command will make, computed before anything is written: shown as a list
//! and unified diffs (`--dry-run`), then applied all together.

use std::path::{Path, PathBuf};

use finctl_error::UserError;
use serde::Serialize;

/// One file's change; paths are relative to the project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    Create {
        path: PathBuf,
        #[serde(skip)]
        content: String,
    },
    Modify {
        path: PathBuf,
        #[serde(skip)]
        before: String,
        #[serde(skip)]
        after: String,
    },
    Delete {
        path: PathBuf,
        #[serde(skip)]
        before: String,
    },
}

impl Change {
    pub fn path(&self) -> &Path {
        match self {
            Self::Create { path, .. } | Self::Modify { path, .. } | Self::Delete { path, .. } => {
                path
            }
        }
    }

    /// What the file holds afterwards; `None` once deleted.
    pub fn after(&self) -> Option<&str> {
        match self {
            Self::Create { content, .. } => Some(content),
            Self::Modify { after, .. } => Some(after),
            Self::Delete { .. } => None,
        }
    }
}

/// The changes, in the order they are applied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ChangeSet {
    changes: Vec<Change>,
}

/// Added and removed lines of a text change.
pub fn line_counts(before: &str, after: &str) -> (usize, usize) {
    let patch = diffy::create_patch(before, after);
    let mut counts = (0, 0);
    for hunk in patch.hunks() {
        for line in hunk.lines() {
            match line {
                diffy::Line::Insert(_) => counts.0 += 1,
                diffy::Line::Delete(_) => counts.1 += 1,
                diffy::Line::Context(_) => {}
            }
        }
    }
    counts
}

impl ChangeSet {
    pub fn push(&mut self, change: Change) {
        self.changes.push(change);
    }

    /// A modification, unless it changes nothing.
    pub fn modify(&mut self, path: impl Into<PathBuf>, before: String, after: String) {
        if before != after {
            self.push(Change::Modify {
                path: path.into(),
                before,
                after,
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter()
    }

    /// The text a path will hold after the change, if this set changes it.
    pub fn after(&self, path: &Path) -> Option<Option<&str>> {
        self.changes
            .iter()
            .rev()
            .find(|c| c.path() == path)
            .map(Change::after)
    }

    /// One line per file: `create`, `modify (+3 -0)`, `delete`.
    pub fn summary(&self) -> Vec<String> {
        self.changes
            .iter()
            .map(|c| match c {
                Change::Create { path, content } => {
                    format!(
                        "create  {} ({} lines)",
                        path.display(),
                        content.lines().count()
                    )
                }
                Change::Modify {
                    path,
                    before,
                    after,
                } => {
                    let (added, removed) = line_counts(before, after);
                    format!("modify  {} (+{added} -{removed})", path.display())
                }
                Change::Delete { path, .. } => format!("delete  {}", path.display()),
            })
            .collect()
    }

    /// The unified diff of every modified file (`--- a/PATH`, `+++ b/PATH`, as git prints).
    pub fn diffs(&self) -> String {
        let mut out = String::new();
        for change in &self.changes {
            if let Change::Modify {
                path,
                before,
                after,
            } = change
            {
                let name = path.display().to_string();
                let patch = diffy::DiffOptions::new()
                    .set_original_filename(format!("a/{name}"))
                    .set_modified_filename(format!("b/{name}"))
                    .create_patch(before, after);
                let formatter = diffy::PatchFormatter::new().suppress_blank_empty(false);
                out.push_str(&formatter.fmt_patch(&patch).to_string());
            }
        }
        out
    }

    /// Writes every change under `root`. First each new content is written beside its file
    /// (`NAME.finctl-new`) and every file to be modified is checked to still hold what the
    /// plan was made from; only then are they renamed into place, in order, and deletions
    /// done. A file changed meanwhile stops the command before anything is replaced.
    pub fn apply(&self, root: &Path) -> Result<(), UserError> {
        let io = |what: String, err: std::io::Error| {
            UserError::failure(
                format!("{what}: {err}"),
                "nothing was replaced unless listed above; run the command again when the cause is fixed",
            )
        };
        let staged_path = |path: &Path| {
            let mut name = path.file_name().unwrap_or_default().to_os_string();
            name.push(".finctl-new");
            root.join(path).with_file_name(name)
        };
        let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
        let cleanup = |staged: &[(PathBuf, PathBuf)]| {
            for (tmp, _) in staged {
                let _ = std::fs::remove_file(tmp);
            }
        };
        for change in &self.changes {
            let target = root.join(change.path());
            let current = std::fs::read_to_string(&target).ok();
            let expected = match change {
                Change::Create { .. } => None,
                Change::Modify { before, .. } | Change::Delete { before, .. } => Some(before),
            };
            if current.as_ref() != expected {
                cleanup(&staged);
                return Err(UserError::failure(
                    format!(
                        "{} changed while finctl was working on it (or {} already)",
                        change.path().display(),
                        if expected.is_some() {
                            "it is gone"
                        } else {
                            "it exists"
                        }
                    ),
                    "nothing was written; run the command again",
                ));
            }
            let Some(after) = change.after() else {
                continue;
            };
            let tmp = staged_path(change.path());
            if let Some(parent) = tmp.parent() {
                if let Err(err) = std::fs::create_dir_all(parent) {
                    cleanup(&staged);
                    return Err(io(format!("cannot create {}", parent.display()), err));
                }
            }
            if let Err(err) = std::fs::write(&tmp, after) {
                cleanup(&staged);
                return Err(io(format!("cannot write {}", tmp.display()), err));
            }
            staged.push((tmp, target));
        }
        for (tmp, target) in &staged {
            std::fs::rename(tmp, target)
                .map_err(|err| io(format!("cannot replace {}", target.display()), err))?;
        }
        for change in &self.changes {
            if let Change::Delete { path, .. } = change {
                let target = root.join(path);
                std::fs::remove_file(&target)
                    .map_err(|err| io(format!("cannot delete {}", target.display()), err))?;
                remove_empty_parents(root, path);
            }
        }
        Ok(())
    }
}

/// Removes the folders a deletion left empty, up to (not including) the project root's
/// first level (`platform-services/`, `tests/`).
fn remove_empty_parents(root: &Path, path: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d.components().count() < 2 || std::fs::remove_dir(root.join(d)).is_err() {
            break;
        }
        dir = d.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> ChangeSet {
        let mut set = ChangeSet::default();
        set.push(Change::Create {
            path: "svc/src/lib.rs".into(),
            content: "fn a() {}\n".into(),
        });
        set.modify("list.txt", "a\nb\n".into(), "a\nb\nc\n".into());
        set.modify("same.txt", "x\n".into(), "x\n".into());
        set
    }

    #[test]
    fn a_plan_is_listed_and_diffed_like_git() {
        let set = set();
        assert_eq!(
            set.summary(),
            [
                "create  svc/src/lib.rs (1 lines)",
                "modify  list.txt (+1 -0)"
            ]
        );
        assert_eq!(
            set.diffs(),
            "--- a/list.txt\n+++ b/list.txt\n@@ -1,2 +1,3 @@\n a\n b\n+c\n"
        );
    }

    #[test]
    fn apply_writes_everything_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("list.txt"), "a\nb\nchanged meanwhile\n").unwrap();
        let err = set().apply(dir.path()).unwrap_err();
        assert!(err.message.contains("list.txt changed"), "{}", err.message);
        assert!(!dir.path().join("svc").join("src").join("lib.rs").exists());
        assert!(!dir.path().join("svc/src/lib.rs.finctl-new").exists());

        std::fs::write(dir.path().join("list.txt"), "a\nb\n").unwrap();
        set().apply(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("list.txt")).unwrap(),
            "a\nb\nc\n"
        );
        let mut undo = ChangeSet::default();
        undo.push(Change::Delete {
            path: "svc/src/lib.rs".into(),
            before: "fn a() {}\n".into(),
        });
        undo.apply(dir.path()).unwrap();
        assert!(!dir.path().join("svc/src").exists(), "empty folders go too");
    }
}
