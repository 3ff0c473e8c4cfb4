//! One throwaway container: published on 127.0.0.1 only, waited for by running its readiness
//! check until it passes, removed (with its anonymous volumes) on drop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, HealthConfig, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StartContainerOptions, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;

use finctl_engine::{Engine, run_probe};

/// Between two runs of the readiness check while waiting.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// One run of the readiness check.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A port that is free on 127.0.0.1 right now (for services that must know it before start).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

pub struct ContainerBuilder {
    role: String,
    image: String,
    ports: Vec<(u16, Option<u16>)>,
    env: Vec<String>,
    command: Option<Vec<String>>,
    probe: Option<Vec<String>>,
}

impl ContainerBuilder {
    /// Publishes `container_port` on a Docker-chosen 127.0.0.1 port.
    pub fn port(mut self, container_port: u16) -> Self {
        self.ports.push((container_port, None));
        self
    }

    /// Publishes `container_port` on 127.0.0.1:`host_port`.
    pub fn fixed_port(mut self, container_port: u16, host_port: u16) -> Self {
        self.ports.push((container_port, Some(host_port)));
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push(format!("{name}={value}"));
        self
    }

    pub fn command(mut self, args: &[&str]) -> Self {
        self.command = Some(args.iter().map(|s| s.to_string()).collect());
        self
    }

    /// The readiness check that [`Container::wait_healthy`] runs in the container (as
    /// `docker exec` would) every 250 ms until it exits 0.
    pub fn health(mut self, test: &[&str]) -> Self {
        self.probe = Some(test.iter().map(|s| s.to_string()).collect());
        self
    }

    pub async fn start(self) -> anyhow::Result<Container> {
        let engine = Engine::connect().await?;
        let recipe = self
            .image
            .split(['/', ':'])
            .nth(1)
            .unwrap_or(&self.role)
            .to_string();
        crate::images::ensure(&engine, &recipe, &self.image).await?;
        let name = format!(
            "finctl-test-{}-{}-{}",
            self.role,
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut bindings = HashMap::new();
        let mut exposed = Vec::new();
        for (container_port, host_port) in &self.ports {
            let key = format!("{container_port}/tcp");
            exposed.push(key.clone());
            bindings.insert(
                key,
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(host_port.map(|p| p.to_string()).unwrap_or_default()),
                }]),
            );
        }
        let body = ContainerCreateBody {
            image: Some(self.image.clone()),
            env: Some(self.env.clone()),
            cmd: self.command.clone(),
            exposed_ports: Some(exposed),
            labels: Some(HashMap::from([(
                crate::TEST_LABEL.to_string(),
                std::process::id().to_string(),
            )])),
            // The readiness check is run by `wait_healthy` until it passes, and never again:
            // Docker's own healthcheck would go on forever, and at a test's pace (checks every
            // 250 ms; engines before API 1.44 cannot slow down once healthy) sixteen processes
            // a second across a test's containers, the IdP's a Python interpreter, stall a
            // 2-core machine. The image's healthcheck is off for the same reason.
            healthcheck: self.probe.as_ref().map(|_| HealthConfig {
                test: Some(vec!["NONE".to_string()]),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                port_bindings: Some(bindings),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let created = engine.api().create_container(Some(options), body).await?;
        let container = Container {
            engine,
            id: created.id,
            name,
            ports: HashMap::new(),
            probe: self.probe,
        };
        container
            .engine
            .api()
            .start_container(&container.id, None::<StartContainerOptions>)
            .await?;
        let mut container = container;
        container.refresh_ports().await?;
        Ok(container)
    }
}

pub struct Container {
    engine: Engine,
    id: String,
    name: String,
    ports: HashMap<u16, u16>,
    /// The readiness check given to [`ContainerBuilder::health`].
    probe: Option<Vec<String>>,
}

impl Container {
    pub fn builder(role: &str, image: &str) -> ContainerBuilder {
        ContainerBuilder {
            role: role.into(),
            image: image.into(),
            ports: vec![],
            env: vec![],
            command: None,
            probe: None,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The 127.0.0.1 port a container port is published on.
    pub fn host_port(&self, container_port: u16) -> u16 {
        self.ports
            .get(&container_port)
            .copied()
            .unwrap_or_else(|| panic!("port {container_port} is not published by {}", self.name))
    }

    async fn refresh_ports(&mut self) -> anyhow::Result<()> {
        let inspect = self.engine.api().inspect_container(&self.id, None).await?;
        let ports = inspect
            .network_settings
            .and_then(|n| n.ports)
            .unwrap_or_default();
        for (key, bindings) in ports {
            let Some(container_port) = key.split('/').next().and_then(|p| p.parse().ok()) else {
                continue;
            };
            if let Some(host_port) = bindings
                .into_iter()
                .flatten()
                .find_map(|b| b.host_port.and_then(|p| p.parse().ok()))
            {
                self.ports.insert(container_port, host_port);
            }
        }
        Ok(())
    }

    /// Waits until the readiness check passes; on timeout or exit, fails with its logs and
    /// the check's last output.
    pub async fn wait_healthy(&self, timeout: Duration) -> anyhow::Result<()> {
        let probe = self
            .probe
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("{} has no readiness check", self.name))?;
        let started = Instant::now();
        loop {
            let inspect = self.engine.api().inspect_container(&self.id, None).await?;
            let state = inspect.state.unwrap_or_default();
            if state.running != Some(true) {
                anyhow::bail!(
                    "{} exited ({:?}) before it was healthy; logs:\n{}",
                    self.name,
                    state.exit_code,
                    self.logs().await
                );
            }
            // An exec that cannot start (the container just exited) is a failed check; the
            // next round reports the exit.
            let (code, output) = run_probe(&self.engine, &self.id, probe, PROBE_TIMEOUT)
                .await
                .unwrap_or_else(|e| (None, e.to_string()));
            if code == Some(0) {
                return Ok(());
            }
            if started.elapsed() > timeout {
                anyhow::bail!(
                    "{} not healthy after {timeout:?} (last check: {}); logs:\n{}",
                    self.name,
                    if output.is_empty() {
                        "no output"
                    } else {
                        &output
                    },
                    self.logs().await
                );
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    /// The container's stdout and stderr so far.
    pub async fn logs(&self) -> String {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail("200")
            .build();
        let mut stream = self.engine.api().logs(&self.id, Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&chunk.to_string());
        }
        text
    }

    /// Stops the container (SIGTERM, then SIGKILL after `grace`); `start` brings it back.
    pub async fn stop(&self, grace: Duration) -> anyhow::Result<()> {
        let options = StopContainerOptionsBuilder::default()
            .t(grace.as_secs() as i32)
            .build();
        self.engine
            .api()
            .stop_container(&self.id, Some(options))
            .await?;
        Ok(())
    }

    /// Kills the container's main process with SIGKILL.
    pub async fn kill(&self) -> anyhow::Result<()> {
        let options = KillContainerOptionsBuilder::default()
            .signal("SIGKILL")
            .build();
        self.engine
            .api()
            .kill_container(&self.id, Some(options))
            .await?;
        Ok(())
    }

    pub async fn start(&self) -> anyhow::Result<()> {
        self.engine
            .api()
            .start_container(&self.id, None::<StartContainerOptions>)
            .await?;
        Ok(())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        remove_blocking(self.engine.api(), &self.id);
    }
}

/// Force-removes a container and its anonymous volumes from a `Drop`, which cannot await: on a
/// thread of its own, so it works inside or outside a runtime.
pub fn remove_blocking(docker: &bollard::Docker, id: &str) {
    let docker = docker.clone();
    let id = id.to_string();
    let _ = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            let options = RemoveContainerOptionsBuilder::default()
                .force(true)
                .v(true)
                .build();
            let _ = docker.remove_container(&id, Some(options)).await;
        });
    })
    .join();
}
