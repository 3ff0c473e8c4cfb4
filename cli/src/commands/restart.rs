//! `finctl restart`.

use std::time::Instant;

use anyhow::Context;
use bollard::query_parameters::RestartContainerOptionsBuilder;
use futures_util::future::join_all;

use crate::cli::{GlobalArgs, RestartArgs};
use crate::printer::Printer;
use finctl_compose::Stack;
use finctl_engine as inventory;
use finctl_engine::Engine;
use finctl_error::{ExitStatus, UserError};
use finctl_orchestrate::readiness::{self, Wait};
use finctl_orchestrate::{PhaseObserver, Progress};

pub async fn restart(
    global: &GlobalArgs,
    args: RestartArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let stack = super::compose::load(global, &args.stack, printer).await?;
    for name in &args.services {
        stack.service(name)?;
    }
    let engine = Engine::connect().await?;
    let progress = Progress::new(printer.progress(), &args.services);
    let deadline = Instant::now() + args.timeout;
    let results = join_all(
        args.services
            .iter()
            .map(|name| restart_one(&engine, &stack, name, &progress, deadline)),
    )
    .await;
    let mut failed = false;
    for (name, result) in args.services.iter().zip(results) {
        match result {
            Ok(Wait::Ready) => {}
            Ok(Wait::Failed {
                reason,
                health_output,
            }) => {
                failed = true;
                printer.status(&format!("{name}: {reason}"));
                if let Some(output) = health_output {
                    printer.status(&format!("last healthcheck output:\n{}", output.trim_end()));
                }
            }
            Err(err) => {
                failed = true;
                printer.error(&err.context(format!("restarting {name}")));
            }
        }
    }
    Ok(if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

async fn restart_one(
    engine: &Engine,
    stack: &Stack,
    name: &str,
    progress: &Progress,
    deadline: Instant,
) -> anyhow::Result<Wait> {
    let service = &stack.services[name];
    let container = stack.container_name(service, 1);
    if inventory::inspect(engine, &container).await?.is_none() {
        return Err(UserError::failure(
            format!("{name} has no container ({container})"),
            format!("start it with `finctl up {name}`"),
        )
        .into());
    }
    let started = Instant::now();
    progress.phase(name, "restarting");
    let grace = service.stop_grace_period.map_or(10, |d| d.as_secs() as i32);
    engine
        .api()
        .restart_container(
            &container,
            Some(RestartContainerOptionsBuilder::default().t(grace).build()),
        )
        .await
        .with_context(|| format!("restarting {container}"))?;
    let observer = PhaseObserver {
        progress,
        service: name,
    };
    let wait = readiness::wait_ready(
        engine,
        &container,
        service,
        readiness::readiness_of(stack, service),
        deadline,
        readiness::SETTLE,
        &observer,
    )
    .await?
    .wait;
    match &wait {
        Wait::Ready => progress.done(
            name,
            &format!("ready after {:.1}s", started.elapsed().as_secs_f64()),
        ),
        Wait::Failed { reason, .. } => progress.done(name, &format!("failed: {reason}")),
    }
    Ok(wait)
}
