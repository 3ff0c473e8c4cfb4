//! `finctl sql` and `finctl redis`: the database's and the cache's own shells, run inside
//! their containers through `finctl exec` (a TTY when interactive, piped otherwise, the
//! shell's exit code passed through).

use crate::cli::{ExecArgs, GlobalArgs, ShellArgs};
use crate::printer::Printer;
use finctl_compose::Stack;
use finctl_error::ExitStatus;

/// The Compose service that runs the database (PostgreSQL wire on 26257).
const DATABASE_SERVICE: &str = "cockroach";
/// The Compose service that runs Redis.
const CACHE_SERVICE: &str = "redis";
/// The database psql opens when no service names one in `DB_NAME`.
const DEFAULT_DATABASE: &str = "defaultdb";

pub async fn sql(
    global: &GlobalArgs,
    args: ShellArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let stack = super::compose::load(global, &args.stack, printer).await?;
    let database = database_name(&stack);
    let mut command: Vec<String> = [
        "psql",
        "-h",
        "127.0.0.1",
        "-p",
        "26257",
        "-U",
        "root",
        "-d",
        &database,
    ]
    .map(str::to_owned)
    .to_vec();
    command.extend(args.args);
    run_in(global, args.stack, DATABASE_SERVICE, command, printer).await
}

pub async fn redis(
    global: &GlobalArgs,
    args: ShellArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let stack = super::compose::load(global, &args.stack, printer).await?;
    let service = stack.service(CACHE_SERVICE)?;
    let mut command = vec!["redis-cli".to_owned()];
    if let Some(password) = redis_password(service) {
        command.extend(["-a".to_owned(), password, "--no-auth-warning".to_owned()]);
    }
    command.extend(args.args);
    run_in(global, args.stack, CACHE_SERVICE, command, printer).await
}

async fn run_in(
    global: &GlobalArgs,
    stack: crate::cli::StackArgs,
    service: &str,
    command: Vec<String>,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    super::exec::exec(
        global,
        ExecArgs {
            stack,
            user: None,
            service: service.to_owned(),
            command,
        },
        printer,
    )
    .await
}

/// `DB_NAME` as the services see it (the platform's database), else PostgreSQL's default.
fn database_name(stack: &Stack) -> String {
    stack
        .enabled_services()
        .find_map(|s| s.environment.get("DB_NAME").cloned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| DEFAULT_DATABASE.to_owned())
}

/// The password the server was started with: its `--requirepass` argument, or the
/// `REDIS_PASSWORD` / `REDISCLI_AUTH` the service is given.
fn redis_password(service: &finctl_compose::Service) -> Option<String> {
    let from_command = service.command.as_ref().and_then(|words| {
        words
            .iter()
            .position(|w| w == "--requirepass")
            .and_then(|i| words.get(i + 1).cloned())
    });
    from_command
        .or_else(|| service.environment.get("REDIS_PASSWORD").cloned())
        .or_else(|| service.environment.get("REDISCLI_AUTH").cloned())
        .filter(|p| !p.is_empty())
}
