//! Building images: decide what is stale, fetch its inputs on the host, assemble a build
//! context, and let the engine build it. The engine tags an image only when its build
//! succeeds, so a failed or interrupted build never leaves a half-built image under the tag.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use bollard::query_parameters::{BuildImageOptionsBuilder, RemoveImageOptionsBuilder};
use futures_util::StreamExt;

use finctl_engine::Engine;
use finctl_error::UserError;
use finctl_progress::{Line, Options, Progress, seconds};

use crate::catalog::{Catalog, Selection};
use crate::context::Context;
use crate::fetch::{self, HostCache, Rootfs};
use crate::inputs::InputHasher;
use crate::recipe::{CargoSpec, PipSpec, Recipe, RecipeKind, ServiceBinary};
use crate::report::{BuildOptions, BuildOutcome, BuildReport, BuiltImage, ImageState, ImageStatus};
use crate::{LABEL_INPUT_HASH, LABEL_MANAGED, LABEL_RECIPE};

pub struct Builder {
    engine: Engine,
    /// The cargo workspace whose service crates become images.
    workspace: PathBuf,
    catalog: Catalog,
    cache: HostCache,
}

impl Builder {
    pub fn new(engine: Engine, workspace: PathBuf, catalog: Catalog, cache_root: PathBuf) -> Self {
        Self {
            engine,
            workspace,
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
        output: Options,
    ) -> Result<BuildReport, UserError> {
        let recipes = self.catalog.select(selection)?;
        let names: Vec<&str> = recipes.iter().map(|r| r.name.as_str()).collect();
        let progress = Progress::new(output, &names);
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
            let cargo = progress.line("cargo");
            cargo.set(&format!(
                "cargo build --release ({} services)",
                services.len()
            ));
            let log = self.cache.logs().join("cargo-build-services.log");
            match fetch::build_services(&self.workspace, &services, &log, &|line| {
                cargo.output(line)
            })
            .await
            {
                Ok(paths) => {
                    cargo.finish(
                        Some(true),
                        &format!("service binaries ready in {}", seconds(cargo.elapsed())),
                    );
                    for (service, path) in services.iter().zip(paths) {
                        binaries.insert(service.bin.clone(), path);
                    }
                }
                Err(err) => {
                    cargo.finish(Some(false), "cargo build failed");
                    binaries_error = Some(err.message.clone());
                }
            }
        }

        let mut hashes: BTreeMap<String, String> = BTreeMap::new();
        let mut report = Vec::new();
        let mut rootfs: Option<Rootfs> = None;
        for recipe in recipes {
            let bar = progress.line(&recipe.name);
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
                        bar.finish(Some(true), &message);
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
            bar.finish(Some(false), &message);
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
        bar: &Line,
    ) -> Result<(BuildOutcome, String), UserError> {
        let hash = self.input_hash(recipe, parent_hash, binaries)?;
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
                bar.set(&format!("debootstrap {} ({})", spec.suite, spec.variant));
                let made = self
                    .cache
                    .rootfs(spec, &hash, &|line| bar.output(line))
                    .await?;
                bar.set("packing the root filesystem");
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
                self.fetch_inputs(
                    recipe,
                    &hash,
                    (apt, pip.as_ref(), cargo.as_ref()),
                    rootfs,
                    &mut context,
                    bar,
                )
                .await?;
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
        bar.set("docker build");
        self.docker_build(
            &recipe.tag,
            context.finish()?,
            image_labels(recipe, &hash),
            build_args,
            options.no_cache,
            bar,
        )
        .await?;
        if let Some((old_id, _, _)) = existing {
            self.remove_replaced(&recipe.tag, &old_id).await?;
        }
        Ok((BuildOutcome::Built, hash))
    }

    /// What the image is made of, hashed: declared inputs, plus the binary for a service.
    fn input_hash(
        &self,
        recipe: &Recipe,
        parent_hash: Option<&str>,
        binaries: &HashMap<String, PathBuf>,
    ) -> Result<String, UserError> {
        let RecipeKind::Service(binary) = &recipe.kind else {
            return self.static_hash(recipe, parent_hash);
        };
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
        Ok(hasher.finish())
    }

    /// A Dockerfile recipe's host-side inputs (.deb files, site-packages, cargo binaries),
    /// fetched into the cache and added to the context.
    async fn fetch_inputs(
        &self,
        recipe: &Recipe,
        hash: &str,
        (apt, pip, cargo): (&[String], Option<&PipSpec>, Option<&CargoSpec>),
        rootfs: &mut Option<Rootfs>,
        context: &mut Context,
        bar: &Line,
    ) -> Result<(), UserError> {
        if !apt.is_empty() {
            bar.set(&format!("fetching Debian packages: {}", apt.join(" ")));
            let base = self.base_rootfs(rootfs, bar).await?;
            let debs = self
                .cache
                .debs(&base, &recipe.name, apt, hash, &|line| bar.output(line))
                .await?;
            context.debs("debs", &debs)?;
        }
        if let Some(pip) = pip {
            bar.set(&format!("pip install {}", pip.requirements.join(" ")));
            let site = self
                .cache
                .site_packages(pip, "3.11", hash, &|line| bar.output(line))
                .await?;
            context.folder("site-packages", &site)?;
        }
        if let Some(cargo) = cargo {
            bar.set(&format!(
                "cargo install {}@{} (the first time takes minutes)",
                cargo.crate_name, cargo.version
            ));
            let bin_dir = self
                .cache
                .cargo_install(cargo, &|line| bar.output(line))
                .await?;
            for bin in &cargo.bins {
                context.file_mode(&format!("bin/{bin}"), &bin_dir.join(bin), 0o755)?;
            }
        }
        Ok(())
    }

    /// The previous image under `tag` is dangling once a new one is built: removed, unless a
    /// container still uses it (the engine refuses then, which is fine).
    async fn remove_replaced(&self, tag: &str, old_id: &str) -> Result<(), UserError> {
        if let Some((new_id, _, _)) = self.inspect(tag).await?
            && new_id != old_id
        {
            let options = RemoveImageOptionsBuilder::default().build();
            let _ = self
                .engine
                .api()
                .remove_image(old_id, Some(options), None)
                .await;
        }
        Ok(())
    }

    /// The base root filesystem (for apt): from this run, or the cached one of the base recipe.
    async fn base_rootfs(
        &self,
        made: &mut Option<Rootfs>,
        bar: &Line,
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
        bar.set("preparing the base root filesystem for apt");
        let rootfs = self
            .cache
            .rootfs(spec, &hash, &|line| bar.output(line))
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
        bar: &Line,
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
                                bar.set(&format!(
                                    "docker build: {}",
                                    line.chars().take(80).collect::<String>()
                                ));
                            }
                            bar.output(line);
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

/// finctl's labels on an image it built, plus the OCI title and description.
fn image_labels(recipe: &Recipe, hash: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_INPUT_HASH.to_string(), hash.to_owned()),
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
    ])
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
