//! A service, as the Engine API's container-create body.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, Mount as DockerMount,
    MountType, NetworkingConfig, PortBinding as DockerPortBinding, RestartPolicy as DockerRestart,
    RestartPolicyNameEnum,
};

use crate::labels;
use finctl_compose::{MountSource, RestartPolicy, Service, Stack};

/// What creating one container takes: the body, and the networks to connect after creation
/// (API 1.41 accepts a single endpoint in the create call).
pub struct ContainerSpec {
    pub body: ContainerCreateBody,
    pub extra_networks: Vec<(String, EndpointSettings)>,
}

fn nanos(d: Option<std::time::Duration>) -> Option<i64> {
    d.map(|d| d.as_nanos() as i64)
}

pub fn container_spec(stack: &Stack, service: &Service, config_hash: &str) -> ContainerSpec {
    let mut port_bindings: HashMap<String, Option<Vec<DockerPortBinding>>> = HashMap::new();
    let mut exposed = Vec::new();
    for port in &service.ports {
        let key = port.container_port_key();
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        let binding = DockerPortBinding {
            host_ip: port.host_ip.clone(),
            host_port: Some(port.published.map(|p| p.to_string()).unwrap_or_default()),
        };
        port_bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    let mounts = service
        .volumes
        .iter()
        .map(|mount| {
            let (typ, source) = match &mount.source {
                MountSource::Volume(key) => (
                    MountType::VOLUME,
                    Some(
                        stack
                            .volumes
                            .get(key)
                            .map_or_else(|| key.clone(), |v| v.docker_name.clone()),
                    ),
                ),
                MountSource::Bind(path) => (MountType::BIND, Some(path.display().to_string())),
                MountSource::Anonymous => (MountType::VOLUME, None),
                MountSource::Tmpfs => (MountType::TMPFS, None),
            };
            DockerMount {
                target: Some(mount.target.clone()),
                source,
                typ: Some(typ),
                read_only: Some(mount.read_only),
                ..Default::default()
            }
        })
        .collect();
    let restart_policy = DockerRestart {
        name: Some(match service.restart {
            RestartPolicy::No => RestartPolicyNameEnum::NO,
            RestartPolicy::Always => RestartPolicyNameEnum::ALWAYS,
            RestartPolicy::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
            RestartPolicy::OnFailure { .. } => RestartPolicyNameEnum::ON_FAILURE,
        }),
        maximum_retry_count: match service.restart {
            RestartPolicy::OnFailure { max_retries } => max_retries.map(i64::from),
            _ => None,
        },
    };
    // Every network gets the service name as alias, so containers reach each other by it.
    let mut endpoints: Vec<(String, EndpointSettings)> = service
        .networks
        .iter()
        .map(|(key, aliases)| {
            let name = stack
                .networks
                .get(key)
                .map_or_else(|| key.clone(), |n| n.docker_name.clone());
            let mut all = vec![service.name.clone()];
            all.extend(aliases.iter().cloned());
            (
                name,
                EndpointSettings {
                    aliases: Some(all),
                    ..Default::default()
                },
            )
        })
        .collect();
    let first = if endpoints.is_empty() {
        None
    } else {
        Some(endpoints.remove(0))
    };
    let network_mode = service
        .network_mode
        .clone()
        .or_else(|| first.as_ref().map(|(name, _)| name.clone()));
    let healthcheck = service.healthcheck.as_ref().map(|h| HealthConfig {
        test: h.test.clone(),
        interval: nanos(h.interval),
        timeout: nanos(h.timeout),
        start_period: nanos(h.start_period),
        retries: h.retries.map(i64::from),
        start_interval: None,
    });
    let body = ContainerCreateBody {
        image: service.image.clone(),
        cmd: service.command.clone(),
        entrypoint: service.entrypoint.clone(),
        env: Some(
            service
                .environment
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
        ),
        user: service.user.clone(),
        working_dir: service.working_dir.clone(),
        hostname: service.hostname.clone(),
        stop_signal: service.stop_signal.clone(),
        stop_timeout: service.stop_grace_period.map(|d| d.as_secs() as i64),
        exposed_ports: Some(exposed),
        labels: Some(labels::container(stack, service, config_hash)),
        healthcheck,
        host_config: Some(HostConfig {
            port_bindings: Some(port_bindings),
            mounts: Some(mounts),
            restart_policy: Some(restart_policy),
            nano_cpus: service.resources.nano_cpus(),
            memory: service.resources.memory_bytes.map(|b| b as i64),
            memory_reservation: service.resources.memory_reservation_bytes.map(|b| b as i64),
            init: service.init,
            readonly_rootfs: Some(service.read_only),
            tmpfs: (!service.tmpfs.is_empty()).then(|| {
                service
                    .tmpfs
                    .iter()
                    .map(|t| match t.split_once(':') {
                        Some((path, opts)) => (path.to_owned(), opts.to_owned()),
                        None => (t.clone(), String::new()),
                    })
                    .collect()
            }),
            extra_hosts: (!service.extra_hosts.is_empty()).then(|| service.extra_hosts.clone()),
            network_mode,
            ..Default::default()
        }),
        networking_config: first.map(|(name, settings)| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(name, settings)])),
        }),
        ..Default::default()
    };
    ContainerSpec {
        body,
        extra_networks: endpoints,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use finctl_compose::{LoadOptions, load};

    fn stack(text: &str) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("docker-compose.yml");
        std::fs::write(&file, text).unwrap();
        load(&LoadOptions {
            files: vec![file],
            profiles: Vec::new(),
            project_name: Some("demo".into()),
            working_dir: None,
            environment: BTreeMap::new(),
        })
        .unwrap()
    }

    #[test]
    fn a_service_becomes_the_engine_api_body() {
        let stack = stack(
            r#"
services:
  db:
    image: finctl/postgres:offline
    entrypoint: ["/bin/sh", "-c"]
    command: ["exec postgres"]
    user: "999"
    environment:
      A: "1"
    ports:
      - "127.0.0.1:15432:5432"
      - "8080"
    volumes:
      - data:/var/lib/data
      - /tmp:/host:ro
    restart: on-failure:3
    deploy:
      resources:
        limits:
          cpus: "1.5"
          memory: 512M
    healthcheck:
      test: ["CMD", "true"]
      interval: 2s
      retries: 4
    networks:
      default:
        aliases: [database]
volumes:
  data:
"#,
        );
        let service = stack.service("db").unwrap();
        let spec = container_spec(&stack, service, "abc");
        let body = spec.body;
        assert_eq!(body.image.as_deref(), Some("finctl/postgres:offline"));
        assert_eq!(body.entrypoint, Some(vec!["/bin/sh".into(), "-c".into()]));
        assert_eq!(body.cmd, Some(vec!["exec postgres".into()]));
        assert_eq!(body.user.as_deref(), Some("999"));
        assert_eq!(body.env, Some(vec!["A=1".into()]));
        let labels = body.labels.unwrap();
        for (key, value) in [
            (labels::PROJECT, "demo"),
            (labels::SERVICE, "db"),
            (labels::CONTAINER_NUMBER, "1"),
            (labels::ONEOFF, "False"),
            (labels::CONFIG_HASH, "abc"),
            (labels::VERSION, "1.29.2"),
        ] {
            assert_eq!(labels.get(key).map(String::as_str), Some(value), "{key}");
        }
        assert!(labels.contains_key(labels::CONFIG_FILES));
        assert!(labels.contains_key(labels::WORKING_DIR));
        let health = body.healthcheck.unwrap();
        assert_eq!(health.test, Some(vec!["CMD".into(), "true".into()]));
        assert_eq!(health.interval, Some(2_000_000_000));
        assert_eq!(health.retries, Some(4));
        assert_eq!(health.timeout, None);

        let host = body.host_config.unwrap();
        assert_eq!(host.nano_cpus, Some(1_500_000_000));
        assert_eq!(host.memory, Some(512 * 1024 * 1024));
        let restart = host.restart_policy.unwrap();
        assert_eq!(restart.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(restart.maximum_retry_count, Some(3));
        let ports = host.port_bindings.unwrap();
        let db_port = ports["5432/tcp"].as_ref().unwrap();
        assert_eq!(db_port[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(db_port[0].host_port.as_deref(), Some("15432"));
        // No published port: Docker picks one.
        assert_eq!(
            ports["8080/tcp"].as_ref().unwrap()[0].host_port.as_deref(),
            Some("")
        );
        let mounts = host.mounts.unwrap();
        assert_eq!(mounts[0].source.as_deref(), Some("demo_data"));
        assert_eq!(mounts[0].typ, Some(MountType::VOLUME));
        assert_eq!(mounts[1].typ, Some(MountType::BIND));
        assert_eq!(mounts[1].read_only, Some(true));
        assert_eq!(host.network_mode.as_deref(), Some("demo_default"));

        let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(
            endpoints["demo_default"].aliases,
            Some(vec!["db".into(), "database".into()])
        );
        assert!(spec.extra_networks.is_empty());
    }
}
