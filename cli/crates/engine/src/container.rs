//! What exists in Docker for a Compose project: its containers, as the labels say.

use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::ListContainersOptionsBuilder;
use futures_util::future::join_all;
use serde::Serialize;

use crate::Engine;
use crate::error::{ApiResultExt, EngineError};
use crate::labels;

/// One container of the project, from `inspect`.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub service: String,
    /// Docker's state: created, running, restarting, exited, paused, dead.
    pub state: String,
    /// healthy, unhealthy, starting; `None` without a healthcheck.
    pub health: Option<String>,
    pub exit_code: Option<i64>,
    /// How often Docker's restart policy restarted it.
    pub restart_count: i64,
    pub config_hash: Option<String>,
    /// Published ports, `127.0.0.1:6379->6379/tcp`.
    pub ports: Vec<String>,
    /// The output of Docker's last healthcheck run, if any.
    pub last_health_output: Option<String>,
    /// Its addresses on the stack's networks (where a port can be tried from the host).
    #[serde(skip)]
    pub addresses: Vec<std::net::IpAddr>,
}

impl ContainerInfo {
    pub fn from_inspect(inspect: ContainerInspectResponse) -> Self {
        let labels = inspect
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        let state = inspect.state.clone().unwrap_or_default();
        let health = state.health.as_ref();
        let mut ports: Vec<String> = inspect
            .network_settings
            .as_ref()
            .and_then(|n| n.ports.clone())
            .unwrap_or_default()
            .into_iter()
            .flat_map(|(key, bindings)| {
                bindings.unwrap_or_default().into_iter().map(move |b| {
                    format!(
                        "{}:{}->{key}",
                        b.host_ip.unwrap_or_default(),
                        b.host_port.unwrap_or_default()
                    )
                })
            })
            .collect();
        ports.sort();
        let addresses = inspect
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .map(|networks| {
                networks
                    .values()
                    .filter_map(|n| n.ip_address.as_deref()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        Self {
            id: inspect.id.clone().unwrap_or_default(),
            name: inspect
                .name
                .clone()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            service: labels.get(labels::SERVICE).cloned().unwrap_or_default(),
            state: state
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".to_owned()),
            health: health
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none"),
            exit_code: state.exit_code,
            restart_count: inspect.restart_count.unwrap_or(0),
            config_hash: labels.get(labels::CONFIG_HASH).cloned(),
            ports,
            last_health_output: health
                .and_then(|h| h.log.as_ref())
                .and_then(|log| log.last())
                .and_then(|r| r.output.clone()),
            addresses,
        }
    }

    pub fn running(&self) -> bool {
        self.state == "running"
    }
}

/// Every container labelled with `project` (running or not), inspected.
pub async fn project_containers(
    engine: &Engine,
    project: &str,
) -> Result<Vec<ContainerInfo>, EngineError> {
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&labels::project_filter(project))
        .build();
    let summaries = engine
        .api()
        .list_containers(Some(options))
        .await
        .what(|| format!("listing the containers of project {project}"))?;
    let inspected = join_all(summaries.iter().filter_map(|s| s.id.as_deref()).map(|id| {
        let api = engine.api().clone();
        async move { api.inspect_container(id, None).await }
    }))
    .await;
    let mut containers: Vec<ContainerInfo> = inspected
        .into_iter()
        // A container removed between list and inspect is simply gone.
        .filter_map(Result::ok)
        .map(ContainerInfo::from_inspect)
        .collect();
    containers.sort_by(|a, b| a.service.cmp(&b.service).then(a.name.cmp(&b.name)));
    Ok(containers)
}

/// One container by id or name; `None` when it does not exist.
pub async fn inspect(engine: &Engine, id: &str) -> Result<Option<ContainerInfo>, EngineError> {
    match engine.api().inspect_container(id, None).await {
        Ok(inspect) => Ok(Some(ContainerInfo::from_inspect(inspect))),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(err) => Err(err).what(|| format!("inspecting container {id}")),
    }
}

/// The last `lines` lines of a container's output, stdout and stderr together.
pub async fn tail_logs(engine: &Engine, id: &str, lines: usize) -> String {
    use futures_util::StreamExt;
    let options = bollard::query_parameters::LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&lines.to_string())
        .build();
    let mut stream = engine.api().logs(id, Some(options));
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    text
}
