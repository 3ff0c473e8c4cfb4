//! When a started container counts as ready, seen as soon as it is: the engine's events say
//! when the container's state changes (no polling) and, where the service has a
//! healthcheck, the check itself is run on demand through `exec` instead of waiting for
//! Docker's next interval.

use std::time::{Duration, Instant};

use futures_util::StreamExt;

use finctl_compose::{Condition, RestartPolicy, Service, Stack};
use finctl_engine::{self as inventory, ContainerInfo};
use finctl_engine::{Engine, run_probe};

const POLL: Duration = Duration::from_millis(100);

/// How long a just-started service without a healthcheck must stay up to count as started
/// successfully (so a process that dies at once fails `up` instead of passing it).
pub const SETTLE: Duration = Duration::from_secs(1);

/// What "ready" means for one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Running is enough (no healthcheck).
    Running,
    /// Its healthcheck passes.
    Healthy,
    /// A one-shot job: it exited 0.
    Completed,
    /// It may be a task or a server (`restart: "no"`, no healthcheck, no ports, and nothing
    /// waits for it to complete): ready once it has stayed up, or once it exited 0. A
    /// `sleep infinity` sidecar and a run-once script both pass, as with docker compose.
    RunningOrCompleted,
}

/// Something waits for it to complete (`service_completed_successfully`): a one-shot job.
fn awaited(stack: &Stack, service: &Service) -> bool {
    stack
        .services
        .values()
        .any(|s| s.depends_on.get(&service.name) == Some(&Condition::CompletedSuccessfully))
}

/// It restarts never and has neither a healthcheck nor published ports: it may be a task.
fn task_like(service: &Service) -> bool {
    service.restart == RestartPolicy::No && !service.has_healthcheck() && service.ports.is_empty()
}

/// A job that may run to completion: awaited, or task-like (see [`Readiness`]).
pub fn is_one_shot(stack: &Stack, service: &Service) -> bool {
    awaited(stack, service) || task_like(service)
}

pub fn readiness_of(stack: &Stack, service: &Service) -> Readiness {
    if awaited(stack, service) {
        Readiness::Completed
    } else if service.has_healthcheck() {
        Readiness::Healthy
    } else if task_like(service) {
        Readiness::RunningOrCompleted
    } else {
        Readiness::Running
    }
}

/// The exit code of a crash-looping container, seen while Docker waits to restart it (its
/// backoff starts at 100 ms and doubles), within 3 s.
async fn crash_exit_code(engine: &Engine, id: &str) -> Option<i64> {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(Some(info)) = inventory::inspect(engine, id).await
            && !info.running()
            && info.exit_code.is_some()
        {
            return info.exit_code;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// How waiting ended.
#[derive(Debug, Clone)]
pub enum Wait {
    Ready,
    Failed {
        reason: String,
        /// The output of the last healthcheck (ours or Docker's).
        health_output: Option<String>,
    },
}

/// The phase the caller shows while waiting.
pub trait Observer: Sync {
    fn waiting(&self, what: &str);
}

/// What waiting found, and when the first healthcheck ran (for `up`'s timeline).
#[derive(Debug, Clone)]
pub struct Waited {
    pub wait: Wait,
    pub first_probe: Option<Instant>,
    /// Healthchecks run on demand.
    pub probes: u32,
}

/// Without an event from Docker, the container is looked at again this often anyway (a
/// missed event costs at most this long, never the outcome).
const RECHECK: Duration = Duration::from_secs(1);

/// A failing healthcheck is run again after a short interval that grows by half each time
/// up to this, so a service that takes a while does not have its checks run back to back.
const MAX_PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// Waits until the container `id` of `service` is ready, or has failed, or `deadline` passed.
///
/// Driven by the engine's events for the container (start, die, health status, restart):
/// the container is inspected when one arrives rather than polled, so a one-shot's exit or
/// Docker's own health verdict is seen at once. Where the service has a healthcheck, it is
/// run on demand (once its served ports accept connections, when they can be tried), again
/// after 100 ms, then at an interval growing to [`MAX_PROBE_INTERVAL`].
pub async fn wait_ready(
    engine: &Engine,
    id: &str,
    service: &Service,
    readiness: Readiness,
    deadline: Instant,
    settle: Duration,
    observer: &dyn Observer,
) -> anyhow::Result<Waited> {
    let probe = service
        .healthcheck
        .as_ref()
        .and_then(|h| h.exec_command().map(|cmd| (cmd, h.timeout_or_default())));
    let mut events = container_events(engine, id);
    let mut events_alive = true;
    let mut last_output: Option<String> = None;
    let mut said = "";
    let mut restarts_before: Option<i64> = None;
    let mut running_since: Option<Instant> = None;
    let mut next_probe = Instant::now();
    let mut interval = POLL;
    let gate_ports: Vec<u16> = service.served_ports().map(|p| p.target).collect();
    let mut first_probe: Option<Instant> = None;
    let mut probes = 0;
    let mut info: Option<ContainerInfo> = None;
    let mut inspected = Instant::now();
    let mut changed = true;
    let finish = |wait, first_probe, probes| {
        Ok(Waited {
            wait,
            first_probe,
            probes,
        })
    };
    loop {
        let recheck = if events_alive { RECHECK } else { POLL };
        if changed || inspected.elapsed() >= recheck {
            info = inventory::inspect(engine, id).await?;
            inspected = Instant::now();
            changed = false;
            if info.is_none() {
                let wait = Wait::Failed {
                    reason: "its container was removed".into(),
                    health_output: last_output,
                };
                return finish(wait, first_probe, probes);
            }
        }
        let Some(current) = info.as_ref() else {
            unreachable!("inspected above");
        };
        let restarts = *restarts_before.get_or_insert(current.restart_count);
        if current.restart_count > restarts {
            // Docker resets the exit code when it starts the container again; a crash loop
            // shows it again within the restart backoff.
            let code = match current.exit_code {
                Some(code) if code != 0 || !current.running() => Some(code),
                _ => crash_exit_code(engine, id).await,
            };
            let code = code.map_or_else(|| "unknown".to_owned(), |c| c.to_string());
            let wait = Wait::Failed {
                reason: format!("it crashed (exit code {code}) and Docker keeps restarting it"),
                health_output: last_output,
            };
            return finish(wait, first_probe, probes);
        }
        let settling = matches!(
            readiness,
            Readiness::Running | Readiness::RunningOrCompleted
        ) && current.health.is_none()
            && current.running();
        // When to look again without an event: the next healthcheck, the end of settling,
        // the deadline, or the periodic recheck.
        let mut wake = deadline.min(inspected + recheck);
        match judge(current, readiness, &mut last_output) {
            Some(Wait::Ready) if settling && !settle.is_zero() => {
                let since = *running_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= settle {
                    return finish(Wait::Ready, first_probe, probes);
                }
                wake = wake.min(since + settle);
                if said != "settle" {
                    observer.waiting("started; checking that it stays up");
                    said = "settle";
                }
            }
            Some(done) => return finish(done, first_probe, probes),
            None => {}
        }
        if !settling && readiness != Readiness::Completed && current.running() {
            if said != "health" {
                observer.waiting("waiting for health");
                said = "health";
            }
            if let Some((cmd, timeout)) = probe.as_ref() {
                if Instant::now() >= next_probe {
                    match port_state(&current.addresses, &gate_ports).await {
                        // Nothing listens yet: try the ports again shortly, no check.
                        PortState::Refused => next_probe = Instant::now() + POLL,
                        PortState::Open | PortState::Unknown => {
                            let started = Instant::now();
                            first_probe.get_or_insert(started);
                            probes += 1;
                            let budget =
                                (*timeout).min(deadline.saturating_duration_since(started));
                            let result = run_probe(engine, id, cmd, budget).await;
                            if let Ok((code, output)) = result {
                                last_output = Some(output);
                                if code == Some(0) {
                                    return finish(Wait::Ready, first_probe, probes);
                                }
                            }
                            // A heavy check (a Python script, say) run back to back would
                            // take the CPU the starting service needs: at most a third of
                            // the time, and at a growing interval.
                            next_probe = Instant::now() + (started.elapsed() * 2).max(interval);
                            interval = (interval * 3 / 2).min(MAX_PROBE_INTERVAL);
                        }
                    }
                }
                wake = wake.min(next_probe);
            }
        } else if readiness == Readiness::Completed && said != "complete" {
            observer.waiting("running to completion");
            said = "complete";
        }
        if Instant::now() >= deadline {
            let wait = Wait::Failed {
                reason: format!(
                    "not ready in time (state {}, health {})",
                    current.state,
                    current.health.as_deref().unwrap_or("none")
                ),
                health_output: last_output.or_else(|| current.last_health_output.clone()),
            };
            return finish(wait, first_probe, probes);
        }
        tokio::select! {
            event = events.next(), if events_alive => match event {
                // Something happened to the container: look at it now.
                Some(Ok(_)) => changed = true,
                // The engine does not stream events (or stopped): poll instead.
                Some(Err(_)) | None => events_alive = false,
            },
            () = tokio::time::sleep_until(wake.into()) => {}
        }
    }
}

/// The engine's events for one container (start, die, health_status, restart, ...), from a
/// second before now so that nothing between the first look and the subscription is missed
/// (a replayed event costs one extra look).
fn container_events(
    engine: &Engine,
    id: &str,
) -> impl futures_util::Stream<Item = Result<bollard::models::EventMessage, bollard::errors::Error>>
+ Unpin
+ use<> {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_sub(Duration::from_secs(1));
    let filters = std::collections::HashMap::from([
        ("type".to_owned(), vec!["container".to_owned()]),
        ("container".to_owned(), vec![id.to_owned()]),
    ]);
    let options = bollard::query_parameters::EventsOptionsBuilder::default()
        .since(&format!("{}.{:09}", since.as_secs(), since.subsec_nanos()))
        .filters(&filters)
        .build();
    Box::pin(engine.api().events(Some(options)))
}

/// Whether a service that publishes ports can be serving yet, as its container's network
/// stack says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortState {
    /// One of its served ports accepts connections (or it has none: nothing to wait for).
    Open,
    /// Every one refused: nothing listens yet, so its healthcheck cannot pass and is not run.
    /// A server that binds its port once ready (the IdP does) is thus not probed in a loop
    /// while it starts, and its checks (a Python script there, run in its own CPU quota) do
    /// not take the CPU it needs. The ports are tried every poll, so readiness is still seen
    /// within about 100 ms of the bind; Docker's own healthcheck still counts meanwhile.
    Refused,
    /// The container cannot be reached from here (Docker Desktop, host networking): the
    /// healthcheck is run at its growing interval, as for a service without ports.
    Unknown,
}

async fn port_state(addresses: &[std::net::IpAddr], ports: &[u16]) -> PortState {
    if ports.is_empty() {
        return PortState::Open;
    }
    if addresses.is_empty() {
        return PortState::Unknown;
    }
    let attempts = addresses.iter().flat_map(|ip| {
        ports.iter().map(move |port| async move {
            let addr = std::net::SocketAddr::new(*ip, *port);
            match tokio::time::timeout(POLL / 2, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(_)) => PortState::Open,
                Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
                    PortState::Refused
                }
                _ => PortState::Unknown,
            }
        })
    });
    let states = futures_util::future::join_all(attempts).await;
    if states.contains(&PortState::Open) {
        PortState::Open
    } else if states.iter().all(|s| *s == PortState::Refused) {
        PortState::Refused
    } else {
        PortState::Unknown
    }
}

/// The verdict Docker's state already gives, if any.
fn judge(
    info: &ContainerInfo,
    readiness: Readiness,
    last_output: &mut Option<String>,
) -> Option<Wait> {
    let failed = |reason: String, last_output: &mut Option<String>| {
        Some(Wait::Failed {
            reason,
            health_output: last_output
                .take()
                .or_else(|| info.last_health_output.clone()),
        })
    };
    match info.state.as_str() {
        "exited" | "dead" => {
            let may_complete = matches!(
                readiness,
                Readiness::Completed | Readiness::RunningOrCompleted
            );
            if may_complete && info.exit_code == Some(0) {
                Some(Wait::Ready)
            } else {
                failed(
                    format!("it exited (exit code {})", info.exit_code.unwrap_or(-1)),
                    last_output,
                )
            }
        }
        // Docker's restart policy is bringing it back after a crash: report the crash now
        // rather than wait out the timeout while it loops.
        "restarting" => failed(
            format!(
                "it crashed (exit code {}) and Docker keeps restarting it",
                info.exit_code.unwrap_or(-1)
            ),
            last_output,
        ),
        // A service without a healthcheck of its own may inherit the image's: Docker's
        // verdict on it counts too.
        "running" => match (readiness, info.health.as_deref()) {
            (
                Readiness::Running | Readiness::RunningOrCompleted | Readiness::Healthy,
                Some("healthy"),
            ) => Some(Wait::Ready),
            (
                Readiness::Running | Readiness::RunningOrCompleted | Readiness::Healthy,
                Some("unhealthy"),
            ) => failed("its healthcheck fails (unhealthy)".into(), last_output),
            (Readiness::Running | Readiness::RunningOrCompleted, Some("starting"))
            | (Readiness::Healthy, _) => None,
            (Readiness::Running | Readiness::RunningOrCompleted, _) => Some(Wait::Ready),
            (Readiness::Completed, _) => None,
        },
        _ => None,
    }
}
