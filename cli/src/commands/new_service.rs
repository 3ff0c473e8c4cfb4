//! `finctl new-service`: render the template, check and apply every edit, then build, start,
//! publish and smoke-test the new service; `--update` and `--remove`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

use crate::cli::{
    GlobalArgs, ImagesBuildArgs, NewServiceArgs, PublishArgs, PublishTarget, SmokeTestArgs,
    StackArgs, UpArgs,
};
use crate::printer::Printer;
use finctl_compose::{Project, Stack};
use finctl_engine::Engine;
use finctl_error::{ExitStatus, UserError};
use finctl_scaffold::plan::{self, Layout};
use finctl_scaffold::{Answers, ChangeSet, Recorded, Rendered, ServiceName, Template, git};

/// The container port every service listens on (the template's `PORT`).
const SERVICE_PORT: u16 = 8000;
/// The gateway's public port inside its container.
const GATEWAY_PORT: u16 = 8280;

pub async fn new_service(
    global: &GlobalArgs,
    args: NewServiceArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let project = Project::locate(global.project_dir.as_deref())?;
    let name = ServiceName::parse(&args.name).map_err(|err| {
        UserError::config(
            err.to_string(),
            "a service name is lowercase kebab-case: `loyalty`, `fx-audit`",
        )
    })?;
    if args.remove {
        return remove(global, &args, &project, &name, printer).await;
    }
    if args.update {
        return update(global, &args, &project, &name, printer).await;
    }
    create(global, &args, &project, &name, printer).await
}

fn template_dir(project: &Project) -> PathBuf {
    project.root().join(finctl_scaffold::TEMPLATE_DIR)
}

// ---- create ---------------------------------------------------------------------------

async fn create(
    global: &GlobalArgs,
    args: &NewServiceArgs,
    project: &Project,
    name: &ServiceName,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let root = project.root();
    let layout = Layout::default();
    let template = Template::read_dir(&template_dir(project))?;
    let stack_args = running_stack(global, &args.stack, printer).await?;
    let stack = super::compose::load(global, &stack_args, &Printer::plain()).await?;

    let started = Instant::now();
    let recorded = match Recorded::read(root, name)? {
        Some(recorded) => {
            printer.status(&format!(
                "{name} exists already (made by `finctl new-service` from template v{}); \
                 finishing what is missing and continuing with the remaining steps.",
                recorded.template_version
            ));
            warn_ignored_answers(args, &recorded.answers, printer);
            recorded
        }
        None => {
            check_free(root, &layout, &stack, name)?;
            let port = match args.port {
                Some(port) => check_port(&stack, port)?,
                None => next_port(root, &stack)?,
            };
            Recorded {
                answers: Answers {
                    name: name.clone(),
                    port,
                    description: args
                        .description
                        .clone()
                        .unwrap_or_else(|| format!("The {name} service")),
                    worker: !args.no_worker,
                },
                template_version: template.version,
                template_tree: git::tree_id(&template_dir(project)),
            }
        }
    };
    let rendered = template.render(&recorded.answers)?;
    let changes = plan::add(root, &layout, &rendered, &recorded)?;
    validate(global, &stack_args, root, &layout, &changes)?;

    if args.dry_run {
        print_plan(&changes, printer, "would")?;
        printer.status("Dry run: nothing was written.");
        return Ok(ExitStatus::Success);
    }
    let wrote = !changes.is_empty();
    if wrote {
        changes.apply(root)?;
        print_plan(&changes, printer, "")?;
    } else {
        printer.status(&format!("{name}'s files are all in place."));
    }
    let mut steps = vec![StepTime {
        step: "render and write",
        seconds: started.elapsed().as_secs_f64(),
        outcome: if wrote { "done" } else { "nothing to do" },
    }];
    if args.no_start {
        printer.status(&format!(
            "Next: `finctl new-service {name}` again (or `finctl up --build {name}`) builds and starts it."
        ));
        return Ok(ExitStatus::Success);
    }
    let stack = super::compose::load(global, &stack_args, &Printer::plain()).await?;
    let result = start(
        global,
        args,
        &stack_args,
        &stack,
        &recorded.answers,
        printer,
        &mut steps,
    )
    .await;
    print_steps(&steps, printer);
    result?;
    print_urls(&stack, &recorded.answers, printer);
    Ok(ExitStatus::Success)
}

fn warn_ignored_answers(args: &NewServiceArgs, answers: &Answers, printer: &Printer) {
    let mut differ = Vec::new();
    if args.port.is_some_and(|p| p != answers.port) {
        differ.push(format!("--port (it has {})", answers.port));
    }
    if args
        .description
        .as_ref()
        .is_some_and(|d| d != &answers.description)
    {
        differ.push("--description".to_owned());
    }
    if args.no_worker == answers.worker {
        differ.push(format!(
            "--no-worker (it has {} worker)",
            if answers.worker { "a" } else { "no" }
        ));
    }
    if !differ.is_empty() {
        printer.warn(&format!(
            "{} ignored: {} keeps its recorded answers (platform-services/{}/.finctl-service.toml)",
            differ.join(", "),
            answers.name,
            answers.name
        ));
    }
}

/// Nothing of that name may exist: crate, Compose service, API, queue, image recipe.
fn check_free(
    root: &Path,
    layout: &Layout,
    stack: &Stack,
    name: &ServiceName,
) -> anyhow::Result<()> {
    let taken = |what: String| -> anyhow::Error {
        UserError::config(
            format!("{name} exists already: {what}"),
            "choose another name (`finctl new-service --remove NAME` undoes a generated service)",
        )
        .into()
    };
    let dir = plan::crate_dir(name);
    if root.join(&dir).exists() {
        return Err(taken(format!("{} is there", dir.display())));
    }
    let manifest = std::fs::read_to_string(root.join(&layout.manifest)).unwrap_or_default();
    if let Ok(members) = finctl_scaffold::edit::members(&manifest) {
        if let Some(member) = members
            .iter()
            .find(|m| Path::new(m).file_name().is_some_and(|f| f == name.as_str()))
        {
            return Err(taken(format!("the workspace has the crate {member}")));
        }
    }
    for service in [name.to_string(), name.worker()] {
        if stack.services.contains_key(&service) || compose_declares(root, layout, &service) {
            return Err(taken(format!(
                "{} has the service `{service}`",
                layout.compose.display()
            )));
        }
    }
    let api_config = std::fs::read_to_string(root.join(&layout.api_config)).unwrap_or_default();
    if let Ok(config) = serde_yaml::from_str::<serde_yaml::Value>(&api_config) {
        for (list, _) in finctl_publish::config::API_LISTS {
            let apis = config.get(list).and_then(|v| v.as_sequence());
            for api in apis.into_iter().flatten() {
                let context = api
                    .get("context")
                    .and_then(|c| c.as_str())
                    .unwrap_or_default();
                if context.trim_end_matches('/') == name.context() {
                    return Err(taken(format!(
                        "{} has an API at {context}",
                        layout.api_config.display()
                    )));
                }
            }
        }
    }
    // Queues are `<spec name>-tasks`, and a spec's name is its crate's.
    let services = root.join("platform-services");
    for entry in std::fs::read_dir(&services).into_iter().flatten().flatten() {
        let lib = entry.path().join("src").join("lib.rs");
        let text = std::fs::read_to_string(&lib).unwrap_or_default();
        if text.contains(&format!("name: \"{name}\",")) {
            return Err(taken(format!(
                "{} declares a service (and its queue {name}-tasks) of that name",
                lib.strip_prefix(root).unwrap_or(&lib).display()
            )));
        }
    }
    if root
        .join("compose")
        .join("images")
        .join(name.as_str())
        .exists()
    {
        return Err(taken(format!("compose/images/{name} is an image recipe")));
    }
    Ok(())
}

/// Whether any Compose file of the project declares `service`, in any profile.
fn compose_declares(root: &Path, layout: &Layout, service: &str) -> bool {
    let dir = root.join(layout.compose.parent().unwrap_or(Path::new("compose")));
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.path()
                .extension()
                .is_some_and(|x| x == "yml" || x == "yaml")
        })
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|text| serde_yaml::from_str::<serde_yaml::Value>(&text).ok())
        .any(|doc| doc.get("services").and_then(|s| s.get(service)).is_some())
}

/// Host ports the stack publishes, and by which service.
fn published_ports(stack: &Stack) -> Vec<(u16, String)> {
    stack
        .services
        .values()
        .flat_map(|s| {
            s.ports
                .iter()
                .filter_map(|p| p.published.map(|port| (port, s.name.clone())))
        })
        .collect()
}

fn check_port(stack: &Stack, port: u16) -> anyhow::Result<u16> {
    if let Some((_, service)) = published_ports(stack).into_iter().find(|(p, _)| *p == port) {
        return Err(UserError::config(
            format!("port {port} is taken: the stack's `{service}` publishes it"),
            "pass another --port, or leave it out to take the next free one",
        )
        .into());
    }
    if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
        return Err(UserError::config(
            format!("port {port} is taken on this machine by a program outside the stack"),
            "pass another --port, or leave it out to take the next free one",
        )
        .into());
    }
    Ok(port)
}

/// The next port after the fleet's (the services built from platform-services/) that the
/// stack does not publish and nothing on this machine holds.
fn next_port(root: &Path, stack: &Stack) -> anyhow::Result<u16> {
    let crates: BTreeSet<String> = std::fs::read_dir(root.join("platform-services"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let fleet = stack
        .services
        .values()
        .filter(|s| {
            s.image.as_deref().is_some_and(|image| {
                image
                    .strip_prefix("finctl/")
                    .and_then(|rest| rest.split(':').next())
                    .is_some_and(|crate_name| {
                        crate_name != "gateway" && crates.contains(crate_name)
                    })
            })
        })
        .flat_map(|s| s.ports.iter().filter_map(|p| p.published))
        .max()
        .unwrap_or(8000);
    let used: BTreeSet<u16> = published_ports(stack).into_iter().map(|(p, _)| p).collect();
    (fleet.saturating_add(1)..=u16::MAX)
        .find(|p| !used.contains(p) && std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .ok_or_else(|| UserError::config("no free port after the fleet's", "pass --port N").into())
}

/// Every edited file still loads: the Compose files through finctl's loader, api-config.yaml
/// through publish-apis' checks, topics.yaml through bootstrap's. A failure is the template's
/// fault (or the project's file was broken already): nothing is written.
fn validate(
    global: &GlobalArgs,
    stack_args: &StackArgs,
    root: &Path,
    layout: &Layout,
    changes: &ChangeSet,
) -> anyhow::Result<()> {
    let consequence = |err: UserError, file: &Path| -> anyhow::Error {
        UserError::config(
            format!(
                "with the new service's entries, {} would not load; nothing was written:\n{}",
                file.display(),
                err.message
            ),
            "the template (templates/service/stack/) or the file is broken: fix it and run again",
        )
        .into()
    };
    if let Some(Some(text)) = changes.after(&layout.api_config) {
        let path = root.join(&layout.api_config);
        finctl_publish::config::resolve_text(&layout.api_config, text, &|schema| {
            std::fs::read_to_string(path.parent().unwrap_or(root).join(schema))
        })
        .map_err(|invalid| {
            consequence(
                finctl_publish::config::user_error(invalid),
                &layout.api_config,
            )
        })?;
    }
    if let Some(Some(text)) = changes.after(&layout.topics) {
        finctl_bootstrap::decl::topics(&layout.topics, text).map_err(|invalid| {
            consequence(invalid.into_user_error("fix the template"), &layout.topics)
        })?;
    }
    if let Some(Some(text)) = changes.after(&layout.compose) {
        // Loaded as the stack is, with the edited file standing in for the real one beside it
        // (same folder: the same .env and relative paths).
        let real = root.join(&layout.compose);
        let staged = real.with_file_name(".docker-compose.finctl-check.yml");
        std::fs::write(&staged, text).map_err(|err| {
            UserError::failure(
                format!("cannot write {}: {err}", staged.display()),
                "check the folder's permissions",
            )
        })?;
        let result = super::compose::load_with(global, stack_args, &Printer::plain(), &|path| {
            if path == real {
                staged.clone()
            } else {
                path.to_path_buf()
            }
        });
        let _ = std::fs::remove_file(&staged);
        result.map_err(|err| match err.downcast::<UserError>() {
            Ok(user) => consequence(user, &layout.compose),
            Err(other) => other,
        })?;
    }
    Ok(())
}

fn print_plan(changes: &ChangeSet, printer: &Printer, mood: &str) -> anyhow::Result<()> {
    if printer.json() {
        printer.data(&serde_json::to_string_pretty(changes)?);
        return Ok(());
    }
    let lines = changes.summary();
    if lines.is_empty() {
        return Ok(());
    }
    let heading = if mood.is_empty() {
        format!("Wrote {} files:", lines.len())
    } else {
        format!("{} files it {mood} write:", lines.len())
    };
    printer.data(&format!("{heading}\n  {}", lines.join("\n  ")));
    if !mood.is_empty() {
        let diffs = changes.diffs();
        if !diffs.is_empty() {
            printer.data(&format!("\n{}", diffs.trim_end()));
        }
    }
    Ok(())
}

// ---- the steps after writing ----------------------------------------------------------

#[derive(Debug, Serialize)]
struct StepTime {
    step: &'static str,
    seconds: f64,
    outcome: &'static str,
}

/// Records a step's time; a failed step becomes an error that says what failed and how to
/// carry on from there, with the step's own error as its cause.
fn finish(
    steps: &mut Vec<StepTime>,
    step: &'static str,
    started: Instant,
    result: anyhow::Result<ExitStatus>,
    (name, what, next): (&ServiceName, &str, &str),
) -> anyhow::Result<()> {
    let ok = matches!(result, Ok(ExitStatus::Success));
    steps.push(StepTime {
        step,
        seconds: started.elapsed().as_secs_f64(),
        outcome: if ok { "ok" } else { "FAILED" },
    });
    if ok {
        return Ok(());
    }
    let mut failure = UserError::failure(
        format!("{name}: {what} failed (its files are written and stay)"),
        format!("{next}; `finctl new-service {name}` again continues from here"),
    );
    if let Err(err) = result {
        failure.source = Some(err.into());
    }
    Err(failure.into())
}

async fn start(
    global: &GlobalArgs,
    args: &NewServiceArgs,
    stack_args: &StackArgs,
    stack: &Stack,
    answers: &Answers,
    printer: &Printer,
    steps: &mut Vec<StepTime>,
) -> anyhow::Result<()> {
    let name = &answers.name;
    let total = 4;
    let step = |n: usize, what: &str| printer.status(&format!("\n==> [{n}/{total}] {what}"));

    step(
        1,
        &format!("build its image finctl/{name} (cargo build --release -p {name})"),
    );
    let t = Instant::now();
    let built = super::images::build(
        global,
        ImagesBuildArgs {
            offline: false,
            force: false,
            no_cache: false,
            names: vec![name.to_string()],
        },
        printer,
    )
    .await;
    let why = (name, "building its image", "fix the build errors above");
    finish(steps, "build", t, built, why)?;

    let mut services = vec![name.to_string()];
    if answers.worker {
        services.push(name.worker());
    }
    step(
        2,
        &format!("start {} (and bootstrap its topic)", services.join(" and ")),
    );
    let t = Instant::now();
    let up = super::up::up(
        global,
        UpArgs {
            stack: stack_args.clone(),
            build: false,
            timeout: args.timeout,
            no_publish: true,
            no_bootstrap: false,
            services: services.clone(),
        },
        printer,
    )
    .await;
    let next = format!("see its log lines above; `finctl logs {name}` shows them all");
    finish(steps, "start", t, up, (name, "starting it", &next))?;

    step(3, "publish its route to the gateway");
    let t = Instant::now();
    if stack.services.contains_key(super::publish::GATEWAY_SERVICE) {
        let published = super::publish::publish_apis(
            global,
            PublishArgs {
                stack: stack_args.clone(),
                target: PublishTarget::Builtin,
                config: None,
                dry_run: false,
                prune: false,
            },
            printer,
        )
        .await;
        let next = "is the gateway up? `finctl up gateway`, then `finctl publish-apis`";
        finish(
            steps,
            "publish",
            t,
            published,
            (name, "publishing its route", next),
        )?;
    } else {
        printer.status("The stack has no gateway service: nothing to publish.");
        finish(steps, "publish", t, Ok(ExitStatus::Success), (name, "", ""))?;
    }

    step(
        4,
        &format!("smoke-test it (finctl smoke-test --service {name})"),
    );
    let t = Instant::now();
    let smoke = super::smoke::smoke_test(
        global,
        SmokeTestArgs {
            stack: stack_args.clone(),
            suites: Vec::new(),
            services: vec![name.to_string()],
            junit: None,
            fail_fast: false,
            list: false,
            timeout: Duration::from_secs(30),
            dir: None,
        },
        printer,
    )
    .await;
    let next = format!(
        "see the failing cases above (tests/smoke/smoke/{name}.hurl); \
         `finctl smoke-test --service {name}` runs them again"
    );
    finish(
        steps,
        "smoke-test",
        t,
        smoke,
        (name, "its smoke test", &next),
    )?;
    Ok(())
}

fn print_steps(steps: &[StepTime], printer: &Printer) {
    if printer.json() {
        if let Ok(json) = serde_json::to_string_pretty(steps) {
            printer.data(&json);
        }
        return;
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_BORDERS_ONLY)
        .set_header(["step", "result", "time"]);
    for s in steps {
        table.add_row([
            s.step.to_owned(),
            s.outcome.to_owned(),
            format!("{:.1}s", s.seconds),
        ]);
    }
    let total: f64 = steps.iter().map(|s| s.seconds).sum();
    table.add_row(["total".to_owned(), String::new(), format!("{total:.1}s")]);
    printer.data(&format!("\n{table}"));
}

fn print_urls(stack: &Stack, answers: &Answers, printer: &Printer) {
    let name = &answers.name;
    let host_port = |service: &str, target: u16| {
        stack.services.get(service).and_then(|s| {
            s.ports
                .iter()
                .find(|p| p.target == target)
                .and_then(|p| p.published)
        })
    };
    let mut lines = vec![format!("{name} is up.")];
    if let Some(port) = host_port(name.as_str(), SERVICE_PORT) {
        lines.push(format!("  direct         http://127.0.0.1:{port}"));
        lines.push(format!(
            "  docs           http://127.0.0.1:{port}/docs  (OpenAPI: /openapi.json)"
        ));
    }
    if let Some(port) = host_port(super::publish::GATEWAY_SERVICE, GATEWAY_PORT) {
        lines.push(format!(
            "  gateway        http://127.0.0.1:{port}/api/{name}/1.0.0  (a token: `finctl token`)"
        ));
    }
    lines.push(format!(
        "  code           platform-services/{name}/  (tests: cargo test -p {name})"
    ));
    printer.data(&lines.join("\n"));
}

/// The stack flags, completed from the running stack: without `--offline` or `-f`, a stack
/// that was started with compose/offline.yml is acted on with it (its containers' Compose
/// labels say which files).
async fn running_stack(
    global: &GlobalArgs,
    stack_args: &StackArgs,
    printer: &Printer,
) -> anyhow::Result<StackArgs> {
    let mut args = stack_args.clone();
    if args.offline || !args.files.is_empty() || !global.files.is_empty() {
        return Ok(args);
    }
    let stack = super::compose::load_with(global, &args, &Printer::plain(), &Path::to_path_buf)?;
    let Ok(engine) = Engine::connect().await else {
        return Ok(args);
    };
    let files = finctl_orchestrate::status::config_files(&engine, &stack.project_name)
        .await
        .unwrap_or_default();
    if files.iter().any(|f| f.ends_with("offline.yml")) {
        printer.status(
            "The running stack was started with compose/offline.yml: using it too (as --offline).",
        );
        args.offline = true;
    }
    Ok(args)
}

// ---- update ---------------------------------------------------------------------------

async fn update(
    global: &GlobalArgs,
    args: &NewServiceArgs,
    project: &Project,
    name: &ServiceName,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let root = project.root();
    let layout = Layout::default();
    let recorded = generated(root, name)?;
    let dir = template_dir(project);
    let current = Template::read_dir(&dir)?;
    let tree = git::tree_id(&dir);
    let Some(base_tree) = recorded.template_tree.clone() else {
        return Err(UserError::config(
            format!("{name} records no git tree of the template it was made from (it was made outside git)"),
            "update it by hand: compare with `finctl new-service NAME --dry-run` in a scratch copy",
        )
        .into());
    };
    if tree.as_deref() == Some(base_tree.as_str()) {
        printer.status(&format!(
            "{name} is up to date with the template (v{}); nothing to do.",
            current.version
        ));
        return Ok(ExitStatus::Success);
    }
    let base = git::read_tree(root, &base_tree)?;
    let base_render = base.render(&recorded.answers)?;
    let theirs = current.render(&recorded.answers)?;
    let updated = Recorded {
        answers: recorded.answers.clone(),
        template_version: current.version,
        template_tree: tree,
    };
    let (changes, report) = plan::update(root, &layout, &base_render, &theirs, &updated)?;
    let stack_args = running_stack(global, &args.stack, printer).await?;
    validate(global, &stack_args, root, &layout, &changes)?;
    if args.dry_run {
        print_plan(&changes, printer, "would")?;
    } else {
        changes.apply(root)?;
        print_plan(&changes, printer, "")?;
    }
    for note in &report.notes {
        printer.warn(note);
    }
    printer.status(&format!(
        "{name}: template v{} -> v{}{}",
        recorded.template_version,
        current.version,
        if args.dry_run {
            " (dry run: nothing was written)"
        } else {
            ""
        }
    ));
    if !report.conflicts.is_empty() {
        let files: Vec<String> = report
            .conflicts
            .iter()
            .map(|p| format!("  {}", p.display()))
            .collect();
        return Err(UserError::failure(
            format!(
                "{} file(s) {} conflicts: your change and the template's touch the same lines\n{}",
                files.len(),
                if args.dry_run { "would have" } else { "have" },
                files.join("\n")
            ),
            "resolve each block between `<<<<<<< ours` (yours) and `>>>>>>> theirs` (the template's), \
             then `cargo test -p NAME`",
        )
        .into());
    }
    Ok(ExitStatus::Success)
}

/// The answers of a service `finctl new-service` made; any other is refused.
fn generated(root: &Path, name: &ServiceName) -> anyhow::Result<Recorded> {
    Recorded::read(root, name)?.ok_or_else(|| {
        let exists = root.join(plan::crate_dir(name)).exists();
        UserError::config(
            if exists {
                format!(
                    "{name} was not made by `finctl new-service` (platform-services/{name}/.finctl-service.toml is missing)"
                )
            } else {
                format!("there is no service {name}")
            },
            "--update and --remove work on services finctl new-service made",
        )
        .into()
    })
}

// ---- remove ---------------------------------------------------------------------------

async fn remove(
    global: &GlobalArgs,
    args: &NewServiceArgs,
    project: &Project,
    name: &ServiceName,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let root = project.root();
    let layout = Layout::default();
    let recorded = generated(root, name)?;
    let current = Template::read_dir(&template_dir(project))?;
    // The entries go out exactly as they went in when the template version that made them
    // renders them again; the current template's rendering is the next guess.
    let mut renders: Vec<Rendered> = Vec::new();
    if let Some(tree) = &recorded.template_tree {
        if let Ok(base) = git::read_tree(root, tree) {
            renders.push(base.render(&recorded.answers)?);
        }
    }
    renders.push(current.render(&recorded.answers)?);
    let refs: Vec<&Rendered> = renders.iter().collect();
    let changes = plan::remove(root, &layout, name, &refs)?;
    if args.dry_run {
        print_plan(&changes, printer, "would")?;
        printer.status("Dry run: nothing was changed.");
        return Ok(ExitStatus::Success);
    }
    let stack_args = running_stack(global, &args.stack, printer).await?;
    let stack = super::compose::load(global, &stack_args, &Printer::plain()).await?;
    // Its containers first: once its entries are gone no stack command would know them.
    if let Ok(engine) = Engine::connect().await {
        let removed = finctl_orchestrate::teardown::remove_services(
            &engine,
            &stack.project_name,
            &[name.to_string(), name.worker()],
        )
        .await?;
        if !removed.is_empty() {
            printer.status(&format!("Removed containers: {}", removed.join(", ")));
        }
    }
    changes.apply(root)?;
    print_plan(&changes, printer, "")?;
    // Its route: publish the file without it, pruning what finctl published and it no longer lists.
    if stack.services.contains_key(super::publish::GATEWAY_SERVICE) {
        let published = super::publish::publish_apis(
            global,
            PublishArgs {
                stack: stack_args,
                target: PublishTarget::Builtin,
                config: None,
                dry_run: false,
                prune: true,
            },
            printer,
        )
        .await;
        let why = match published {
            Ok(ExitStatus::Success) => None,
            Ok(_) => Some("publish-apis failed".to_owned()),
            Err(err) => Some(format!("{err:#}")),
        };
        if let Some(why) = why {
            printer.warn(&format!(
                "{name}'s route could not be unpublished ({why}); \
                 `finctl publish-apis --prune` does it once the gateway runs"
            ));
        }
    }
    forget_in_lockfile(root, printer);
    printer.status(&format!(
        "{name} is removed. Its image finctl/{name} is kept (`docker rmi finctl/{name}` removes it)."
    ));
    Ok(ExitStatus::Success)
}

/// Cargo.lock drops the crate's entry: `cargo update --workspace` re-resolves only the
/// workspace's own packages (offline: nothing is fetched, nothing else is upgraded).
fn forget_in_lockfile(root: &Path, printer: &Printer) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let ok = std::process::Command::new(cargo)
        .current_dir(root)
        .args(["update", "--workspace", "--offline"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        printer.warn("Cargo.lock still lists the crate: the next cargo build removes it");
    }
}
