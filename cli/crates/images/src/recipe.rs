//! One image recipe, read from `image.toml` (or derived from a service crate).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use finctl_error::UserError;

/// What a recipe file may say. Unknown keys are an error, so a typo never goes unnoticed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipeFile {
    /// The image tag, e.g. `finctl/postgres:offline`; `{name}` is replaced in templates.
    tag: String,
    #[serde(default)]
    description: String,
    /// The parent recipe's name; the Dockerfile receives its tag as build arg `BASE_IMAGE`.
    from: Option<String>,
    /// `offline`: a stand-in for a third-party image, built only with `--offline` or by name.
    profile: Option<String>,
    /// Debian packages (with their dependencies) fetched on the host into `debs/`.
    #[serde(default)]
    apt: Vec<String>,
    pip: Option<PipSpec>,
    cargo: Option<CargoSpec>,
    debootstrap: Option<DebootstrapSpec>,
    /// `platform-services`: instantiate once per service crate that names an image.
    template: Option<String>,
}

/// Python requirements installed on the host with `pip install --target` into `site-packages/`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PipSpec {
    pub requirements: Vec<String>,
}

/// A crate installed on the host with `cargo install`; its binaries land in `bin/`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CargoSpec {
    #[serde(rename = "crate")]
    pub crate_name: String,
    pub version: String,
    #[serde(default)]
    pub features: Vec<String>,
    pub bins: Vec<String>,
}

/// A root filesystem made by `debootstrap` and imported as an image.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DebootstrapSpec {
    pub suite: String,
    #[serde(default = "default_variant")]
    pub variant: String,
    #[serde(default)]
    pub include: Vec<String>,
}

fn default_variant() -> String {
    "minbase".into()
}

/// A Rust binary from this workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceBinary {
    pub package: String,
    pub bin: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipeKind {
    /// The base image: debootstrap output.
    Debootstrap(DebootstrapSpec),
    /// A Dockerfile over a parent, with host-fetched inputs.
    Dockerfile {
        apt: Vec<String>,
        pip: Option<PipSpec>,
        cargo: Option<CargoSpec>,
    },
    /// A platform service: the template Dockerfile with one release binary.
    Service(ServiceBinary),
}

#[derive(Debug, Clone)]
pub struct Recipe {
    pub name: String,
    pub tag: String,
    pub description: String,
    pub parent: Option<String>,
    pub offline_only: bool,
    /// The folder whose files go into the build context (and the input hash).
    pub dir: PathBuf,
    pub kind: RecipeKind,
}

/// A recipe file read from disk: either one recipe, or a template for service crates.
pub(crate) enum Loaded {
    Recipe(Recipe),
    ServiceTemplate(ServiceTemplate),
}

pub(crate) struct ServiceTemplate {
    tag: String,
    parent: Option<String>,
    dir: PathBuf,
}

impl ServiceTemplate {
    pub(crate) fn instantiate(&self, image: &str, binary: ServiceBinary) -> Recipe {
        Recipe {
            name: image.to_string(),
            tag: self.tag.replace("{name}", image),
            description: format!("platform service `{}`", binary.package),
            parent: self.parent.clone(),
            offline_only: false,
            dir: self.dir.clone(),
            kind: RecipeKind::Service(binary),
        }
    }
}

/// Reads `dir/image.toml`; errors name the file, the line and the offending value.
pub(crate) fn load(dir: &Path) -> Result<Loaded, UserError> {
    let path = dir.join("image.toml");
    let text = std::fs::read_to_string(&path).map_err(|err| {
        UserError::config(
            format!("cannot read {}: {err}", path.display()),
            "every folder under compose/images needs an image.toml",
        )
    })?;
    let file: RecipeFile = toml::from_str(&text).map_err(|err| toml_error(&path, &text, &err))?;
    let name = dir
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| {
            UserError::config(
                format!("{}: folder name is not UTF-8", dir.display()),
                "rename the folder",
            )
        })?
        .to_string();
    let invalid = |what: String| {
        UserError::config(
            format!("{}: {what}", path.display()),
            "fix the recipe; see compose/images/README.md for its keys",
        )
    };
    let offline_only = match file.profile.as_deref() {
        None => false,
        Some("offline") => true,
        Some(other) => {
            return Err(invalid(format!(
                "unknown profile {other:?} (known: \"offline\")"
            )));
        }
    };
    if file.tag.trim().is_empty() || file.tag.contains(char::is_whitespace) {
        return Err(invalid(format!(
            "tag {:?} is not a valid image tag",
            file.tag
        )));
    }
    if let Some(template) = file.template {
        if template != "platform-services" {
            return Err(invalid(format!(
                "unknown template {template:?} (known: \"platform-services\")"
            )));
        }
        if !file.tag.contains("{name}") {
            return Err(invalid(format!(
                "template tag {:?} must contain {{name}}",
                file.tag
            )));
        }
        require_dockerfile(dir)?;
        return Ok(Loaded::ServiceTemplate(ServiceTemplate {
            tag: file.tag,
            parent: file.from,
            dir: dir.to_path_buf(),
        }));
    }
    let kind = match file.debootstrap {
        Some(spec) => {
            if file.from.is_some()
                || !file.apt.is_empty()
                || file.pip.is_some()
                || file.cargo.is_some()
            {
                return Err(invalid(
                    "a debootstrap recipe takes no `from`, `apt`, `pip` or `cargo`".into(),
                ));
            }
            RecipeKind::Debootstrap(spec)
        }
        None => {
            if file.from.is_none() {
                return Err(invalid(
                    "missing `from` (the parent recipe, e.g. \"base\")".into(),
                ));
            }
            if let Some(bad) = file.apt.iter().find(|pkg| !is_debian_package_name(pkg)) {
                return Err(invalid(format!(
                    "apt package {bad:?} is not a Debian package name"
                )));
            }
            if let Some(cargo) = &file.cargo {
                if cargo.bins.is_empty() {
                    return Err(invalid(format!(
                        "[cargo] {} lists no `bins` to copy",
                        cargo.crate_name
                    )));
                }
            }
            require_dockerfile(dir)?;
            RecipeKind::Dockerfile {
                apt: file.apt,
                pip: file.pip,
                cargo: file.cargo,
            }
        }
    };
    Ok(Loaded::Recipe(Recipe {
        name,
        tag: file.tag,
        description: file.description,
        parent: file.from,
        offline_only,
        dir: dir.to_path_buf(),
        kind,
    }))
}

fn require_dockerfile(dir: &Path) -> Result<(), UserError> {
    let dockerfile = dir.join("Dockerfile");
    if dockerfile.is_file() {
        Ok(())
    } else {
        Err(UserError::config(
            format!("{} is missing", dockerfile.display()),
            "a recipe other than a debootstrap one needs a Dockerfile beside its image.toml",
        ))
    }
}

/// Debian policy: lowercase letters, digits, `+`, `-`, `.`; at least two characters.
fn is_debian_package_name(name: &str) -> bool {
    name.len() >= 2
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

fn toml_error(path: &Path, text: &str, err: &toml::de::Error) -> UserError {
    let location = err.span().map(|span| {
        let line = text[..span.start].matches('\n').count() + 1;
        let value = text[span.clone()].trim();
        format!(":{line}: {} (at `{value}`)", err.message())
    });
    UserError::config(
        format!(
            "{}{}",
            path.display(),
            location.unwrap_or_else(|| format!(": {}", err.message()))
        ),
        "fix the recipe; see compose/images/README.md for its keys",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, toml: &str, dockerfile: bool) {
        std::fs::write(dir.join("image.toml"), toml).unwrap();
        if dockerfile {
            std::fs::write(
                dir.join("Dockerfile"),
                "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
            )
            .unwrap();
        }
    }

    fn recipe_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        (tmp, dir)
    }

    #[test]
    fn reads_a_dockerfile_recipe() {
        let (_tmp, dir) = recipe_dir("redis");
        write(
            &dir,
            "tag = \"finctl/redis:offline\"\nfrom = \"base\"\nprofile = \"offline\"\napt = [\"redis-server\"]\n",
            true,
        );
        let Loaded::Recipe(recipe) = load(&dir).unwrap() else {
            panic!("expected a recipe")
        };
        assert_eq!(recipe.name, "redis");
        assert_eq!(recipe.parent.as_deref(), Some("base"));
        assert!(recipe.offline_only);
        assert_eq!(
            recipe.kind,
            RecipeKind::Dockerfile {
                apt: vec!["redis-server".into()],
                pip: None,
                cargo: None
            }
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_value() {
        let (_tmp, dir) = recipe_dir("redis");
        write(
            &dir,
            "tag = \"finctl/redis:offline\"\nfrom = \"base\"\napt_packages = [\"redis-server\"]\n",
            true,
        );
        let Err(err) = load(&dir) else {
            panic!("expected an error")
        };
        assert!(err.message.contains("image.toml:3:"), "{}", err.message);
        assert!(err.message.contains("apt_packages"), "{}", err.message);
        assert_eq!(err.status, finctl_error::ExitStatus::Usage);
    }

    #[test]
    fn rejects_a_bad_package_name_and_profile() {
        let (_tmp, dir) = recipe_dir("x");
        write(
            &dir,
            "tag = \"t:1\"\nfrom = \"base\"\napt = [\"Redis Server\"]\n",
            true,
        );
        let Err(err) = load(&dir) else { panic!() };
        assert!(err.message.contains("\"Redis Server\""), "{}", err.message);
        write(
            &dir,
            "tag = \"t:1\"\nfrom = \"base\"\nprofile = \"offlne\"\n",
            true,
        );
        let Err(err) = load(&dir) else { panic!() };
        assert!(err.message.contains("\"offlne\""), "{}", err.message);
    }

    #[test]
    fn missing_dockerfile_is_reported() {
        let (_tmp, dir) = recipe_dir("x");
        write(&dir, "tag = \"t:1\"\nfrom = \"base\"\n", false);
        let Err(err) = load(&dir) else { panic!() };
        assert!(
            err.message.ends_with("Dockerfile is missing"),
            "{}",
            err.message
        );
    }

    #[test]
    fn debootstrap_recipe_takes_no_parent() {
        let (_tmp, dir) = recipe_dir("base");
        write(
            &dir,
            "tag = \"b:1\"\nfrom = \"x\"\n[debootstrap]\nsuite = \"bookworm\"\n",
            false,
        );
        assert!(load(&dir).is_err());
        write(
            &dir,
            "tag = \"b:1\"\n[debootstrap]\nsuite = \"bookworm\"\ninclude = [\"ca-certificates\"]\n",
            false,
        );
        let Loaded::Recipe(recipe) = load(&dir).unwrap() else {
            panic!()
        };
        let RecipeKind::Debootstrap(spec) = recipe.kind else {
            panic!()
        };
        assert_eq!(spec.variant, "minbase");
    }
}
