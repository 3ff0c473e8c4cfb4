//! `finctl up`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};

use crate::cli::{GlobalArgs, UpArgs};
use crate::printer::{Printer, Verbosity};
use finctl_compose::Project;
use finctl_compose::Stack;
use finctl_engine as inventory;
use finctl_engine::Engine;
use finctl_error::{ExitStatus, UserError};
use finctl_images::{BuildOptions, Selection};
use finctl_orchestrate::{Action, Outcome, Progress, UpReport};
use finctl_progress::seconds;

pub async fn up(
    global: &GlobalArgs,
    args: UpArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let origin = Instant::now();
    let stack = super::compose::load(global, &args.stack, printer).await?;
    let plan = stack.plan(&args.services)?;
    let engine = Engine::connect().await?;
    if args.build {
        build_images(global, &engine, &stack, &plan.order, printer).await?;
    }
    let endpoints = super::urls::endpoints(&stack);
    let publish = !args.no_publish && super::publish::has_gateway(&stack, &plan.order);
    let gateway_stack = publish.then(|| stack.clone());
    // Each bootstrap part runs as soon as its server is ready, before the services that wait
    // for that server start: they start against a made database and topics. The realm is
    // made while they start (they wait for the IdP to be started, not ready, and fetch its
    // keys when the first token comes).
    let parts = if args.no_bootstrap {
        Vec::new()
    } else {
        super::bootstrap::parts_in(&plan.order)
    };
    let bootstrapped = Arc::new(Mutex::new(Vec::new()));
    let hooks = super::bootstrap::hooks_for_up(&stack, &parts, &bootstrapped);
    let progress = Progress::new(printer.progress(), &plan.order);
    let mut report = finctl_orchestrate::up::up_with(
        origin,
        engine.clone(),
        stack,
        plan,
        args.timeout,
        progress,
        hooks,
    )
    .await?;
    report.elapsed = origin.elapsed();
    super::bootstrap::report_for_up(&parts, &bootstrapped, printer);
    if printer.json() {
        printer.data(&serde_json::to_string_pretty(&report)?);
    } else {
        printer.data(&table(&report));
        if printer.verbosity() >= Verbosity::Verbose {
            printer.data(&timeline(&report));
        }
    }
    if report.interrupted {
        printer
            .warn("interrupted: containers were left as they are; run `finctl up` again to finish");
        return Ok(ExitStatus::Failure);
    }
    let mut failed = false;
    for service in &report.services {
        if let Outcome::Failed(reason) = &service.outcome {
            failed = true;
            printer.diagnostic(&format!("\n{}: {reason}", service.service));
            if let Some(container) = &service.container {
                let logs = inventory::tail_logs(&engine, &container.id, 30).await;
                printer.diagnostic(&format!("--- last log lines of {} ---", container.name));
                printer.diagnostic(logs.trim_end());
            }
            let output = service.health_output.clone().or_else(|| {
                service
                    .container
                    .as_ref()
                    .and_then(|c| c.last_health_output.clone())
            });
            if let Some(output) = output {
                printer.diagnostic("--- last healthcheck output ---");
                printer.diagnostic(output.trim_end());
            }
        }
    }
    if failed {
        let count = report
            .services
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Failed(_)))
            .count();
        return Err(UserError::failure(
            format!("{count} of {} services failed", report.services.len()),
            "fix the cause above and run `finctl up` again: it repairs only what is not ready",
        )
        .into());
    }
    if !report.changed() {
        printer.status(&format!(
            "Nothing to change; all ready ({:.2}s).",
            report.elapsed.as_secs_f64()
        ));
    } else {
        printer.status(&format!("Ready in {:.1}s.", report.elapsed.as_secs_f64()));
    }
    let running: Vec<&str> = report
        .services
        .iter()
        .filter(|s| s.container.as_ref().is_some_and(|c| c.running()))
        .map(|s| s.service.as_str())
        .collect();
    for endpoint in endpoints
        .iter()
        .filter(|e| running.contains(&e.service.as_str()))
    {
        printer.status(&format!(
            "  {:<12} {:<45} {}",
            endpoint.service, endpoint.url, endpoint.what
        ));
    }
    if let Some(stack) = gateway_stack.filter(|_| report.ok()) {
        // After `up`, every route works: the gateway gets the project's APIs.
        super::publish::publish_after_up(global, &stack, printer)
            .await
            .map_err(|err| {
                err.context(
                    "the stack is up, but publishing api-config.yaml to the gateway failed \
                     (`finctl publish-apis` retries it; `finctl up --no-publish` skips it)",
                )
            })?;
    }
    Ok(if report.ok() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// `--build`: builds the images the selected services use with finctl's image builder (never
/// pulls). Up-to-date images are skipped by their input hash, so this costs milliseconds when
/// nothing changed, and picks up a changed recipe or service code when something did. An image
/// no recipe builds must already exist.
async fn build_images(
    global: &GlobalArgs,
    engine: &Engine,
    stack: &Stack,
    services: &[String],
    printer: &Printer,
) -> anyhow::Result<()> {
    let project = Project::locate(global.project_dir.as_deref())?;
    let catalog = super::images::catalog(&project)?;
    let missing = finctl_orchestrate::up::missing_images(engine, stack, services).await?;
    let mut images: Vec<&String> = services
        .iter()
        .filter_map(|name| stack.services[name].image.as_ref())
        .collect();
    images.sort();
    images.dedup();
    let mut names = Vec::new();
    for image in images {
        match catalog.recipes().find(|r| &r.tag == image) {
            Some(recipe) => names.push(recipe.name.clone()),
            None if missing.contains(image) => {
                return Err(UserError::failure(
                    format!("no recipe builds {image}, and it is not present"),
                    "add a recipe under compose/images/, or build the image yourself",
                )
                .into());
            }
            None => {}
        }
    }
    if names.is_empty() {
        return Ok(());
    }
    let offline = names
        .iter()
        .any(|n| catalog.get(n).is_some_and(|r| r.offline_only));
    printer.status(&format!(
        "Building images (up-to-date ones are skipped): {}",
        names.join(", ")
    ));
    let builder = super::images::builder(engine, &project, catalog);
    let report = builder
        .build(
            &Selection { offline, names },
            BuildOptions::default(),
            printer.progress(),
        )
        .await?;
    if report.failed() {
        return Err(UserError::failure(
            "building the stack's images failed",
            "see the build errors above; `finctl images build --offline -v` shows every step",
        )
        .into());
    }
    Ok(())
}

/// `up -v`: where each service's time went, in seconds since `up` began, in the order the
/// services became ready.
fn timeline(report: &UpReport) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "service",
        "waited on deps",
        "created",
        "started",
        "first probe",
        "ready",
        "bootstrapped",
        "probes",
    ]);
    let at = |ms: Option<u64>| {
        ms.map_or_else(|| "-".to_owned(), |ms| format!("{:.2}", ms as f64 / 1000.0))
    };
    let mut services: Vec<_> = report.services.iter().collect();
    services.sort_by_key(|s| s.timeline.ready_ms.unwrap_or(u64::MAX));
    for service in services {
        let t = &service.timeline;
        table.add_row([
            service.service.clone(),
            at(Some(t.waited_on_dependencies_ms)),
            at(t.created_ms),
            at(t.started_ms),
            at(t.first_probe_ms),
            at(t.ready_ms),
            at(t.bootstrapped_ms),
            t.probes.to_string(),
        ]);
    }
    format!("Timeline (seconds since `up` began):\n{table}")
}

fn table(report: &UpReport) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "service",
        "action",
        "state",
        "health",
        "ports",
        "ready after",
    ]);
    for service in &report.services {
        let action = match service.action {
            Action::Unchanged => "unchanged",
            Action::Created => "created",
            Action::Recreated => "recreated",
            Action::Started => "started",
            Action::Restarted => "restarted",
            Action::Skipped => "skipped",
        };
        let (state, health, ports) = match &service.container {
            Some(c) => (
                match (c.state.as_str(), c.exit_code) {
                    ("exited", Some(code)) => format!("exited ({code})"),
                    (state, _) => state.to_owned(),
                },
                c.health
                    .clone()
                    .filter(|_| c.running())
                    .unwrap_or_else(|| "-".into()),
                c.ports.join("\n"),
            ),
            None => ("missing".into(), "-".into(), String::new()),
        };
        // Ready through our own on-demand probe before Docker's next interval noticed.
        let health = if health == "starting" && service.outcome == Outcome::Ready {
            "healthy (probe)".to_owned()
        } else {
            health
        };
        let state = match &service.outcome {
            Outcome::Ready => state,
            Outcome::Failed(_) => format!("{state} FAILED"),
            Outcome::Blocked(why) => format!("not started ({why})"),
        };
        table.add_row([
            service.service.clone(),
            action.into(),
            state,
            health,
            ports,
            service.ready_after.map_or_else(|| "-".into(), seconds),
        ]);
    }
    table.to_string()
}
