//! `finctl logs`.

use std::io::IsTerminal;
use std::time::SystemTime;

use crate::cli::{GlobalArgs, LogLevel, LogsArgs};
use crate::printer::Printer;
use finctl_engine::Engine;
use finctl_engine::LogOptions;
use finctl_error::{ExitStatus, UserError};
use finctl_orchestrate::log_render::{Level, LogFormat, LogView};
use finctl_orchestrate::logs;

pub async fn logs(
    global: &GlobalArgs,
    args: LogsArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    if args.raw && printer.json() {
        return Err(UserError::config(
            "--raw and --json cannot be used together",
            "use --raw for the lines as written, or --json for one JSON object per line",
        )
        .into());
    }
    let stack = super::compose::load(global, &args.stack(), printer).await?;
    for name in &args.services {
        stack.service(name)?;
    }
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let names: Vec<String> = if args.services.is_empty() {
        stack.enabled_services().map(|s| s.name.clone()).collect()
    } else {
        args.services.clone()
    };
    let containers = names
        .iter()
        .map(|name| (name.clone(), stack.container_name(&stack.services[name], 1)))
        .collect();
    let engine = Engine::connect().await?;
    let options = LogOptions {
        follow: args.follow,
        tail: args.tail,
        since,
    };
    let format = if printer.json() {
        LogFormat::Json
    } else if args.raw {
        LogFormat::Raw
    } else {
        LogFormat::Readable
    };
    let view = LogView {
        format,
        min_level: args.level.map(level),
        color: printer.color() && std::io::stdout().is_terminal(),
    };
    logs::stream(&engine, containers, options, view, &mut |line| {
        printer.data_line(line)
    })
    .await?;
    Ok(ExitStatus::Success)
}

fn level(level: LogLevel) -> Level {
    match level {
        LogLevel::Trace => Level::Trace,
        LogLevel::Debug => Level::Debug,
        LogLevel::Info => Level::Info,
        LogLevel::Warn => Level::Warn,
        LogLevel::Error => Level::Error,
    }
}

/// `10m` (that long ago) or an RFC 3339 time.
fn parse_since(text: &str) -> Result<SystemTime, UserError> {
    if let Some(ago) = finctl_compose::parse_duration(text) {
        return Ok(SystemTime::now() - ago);
    }
    humantime::parse_rfc3339_weak(text).map_err(|_| {
        UserError::config(
            format!("--since: `{text}` is neither a duration nor a time"),
            "write a duration (10m, 1h) or a time (2024-05-01T12:00:00Z)",
        )
    })
}
