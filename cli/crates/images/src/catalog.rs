//! Every recipe the project has, and which of them a command selects.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use crate::recipe::{self, Loaded, Recipe, ServiceBinary, ServiceTemplate};
use finctl_error::UserError;

#[derive(Debug, Clone)]
pub struct Catalog {
    /// By name; iteration order is the name order.
    recipes: BTreeMap<String, Recipe>,
}

/// Which images a command works on.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Include the offline stand-ins for third-party images.
    pub offline: bool,
    /// Only these (and their ancestors); empty means all that `offline` allows.
    pub names: Vec<String>,
}

impl Catalog {
    /// Reads `recipes_dir/*/image.toml` (the project's `compose/images/`) and the service
    /// crates under `services_dir` (`platform-services/`).
    pub fn load(recipes_dir: &Path, services_dir: &Path) -> Result<Self, UserError> {
        let mut recipes = BTreeMap::new();
        let mut templates = Vec::new();
        let entries = std::fs::read_dir(recipes_dir).map_err(|err| {
            UserError::config(
                format!("cannot read {}: {err}", recipes_dir.display()),
                "is --project-dir right?",
            )
        })?;
        let mut dirs: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("image.toml").is_file())
            .collect();
        dirs.sort();
        for dir in dirs {
            match recipe::load(&dir)? {
                Loaded::Recipe(recipe) => {
                    recipes.insert(recipe.name.clone(), recipe);
                }
                Loaded::ServiceTemplate(template) => templates.push(template),
            }
        }
        for template in &templates {
            add_services(template, services_dir, &mut recipes)?;
        }
        let catalog = Self { recipes };
        catalog.check_parents()?;
        Ok(catalog)
    }

    pub fn get(&self, name: &str) -> Option<&Recipe> {
        self.recipes.get(name)
    }

    pub fn recipes(&self) -> impl Iterator<Item = &Recipe> {
        self.recipes.values()
    }

    /// The selected recipes, parents before children. Unknown names fail with the closest match.
    pub fn select(&self, selection: &Selection) -> Result<Vec<&Recipe>, UserError> {
        let mut wanted = BTreeSet::new();
        if selection.names.is_empty() {
            for recipe in self.recipes.values() {
                if selection.offline || !recipe.offline_only {
                    wanted.insert(recipe.name.as_str());
                }
            }
        } else {
            for name in &selection.names {
                let recipe = self.recipes.get(name).ok_or_else(|| self.unknown(name))?;
                wanted.insert(recipe.name.as_str());
            }
        }
        // Parents are part of the job: an image cannot be built FROM one that is missing.
        let mut closure = BTreeSet::new();
        for name in wanted {
            let mut current = Some(name);
            while let Some(name) = current {
                if !closure.insert(name) {
                    break;
                }
                current = self.recipes[name].parent.as_deref();
            }
        }
        let mut ordered = Vec::new();
        let mut placed = BTreeSet::new();
        while ordered.len() < closure.len() {
            for name in &closure {
                let recipe = &self.recipes[*name];
                let ready = recipe
                    .parent
                    .as_deref()
                    .is_none_or(|parent| placed.contains(parent));
                if ready && !placed.contains(name) {
                    placed.insert(*name);
                    ordered.push(recipe);
                }
            }
        }
        Ok(ordered)
    }

    fn unknown(&self, name: &str) -> UserError {
        let closest = self
            .recipes
            .keys()
            .map(|known| (strsim::jaro_winkler(name, known), known))
            .filter(|(score, _)| *score > 0.7)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, known)| known.clone());
        let known: Vec<_> = self.recipes.keys().map(String::as_str).collect();
        match closest {
            Some(closest) => UserError::config(
                format!("no image recipe named {name:?}"),
                format!("did you mean `{closest}`?"),
            ),
            None => UserError::config(
                format!("no image recipe named {name:?}"),
                format!("known images: {}", known.join(", ")),
            ),
        }
    }

    /// Every parent exists and no recipe is its own ancestor.
    fn check_parents(&self) -> Result<(), UserError> {
        for recipe in self.recipes.values() {
            let mut seen = BTreeSet::new();
            let mut current = recipe;
            while let Some(parent) = &current.parent {
                if !seen.insert(current.name.as_str()) {
                    return Err(UserError::config(
                        format!("image recipes form a cycle through {:?}", recipe.name),
                        "make `from` point down to the base image",
                    ));
                }
                current = self.recipes.get(parent).ok_or_else(|| {
                    UserError::config(
                        format!(
                            "{}: `from = {parent:?}` names no recipe",
                            recipe.dir.join("image.toml").display()
                        ),
                        format!(
                            "known images: {}",
                            self.recipes.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    )
                })?;
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct CargoManifest {
    package: Option<CargoPackage>,
}

#[derive(Deserialize)]
struct CargoPackage {
    name: String,
    metadata: Option<CargoMetadata>,
}

#[derive(Deserialize)]
struct CargoMetadata {
    finctl: Option<FinctlMetadata>,
}

#[derive(Deserialize)]
struct FinctlMetadata {
    image: Option<String>,
    /// The binary to ship; defaults to the package name.
    bin: Option<String>,
}

/// One recipe per crate under `platform-services/` whose manifest has
/// `[package.metadata.finctl] image = "NAME"`.
fn add_services(
    template: &ServiceTemplate,
    services_dir: &Path,
    recipes: &mut BTreeMap<String, Recipe>,
) -> Result<(), UserError> {
    let Ok(entries) = std::fs::read_dir(services_dir) else {
        return Ok(());
    };
    let mut manifests: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path().join("Cargo.toml"))
        .filter(|p| p.is_file())
        .collect();
    manifests.sort();
    for manifest_path in manifests {
        let text = std::fs::read_to_string(&manifest_path).map_err(|err| {
            UserError::config(
                format!("cannot read {}: {err}", manifest_path.display()),
                "check the file's permissions",
            )
        })?;
        let manifest: CargoManifest = toml::from_str(&text).map_err(|err| {
            UserError::config(
                format!("{}: {}", manifest_path.display(), err.message()),
                "fix the manifest (cargo would reject it too)",
            )
        })?;
        let Some(package) = manifest.package else {
            continue;
        };
        let Some(finctl) = package.metadata.and_then(|m| m.finctl) else {
            continue;
        };
        let Some(image) = finctl.image else { continue };
        if let Some(existing) = recipes.get(&image) {
            return Err(UserError::config(
                format!(
                    "{}: image {image:?} is already defined by {}",
                    manifest_path.display(),
                    existing.dir.display()
                ),
                "give the service's image another name",
            ));
        }
        let bin = finctl.bin.unwrap_or_else(|| package.name.clone());
        let recipe = template.instantiate(
            &image,
            ServiceBinary {
                package: package.name,
                bin,
            },
        );
        recipes.insert(image, recipe);
    }
    Ok(())
}
