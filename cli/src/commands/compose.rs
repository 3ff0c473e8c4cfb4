//! What the stack commands share: loading the stack the flags describe, or, without flags,
//! the stack as it was started.

use std::path::{Path, PathBuf};

use crate::cli::{GlobalArgs, StackArgs};
use crate::printer::Printer;
use finctl_compose::{self as stack, Discovery, LoadOptions, Stack};
use finctl_engine::Engine;
use finctl_error::UserError;
use finctl_orchestrate::status::{self, StartedWith};

/// Loads and checks the stack (exit 2 on any problem, before Docker is touched beyond one
/// look at the running stack). `-f` and `--profile` given before the command come first,
/// then those after it.
///
/// The running stack remembers how it was started (its containers' Compose labels): run
/// without `-f`, `COMPOSE_FILE`, `--offline`, `--profile` or `COMPOSE_PROFILES`, a command acts
/// on that stack, as it was started, rather than on what discovery alone would find (after
/// `finctl up --offline`, a plain `finctl urls` describes the offline stack). A flag given
/// wins; when it contradicts the running stack, one warning line says so.
pub async fn load(
    global: &GlobalArgs,
    args: &StackArgs,
    printer: &Printer,
) -> anyhow::Result<Stack> {
    let options = match options(global, args) {
        Ok(options) => options,
        // `finctl -p NAME ps` anywhere, as with `docker compose -p NAME ps`: no file found
        // here, but a running stack of that name says which files it was started with.
        Err(err) => return by_project_name(global, args, err, printer).await,
    };
    let stack = load_options(&options, printer)?;
    let Some(started) = running(&stack.project_name).await else {
        return Ok(stack);
    };
    let started = rebase(started, &stack.working_dir);
    if agrees(&started, &stack) {
        return Ok(stack);
    }
    let was = describe(&started);
    if explicit(global, args) {
        printer.warn(&format!(
            "the running stack `{}` was started with {was}; acting on {} as given",
            stack.project_name,
            describe(&started_as(&stack)),
        ));
        return Ok(stack);
    }
    if let Some(missing) = started
        .files
        .iter()
        .find(|f| f.as_str() == stack::STDIN || !Path::new(f).is_file())
    {
        let why = if missing == stack::STDIN {
            "stdin cannot be read again".to_owned()
        } else {
            format!("{missing} is gone")
        };
        printer.warn(&format!(
            "the running stack `{}` was started with {was}, but {why}; acting on {}",
            stack.project_name,
            describe(&started_as(&stack)),
        ));
        return Ok(stack);
    }
    printer.detail(&format!(
        "acting on the running stack `{}` as it was started: {was}",
        stack.project_name
    ));
    let remembered = as_started(&started, stack.project_name.clone(), options.profiles);
    load_options(&remembered, printer)
}

/// No Compose file found: with a project name (`-p`, `COMPOSE_PROJECT_NAME`) and no files or
/// profiles named, the running stack of that name as it was started; otherwise `err`.
async fn by_project_name(
    global: &GlobalArgs,
    args: &StackArgs,
    err: anyhow::Error,
    printer: &Printer,
) -> anyhow::Result<Stack> {
    let name = global.project_name.clone().or_else(|| {
        std::env::var(finctl_env::COMPOSE_PROJECT_NAME)
            .ok()
            .filter(|n| !n.is_empty())
    });
    let Some(name) = name.filter(|_| !explicit(global, args)) else {
        return Err(err);
    };
    let Some(started) = running(&name).await else {
        return Err(err);
    };
    if started
        .files
        .iter()
        .any(|f| f.as_str() == stack::STDIN || !Path::new(f).is_file())
    {
        return Err(err);
    }
    printer.detail(&format!(
        "acting on the running stack `{name}` as it was started: {}",
        describe(&started)
    ));
    load_options(&as_started(&started, name, Vec::new()), printer)
}

/// The load options of the running stack `name` as it was started (`profiles` where its
/// containers predate the profiles label).
fn as_started(started: &StartedWith, name: String, profiles: Vec<String>) -> LoadOptions {
    let mut options = LoadOptions::new(started.files.iter().map(PathBuf::from).collect())
        .with_profiles(started.profiles.clone().unwrap_or(profiles))
        .with_project_name(Some(name));
    if let Some(dir) = &started.working_dir {
        options = options.with_working_dir(PathBuf::from(dir));
    }
    options
}

/// [`load`] without looking at the running stack, with each Compose file's path passed
/// through `file` first (new-service checks an edited copy standing in for the real file).
pub fn load_with(
    global: &GlobalArgs,
    args: &StackArgs,
    printer: &Printer,
    file: &dyn Fn(&Path) -> PathBuf,
) -> anyhow::Result<Stack> {
    let mut options = options(global, args)?;
    options.files = options.files.iter().map(|f| file(f)).collect();
    load_options(&options, printer)
}

/// The files, profiles and project name the flags and the environment name.
fn options(global: &GlobalArgs, args: &StackArgs) -> anyhow::Result<LoadOptions> {
    let current_dir = std::env::current_dir().map_err(|err| {
        UserError::config(
            format!("cannot read the current directory: {err}"),
            "cd into the project",
        )
    })?;
    let discovery = Discovery {
        files: [&global.files[..], &args.files[..]].concat(),
        project_dir: global.project_dir.clone(),
        offline: args.offline,
        current_dir,
        environment: std::env::vars().collect(),
    };
    Ok(discovery
        .resolve()?
        .with_profiles([&global.profiles[..], &args.profiles[..]].concat())
        .with_project_name(global.project_name.clone()))
}

fn load_options(options: &LoadOptions, printer: &Printer) -> anyhow::Result<Stack> {
    let stack = stack::load(options)?;
    for warning in &stack.warnings {
        printer.warn(warning);
    }
    Ok(stack)
}

/// Whether the command line or the environment says which files or profiles to use.
fn explicit(global: &GlobalArgs, args: &StackArgs) -> bool {
    let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    args.offline
        || !global.files.is_empty()
        || !args.files.is_empty()
        || !global.profiles.is_empty()
        || !args.profiles.is_empty()
        || set(finctl_env::COMPOSE_FILE)
        || set(finctl_env::COMPOSE_PROFILES)
}

/// How the project's containers say it was started; `None` without Docker or containers.
async fn running(project: &str) -> Option<StartedWith> {
    let engine = Engine::connect().await.ok()?;
    status::started_with(&engine, project)
        .await
        .ok()
        .flatten()
        .filter(|s| !s.files.is_empty())
}

/// The running stack's files as they are in this copy of the project: started from another
/// checkout of the same project (same name), the files inside that checkout's folder are
/// taken at the same places under `working_dir`, so that a second clone acts on its own
/// files, laid out as the stack was started (`compose/offline.yml` with it, say).
fn rebase(mut started: StartedWith, working_dir: &Path) -> StartedWith {
    let Some(old) = started.working_dir.clone().map(PathBuf::from) else {
        return started;
    };
    if old == working_dir {
        return started;
    }
    for file in &mut started.files {
        if let Ok(relative) = Path::new(file.as_str()).strip_prefix(&old) {
            *file = working_dir.join(relative).display().to_string();
        }
    }
    started.working_dir = Some(working_dir.display().to_string());
    started
}

/// `stack` as `up` would record it.
fn started_as(stack: &Stack) -> StartedWith {
    StartedWith {
        files: stack
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect(),
        working_dir: Some(stack.working_dir.display().to_string()),
        profiles: Some(stack.active_profiles.clone()),
    }
}

/// Same files in the same order and, where the containers recorded them, the same profiles.
fn agrees(started: &StartedWith, stack: &Stack) -> bool {
    let now = started_as(stack);
    let sorted = |p: &[String]| {
        let mut p = p.to_vec();
        p.sort();
        p
    };
    started.files == now.files
        && started
            .profiles
            .as_ref()
            .is_none_or(|p| sorted(p) == sorted(&stack.active_profiles))
}

/// `-f compose/docker-compose.yml -f compose/offline.yml --profile gateway`, paths relative
/// to the current directory where they are inside it.
fn describe(started: &StartedWith) -> String {
    describe_from(started, std::env::current_dir().ok().as_deref())
}

fn describe_from(started: &StartedWith, base: Option<&Path>) -> String {
    let mut words: Vec<String> = started
        .files
        .iter()
        .map(|f| {
            let path = Path::new(f);
            let shown = base.and_then(|b| path.strip_prefix(b).ok()).unwrap_or(path);
            format!("-f {}", shown.display())
        })
        .collect();
    if let Some(profiles) = &started.profiles {
        words.extend(profiles.iter().map(|p| format!("--profile {p}")));
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(files: &[&str], profiles: Option<&[&str]>) -> StartedWith {
        StartedWith {
            files: files.iter().map(|f| (*f).to_owned()).collect(),
            working_dir: Some("/p/compose".into()),
            profiles: profiles.map(|p| p.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    #[test]
    fn another_checkout_takes_the_running_stacks_files_at_the_same_places() {
        let s = started(
            &[
                "/p/compose/docker-compose.yml",
                "/p/compose/offline.yml",
                "/etc/x.yml",
            ],
            Some(&[]),
        );
        let rebased = rebase(s.clone(), Path::new("/q/compose"));
        assert_eq!(
            rebased.files,
            [
                "/q/compose/docker-compose.yml",
                "/q/compose/offline.yml",
                "/etc/x.yml"
            ]
        );
        assert_eq!(rebased.working_dir.as_deref(), Some("/q/compose"));
        assert_eq!(rebase(s.clone(), Path::new("/p/compose")), s);
    }

    #[test]
    fn describe_shows_files_relative_to_the_current_folder_and_the_profiles() {
        let s = started(
            &["/p/compose/docker-compose.yml", "/elsewhere/x.yml"],
            Some(&["gateway"]),
        );
        assert_eq!(
            describe_from(&s, Some(Path::new("/p"))),
            "-f compose/docker-compose.yml -f /elsewhere/x.yml --profile gateway"
        );
        assert_eq!(describe_from(&started(&["-"], None), None), "-f -");
    }
}
