//! `finctl urls`.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

use crate::cli::{GlobalArgs, UrlsArgs};
use crate::printer::Printer;
use finctl_compose::{PortBinding, Service, Stack};
use finctl_error::ExitStatus;

#[derive(Debug, Serialize)]
pub(super) struct Endpoint {
    pub service: String,
    pub url: String,
    pub what: String,
}

pub async fn urls(
    global: &GlobalArgs,
    args: UrlsArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let stack = super::compose::load(global, &args.stack, printer).await?;
    let endpoints = endpoints(&stack);
    if printer.json() {
        printer.data(&serde_json::to_string_pretty(&endpoints)?);
        return Ok(ExitStatus::Success);
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_BORDERS_ONLY)
        .set_header(["service", "url", "what"]);
    for e in &endpoints {
        table.add_row([e.service.clone(), e.url.clone(), e.what.clone()]);
    }
    printer.data(&table.to_string());
    Ok(ExitStatus::Success)
}

/// Every published port of the enabled services, as a URL a client can use (ports nothing
/// serves are left out: see [`Service::served_ports`]).
pub(super) fn endpoints(stack: &Stack) -> Vec<Endpoint> {
    let mut endpoints = Vec::new();
    for service in stack.enabled_services() {
        for port in service.served_ports() {
            let Some(published) = port.published else {
                continue;
            };
            let host = client_host(port);
            let (url, what) = describe(service, port.target, host, published);
            endpoints.push(Endpoint {
                service: service.name.clone(),
                url,
                what,
            });
        }
    }
    endpoints
}

/// The address a client on this machine uses for a published port: its host IP, or loopback
/// when it is bound to every address.
pub(super) fn client_host(port: &PortBinding) -> &str {
    match port.host_ip.as_deref() {
        None | Some("" | "0.0.0.0" | "::") => "127.0.0.1",
        Some(ip) => ip,
    }
}

/// A URL that names a stack service (`http://keycloak:8080/...`), as reached from this machine:
/// through the port that service publishes. Other URLs are returned as they are.
pub(super) fn from_host(stack: &Stack, url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return url.to_owned();
    };
    let (Some(host), Some(port)) = (
        parsed.host_str().map(str::to_owned),
        parsed.port_or_known_default(),
    ) else {
        return url.to_owned();
    };
    let Some(binding) = stack.services.get(&host).and_then(|s| {
        s.ports
            .iter()
            .find(|p| p.target == port && p.published.is_some())
    }) else {
        return url.to_owned();
    };
    if parsed.set_host(Some(client_host(binding))).is_err()
        || parsed.set_port(binding.published).is_err()
    {
        return url.to_owned();
    }
    parsed.to_string()
}

/// A URL a client can use, by what listens on the container port.
fn describe(service: &Service, target: u16, host: &str, port: u16) -> (String, String) {
    let env = |key: &str| service.environment.get(key).cloned();
    match target {
        26257 | 5432 => (
            format!("postgresql://root@{host}:{port}/defaultdb"),
            "SQL (Postgres wire)".into(),
        ),
        6379 => (
            format!("redis://{host}:{port}"),
            "Redis (password: REDIS_PASSWORD)".into(),
        ),
        9092 | 19092 => (format!("{host}:{port}"), "Kafka bootstrap server".into()),
        8080 if service.name == "keycloak" => {
            let realm = env("IDP_ISSUER")
                .and_then(|i| i.split("/realms/").nth(1).map(str::to_owned))
                .unwrap_or_else(|| "innover".into());
            (
                format!("http://{host}:{port}/realms/{realm}"),
                "identity provider (OIDC)".into(),
            )
        }
        8280 => (
            format!("http://{host}:{port}/api/<service>/1.0.0/"),
            "API gateway".into(),
        ),
        _ if env("ADMIN_PORT").is_some_and(|p| p == target.to_string()) => (
            format!("http://{host}:{port}/admin/apis"),
            "gateway admin API (GATEWAY_ADMIN_TOKEN), /metrics".into(),
        ),
        8000 => (format!("http://{host}:{port}/health"), "service API".into()),
        _ => (
            format!("http://{host}:{port}"),
            format!("container port {target}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use finctl_compose::Project;
    use finctl_compose::{LoadOptions, load};

    fn project_endpoints(offline: bool) -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let project = Project::locate(Some(&root)).unwrap();
        let stack = load(&LoadOptions::for_project(&project, offline, &[])).unwrap();
        endpoints(&stack).into_iter().map(|e| e.url).collect()
    }

    #[test]
    fn offline_urls_leave_out_ports_nothing_serves() {
        let upstream = project_endpoints(false);
        assert!(upstream.iter().any(|u| u.contains(":8082")), "{upstream:?}");
        assert!(
            upstream.iter().any(|u| u.contains(":19092")),
            "{upstream:?}"
        );

        let offline = project_endpoints(true);
        assert!(!offline.iter().any(|u| u.contains(":8082")), "{offline:?}");
        assert!(!offline.iter().any(|u| u.contains(":19092")), "{offline:?}");
        for kept in [
            "postgresql://root@127.0.0.1:26257/defaultdb",
            "127.0.0.1:9092",
            "redis://127.0.0.1:6379",
        ] {
            assert!(offline.iter().any(|u| u == kept), "{kept} in {offline:?}");
        }
        assert_eq!(
            offline.iter().filter(|u| u.contains(":800")).count(),
            6,
            "one URL per domain service: {offline:?}"
        );
    }
}
