//! `finctl publish-apis`, and the publishing `finctl up` does once the gateway is ready.

use std::path::PathBuf;

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

use crate::cli::{GlobalArgs, PublishArgs, PublishTarget};
use crate::printer::Printer;
use finctl_compose::{Project, Stack};
use finctl_error::{ExitStatus, UserError};
use finctl_publish::builtin::Builtin;
use finctl_publish::config::{self, Resolved};
use finctl_publish::kong::{Kong, KongConfig};
use finctl_publish::plan::{self, Action, Plan};
use finctl_publish::target::Target;
use finctl_publish::wso2::{Wso2, Wso2Config};

/// The Compose service that runs the built-in gateway.
pub(super) const GATEWAY_SERVICE: &str = "gateway";

#[derive(Debug, Serialize)]
struct Report<'a> {
    config: String,
    dry_run: bool,
    #[serde(flatten)]
    plan: &'a Plan,
    /// The ids changed, in order (empty with --dry-run).
    applied: Vec<String>,
}

pub async fn publish_apis(
    global: &GlobalArgs,
    args: PublishArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let resolved = load_config(global, args.config.clone())?;
    let mut target: Box<dyn Target> = match args.target {
        PublishTarget::Builtin => {
            let stack = super::compose::load(global, &args.stack, printer).await?;
            Box::new(builtin(&stack)?)
        }
        PublishTarget::Wso2 => Box::new(Wso2::new(Wso2Config::from_env())?),
        PublishTarget::Kong => {
            let stack = super::compose::load(global, &args.stack, printer).await?;
            Box::new(kong(&stack).await?)
        }
    };
    printer.status(&format!(
        "Publishing {} API(s) from {} to {} at {}",
        resolved.table.apis.len(),
        resolved.file.display(),
        target.name(),
        target.location()
    ));
    let remote = target.list().await?;
    let plan = Plan::new(target.as_ref(), &resolved.table.apis, &remote, args.prune);
    let mut applied = Vec::new();
    if !args.dry_run && plan.has_changes() {
        if !printer.json() {
            printer.data(&table(&plan));
        }
        applied = plan::apply(target.as_mut(), &plan, &mut |change| {
            printer.detail(&format!("  {} {}", past(change.action), change.id));
        })
        .await?;
    } else if !printer.json() {
        printer.data(&table(&plan));
    }
    if printer.json() {
        let report = Report {
            config: resolved.file.display().to_string(),
            dry_run: args.dry_run,
            plan: &plan,
            applied,
        };
        printer.data(&serde_json::to_string_pretty(&report)?);
    }
    notes(&plan, printer);
    if !plan.has_changes() {
        printer.status("Nothing to change: the gateway has every API as the file says.");
    } else if args.dry_run {
        printer.status(&format!(
            "Dry run: {}; nothing was changed.",
            plan.summary()
        ));
    } else {
        printer.status(&format!("Published: {}.", done_summary(&plan)));
    }
    Ok(ExitStatus::Success)
}

/// `finctl up`'s last step: the project's api-config.yaml to the built-in gateway, when the
/// stack has one and it is running. Prints one status line; a failure is the caller's to
/// report.
pub(super) async fn publish_after_up(
    global: &GlobalArgs,
    stack: &Stack,
    printer: &Printer,
) -> anyhow::Result<()> {
    let resolved = load_config(global, None)?;
    let mut target = builtin(stack)?;
    let remote = target.list().await?;
    let plan = Plan::new(&target, &resolved.table.apis, &remote, false);
    if !plan.has_changes() {
        printer.status(&format!(
            "APIs: the gateway has all {} of {} (nothing to publish).",
            resolved.table.apis.len(),
            file_name(&resolved)
        ));
        return Ok(());
    }
    plan::apply(&mut target, &plan, &mut |change| {
        printer.detail(&format!("  {} {}", past(change.action), change.id));
    })
    .await?;
    printer.status(&format!(
        "APIs published to the gateway from {}: {}.",
        file_name(&resolved),
        done_summary(&plan)
    ));
    notes(&plan, printer);
    Ok(())
}

fn file_name(resolved: &Resolved) -> String {
    resolved.file.file_name().map_or_else(
        || resolved.file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// `--config`, else api-config.yaml at the project's root; validated (exit 2 on a problem).
fn load_config(global: &GlobalArgs, explicit: Option<PathBuf>) -> anyhow::Result<Resolved> {
    let path = match explicit {
        Some(path) => path,
        None => Project::locate(global.project_dir.as_deref())?
            .root()
            .join(config::DEFAULT_FILE),
    };
    Ok(config::load(&path)?)
}

/// Whether `up` should publish: the stack runs the built-in gateway.
pub(super) fn has_gateway(stack: &Stack, started: &[String]) -> bool {
    started.iter().any(|s| s == GATEWAY_SERVICE)
        && stack
            .services
            .get(GATEWAY_SERVICE)
            .is_some_and(|s| s.environment.contains_key("ADMIN_PORT"))
}

/// The built-in gateway's admin API, as the stack publishes it: FINCTL_GATEWAY_ADMIN_URL, else
/// the gateway's published ADMIN_PORT; the token as the Compose file hands it to the gateway.
fn builtin(stack: &Stack) -> anyhow::Result<Builtin> {
    let service = stack.services.get(GATEWAY_SERVICE).ok_or_else(|| {
        UserError::config(
            format!("the stack has no `{GATEWAY_SERVICE}` service to publish to"),
            "use the project's compose/docker-compose.yml, or --target wso2|kong",
        )
    })?;
    let admin_url = match std::env::var(finctl_env::FINCTL_GATEWAY_ADMIN_URL) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let admin_port: u16 = service
                .environment
                .get("ADMIN_PORT")
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| {
                    UserError::config(
                        "the gateway service sets no ADMIN_PORT",
                        "set ADMIN_PORT in its environment, or FINCTL_GATEWAY_ADMIN_URL",
                    )
                })?;
            let port = service
                .ports
                .iter()
                .find(|p| p.target == admin_port && p.published.is_some())
                .ok_or_else(|| {
                    UserError::config(
                        format!("the gateway's admin port {admin_port} is not published"),
                        format!(
                            "publish it (ports: [\"127.0.0.1:{admin_port}:{admin_port}\"]) or set FINCTL_GATEWAY_ADMIN_URL"
                        ),
                    )
                })?;
            format!(
                "http://{}:{}",
                super::urls::client_host(port),
                port.published.unwrap_or(admin_port)
            )
        }
    };
    let token = service
        .environment
        .get(finctl_env::GATEWAY_ADMIN_TOKEN)
        .cloned()
        .unwrap_or_default();
    Builtin::new(admin_url, token)
}

/// Kong verifies tokens itself: it needs the issuer the tokens carry (as the stack's gateway is
/// told it, OIDC_ISSUER) and the IdP's keys, fetched from here through the IdP's published port.
async fn kong(stack: &Stack) -> anyhow::Result<Kong> {
    let issuer = stack
        .services
        .get(GATEWAY_SERVICE)
        .and_then(|s| s.environment.get("OIDC_ISSUER"))
        .cloned()
        .ok_or_else(|| {
            UserError::config(
                "the stack names no OIDC_ISSUER for the gateway",
                "publish-apis --target kong reads the issuer from the gateway service's OIDC_ISSUER",
            )
        })?;
    let discovery_url = format!(
        "{}/.well-known/openid-configuration",
        super::urls::from_host(stack, &issuer).trim_end_matches('/')
    );
    let discovery: serde_json::Value = async {
        reqwest::get(&discovery_url)
            .await?
            .error_for_status()?
            .json()
            .await
    }
    .await
    .map_err(|err| {
        UserError::failure(
            format!("cannot read the IdP's discovery document at {discovery_url}: {err}"),
            "start the stack (`finctl up --offline`): Kong gets the IdP's signing key from it",
        )
    })?;
    let jwks_uri = discovery["jwks_uri"].as_str().ok_or_else(|| {
        UserError::failure(
            format!("{discovery_url} names no jwks_uri"),
            "check the IdP's configuration",
        )
    })?;
    Kong::new(KongConfig::from_env(
        issuer.clone(),
        super::urls::from_host(stack, jwks_uri),
    ))
}

fn past(action: Action) -> &'static str {
    match action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Delete => "deleted",
        Action::Unchanged => "unchanged",
    }
}

/// `2 created, 1 updated, 3 unchanged`.
fn done_summary(plan: &Plan) -> String {
    [
        Action::Create,
        Action::Update,
        Action::Delete,
        Action::Unchanged,
    ]
    .into_iter()
    .filter(|a| plan.count(*a) > 0)
    .map(|a| format!("{} {}", plan.count(a), past(a)))
    .collect::<Vec<_>>()
    .join(", ")
}

fn notes(plan: &Plan, printer: &Printer) {
    if !plan.prunable.is_empty() {
        printer.status(&format!(
            "Not in the file but published by finctl (`--prune` deletes them): {}",
            plan.prunable.join(", ")
        ));
    }
    if !plan.foreign.is_empty() {
        printer.status(&format!(
            "Left alone (not published by finctl): {}",
            plan.foreign.join(", ")
        ));
    }
}

fn table(plan: &Plan) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_BORDERS_ONLY)
        .set_header(["api", "version", "route", "kind", "action", "changes"]);
    for change in &plan.changes {
        let kind = serde_json::to_value(change.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        table.add_row([
            change.name.clone(),
            change.version.clone(),
            format!("{}/{}", change.context, change.version),
            kind,
            change.action.as_str().to_owned(),
            change.fields.join(", "),
        ]);
    }
    table.to_string()
}
