//! The input hash: one SHA-256 over everything an image is made from. Equal hash, equal image;
//! so an image whose label carries the current hash is up to date and is not rebuilt.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};
use walkdir::WalkDir;

use crate::recipe::{Recipe, RecipeKind};

/// Bumped when the way images are assembled changes, so every image is rebuilt once.
const SCHEME: &str = "finctl-image-inputs-v1";

pub struct InputHasher(Sha256);

impl InputHasher {
    /// Starts with the recipe itself: its tag, kind, and its parent's hash.
    pub fn for_recipe(recipe: &Recipe, parent_hash: Option<&str>) -> Self {
        let mut hasher = Self(Sha256::new());
        hasher.field("scheme", SCHEME.as_bytes());
        hasher.field("tag", recipe.tag.as_bytes());
        hasher.field("parent", parent_hash.unwrap_or("").as_bytes());
        let kind = match &recipe.kind {
            // The binary's bytes are added separately; which package it came from is not an input.
            RecipeKind::Service(binary) => format!("service bin={}", binary.bin),
            other => format!("{other:?}"),
        };
        hasher.field("kind", kind.as_bytes());
        hasher
    }

    /// Every file under `dir`, by relative path, content and executable bit.
    pub fn folder(&mut self, dir: &Path) -> std::io::Result<()> {
        let mut entries: Vec<_> = WalkDir::new(dir)
            .follow_links(true)
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(std::io::Error::other)?;
        entries.sort_by(|a, b| a.path().cmp(b.path()));
        for entry in entries.into_iter().filter(|e| e.file_type().is_file()) {
            let relative = entry.path().strip_prefix(dir).unwrap_or(entry.path());
            let executable = entry
                .metadata()
                .map(|m| m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false);
            self.field("file", relative.to_string_lossy().as_bytes());
            self.field("exec", if executable { b"1" } else { b"0" });
            self.file("content", entry.path())?;
        }
        Ok(())
    }

    /// A file's content, streamed (binaries can be tens of megabytes).
    pub fn file(&mut self, name: &str, path: &Path) -> std::io::Result<()> {
        let mut file = std::fs::File::open(path)?;
        let mut content = Sha256::new();
        std::io::copy(&mut file, &mut content)?;
        self.field(name, &content.finalize());
        Ok(())
    }

    pub fn field(&mut self, name: &str, value: &[u8]) {
        // Length-prefixed so that ("ab","c") and ("a","bc") differ.
        self.0.update((name.len() as u64).to_le_bytes());
        self.0.update(name.as_bytes());
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value);
    }

    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::RecipeKind;

    fn recipe(dir: &Path) -> Recipe {
        Recipe {
            name: "redis".into(),
            tag: "finctl/redis:offline".into(),
            description: String::new(),
            parent: Some("base".into()),
            offline_only: true,
            dir: dir.to_path_buf(),
            kind: RecipeKind::Dockerfile {
                apt: vec!["redis-server".into()],
                pip: None,
                cargo: None,
            },
        }
    }

    fn hash(recipe: &Recipe, parent: &str) -> String {
        let mut hasher = InputHasher::for_recipe(recipe, Some(parent));
        hasher.folder(&recipe.dir).unwrap();
        hasher.finish()
    }

    #[test]
    fn changes_with_files_packages_and_parent_only() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("Dockerfile"), "FROM x\n").unwrap();
        let base = recipe(tmp.path());
        let first = hash(&base, "p1");
        assert_eq!(first, hash(&base, "p1"), "same inputs, same hash");
        assert_ne!(first, hash(&base, "p2"), "parent changed");
        std::fs::write(tmp.path().join("Dockerfile"), "FROM y\n").unwrap();
        let edited = hash(&base, "p1");
        assert_ne!(first, edited, "Dockerfile changed");
        let mut more = recipe(tmp.path());
        more.kind = RecipeKind::Dockerfile {
            apt: vec!["redis-server".into(), "redis-tools".into()],
            pip: None,
            cargo: None,
        };
        assert_ne!(edited, hash(&more, "p1"), "package list changed");
        std::fs::set_permissions(
            tmp.path().join("Dockerfile"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_ne!(edited, hash(&base, "p1"), "executable bit changed");
    }
}
