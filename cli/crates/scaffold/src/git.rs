//! The template's versions in git: the tree id of `templates/service/` as it is now (written
//! to the object store, so uncommitted edits have one too), and an older tree read back.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use finctl_error::UserError;

use crate::Template;

fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir).stdin(Stdio::null());
    cmd
}

/// Runs `cmd`; its stdout when it succeeded.
fn output(cmd: &mut Command) -> Option<Vec<u8>> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status.success().then_some(out.stdout)
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).trim().to_owned()
}

/// The git tree id of the template folder as it is in the working tree, uncommitted edits
/// included; `None` when the project is not in a git repository (or git is missing).
pub fn tree_id(template_dir: &Path) -> Option<String> {
    let prefix = text(output(
        git(template_dir).args(["rev-parse", "--show-prefix"]),
    )?);
    // A private index: the user's own staging area is not touched.
    let index = tempfile::Builder::new()
        .prefix("finctl-template-index")
        .tempdir()
        .ok()?;
    let index_file = index.path().join("index");
    let add = output(
        git(template_dir)
            .env("GIT_INDEX_FILE", &index_file)
            .args(["add", "--all", "--", "."]),
    );
    add?;
    let tree = output(
        git(template_dir)
            .env("GIT_INDEX_FILE", &index_file)
            .args(["write-tree", &format!("--prefix={prefix}")]),
    )?;
    Some(text(tree))
}

/// The template as it was in git tree `tree` (an id [`tree_id`] returned).
pub fn read_tree(repo_dir: &Path, tree: &str) -> Result<Template, UserError> {
    let missing = || {
        UserError::config(
            format!(
                "the template this service was generated from (git tree {tree}) is not in this repository"
            ),
            "it was never committed, or the history was rewritten; commit template changes \
             before generating services, or edit the service by hand",
        )
    };
    if !tree.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(missing());
    }
    output(git(repo_dir).args(["cat-file", "-e", &format!("{tree}^{{tree}}")]))
        .ok_or_else(missing)?;
    let mut child = git(repo_dir)
        .args(["archive", "--format=tar", tree])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|_| missing())?;
    let stdout = child.stdout.take().expect("piped");
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(stdout);
    let read_err = |err: std::io::Error| {
        UserError::failure(
            format!("cannot read git tree {tree}: {err}"),
            "check the repository with `git fsck`",
        )
    };
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(read_err)?
            .to_string_lossy()
            .into_owned();
        let mut content = String::new();
        entry.read_to_string(&mut content).map_err(read_err)?;
        files.insert(path, content);
    }
    let status = child.wait().map_err(read_err)?;
    if !status.success() {
        return Err(missing());
    }
    Template::from_files(format!("templates/service at git tree {tree}"), files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .current_dir(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn an_uncommitted_template_has_a_tree_that_reads_back() {
        let repo = tempfile::tempdir().unwrap();
        let dir = repo.path().join("templates/service");
        std::fs::create_dir_all(dir.join("stack")).unwrap();
        std::fs::write(dir.join("template.toml"), "version = 1\n").unwrap();
        std::fs::write(dir.join("stack/compose.yml.j2"), "  {{ name }}: {}\n").unwrap();
        std::fs::write(
            dir.join("stack/api.yaml.j2"),
            "  - context: /api/{{ name }}\n",
        )
        .unwrap();
        run(repo.path(), &["init", "-q"]);
        let first = tree_id(&dir).expect("a git repository");
        std::fs::write(dir.join("template.toml"), "version = 2\n").unwrap();
        let second = tree_id(&dir).unwrap();
        assert_ne!(first, second);
        assert_eq!(read_tree(repo.path(), &first).unwrap().version, 1);
        assert_eq!(read_tree(repo.path(), &second).unwrap().version, 2);
        let err = read_tree(repo.path(), "0123456789abcdef0123456789abcdef01234567").unwrap_err();
        assert!(
            err.message.contains("is not in this repository"),
            "{}",
            err.message
        );
        // The user's own index is untouched.
        assert!(!repo.path().join(".git/index").exists());
    }

    #[test]
    fn outside_git_there_is_no_tree() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(tree_id(dir.path()), None);
    }
}
