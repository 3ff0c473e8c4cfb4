//! The stack as it is now, one row per service: what `ps` and `health` print.

use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;

use crate::readiness::{self, Readiness};
use finctl_compose::Stack;
use finctl_engine::Engine;
use finctl_engine::{self as inventory, ContainerInfo};

/// One service's state. This is the `--json` schema of `ps` and `health` (an array of these).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ServiceStatus {
    /// The Compose service name.
    pub service: String,
    /// The container name, `null` when there is none.
    pub container: Option<String>,
    /// `missing` (no container), or Docker's state: created, running, restarting, paused,
    /// exited, dead.
    pub state: String,
    /// healthy, unhealthy, starting, or `none` (no healthcheck).
    pub health: String,
    /// The exit code once the container has stopped, else `null`.
    pub exit_code: Option<i64>,
    /// Published ports, `127.0.0.1:6379->6379/tcp`.
    pub ports: Vec<String>,
    /// A one-shot job (done when it exited 0).
    pub one_shot: bool,
    /// Whether the service is as it should be: running and healthy (or without
    /// healthcheck), or a one-shot that exited 0.
    pub ok: bool,
}

/// The status of every enabled service, plus containers of the project whose service is not
/// enabled (or no longer defined), in service order.
///
/// A container Docker still calls `starting` (its healthcheck has not run since the service
/// became ready, which with a 30 s interval is common right after `up`) has its healthcheck
/// run now, so the answer is current rather than up to one interval old.
pub async fn statuses(engine: &Engine, stack: &Stack) -> anyhow::Result<Vec<ServiceStatus>> {
    let containers = inventory::project_containers(engine, &stack.project_name).await?;
    let mut rows = rows(stack, &containers);
    let probes = rows.iter().enumerate().filter_map(|(index, row)| {
        let container = row.container.clone()?;
        let check = stack.services.get(&row.service)?.healthcheck.as_ref()?;
        let cmd = check.exec_command()?;
        let timeout = check.timeout_or_default().min(PROBE_TIMEOUT);
        (row.health == "starting").then_some(async move {
            let passed = matches!(
                finctl_engine::run_probe(engine, &container, &cmd, timeout).await,
                Ok((Some(0), _))
            );
            (index, passed)
        })
    });
    for (index, passed) in join_all(probes).await {
        if passed {
            rows[index].health = "healthy".into();
            rows[index].ok = !rows[index].one_shot;
        }
    }
    Ok(rows)
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn rows(stack: &Stack, containers: &[ContainerInfo]) -> Vec<ServiceStatus> {
    let mut rows: Vec<ServiceStatus> = stack
        .enabled_services()
        .map(|service| {
            let readiness = readiness::readiness_of(stack, service);
            let wanted = stack.container_name(service, 1);
            let container = containers
                .iter()
                .find(|c| c.name == wanted)
                .or_else(|| containers.iter().find(|c| c.service == service.name));
            row(&service.name, container, readiness)
        })
        .collect();
    for container in containers {
        if !rows
            .iter()
            .any(|r| r.container.as_deref() == Some(&container.name))
        {
            rows.push(row(&container.service, Some(container), Readiness::Running));
        }
    }
    rows.sort_by(|a, b| a.service.cmp(&b.service));
    rows
}

fn row(service: &str, container: Option<&ContainerInfo>, readiness: Readiness) -> ServiceStatus {
    let one_shot = matches!(
        readiness,
        Readiness::Completed | Readiness::RunningOrCompleted
    );
    let Some(c) = container else {
        return ServiceStatus {
            service: service.to_owned(),
            container: None,
            state: "missing".into(),
            health: "none".into(),
            exit_code: None,
            ports: Vec::new(),
            one_shot,
            ok: false,
        };
    };
    // A stopped container's last health verdict is history, not its health.
    let health = match &c.health {
        Some(h) if c.running() => h.clone(),
        _ => "none".into(),
    };
    let completed = c.state == "exited" && c.exit_code == Some(0);
    let serving = c.running() && (health == "healthy" || health == "none");
    let ok = match readiness {
        Readiness::Completed => completed,
        Readiness::RunningOrCompleted => completed || serving,
        Readiness::Running | Readiness::Healthy => serving,
    };
    ServiceStatus {
        service: service.to_owned(),
        container: Some(c.name.clone()),
        state: c.state.clone(),
        health,
        exit_code: (!c.running()).then_some(c.exit_code).flatten(),
        ports: c.ports.clone(),
        one_shot,
        ok,
    }
}

/// How the project's running stack was started, as `up` recorded it on its containers: the
/// Compose files (`com.docker.compose.project.config_files`), the project folder
/// (`com.docker.compose.project.working_dir`) and the profiles (finctl's own label).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StartedWith {
    /// In order, without repeats (`-` when the file came from stdin).
    pub files: Vec<String>,
    pub working_dir: Option<String>,
    /// `None` when the containers predate the label.
    pub profiles: Option<Vec<String>>,
}

/// What the project's containers say about how they were started; `None` when nothing of
/// the project exists. Containers of several `up`s from the same folder are merged (newest
/// first): files and profiles in the order first seen; containers left by an `up` from another
/// folder (another checkout) are not mixed in.
pub async fn started_with(engine: &Engine, project: &str) -> anyhow::Result<Option<StartedWith>> {
    let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&finctl_engine::labels::project_filter(project))
        .build();
    let mut summaries = engine.api().list_containers(Some(options)).await?;
    summaries.sort_by_key(|s| std::cmp::Reverse(s.created.unwrap_or_default()));
    let labels = summaries.iter().filter_map(|s| s.labels.as_ref());
    Ok(merge_labels(labels))
}

fn merge_labels<'a>(
    labels: impl Iterator<Item = &'a std::collections::HashMap<String, String>>,
) -> Option<StartedWith> {
    use finctl_engine::labels::{CONFIG_FILES, PROFILES, WORKING_DIR};
    let mut started: Option<StartedWith> = None;
    for labels in labels {
        if let Some(first) = &started
            && let (Some(dir), Some(first_dir)) = (labels.get(WORKING_DIR), &first.working_dir)
            && dir != first_dir
        {
            continue;
        }
        let started = started.get_or_insert_with(StartedWith::default);
        let list = |name: &str| {
            labels.get(name).map(|value| {
                value
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
        };
        for file in list(CONFIG_FILES).unwrap_or_default() {
            if !started.files.contains(&file) {
                started.files.push(file);
            }
        }
        if started.working_dir.is_none() {
            started.working_dir = labels.get(WORKING_DIR).cloned();
        }
        if let Some(profiles) = list(PROFILES) {
            let known = started.profiles.get_or_insert_with(Vec::new);
            for profile in profiles {
                if !known.contains(&profile) {
                    known.push(profile);
                }
            }
        }
    }
    started
}

/// The Compose files the project's containers were created from, in order, without
/// repeats; empty when nothing of the project exists.
pub async fn config_files(engine: &Engine, project: &str) -> anyhow::Result<Vec<String>> {
    Ok(started_with(engine, project)
        .await?
        .map(|s| s.files)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use finctl_compose::{LoadOptions, load};

    fn container(
        service: &str,
        state: &str,
        health: Option<&str>,
        exit: Option<i64>,
    ) -> ContainerInfo {
        ContainerInfo {
            id: format!("id-{service}"),
            name: format!("demo_{service}_1"),
            service: service.into(),
            state: state.into(),
            health: health.map(str::to_owned),
            exit_code: exit,
            restart_count: 0,
            config_hash: None,
            ports: Vec::new(),
            last_health_output: None,
            addresses: Vec::new(),
        }
    }

    #[test]
    fn ok_means_running_and_healthy_or_a_completed_one_shot() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("docker-compose.yml");
        std::fs::write(
            &file,
            r#"
services:
  db: {image: x, restart: always, healthcheck: {test: ["CMD", "true"]}}
  init: {image: x, restart: "no", depends_on: {db: {condition: service_healthy}}}
  app: {image: x, restart: always, depends_on: {init: {condition: service_completed_successfully}}}
  web: {image: x, restart: always}
  side: {image: x}
  task: {image: x}
  crashed: {image: x}
  extra: {image: x, profiles: [later]}
"#,
        )
        .unwrap();
        let stack = load(&LoadOptions {
            files: vec![file],
            profiles: Vec::new(),
            project_name: Some("demo".into()),
            working_dir: None,
            environment: BTreeMap::new(),
        })
        .unwrap();
        let containers = [
            container("db", "running", Some("unhealthy"), Some(0)),
            container("init", "exited", Some("unhealthy"), Some(0)),
            container("app", "exited", None, Some(1)),
            container("gone", "running", None, None),
            container("side", "running", None, None),
            container("task", "exited", None, Some(0)),
            container("crashed", "exited", None, Some(1)),
        ];
        let rows = rows(&stack, &containers);
        let get = |name: &str| rows.iter().find(|r| r.service == name).unwrap();
        assert!(!get("db").ok);
        assert_eq!(
            get("db").exit_code,
            None,
            "a running container has no exit code"
        );
        assert!(get("init").ok && get("init").one_shot);
        // Nothing waits on these and they may be tasks: running or exited 0 are both fine.
        assert!(get("side").ok && get("side").one_shot);
        assert!(get("task").ok);
        assert!(!get("crashed").ok);
        assert_eq!(
            get("init").health,
            "none",
            "a stopped container's health is history"
        );
        assert!(!get("app").ok);
        assert_eq!(get("app").exit_code, Some(1));
        assert_eq!(get("web").state, "missing");
        assert!(!get("web").ok);
        // Not enabled by the profiles and without a container: not listed.
        assert!(rows.iter().all(|r| r.service != "extra"));
        // A container of a service no longer in the file still shows.
        assert_eq!(get("gone").container.as_deref(), Some("demo_gone_1"));
    }

    #[test]
    fn started_with_merges_the_containers_labels_in_order() {
        use finctl_engine::labels::{CONFIG_FILES, PROFILES, WORKING_DIR};
        use std::collections::HashMap;
        let a = HashMap::from([
            (CONFIG_FILES.to_owned(), "/p/a.yml,/p/b.yml".to_owned()),
            (WORKING_DIR.to_owned(), "/p".to_owned()),
        ]);
        let b = HashMap::from([
            (CONFIG_FILES.to_owned(), "/p/a.yml,/p/c.yml".to_owned()),
            (PROFILES.to_owned(), "gateway,cluster".to_owned()),
        ]);
        let started = merge_labels([&a, &b].into_iter()).unwrap();
        assert_eq!(started.files, ["/p/a.yml", "/p/b.yml", "/p/c.yml"]);
        assert_eq!(started.working_dir.as_deref(), Some("/p"));
        assert_eq!(
            started.profiles,
            Some(vec!["gateway".to_owned(), "cluster".to_owned()])
        );
        // A container left by an `up` in another folder is not mixed in.
        let other = HashMap::from([
            (CONFIG_FILES.to_owned(), "/q/a.yml".to_owned()),
            (WORKING_DIR.to_owned(), "/q".to_owned()),
        ]);
        let started = merge_labels([&a, &other].into_iter()).unwrap();
        assert_eq!(started.files, ["/p/a.yml", "/p/b.yml"]);
        // Containers from before the profiles label: profiles unknown, not "none".
        assert_eq!(merge_labels([&a].into_iter()).unwrap().profiles, None);
        assert_eq!(merge_labels(std::iter::empty()), None);
    }
}
