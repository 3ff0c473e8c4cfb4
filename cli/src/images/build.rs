//! Building images: decide what is stale, fetch its inputs on the host, assemble a build
//! context, and let the engine build it. The engine tags an image only when its build
//! succeeds, so a failed or interrupted build never leaves a half-built image under the tag.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::query_parameters::{BuildImageOptionsBuilder, RemoveImageOptionsBuilder};
use futures_util::StreamExt;
use serde::Serialize;

use super::catalog::{Catalog, Selection};
use super::fetch::{self, HostCache, Rootfs};
use super::inputs::InputHasher;
use super::progress::{ImageProgress, Progress};
use super::recipe::{Recipe, RecipeKind, ServiceBinary};
use super::{LABEL_INPUT_HASH, LABEL_MANAGED, LABEL_RECIPE};
use crate::docker::Engine;
use crate::error::UserError;
use crate::printer::Printer;
use crate::project::Project;

/// What `images list` reports for one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageStatus {
    pub name: String,
    pub tag: String,
    pub state: ImageState,
    pub offline_only: bool,
    /// The input hash the image carries, if it exists.
    pub built_hash: Option<String>,
    pub size_bytes: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageState {
    UpToDate,
    Stale,
    Missing,
    /// Exists, but freshness is only known after building its inputs (service binaries).
    Present,
}

/// What happened to one image in a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum BuildOutcome {
    Built,
    UpToDate,
    Failed {
        error: String,
        /// What to do about it.
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
    },
    /// Not attempted because an image it is built FROM failed.
    Skipped {
        because: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub images: Vec<BuiltImage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuiltImage {
    pub name: String,
    pub tag: String,
    #[serde(flatten)]
    pub outcome: BuildOutcome,
    pub seconds: f64,
    pub input_hash: Option<String>,
}

impl BuildReport {
    pub fn failed(&self) -> bool {
        self.images.iter().any(|image| {
            matches!(
                image.outcome,
                BuildOutcome::Failed { .. } | BuildOutcome::Skipped { .. }
            )
        })
    }
}

/// How to build.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOptions {
    /// Rebuild the named images (all selected ones when none are named) even when up to date.
    pub force: bool,
    /// Ignore the engine's layer cache (a truly cold build; host-side fetches stay cached).
    pub no_cache: bool,
}

pub struct Builder {
    engine: Engine,
    project: Project,
    catalog: Catalog,
    cache: HostCache,
}

impl Builder {
    pub fn new(engine: Engine, project: Project, catalog: Catalog, cache_root: PathBuf) -> Self {
        Self {
            engine,
            project,
            catalog,
            cache: HostCache::new(cache_root),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Builds what `selection` names (and its parents) unless up to date; `force` rebuilds
    /// the named images (all selected ones when none are named).
    pub async fn build(
        &self,
        selection: &Selection,
        options: BuildOptions,
        printer: &Printer,
    ) -> Result<BuildReport, UserError> {
        let recipes = self.catalog.select(selection)?;
        let names: Vec<&str> = recipes.iter().map(|r| r.name.as_str()).collect();
        let progress = Progress::new(printer, &names);
        let forced = |name: &str| {
            options.force
                && (selection.names.is_empty() || selection.names.iter().any(|n| n == name))
        };

        // Service binaries first, all in one cargo invocation: cargo shares the work between them.
        let services: Vec<ServiceBinary> = recipes
            .iter()
            .filter_map(|r| match &r.kind {
                RecipeKind::Service(binary) => Some(binary.clone()),
                _ => None,
            })
            .collect();
        let mut binaries: HashMap<String, PathBuf> = HashMap::new();
        let mut binaries_error = None;
        if !services.is_empty() {
            let cargo = progress.image("cargo");
            cargo.step(&format!(
                "cargo build --release ({} services)",
                services.len()
            ));
            let log = self.cache.logs().join("cargo-build-services.log");
            match fetch::build_services(self.project.root(), &services, &log, &|line| {
                cargo.line(line)
            })
            .await
            {
                Ok(paths) => {
                    cargo.finish(
                        true,
                        &format!("service binaries ready in {}", seconds(cargo.elapsed())),
                    );
                    for (service, path) in services.iter().zip(paths) {
                        binaries.insert(service.bin.clone(), path);
                    }
                }
                Err(err) => {
                    cargo.finish(false, "cargo build failed");
                    binaries_error = Some(err.message.clone());
                }
            }
        }

        let mut hashes: BTreeMap<String, String> = BTreeMap::new();
        let mut report = Vec::new();
        let mut rootfs: Option<Rootfs> = None;
        for recipe in recipes {
            let bar = progress.image(&recipe.name);
            let parent_failed = recipe
                .parent
                .as_ref()
                .filter(|parent| !hashes.contains_key(*parent));
            let outcome = if let Some(parent) = parent_failed {
                BuildOutcome::Skipped {
                    because: format!("`{parent}` did not build"),
                }
            } else if let (RecipeKind::Service(_), Some(error)) = (&recipe.kind, &binaries_error) {
                BuildOutcome::Skipped {
                    because: format!("service binaries did not build: {}", first_line(error)),
                }
            } else {
                let parent_hash = recipe
                    .parent
                    .as_ref()
                    .and_then(|parent| hashes.get(parent))
                    .map(String::as_str);
                match self
                    .build_one(
                        recipe,
                        parent_hash,
                        BuildOptions {
                            force: forced(&recipe.name),
                            no_cache: options.no_cache,
                        },
                        &binaries,
                        &mut rootfs,
                        &bar,
                    )
                    .await
                {
                    Ok((outcome, hash)) => {
                        hashes.insert(recipe.name.clone(), hash.clone());
                        report.push(BuiltImage {
                            name: recipe.name.clone(),
                            tag: recipe.tag.clone(),
                            outcome: outcome.clone(),
                            seconds: bar.elapsed().as_secs_f64(),
                            input_hash: Some(hash),
                        });
                        let message = match outcome {
                            BuildOutcome::UpToDate => "up to date".to_string(),
                            _ => format!("built {} in {}", recipe.tag, seconds(bar.elapsed())),
                        };
                        bar.finish(true, &message);
                        continue;
                    }
                    Err(err) => BuildOutcome::Failed {
                        error: err.message,
                        hint: err.hint,
                    },
                }
            };
            let message = match &outcome {
                BuildOutcome::Failed { error, .. } => format!("failed: {}", first_line(error)),
                BuildOutcome::Skipped { because } => format!("skipped: {because}"),
                _ => unreachable!("successes continue above"),
            };
            bar.finish(false, &message);
            report.push(BuiltImage {
                name: recipe.name.clone(),
                tag: recipe.tag.clone(),
                outcome,
                seconds: bar.elapsed().as_secs_f64(),
                input_hash: None,
            });
        }
        Ok(BuildReport { images: report })
    }

    /// Every selected image's state, without building anything.
    pub async fn status(&self, selection: &Selection) -> Result<Vec<ImageStatus>, UserError> {
        let recipes = self.catalog.select(selection)?;
        let mut hashes: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut statuses = Vec::new();
        for recipe in recipes {
            let parent_hash = match &recipe.parent {
                Some(parent) => hashes.get(parent).cloned().flatten(),
                None => None,
            };
            let expected = match (&recipe.kind, recipe.parent.is_some(), &parent_hash) {
                (RecipeKind::Service(_), _, _) | (_, true, None) => None,
                _ => Some(self.static_hash(recipe, parent_hash.as_deref())?),
            };
            let existing = self.inspect(&recipe.tag).await?;
            let built_hash = existing
                .as_ref()
                .and_then(|(_, labels, _)| labels.get(LABEL_INPUT_HASH).cloned());
            let state = match (&existing, &expected) {
                (None, _) => ImageState::Missing,
                (Some(_), None) => ImageState::Present,
                (Some(_), Some(expected)) if built_hash.as_ref() == Some(expected) => {
                    ImageState::UpToDate
                }
                (Some(_), Some(_)) => ImageState::Stale,
            };
            hashes.insert(
                recipe.name.clone(),
                if state == ImageState::UpToDate {
                    expected
                } else {
                    None
                },
            );
            statuses.push(ImageStatus {
                name: recipe.name.clone(),
                tag: recipe.tag.clone(),
                state,
                offline_only: recipe.offline_only,
                built_hash,
                size_bytes: existing.and_then(|(_, _, size)| size),
            });
        }
        Ok(statuses)
    }

    /// The input hash of a recipe whose inputs are all declared (everything but service binaries).
    fn static_hash(&self, recipe: &Recipe, parent_hash: Option<&str>) -> Result<String, UserError> {
        let mut hasher = InputHasher::for_recipe(recipe, parent_hash);
        if !matches!(recipe.kind, RecipeKind::Debootstrap(_)) {
            hasher.folder(&recipe.dir).map_err(|err| {
                UserError::failure(
                    format!("cannot read recipe folder {}: {err}", recipe.dir.display()),
                    "check its permissions",
                )
            })?;
        }
        Ok(hasher.finish())
    }

    async fn build_one(
        &self,
        recipe: &Recipe,
        parent_hash: Option<&str>,
        options: BuildOptions,
        binaries: &HashMap<String, PathBuf>,
        rootfs: &mut Option<Rootfs>,
        bar: &ImageProgress,
    ) -> Result<(BuildOutcome, String), UserError> {
        let hash = match &recipe.kind {
            RecipeKind::Service(binary) => {
                let path = binaries
                    .get(&binary.bin)
                    .ok_or_else(|| UserError::failure("service binary missing", "build again"))?;
                let mut hasher = InputHasher::for_recipe(recipe, parent_hash);
                let read = |err: std::io::Error| {
                    UserError::failure(
                        format!("cannot read {}: {err}", path.display()),
                        "build again",
                    )
                };
                hasher.folder(&recipe.dir).map_err(read)?;
                hasher.file("binary", path).map_err(read)?;
                hasher.finish()
            }
            _ => self.static_hash(recipe, parent_hash)?,
        };
        let existing = self.inspect(&recipe.tag).await?;
        let up_to_date = existing
            .as_ref()
            .is_some_and(|(_, labels, _)| labels.get(LABEL_INPUT_HASH) == Some(&hash));
        if up_to_date && !options.force {
            return Ok((BuildOutcome::UpToDate, hash));
        }

        let mut context = Context::new();
        let mut build_args = HashMap::new();
        if let Some(parent) = &recipe.parent {
            let parent_tag = self
                .catalog
                .get(parent)
                .map(|p| p.tag.clone())
                .unwrap_or_default();
            build_args.insert("BASE_IMAGE".to_string(), parent_tag);
        }
        match &recipe.kind {
            RecipeKind::Debootstrap(spec) => {
                bar.step(&format!("debootstrap {} ({})", spec.suite, spec.variant));
                let made = self
                    .cache
                    .rootfs(spec, &hash, &|line| bar.line(line))
                    .await?;
                bar.step("packing the root filesystem");
                context.file("rootfs.tar", &made.tarball)?;
                context.bytes(
                    "Dockerfile",
                    b"FROM scratch\nADD rootfs.tar /\nCMD [\"bash\"]\n",
                    0o644,
                )?;
                *rootfs = Some(made);
            }
            RecipeKind::Dockerfile { apt, pip, cargo } => {
                context.folder("", &recipe.dir)?;
                if !apt.is_empty() {
                    bar.step(&format!("fetching Debian packages: {}", apt.join(" ")));
                    let base = self.base_rootfs(rootfs, bar).await?;
                    let debs = self
                        .cache
                        .debs(&base, &recipe.name, apt, &hash, &|line| bar.line(line))
                        .await?;
                    context.debs("debs", &debs)?;
                }
                if let Some(pip) = pip {
                    bar.step(&format!("pip install {}", pip.requirements.join(" ")));
                    let site = self
                        .cache
                        .site_packages(pip, "3.11", &hash, &|line| bar.line(line))
                        .await?;
                    context.folder("site-packages", &site)?;
                }
                if let Some(cargo) = cargo {
                    bar.step(&format!(
                        "cargo install {}@{} (the first time takes minutes)",
                        cargo.crate_name, cargo.version
                    ));
                    let bin_dir = self
                        .cache
                        .cargo_install(cargo, &|line| bar.line(line))
                        .await?;
                    for bin in &cargo.bins {
                        context.file_mode(&format!("bin/{bin}"), &bin_dir.join(bin), 0o755)?;
                    }
                }
            }
            RecipeKind::Service(binary) => {
                context.folder("", &recipe.dir)?;
                context.file_mode(
                    &format!("bin/{}", binary.bin),
                    &binaries[&binary.bin],
                    0o755,
                )?;
                build_args.insert("BIN".to_string(), binary.bin.clone());
            }
        }
        bar.step("docker build");
        let labels = HashMap::from([
            (LABEL_INPUT_HASH.to_string(), hash.clone()),
            (LABEL_RECIPE.to_string(), recipe.name.clone()),
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (
                "org.opencontainers.image.title".to_string(),
                recipe.name.clone(),
            ),
            (
                "org.opencontainers.image.description".to_string(),
                recipe.description.clone(),
            ),
        ]);
        self.docker_build(
            &recipe.tag,
            context.finish()?,
            labels,
            build_args,
            options.no_cache,
            bar,
        )
        .await?;
        // The previous image under this tag is now dangling: remove it unless a container uses it.
        if let Some((old_id, _, _)) = existing {
            if let Some((new_id, _, _)) = self.inspect(&recipe.tag).await? {
                if new_id != old_id {
                    let options = RemoveImageOptionsBuilder::default().build();
                    let _ = self
                        .engine
                        .api()
                        .remove_image(&old_id, Some(options), None)
                        .await;
                }
            }
        }
        Ok((BuildOutcome::Built, hash))
    }

    /// The base root filesystem (for apt): from this run, or the cached one of the base recipe.
    async fn base_rootfs(
        &self,
        made: &mut Option<Rootfs>,
        bar: &ImageProgress,
    ) -> Result<Rootfs, UserError> {
        if let Some(rootfs) = made {
            return Ok(rootfs.clone());
        }
        let base = self
            .catalog
            .recipes()
            .find(|r| matches!(r.kind, RecipeKind::Debootstrap(_)));
        let Some(
            base @ Recipe {
                kind: RecipeKind::Debootstrap(spec),
                ..
            },
        ) = base
        else {
            return Err(UserError::config(
                "no debootstrap recipe to fetch Debian packages with",
                "add compose/images/base",
            ));
        };
        let hash = self.static_hash(base, None)?;
        bar.step("preparing the base root filesystem for apt");
        let rootfs = self
            .cache
            .rootfs(spec, &hash, &|line| bar.line(line))
            .await?;
        *made = Some(rootfs.clone());
        Ok(rootfs)
    }

    async fn docker_build(
        &self,
        tag: &str,
        context: Vec<u8>,
        labels: HashMap<String, String>,
        build_args: HashMap<String, String>,
        no_cache: bool,
        bar: &ImageProgress,
    ) -> Result<(), UserError> {
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .nocache(no_cache)
            .t(tag)
            .rm(true)
            .forcerm(true)
            .labels(&labels)
            .buildargs(&build_args)
            .build();
        let mut stream =
            self.engine
                .api()
                .build_image(options, None, Some(bollard::body_full(context.into())));
        let mut tail: Vec<String> = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream {
                        for line in text.lines().filter(|l| !l.trim().is_empty()) {
                            if line.starts_with("Step ") {
                                bar.step(&format!(
                                    "docker build: {}",
                                    line.chars().take(80).collect::<String>()
                                ));
                            }
                            bar.line(line);
                            tail.push(line.to_string());
                            if tail.len() > 15 {
                                tail.remove(0);
                            }
                        }
                    }
                    if let Some(detail) = info.error_detail {
                        return Err(build_failure(
                            tag,
                            detail.message.unwrap_or_default(),
                            &tail,
                        ));
                    }
                }
                Err(err) => return Err(build_failure(tag, err.to_string(), &tail)),
            }
        }
        Ok(())
    }

    /// (id, labels, size) of the image under `tag`, if any.
    async fn inspect(
        &self,
        tag: &str,
    ) -> Result<Option<(String, HashMap<String, String>, Option<i64>)>, UserError> {
        match self.engine.api().inspect_image(tag).await {
            Ok(image) => {
                let labels = image.config.and_then(|c| c.labels).unwrap_or_default();
                Ok(Some((image.id.unwrap_or_default(), labels, image.size)))
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(UserError::failure(
                format!("cannot inspect image {tag}: {err}"),
                "check that the Docker engine is healthy (`docker info`)",
            )),
        }
    }
}

fn build_failure(tag: &str, error: String, tail: &[String]) -> UserError {
    let mut message = format!("docker build of {tag} failed: {}", error.trim());
    for line in tail.iter().rev().take(8).rev() {
        message.push_str("\n    | ");
        message.push_str(line);
    }
    UserError::failure(
        message,
        "run again with -v to see every build step; the previous image (if any) is still tagged",
    )
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// A build context tarball, assembled in memory.
struct Context {
    tar: tar::Builder<Vec<u8>>,
}

impl Context {
    fn new() -> Self {
        let mut tar = tar::Builder::new(Vec::new());
        tar.follow_symlinks(false);
        tar.mode(tar::HeaderMode::Deterministic);
        Self { tar }
    }

    fn folder(&mut self, at: &str, dir: &Path) -> Result<(), UserError> {
        let result = if at.is_empty() {
            std::fs::read_dir(dir).and_then(|entries| {
                for entry in entries {
                    let entry = entry?;
                    let name = entry.file_name();
                    if entry.file_type()?.is_dir() {
                        self.tar.append_dir_all(&name, entry.path())?;
                    } else {
                        self.tar.append_path_with_name(entry.path(), &name)?;
                    }
                }
                Ok(())
            })
        } else {
            self.tar.append_dir_all(at, dir)
        };
        result.map_err(|err| context_error(dir, err))
    }

    /// Only the .deb files of a download folder.
    fn debs(&mut self, at: &str, dir: &Path) -> Result<(), UserError> {
        let entries = std::fs::read_dir(dir).map_err(|err| context_error(dir, err))?;
        let mut count = 0;
        for entry in entries.filter_map(Result::ok) {
            if entry.path().extension().is_some_and(|ext| ext == "deb") {
                self.tar
                    .append_path_with_name(
                        entry.path(),
                        format!("{at}/{}", entry.file_name().to_string_lossy()),
                    )
                    .map_err(|err| context_error(dir, err))?;
                count += 1;
            }
        }
        if count == 0 {
            // An empty folder still satisfies `COPY debs/`; nothing was missing from the base.
            self.bytes(&format!("{at}/.keep"), b"", 0o644)?;
        }
        Ok(())
    }

    fn file(&mut self, name: &str, path: &Path) -> Result<(), UserError> {
        self.tar
            .append_path_with_name(path, name)
            .map_err(|err| context_error(path, err))
    }

    fn file_mode(&mut self, name: &str, path: &Path, mode: u32) -> Result<(), UserError> {
        let mut file = std::fs::File::open(path).map_err(|err| context_error(path, err))?;
        let len = file
            .metadata()
            .map_err(|err| context_error(path, err))?
            .len();
        let mut header = tar::Header::new_gnu();
        header.set_size(len);
        header.set_mode(mode);
        header.set_cksum();
        self.tar
            .append_data(&mut header, name, &mut file)
            .map_err(|err| context_error(path, err))
    }

    fn bytes(&mut self, name: &str, data: &[u8], mode: u32) -> Result<(), UserError> {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        self.tar
            .append_data(&mut header, name, data)
            .map_err(|err| context_error(Path::new(name), err))
    }

    fn finish(self) -> Result<Vec<u8>, UserError> {
        self.tar
            .into_inner()
            .map_err(|err| context_error(Path::new("build context"), err))
    }
}

fn context_error(path: &Path, err: std::io::Error) -> UserError {
    UserError::failure(
        format!("cannot add {} to the build context: {err}", path.display()),
        "check free disk space and file permissions",
    )
}
