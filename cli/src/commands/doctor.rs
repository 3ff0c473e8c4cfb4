//! `finctl doctor`: can this machine run the stack? One line per check, a hint per failure.

use std::collections::HashMap;
use std::net::TcpListener;

use bollard::query_parameters::ListContainersOptionsBuilder;
use serde::Serialize;

use crate::cli::{DoctorArgs, GlobalArgs};
use crate::printer::Printer;
use finctl_compose::{Stack, format_bytes};
use finctl_engine::Engine;
use finctl_error::ExitStatus;
use finctl_orchestrate::labels;

/// Below this much free space where Docker keeps its data, images and volumes will not fit.
const MIN_FREE_DISK: u64 = 2 * 1024 * 1024 * 1024;

#[derive(Debug, Serialize)]
struct Check {
    check: String,
    ok: bool,
    detail: String,
    hint: Option<String>,
}

impl Check {
    fn pass(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            ok: true,
            detail: detail.into(),
            hint: None,
        }
    }

    fn fail(check: impl Into<String>, detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            ok: false,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }
}

pub async fn doctor(
    global: &GlobalArgs,
    args: DoctorArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let DoctorArgs { stack: stack_args } = args;
    let stack = super::compose::load(global, &stack_args, printer).await?;
    let mut checks = Vec::new();
    match Engine::connect().await {
        Err(err) => checks.push(Check::fail(
            "docker",
            err.message.clone(),
            err.hint.clone().unwrap_or_default(),
        )),
        Ok(engine) => {
            checks.push(Check::pass(
                "docker",
                format!(
                    "engine {}, API {}",
                    engine.server_version(),
                    engine.api_version()
                ),
            ));
            let info = engine.api().info().await.ok();
            checks.push(memory(&stack, info.as_ref().and_then(|i| i.mem_total)));
            checks.extend(ports(&engine, &stack).await);
            checks.extend(images(&engine, &stack).await);
            checks.push(disk(
                info.as_ref()
                    .and_then(|i| i.docker_root_dir.clone())
                    .unwrap_or_else(|| "/var/lib/docker".into()),
            ));
        }
    }
    let ok = checks.iter().all(|c| c.ok);
    if printer.json() {
        printer.data(&serde_json::to_string_pretty(&checks)?);
    } else {
        for c in &checks {
            let mark = if c.ok { "✓" } else { "✗" };
            printer.data(&format!("{mark} {}: {}", c.check, c.detail));
            if let Some(hint) = &c.hint {
                printer.data(&format!("  hint: {hint}"));
            }
        }
    }
    Ok(if ok {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// The sum of the enabled services' memory limits against what Docker can use.
fn memory(stack: &Stack, total: Option<i64>) -> Check {
    let limits: u64 = stack
        .enabled_services()
        .filter_map(|s| s.resources.memory_bytes)
        .sum();
    let Some(total) = total.and_then(|t| u64::try_from(t).ok()) else {
        return Check::fail(
            "memory",
            "the engine did not report its memory",
            "check `docker info`",
        );
    };
    let detail = format!(
        "{} available to Docker, the stack's limits add up to {}",
        format_bytes(total),
        format_bytes(limits)
    );
    if limits <= total {
        Check::pass("memory", detail)
    } else {
        Check::fail(
            "memory",
            detail,
            "give Docker more memory, or start fewer services (`finctl up SERVICE...`, fewer --profile)",
        )
    }
}

/// Each published host port: free, or held by this stack's own container.
async fn ports(engine: &Engine, stack: &Stack) -> Vec<Check> {
    let containers = published_by_containers(engine).await;
    let mut checks = Vec::new();
    for service in stack.enabled_services() {
        for port in &service.ports {
            let Some(published) = port.published else {
                continue;
            };
            if port.protocol != "tcp" {
                continue;
            }
            let host = match port.host_ip.as_deref() {
                None | Some("") => "0.0.0.0",
                Some(ip) => ip,
            };
            let name = format!("port {host}:{published}");
            let held = TcpListener::bind((host, published)).is_err();
            if !held {
                checks.push(Check::pass(name, format!("free (for {})", service.name)));
                continue;
            }
            match containers.get(&published) {
                Some((container, project)) if *project == stack.project_name => {
                    checks.push(Check::pass(
                        name,
                        format!("held by this stack's {container}"),
                    ));
                }
                Some((container, _)) => checks.push(Check::fail(
                    name,
                    format!(
                        "taken by container {container} (needed by {})",
                        service.name
                    ),
                    format!(
                        "stop it (`docker stop {container}`) or change the port in the compose file"
                    ),
                )),
                None => {
                    let holder = listening_process(published)
                        .unwrap_or_else(|| "a process this user cannot see".into());
                    checks.push(Check::fail(
                        name,
                        format!("taken by {holder} (needed by {})", service.name),
                        "stop that process or change the port in the compose file",
                    ));
                }
            }
        }
    }
    checks
}

/// Host port -> (container name, its Compose project) for every running container.
async fn published_by_containers(engine: &Engine) -> HashMap<u16, (String, String)> {
    let options = ListContainersOptionsBuilder::default().build();
    let Ok(summaries) = engine.api().list_containers(Some(options)).await else {
        return HashMap::new();
    };
    let mut map = HashMap::new();
    for summary in summaries {
        let name = summary
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_default();
        let project = summary
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::PROJECT).cloned())
            .unwrap_or_default();
        for port in summary.ports.iter().flatten() {
            if let Some(public) = port.public_port {
                map.insert(public, (name.clone(), project.clone()));
            }
        }
    }
    map
}

/// "nginx (pid 812)" for the process listening on `port`, from /proc.
fn listening_process(port: u16) -> Option<String> {
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| listening_inode(line, port))
                .collect::<Vec<_>>()
        })
        .collect();
    if inodes.is_empty() {
        return None;
    }
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = proc_entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            if inodes.iter().any(|i| target == format!("socket:[{i}]")) {
                let comm = std::fs::read_to_string(proc_entry.path().join("comm"))
                    .map(|c| c.trim().to_owned())
                    .unwrap_or_else(|_| "?".into());
                return Some(format!("{comm} (pid {pid})"));
            }
        }
    }
    None
}

/// The socket inode of a /proc/net/tcp line when it is a listener on `port`.
fn listening_inode(line: &str, port: u16) -> Option<String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let local = fields.get(1)?;
    let local_port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
    // 0A: TCP_LISTEN.
    (local_port == port && *fields.get(3)? == "0A")
        .then(|| fields.get(9).map(|s| (*s).to_owned()))?
}

/// Every image the enabled services use is present locally.
async fn images(engine: &Engine, stack: &Stack) -> Vec<Check> {
    let mut images: Vec<&str> = stack
        .enabled_services()
        .filter_map(|s| s.image.as_deref())
        .collect();
    images.sort_unstable();
    images.dedup();
    let mut checks = Vec::new();
    for image in images {
        let name = format!("image {image}");
        match engine.api().inspect_image(image).await {
            Ok(_) => checks.push(Check::pass(name, "present")),
            Err(_) => checks.push(Check::fail(
                name,
                "missing",
                "build it: `finctl images build --offline` (or `finctl up --build`)",
            )),
        }
    }
    checks
}

/// Free space on the filesystem holding Docker's data.
fn disk(root: String) -> Check {
    let name = "disk";
    match free_bytes(&root) {
        Some(free) if free >= MIN_FREE_DISK => {
            Check::pass(name, format!("{} free at {root}", format_bytes(free)))
        }
        Some(free) => Check::fail(
            name,
            format!(
                "only {} free at {root} (want {})",
                format_bytes(free),
                format_bytes(MIN_FREE_DISK)
            ),
            "free space: `docker system prune`, or `finctl nuke` for this stack",
        ),
        None => Check::fail(
            name,
            format!("cannot read free space at {root}"),
            "check that the Docker data directory exists and is readable",
        ),
    }
}

fn free_bytes(path: &str) -> Option<u64> {
    let c_path = std::ffi::CString::new(path).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: c_path is a valid NUL-terminated string and stat points to writable memory
    // of the right type; statvfs fills it completely when it returns 0.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so the struct is initialised.
    let stat = unsafe { stat.assume_init() };
    #[allow(clippy::unnecessary_cast)]
    Some(stat.f_bavail as u64 * stat.f_frsize as u64)
}
