//! `finctl ps` and `finctl health`.

use std::io::IsTerminal;
use std::time::Duration;

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};

use crate::cli::{GlobalArgs, HealthArgs, PsArgs};
use crate::printer::Printer;
use finctl_engine::Engine;
use finctl_error::ExitStatus;
use finctl_orchestrate::{ServiceStatus, status};

pub async fn ps(
    global: &GlobalArgs,
    args: PsArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let stack = super::compose::load(global, &args.stack, printer).await?;
    let engine = Engine::connect().await?;
    let rows = status::statuses(&engine, &stack).await?;
    printer.data(&render(&rows, printer)?);
    Ok(ExitStatus::Success)
}

pub async fn health(
    global: &GlobalArgs,
    args: HealthArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let stack = super::compose::load(global, &args.stack, printer).await?;
    let engine = Engine::connect().await?;
    loop {
        let rows = status::statuses(&engine, &stack).await?;
        let text = render(&rows, printer)?;
        if args.watch && std::io::stdout().is_terminal() {
            // One table, redrawn in place.
            printer.redraw(&text);
        } else {
            printer.data(&text);
        }
        let bad: Vec<&str> = rows
            .iter()
            .filter(|r| !r.ok)
            .map(|r| r.service.as_str())
            .collect();
        if !args.watch {
            if bad.is_empty() {
                return Ok(ExitStatus::Success);
            }
            printer.status(&format!("not ok: {}", bad.join(", ")));
            return Ok(ExitStatus::Failure);
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => {
                return Ok(if bad.is_empty() { ExitStatus::Success } else { ExitStatus::Failure });
            }
        }
    }
}

/// The rows as a table, or as JSON with `--json`.
fn render(rows: &[ServiceStatus], printer: &Printer) -> anyhow::Result<String> {
    if printer.json() {
        return Ok(serde_json::to_string_pretty(rows)?);
    }
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "service",
        "container",
        "state",
        "health",
        "ports",
        "ok",
    ]);
    for row in rows {
        let state = match (row.state.as_str(), row.exit_code) {
            ("exited", Some(code)) => format!("exited ({code})"),
            (state, _) => state.to_owned(),
        };
        table.add_row([
            row.service.clone(),
            row.container.clone().unwrap_or_else(|| "-".into()),
            state,
            row.health.clone(),
            row.ports.join("\n"),
            if row.ok { "ok" } else { "NOT OK" }.to_owned(),
        ]);
    }
    Ok(table.to_string())
}
