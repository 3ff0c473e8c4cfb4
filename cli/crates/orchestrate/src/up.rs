//! Bringing the stack to its defined state: networks and volumes, then each container
//! created, recreated, started or left alone, in dependency order, in parallel where the
//! dependencies allow.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bollard::models::{NetworkConnectRequest, NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, RestartContainerOptionsBuilder,
    StartContainerOptions, StopContainerOptionsBuilder,
};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::labels;
use crate::progress::PhaseObserver;
use crate::progress::Progress;
use crate::readiness::{self, Readiness, Wait};
use crate::spec::container_spec;
use finctl_compose::{Condition, MountSource, Plan, Service, Stack};
use finctl_engine::Engine;
use finctl_engine::{self as inventory, ContainerInfo};
use finctl_error::UserError;

/// What `up` did to a service's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Running as defined (or a one-shot that already completed): left alone.
    Unchanged,
    Created,
    /// Its configuration or image changed: removed and created again.
    Recreated,
    /// It existed but was stopped: started.
    Started,
    /// It was unhealthy: restarted.
    Restarted,
    /// Not touched: a dependency failed, or `up` was interrupted first.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "reason")]
pub enum Outcome {
    Ready,
    Failed(String),
    Blocked(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    pub service: String,
    pub action: Action,
    pub outcome: Outcome,
    /// From the moment `up` touched the container until it was ready.
    pub ready_after: Option<Duration>,
    pub container: Option<ContainerInfo>,
    pub health_output: Option<String>,
    /// Where its time went.
    pub timeline: Timeline,
}

/// One service's way to ready, in milliseconds since `up` began (`null`: that step did not
/// happen, e.g. no container was created for a running one). `up -v` prints it as a table,
/// `up --json` has it per service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Timeline {
    /// How long it waited for its dependencies' conditions.
    pub waited_on_dependencies_ms: u64,
    /// The container was created (or found, or removed and created again) ...
    pub created_ms: Option<u64>,
    /// ... started ...
    pub started_ms: Option<u64>,
    /// ... its healthcheck first run by finctl ...
    pub first_probe_ms: Option<u64>,
    /// ... and it was ready (or failed) ...
    pub ready_ms: Option<u64>,
    /// ... and its hook (finctl's bootstrap of what it serves) had run.
    pub bootstrapped_ms: Option<u64>,
    /// Healthchecks finctl ran for it.
    pub probes: u32,
}

/// Work to run once a service is ready and before its dependents count on it (`finctl up`
/// bootstraps the database, the topics and the identity provider this way, each as soon as
/// its server is ready, while the rest of the stack goes on starting). A failure fails the
/// service, with the error as the reason.
pub type Hook =
    Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// Milliseconds from `origin` to `at`.
fn offset(origin: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(origin).as_millis()).unwrap_or(u64::MAX)
}

#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    pub services: Vec<ServiceReport>,
    pub interrupted: bool,
    pub elapsed: Duration,
}

impl UpReport {
    pub fn ok(&self) -> bool {
        !self.interrupted && self.services.iter().all(|s| s.outcome == Outcome::Ready)
    }

    pub fn changed(&self) -> bool {
        self.services.iter().any(|s| s.action != Action::Unchanged)
    }
}

/// The phase a service has reached, as its dependents see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Pending,
    Started,
    Ready,
    Failed,
}

struct Run {
    engine: Engine,
    stack: Stack,
    plan: Plan,
    image_ids: HashMap<String, String>,
    existing: HashMap<String, ContainerInfo>,
    phases: HashMap<String, watch::Sender<Phase>>,
    progress: Progress,
    deadline: Instant,
    /// What the timelines count from.
    origin: Instant,
    hooks: HashMap<String, Hook>,
}

/// The images of `services` that are not present locally.
pub async fn missing_images(
    engine: &Engine,
    stack: &Stack,
    services: &[String],
) -> anyhow::Result<Vec<String>> {
    let mut images: Vec<String> = services
        .iter()
        .filter_map(|name| stack.services[name].image.clone())
        .collect();
    images.sort();
    images.dedup();
    let mut missing = Vec::new();
    for image in images {
        match engine.api().inspect_image(&image).await {
            Ok(_) => {}
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => missing.push(image),
            Err(err) => return Err(err).with_context(|| format!("inspecting image {image}")),
        }
    }
    Ok(missing)
}

/// Checks that every image is present; their ids (for the config hash) by image name.
pub async fn image_ids(
    engine: &Engine,
    stack: &Stack,
    services: &[String],
) -> anyhow::Result<HashMap<String, String>> {
    let mut ids = HashMap::new();
    let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in services {
        let Some(image) = stack.services[name].image.clone() else {
            return Err(UserError::config(
                format!("service `{name}` has no `image`; finctl does not run Compose builds"),
                "build it with `finctl images build` and name the image in the Compose file",
            )
            .into());
        };
        if ids.contains_key(&image) || missing.contains_key(&image) {
            missing.entry(image).and_modify(|s| s.push(name.clone()));
            continue;
        }
        match engine.api().inspect_image(&image).await {
            Ok(inspect) => {
                ids.insert(image, inspect.id.unwrap_or_default());
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                missing.insert(image, vec![name.clone()]);
            }
            Err(err) => return Err(err).with_context(|| format!("inspecting image {image}")),
        }
    }
    if !missing.is_empty() {
        let list = missing
            .iter()
            .map(|(image, services)| format!("{image} (for {})", services.join(", ")))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(UserError::failure(
            format!("missing images: {list}"),
            "build them with `finctl images build --offline` (nothing can be pulled here)",
        )
        .into());
    }
    Ok(ids)
}

/// Creates the networks and volumes the planned services use (those that do not exist yet).
async fn ensure_resources(engine: &Engine, stack: &Stack, plan: &Plan) -> anyhow::Result<()> {
    let mut networks = Vec::new();
    let mut volumes = Vec::new();
    for name in &plan.order {
        let service = &stack.services[name];
        if service.network_mode.is_none() {
            networks.extend(service.networks.keys().cloned());
        }
        volumes.extend(service.volumes.iter().filter_map(|m| match &m.source {
            MountSource::Volume(key) => Some(key.clone()),
            _ => None,
        }));
    }
    networks.sort();
    networks.dedup();
    volumes.sort();
    volumes.dedup();
    for key in networks {
        let Some(network) = stack.networks.get(&key) else {
            continue;
        };
        match engine
            .api()
            .inspect_network(&network.docker_name, None)
            .await
        {
            Ok(_) => {}
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) if !network.external => {
                engine
                    .api()
                    .create_network(NetworkCreateRequest {
                        name: network.docker_name.clone(),
                        driver: network.driver.clone(),
                        labels: Some(labels::resource(
                            stack,
                            labels::NETWORK,
                            &key,
                            &network.labels,
                        )),
                        ..Default::default()
                    })
                    .await
                    .with_context(|| format!("creating network {}", network.docker_name))?;
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                return Err(UserError::failure(
                    format!("external network {} does not exist", network.docker_name),
                    format!("create it: docker network create {}", network.docker_name),
                )
                .into());
            }
            Err(err) => return Err(err).context("inspecting networks"),
        }
    }
    for key in volumes {
        let Some(volume) = stack.volumes.get(&key) else {
            continue;
        };
        match engine.api().inspect_volume(&volume.docker_name).await {
            Ok(_) => {}
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) if !volume.external => {
                engine
                    .api()
                    .create_volume(VolumeCreateRequest {
                        name: Some(volume.docker_name.clone()),
                        driver: volume.driver.clone(),
                        labels: Some(labels::resource(
                            stack,
                            labels::VOLUME,
                            &key,
                            &volume.labels,
                        )),
                        ..Default::default()
                    })
                    .await
                    .with_context(|| format!("creating volume {}", volume.docker_name))?;
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                return Err(UserError::failure(
                    format!("external volume {} does not exist", volume.docker_name),
                    format!("create it: docker volume create {}", volume.docker_name),
                )
                .into());
            }
            Err(err) => return Err(err).context("inspecting volumes"),
        }
    }
    Ok(())
}

/// Brings the planned services up. Resolves when every service is ready or failed (a failure
/// blocks only its dependents), or on Ctrl-C (`interrupted`); never tears anything down.
pub async fn up(
    engine: Engine,
    stack: Stack,
    plan: Plan,
    timeout: Duration,
    progress: Progress,
) -> anyhow::Result<UpReport> {
    up_with(
        Instant::now(),
        engine,
        stack,
        plan,
        timeout,
        progress,
        HashMap::new(),
    )
    .await
}

/// [`up`], its timelines counted from `origin`, with a [`Hook`] run for some services once
/// they are ready.
pub async fn up_with(
    origin: Instant,
    engine: Engine,
    stack: Stack,
    plan: Plan,
    timeout: Duration,
    progress: Progress,
    hooks: HashMap<String, Hook>,
) -> anyhow::Result<UpReport> {
    let started = Instant::now();
    let image_ids = image_ids(&engine, &stack, &plan.order).await?;
    ensure_resources(&engine, &stack, &plan).await?;
    let mut existing = HashMap::new();
    for container in inventory::project_containers(&engine, &stack.project_name).await? {
        // Containers of services no longer defined are `down`'s business, not `up`'s.
        let Some(service) = stack.services.get(&container.service) else {
            continue;
        };
        if container.name == stack.container_name(service, 1) {
            existing.insert(container.service.clone(), container);
        }
    }
    let phases = plan
        .order
        .iter()
        .map(|name| (name.clone(), watch::channel(Phase::Pending).0))
        .collect();
    let context = Arc::new(Run {
        engine,
        stack,
        plan,
        image_ids,
        existing,
        phases,
        progress,
        deadline: started + timeout,
        origin,
        hooks,
    });
    let mut tasks = JoinSet::new();
    for name in context.plan.order.clone() {
        let context = Arc::clone(&context);
        tasks.spawn(async move { bring_up(&context, &name).await });
    }
    let mut reports: BTreeMap<String, ServiceReport> = BTreeMap::new();
    let mut interrupted = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                Some(Ok(report)) => { reports.insert(report.service.clone(), report); }
                Some(Err(err)) => return Err(anyhow::anyhow!("a start task failed: {err}")),
                None => break,
            },
            _ = &mut ctrl_c => {
                interrupted = true;
                tasks.abort_all();
                context.progress.abandon();
                break;
            }
        }
    }
    for name in &context.plan.order {
        if !reports.contains_key(name) {
            reports.insert(
                name.clone(),
                ServiceReport {
                    service: name.clone(),
                    action: Action::Skipped,
                    outcome: Outcome::Blocked("interrupted".into()),
                    ready_after: None,
                    container: None,
                    health_output: None,
                    timeline: Timeline::default(),
                },
            );
        }
    }
    // The final state of each container, for the table.
    let now = inventory::project_containers(&context.engine, &context.stack.project_name)
        .await
        .unwrap_or_default();
    for report in reports.values_mut() {
        let wanted = context
            .stack
            .container_name(&context.stack.services[&report.service], 1);
        report.container = now.iter().find(|c| c.name == wanted).cloned();
    }
    let services = context
        .plan
        .order
        .iter()
        .filter_map(|name| reports.remove(name))
        .collect();
    Ok(UpReport {
        services,
        interrupted,
        elapsed: started.elapsed(),
    })
}

async fn bring_up(context: &Run, name: &str) -> ServiceReport {
    let queued = Instant::now();
    let mut timeline = Timeline::default();
    let report = |action, outcome, ready_after, health_output, timeline| ServiceReport {
        service: name.to_owned(),
        action,
        outcome,
        ready_after,
        container: None,
        health_output,
        timeline,
    };
    let phase = &context.phases[name];
    // Wait for the dependencies' conditions.
    let mut blocked = None;
    for (dependency, condition) in &context.plan.dependencies[name] {
        let mut rx = context.phases[dependency].subscribe();
        let needed = match condition {
            Condition::Started => Phase::Started,
            Condition::Healthy | Condition::CompletedSuccessfully => Phase::Ready,
        };
        context
            .progress
            .phase(name, &format!("waiting for {dependency} ({condition})"));
        let reached = rx.wait_for(|p| *p >= needed).await.map(|p| *p);
        if !matches!(reached, Ok(Phase::Started | Phase::Ready)) {
            blocked = Some(format!("dependency {dependency} failed"));
            break;
        }
    }
    let touched = Instant::now();
    timeline.waited_on_dependencies_ms = offset(queued, touched);
    if let Some(reason) = blocked {
        phase.send_replace(Phase::Failed);
        context
            .progress
            .done(name, &format!("not started: {reason}"));
        return report(
            Action::Skipped,
            Outcome::Blocked(reason),
            None,
            None,
            timeline,
        );
    }
    let service = &context.stack.services[name];
    let result = converge(context, service, &mut timeline).await;
    let (action, id) = match result {
        Ok(done) => done,
        Err(err) => {
            phase.send_replace(Phase::Failed);
            let reason = format!("{err:#}");
            context.progress.done(name, &format!("failed: {reason}"));
            return report(
                Action::Skipped,
                Outcome::Failed(reason),
                None,
                None,
                timeline,
            );
        }
    };
    phase.send_replace(Phase::Started);
    let readiness = readiness::readiness_of(&context.stack, service);
    let observer = PhaseObserver {
        progress: &context.progress,
        service: name,
    };
    let waited = readiness::wait_ready(
        &context.engine,
        &id,
        service,
        readiness,
        context.deadline,
        if action == Action::Unchanged {
            Duration::ZERO
        } else {
            readiness::SETTLE
        },
        &observer,
    )
    .await;
    timeline.ready_ms = Some(offset(context.origin, Instant::now()));
    let waited = match waited {
        Ok(waited) => {
            timeline.first_probe_ms = waited.first_probe.map(|at| offset(context.origin, at));
            timeline.probes = waited.probes;
            Ok(waited.wait)
        }
        Err(err) => Err(err),
    };
    let waited = match (waited, context.hooks.get(name)) {
        (Ok(Wait::Ready), Some(hook)) => {
            context.progress.phase(name, "ready; bootstrapping");
            let done = hook().await;
            timeline.bootstrapped_ms = Some(offset(context.origin, Instant::now()));
            match done {
                Ok(()) => Ok(Wait::Ready),
                Err(err) => Ok(Wait::Failed {
                    reason: format!("{err:#}"),
                    health_output: None,
                }),
            }
        }
        (waited, _) => waited,
    };
    match waited {
        Ok(Wait::Ready) => {
            phase.send_replace(Phase::Ready);
            let after = touched.elapsed();
            let word = match readiness {
                Readiness::Healthy => "healthy",
                Readiness::Completed => "completed",
                Readiness::Running => "running",
                Readiness::RunningOrCompleted => "started",
            };
            // Unchanged and ready at first look: no time to report.
            let waited = action != Action::Unchanged || after > Duration::from_millis(250);
            let text = if waited {
                format!("{word} after {:.1}s", after.as_secs_f64())
            } else {
                format!("{word} (unchanged)")
            };
            context.progress.done(name, &text);
            let after = waited.then_some(after);
            report(action, Outcome::Ready, after, None, timeline)
        }
        Ok(Wait::Failed {
            reason,
            health_output,
        }) => {
            phase.send_replace(Phase::Failed);
            context.progress.done(name, &format!("failed: {reason}"));
            report(
                action,
                Outcome::Failed(reason),
                None,
                health_output,
                timeline,
            )
        }
        Err(err) => {
            phase.send_replace(Phase::Failed);
            let reason = format!("{err:#}");
            context.progress.done(name, &format!("failed: {reason}"));
            report(action, Outcome::Failed(reason), None, None, timeline)
        }
    }
}

/// Makes the service's container match its definition; what was done and the container id.
async fn converge(
    context: &Run,
    service: &Service,
    timeline: &mut Timeline,
) -> anyhow::Result<(Action, String)> {
    let mark = |at: Instant| Some(offset(context.origin, at));
    let api = context.engine.api();
    let image = service.image.clone().unwrap_or_default();
    let hash = service.config_hash(context.image_ids.get(&image).map(String::as_str));
    let one_shot = readiness::is_one_shot(&context.stack, service);
    let action = match context.existing.get(&service.name) {
        Some(existing) if existing.config_hash.as_deref() != Some(hash.as_str()) => {
            context
                .progress
                .phase(&service.name, "recreating (configuration changed)");
            remove(&context.engine, existing, service).await?;
            Action::Recreated
        }
        Some(existing) if existing.running() => {
            if existing.health.as_deref() == Some("unhealthy") {
                context
                    .progress
                    .phase(&service.name, "restarting (unhealthy)");
                let options = RestartContainerOptionsBuilder::default()
                    .t(grace(service))
                    .build();
                api.restart_container(&existing.id, Some(options))
                    .await
                    .with_context(|| format!("restarting {}", existing.name))?;
                timeline.started_ms = mark(Instant::now());
                return Ok((Action::Restarted, existing.id.clone()));
            }
            return Ok((Action::Unchanged, existing.id.clone()));
        }
        Some(existing)
            if one_shot && existing.state == "exited" && existing.exit_code == Some(0) =>
        {
            return Ok((Action::Unchanged, existing.id.clone()));
        }
        Some(existing) if existing.state == "restarting" => {
            return Ok((Action::Unchanged, existing.id.clone()));
        }
        Some(existing) => {
            context.progress.phase(&service.name, "starting");
            api.start_container(&existing.id, None::<StartContainerOptions>)
                .await
                .with_context(|| format!("starting {}", existing.name))?;
            timeline.started_ms = mark(Instant::now());
            return Ok((Action::Started, existing.id.clone()));
        }
        None => Action::Created,
    };
    context.progress.phase(&service.name, "creating");
    let name = context.stack.container_name(service, 1);
    let spec = container_spec(&context.stack, service, &hash);
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    let created = api
        .create_container(Some(options), spec.body)
        .await
        .with_context(|| format!("creating container {name}"))?;
    for (network, settings) in spec.extra_networks {
        api.connect_network(
            &network,
            NetworkConnectRequest {
                container: created.id.clone(),
                endpoint_config: Some(settings),
            },
        )
        .await
        .with_context(|| format!("connecting {name} to {network}"))?;
    }
    timeline.created_ms = mark(Instant::now());
    context.progress.phase(&service.name, "starting");
    api.start_container(&created.id, None::<StartContainerOptions>)
        .await
        .with_context(|| format!("starting container {name}"))?;
    timeline.started_ms = mark(Instant::now());
    Ok((action, created.id))
}

fn grace(service: &Service) -> i32 {
    service
        .stop_grace_period
        .map_or(10, |d| d.as_secs().min(600) as i32)
}

/// Stops (with the service's grace period) and removes a container.
pub async fn remove(
    engine: &Engine,
    container: &ContainerInfo,
    service: &Service,
) -> anyhow::Result<()> {
    remove_with_grace(engine, container, grace(service)).await
}

/// Stops and removes a container with its anonymous volumes: nothing could reach them once
/// the container is gone, and leaving them would leak one per recreation.
pub async fn remove_with_grace(
    engine: &Engine,
    container: &ContainerInfo,
    grace_secs: i32,
) -> anyhow::Result<()> {
    if container.running() {
        let options = StopContainerOptionsBuilder::default().t(grace_secs).build();
        // Already stopped or gone: removal below settles it.
        let _ = engine
            .api()
            .stop_container(&container.id, Some(options))
            .await;
    }
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match engine
        .api()
        .remove_container(&container.id, Some(options))
        .await
    {
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(err) => Err(err).with_context(|| format!("removing container {}", container.name)),
    }
}
