//! Reading a stack the way Compose does: files in order, `.env` then the environment for
//! `${VAR}`, anchors and merge keys, override rules, profiles; then every check that must
//! pass before anything is touched.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::line_index::Segment;
use super::merge::{key_values, merge_documents, scalar_string};
use super::model::{Resource, Stack, closest};
use super::mount::MountSource;
use super::service_reader::{ServiceReader, check_keys};
use super::source::{Location, SourceFile, Sources, invalid};
use super::variables::Variables;
use crate::discovery::STDIN;
use crate::project::Project;
use finctl_env::{COMPOSE_PROFILES, COMPOSE_PROJECT_NAME};
use finctl_error::UserError;

const TOP_LEVEL_KEYS: &[&str] = &[
    "version", "name", "services", "networks", "volumes", "secrets", "configs",
];

/// What to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Compose files in order, later ones overriding earlier ones. The first file's folder is
    /// the working directory (relative paths, `.env`), as with `docker-compose -f`.
    pub files: Vec<PathBuf>,
    /// `--profile` values; when empty, `COMPOSE_PROFILES` decides.
    pub profiles: Vec<String>,
    /// `-p`: wins over every other source of the project name.
    pub project_name: Option<String>,
    /// Where relative paths and `.env` are read from; default: the first file's folder.
    pub working_dir: Option<PathBuf>,
    /// The process environment (wins over `.env`). [`LoadOptions::new`] takes the real one;
    /// tests pass their own.
    pub environment: BTreeMap<String, String>,
}

impl LoadOptions {
    pub fn new(files: Vec<PathBuf>) -> Self {
        Self {
            files,
            profiles: Vec::new(),
            project_name: None,
            working_dir: None,
            environment: std::env::vars().collect(),
        }
    }

    /// The project's stack: `compose/docker-compose.yml`, `compose/offline.yml` when
    /// `offline`, then `extra_files` (`-f`, relative to the current directory).
    pub fn for_project(project: &Project, offline: bool, extra_files: &[PathBuf]) -> Self {
        let compose = project.compose_dir();
        let mut files = vec![compose.join("docker-compose.yml")];
        if offline {
            files.push(compose.join("offline.yml"));
        }
        files.extend(extra_files.iter().cloned());
        Self::new(files)
    }

    pub fn with_profiles(mut self, profiles: Vec<String>) -> Self {
        self.profiles = profiles;
        self
    }

    pub fn with_project_name(mut self, name: Option<String>) -> Self {
        self.project_name = name;
        self
    }

    pub fn with_working_dir(mut self, dir: PathBuf) -> Self {
        self.working_dir = Some(dir);
        self
    }
}

/// Loads and checks the stack. Fails, naming file, line and value, on: YAML syntax, unknown
/// keys, bad interpolation or an unset `${VAR:?}`, unparsable ports/volumes/durations/sizes,
/// an unknown service in `depends_on`, a dependency cycle, an undeclared named volume or
/// network, an enabled service depending on one the profiles leave out, and two enabled
/// services publishing the same host port.
///
/// The project name is, in order: `options.project_name` (`-p`), `COMPOSE_PROJECT_NAME` from
/// the environment then from `.env`, the top-level `name:` (Compose v2; docker-compose 1.29
/// rejects that key), else the working directory's folder name, lower-cased with everything
/// but `a-z0-9_-` removed (1.29's rule). `docker-compose -f compose/docker-compose.yml` run
/// from the project root therefore reads `compose/.env`, whose `COMPOSE_PROJECT_NAME=finctl`
/// makes it agree with finctl (without it both would say `compose`).
pub fn load(options: &LoadOptions) -> Result<Stack, UserError> {
    let Some(first) = options.files.first() else {
        return Err(UserError::config(
            "no Compose file given",
            "pass -f FILE or run inside the project",
        ));
    };
    let files: Vec<PathBuf> = options.files.iter().map(|f| absolute(f)).collect();
    let working_dir = match &options.working_dir {
        Some(dir) => absolute(dir),
        None if first.as_os_str() == STDIN => absolute(Path::new(".")),
        None => absolute(first)
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    };
    let vars = Variables::layered(&working_dir, &options.environment)?;

    let mut sources = Sources::default();
    let mut unset = Vec::new();
    for path in &files {
        let mut file = SourceFile::read(path)?;
        check_structure(&file)?;
        file.interpolate(&vars, &mut unset)?;
        sources.files.push(file);
    }
    let mut document = Mapping::new();
    for file in &sources.files {
        merge_documents(&mut document, file.document.clone());
    }

    let project_name = project_name(options, &vars, &document, &working_dir, &sources)?;
    let active_profiles: Vec<String> = if options.profiles.is_empty() {
        vars.get(COMPOSE_PROFILES)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    } else {
        options.profiles.clone()
    };

    let mut networks = resources("networks", &document, &project_name, &sources)?;
    let volumes = resources("volumes", &document, &project_name, &sources)?;

    let reader = ServiceReader {
        sources: &sources,
        working_dir: &working_dir,
        vars: &vars,
    };
    let mut services = BTreeMap::new();
    if let Some(Value::Mapping(defined)) = document.get("services") {
        for (name, definition) in defined {
            let name = scalar_string(name).unwrap_or_default();
            let Value::Mapping(definition) = definition else {
                unreachable!("check_structure accepts mappings only");
            };
            services.insert(name.clone(), reader.read(&name, definition)?);
        }
    }

    unset.sort();
    unset.dedup();
    let warnings = unset
        .into_iter()
        .map(|name| format!("variable {name} is not set; using an empty string"))
        .collect();

    let uses_default = services
        .values()
        .any(|s| s.networks.contains_key("default"));
    if uses_default && !networks.contains_key("default") {
        networks.insert(
            "default".to_owned(),
            Resource {
                key: "default".to_owned(),
                docker_name: format!("{project_name}_default"),
                ..Resource::default()
            },
        );
    }

    let stack = Stack {
        project_name,
        working_dir,
        files,
        active_profiles,
        services,
        networks,
        volumes,
        warnings,
    };
    check_references(&stack, &sources)?;
    check_cycles(&stack, &sources)?;
    let enabled: Vec<&str> = stack.enabled_services().map(|s| s.name.as_str()).collect();
    check_profiles(&stack, &sources, &enabled)?;
    check_ports(&stack, &sources, &enabled)?;
    Ok(stack)
}

fn absolute(path: &Path) -> PathBuf {
    if path.as_os_str() == STDIN {
        path.to_path_buf()
    } else if path == Path::new(".") {
        std::env::current_dir().unwrap_or_else(|_| path.to_path_buf())
    } else if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path))
    }
}

/// Shape checks on one file before merging, so errors name the file that has the problem.
fn check_structure(file: &SourceFile) -> Result<(), UserError> {
    for key in file.document.keys() {
        let key = scalar_string(key).unwrap_or_default();
        if key.starts_with("x-") || TOP_LEVEL_KEYS.contains(&key.as_str()) {
            continue;
        }
        return Err(invalid(
            &file.location(&[Segment::key(&key)]),
            format_args!("unknown top-level key `{key}`"),
            "the top level holds services, networks, volumes, secrets, configs, name, version and x-* extensions",
        ));
    }
    match file.document.get("services") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Mapping(_)) => {}
        Some(_) => {
            return Err(invalid(
                &file.location(&[Segment::key("services")]),
                "`services` must be a mapping of service names to definitions",
                "indent each service under `services:`",
            ));
        }
    }
    let Some(Value::Mapping(services)) = file.document.get("services") else {
        return Ok(());
    };
    for (name, definition) in services {
        let name = scalar_string(name).unwrap_or_default();
        let Value::Mapping(definition) = definition else {
            return Err(invalid(
                &file.location(&[Segment::key("services"), Segment::key(&name)]),
                format_args!("services.{name} must be a mapping"),
                "give the service at least `image:`",
            ));
        };
        check_keys(&name, definition, |path| file.location(path))?;
    }
    Ok(())
}

fn project_name(
    options: &LoadOptions,
    vars: &Variables,
    document: &Mapping,
    working_dir: &Path,
    sources: &Sources,
) -> Result<String, UserError> {
    let folder = working_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let raw = options
        .project_name
        .clone()
        .or_else(|| {
            vars.get(COMPOSE_PROJECT_NAME)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
        })
        .or_else(|| document.get("name").and_then(scalar_string))
        .unwrap_or(folder);
    let name: String = raw
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect();
    if name.is_empty() {
        return Err(invalid(
            &sources.locate(&[Segment::key("name")]),
            format_args!("the project name `{raw}` has no usable characters"),
            "set COMPOSE_PROJECT_NAME (in compose/.env) to lower-case letters, digits, - or _",
        ));
    }
    Ok(name)
}

/// Top-level `networks:` or `volumes:`.
fn resources(
    section: &str,
    document: &Mapping,
    project: &str,
    sources: &Sources,
) -> Result<BTreeMap<String, Resource>, UserError> {
    let mut result = BTreeMap::new();
    let entries = match document.get(section) {
        None | Some(Value::Null) => return Ok(result),
        Some(Value::Mapping(entries)) => entries,
        Some(_) => {
            return Err(invalid(
                &sources.locate(&[Segment::key(section)]),
                format_args!("`{section}` must be a mapping"),
                format!("list each of the {section} as a key"),
            ));
        }
    };
    for (key, spec) in entries {
        let key = scalar_string(key).unwrap_or_default();
        let spec = match spec {
            Value::Null => Mapping::new(),
            Value::Mapping(spec) => spec.clone(),
            _ => {
                return Err(invalid(
                    &sources.locate(&[Segment::key(section), Segment::key(&key)]),
                    format_args!("{section}.{key} must be a mapping (or empty)"),
                    "write `name:` with nothing after it for the defaults",
                ));
            }
        };
        let (external, external_name) = match spec.get("external") {
            Some(Value::Bool(b)) => (*b, None),
            Some(Value::Mapping(ext)) => (true, ext.get("name").and_then(scalar_string)),
            _ => (false, None),
        };
        let explicit = spec.get("name").and_then(scalar_string).or(external_name);
        let docker_name = match explicit {
            Some(name) => name,
            None if external => key.clone(),
            None => format!("{project}_{key}"),
        };
        let labels = key_values(spec.get("labels").cloned().unwrap_or(Value::Null))
            .into_iter()
            .map(|(k, v)| {
                (
                    scalar_string(&k).unwrap_or_default(),
                    scalar_string(&v).unwrap_or_default(),
                )
            })
            .collect();
        result.insert(
            key.clone(),
            Resource {
                key,
                docker_name,
                external,
                driver: spec.get("driver").and_then(scalar_string),
                labels,
            },
        );
    }
    Ok(result)
}

fn depends_location(sources: &Sources, service: &str, dependency: &str) -> Location {
    let parent = [
        Segment::key("services"),
        Segment::key(service),
        Segment::key("depends_on"),
    ];
    let mut keyed = parent.to_vec();
    keyed.push(Segment::key(dependency));
    if sources
        .files
        .iter()
        .any(|f| f.index.line_of(&keyed).is_some())
    {
        return sources.locate(&keyed);
    }
    sources.locate_item(&parent, dependency)
}

/// Every name a service refers to exists: dependencies, named volumes, networks.
fn check_references(stack: &Stack, sources: &Sources) -> Result<(), UserError> {
    for service in stack.services.values() {
        for dependency in service.depends_on.keys() {
            if stack.services.contains_key(dependency) {
                continue;
            }
            let hint = match closest(dependency, stack.services.keys()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => "depend on a service defined under `services:`".to_owned(),
            };
            return Err(invalid(
                &depends_location(sources, &service.name, dependency),
                format_args!(
                    "services.{}.depends_on: unknown service `{dependency}`",
                    service.name
                ),
                hint,
            ));
        }
        for mount in &service.volumes {
            if let MountSource::Volume(volume) = &mount.source {
                if !stack.volumes.contains_key(volume) {
                    let parent = [
                        Segment::key("services"),
                        Segment::key(&service.name),
                        Segment::key("volumes"),
                    ];
                    let text = format!("{volume}:{}", mount.target);
                    let location = sources
                        .files
                        .iter()
                        .rev()
                        .find_map(|f| {
                            ["", ":ro", ":rw"].iter().find_map(|suffix| {
                                f.index
                                    .item_line(&parent, &format!("{text}{suffix}"))
                                    .map(|line| Location {
                                        file: f.display.clone(),
                                        line: Some(line),
                                    })
                            })
                        })
                        .unwrap_or_else(|| sources.locate(&parent));
                    return Err(invalid(
                        &location,
                        format_args!(
                            "services.{}.volumes: named volume `{volume}` is not declared",
                            service.name
                        ),
                        format!("add `{volume}:` under the top-level `volumes:`"),
                    ));
                }
            }
        }
        for network in service.networks.keys() {
            if network != "default" && !stack.networks.contains_key(network) {
                return Err(invalid(
                    &sources.locate(&[
                        Segment::key("services"),
                        Segment::key(&service.name),
                        Segment::key("networks"),
                    ]),
                    format_args!(
                        "services.{}.networks: network `{network}` is not declared",
                        service.name
                    ),
                    format!("add `{network}:` under the top-level `networks:`"),
                ));
            }
        }
    }
    Ok(())
}

/// No dependency cycles; the error names the whole cycle.
fn check_cycles(stack: &Stack, sources: &Sources) -> Result<(), UserError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit<'a>(
        stack: &'a Stack,
        name: &'a str,
        marks: &mut BTreeMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        match marks.get(name).copied().unwrap_or(Mark::New) {
            Mark::Done => return None,
            Mark::Open => {
                let start = path.iter().position(|n| *n == name).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(name);
                return Some(cycle);
            }
            Mark::New => {}
        }
        marks.insert(name, Mark::Open);
        path.push(name);
        for dependency in stack.services[name].depends_on.keys() {
            if let Some(cycle) = visit(stack, dependency, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(name, Mark::Done);
        None
    }

    let mut marks = BTreeMap::new();
    for name in stack.services.keys() {
        let mut path = Vec::new();
        if let Some(cycle) = visit(stack, name, &mut marks, &mut path) {
            return Err(invalid(
                &depends_location(sources, cycle[0], cycle[1]),
                format_args!("dependency cycle: {}", cycle.join(" -> ")),
                "remove one of these depends_on entries",
            ));
        }
    }
    Ok(())
}

/// An enabled service may not depend on one the active profiles leave out.
pub(super) fn check_profiles(
    stack: &Stack,
    sources: &Sources,
    selected: &[&str],
) -> Result<(), UserError> {
    let selected_set: BTreeSet<&str> = selected.iter().copied().collect();
    for name in selected {
        for dependency in stack.services[*name].depends_on.keys() {
            if selected_set.contains(dependency.as_str()) {
                continue;
            }
            let profiles = &stack.services[dependency].profiles;
            return Err(invalid(
                &depends_location(sources, name, dependency),
                format_args!(
                    "services.{name}.depends_on: `{dependency}` is not enabled by the active profiles"
                ),
                format!(
                    "enable one of its profiles: --profile {}",
                    profiles.join(" / --profile ")
                ),
            ));
        }
    }
    Ok(())
}

/// Two services may not publish the same host port.
pub(super) fn check_ports(
    stack: &Stack,
    sources: &Sources,
    selected: &[&str],
) -> Result<(), UserError> {
    let mut seen: Vec<(&str, &super::port::PortBinding)> = Vec::new();
    for name in selected {
        for port in &stack.services[*name].ports {
            if let Some((owner, other)) = seen
                .iter()
                .find(|(owner, p)| owner != name && p.conflicts_with(port))
            {
                let parent = [
                    Segment::key("services"),
                    Segment::key(name),
                    Segment::key("ports"),
                ];
                let location = sources
                    .files
                    .iter()
                    .rev()
                    .find_map(|f| {
                        f.index
                            .items_under(&parent)
                            .into_iter()
                            .find_map(|(text, line)| {
                                super::port::PortBinding::parse(&Value::from(text.as_str()))
                                    .ok()
                                    .filter(|parsed| parsed.contains(port))
                                    .map(|_| Location {
                                        file: f.display.clone(),
                                        line: Some(line),
                                    })
                            })
                    })
                    .unwrap_or_else(|| sources.locate(&parent));
                let published = port.published.unwrap_or_default();
                return Err(invalid(
                    &location,
                    format_args!(
                        "services.{name}.ports: host port {published}/{} ({port}) is already published by service `{owner}` ({other})",
                        port.protocol
                    ),
                    "give one of them another host port",
                ));
            }
            seen.push((name, port));
        }
    }
    Ok(())
}
