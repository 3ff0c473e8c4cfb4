//! Where the project lives: the folder that holds `compose/`.

use std::path::{Path, PathBuf};

use finctl_error::UserError;

/// The folder that holds `compose/docker-compose.yml`.
#[derive(Debug, Clone)]
pub struct Project {
    root: PathBuf,
}

impl Project {
    /// Uses `explicit` when given, else walks up from the current directory.
    pub fn locate(explicit: Option<&Path>) -> Result<Self, UserError> {
        if let Some(dir) = explicit {
            let root = dir.to_path_buf();
            if !root.join("compose").is_dir() {
                return Err(UserError::config(
                    format!(
                        "{} is not a finctl project: it has no compose/ folder",
                        root.display()
                    ),
                    "pass --project-dir with the folder that holds compose/docker-compose.yml",
                ));
            }
            return Ok(Self { root });
        }
        let cwd = std::env::current_dir().map_err(|err| {
            UserError::config(
                format!("cannot read the current directory: {err}"),
                "cd into the project",
            )
        })?;
        cwd.ancestors()
            .find(|dir| dir.join("compose").join("docker-compose.yml").is_file())
            .map(|dir| Self {
                root: dir.to_path_buf(),
            })
            .ok_or_else(|| {
                UserError::config(
                    format!(
                        "no compose/docker-compose.yml in {} or any parent",
                        cwd.display()
                    ),
                    "run finctl inside the project, or pass --project-dir DIR",
                )
            })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn compose_dir(&self) -> PathBuf {
        self.root.join("compose")
    }

    pub fn image_recipes_dir(&self) -> PathBuf {
        self.compose_dir().join("images")
    }

    pub fn services_dir(&self) -> PathBuf {
        self.root.join("platform-services")
    }
}
