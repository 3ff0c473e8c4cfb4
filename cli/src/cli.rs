//! The command line: one `Commands` enum, one module per command under `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `finctl --help`'s closing section: exit codes, and the environment variables built from
/// the list of those finctl reads.
fn after_help() -> String {
    let mut text = String::from(
        "Exit codes:
  0  the command did what was asked
  1  something failed (a build, an unhealthy service, a failed test)
  2  bad arguments or configuration; nothing was changed
  N  `finctl exec` (and `sql`, `redis`): the command's own exit code

Environment:",
    );
    let width = finctl_env::DOCUMENTED
        .iter()
        .map(|v| v.name.len())
        .max()
        .unwrap_or(0);
    for variable in finctl_env::DOCUMENTED {
        text.push_str(&format!("\n  {:<width$}  {}", variable.name, variable.help));
    }
    text
}

#[derive(Debug, Parser)]
#[command(
    name = "finctl",
    version,
    about = "Run the fintech platform locally and in CI: images, stack, bootstrap, tests.",
    after_help = after_help(),
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print machine-readable JSON on stdout (read commands).
    #[arg(long, global = true)]
    pub json: bool,

    /// The project folder: holds compose/docker-compose.yml, or with -f the working directory.
    #[arg(long, global = true, value_name = "DIR", env = finctl_env::FINCTL_PROJECT_DIR)]
    pub project_dir: Option<PathBuf>,

    /// A Compose file (repeatable; `-` is stdin); after the command too, except `logs` (`--file`).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Enable a Compose profile (repeatable); after the command too.
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,

    /// The Compose project name (default: COMPOSE_PROJECT_NAME, .env, the folder name).
    #[arg(short = 'p', long, global = true, value_name = "NAME")]
    pub project_name: Option<String>,

    /// Only print errors and data.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail (build output, each step).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Build and list the platform's container images.
    #[command(subcommand)]
    Images(ImagesCommand),

    /// Start the stack (or the named services and what they depend on) and wait until ready.
    ///
    /// Creates the networks and volumes, then the containers in dependency order, in parallel
    /// where `depends_on` allows, honouring service_started, service_healthy and
    /// service_completed_successfully. Readiness is seen as soon as it is: the engine's
    /// events say when a container starts, exits or turns healthy, and healthchecks are run on
    /// demand rather than at Docker's interval. Each part of `finctl bootstrap` runs as soon as
    /// its server is ready. Without -f, --offline or --profile, a running stack is acted on as
    /// it was started; -v ends with each service's timeline. Re-running is safe: containers
    /// that match their configuration are left alone, changed ones are recreated, stopped,
    /// missing or unhealthy ones are repaired. On failure nothing is torn down; the failing
    /// service's last log lines and healthcheck output are shown and the exit code is 1.
    #[command(after_help = "\
Examples:
  finctl up --offline                    the whole platform, from locally built images
  finctl up --offline --no-publish       leave the gateway's routes as they are
  finctl up --offline payment            payment (and what it depends on)
  finctl up --offline --build            build missing images first
  finctl up -v                           and each service's timeline at the end
  finctl up --offline --timeout 2m
  finctl -f compose.yml up               a Compose project of your own (no compose/ folder)
  cat compose.yml | finctl -f - up       the file from stdin")]
    Up(UpArgs),

    /// Stop and remove the stack's containers and networks (and with --volumes its data).
    #[command(after_help = "\
Examples:
  finctl down
  finctl down --volumes      also delete the databases' volumes")]
    Down(DownArgs),

    /// Remove everything: containers, networks, volumes and the images finctl built for this project.
    #[command(after_help = "\
Examples:
  finctl nuke                then `finctl images build --offline && finctl up --offline`")]
    Nuke(NukeArgs),

    /// List the stack's services: container, state, health, ports.
    #[command(after_help = PS_AFTER_HELP)]
    Ps(PsArgs),

    /// Check the stack's health; exit 1 when any enabled service is unhealthy, exited or missing.
    #[command(after_help = HEALTH_AFTER_HELP)]
    Health(HealthArgs),

    /// Show the services' logs, multiplexed with a stable prefix per service.
    ///
    /// The services' JSON log lines are shown as one readable line each: time, level,
    /// message, then the other fields as key=value (request_id and trace_id included).
    /// Other lines are shown as written.
    #[command(after_help = "\
JSON (--json): one object per line, the service's JSON line with \"service\" added; other
lines as {\"service\", \"message\"}.

Examples:
  finctl logs                    everything so far
  finctl logs -f redis cockroach follow two services (across restarts)
  finctl logs --tail 50 --since 10m
  finctl logs --level warn payment
  finctl logs --raw wallet       the lines exactly as the container wrote them
  finctl --json logs wallet | jq -r 'select(.level == \"ERROR\") | .message'")]
    Logs(LogsArgs),

    /// Restart services and wait until they are ready again.
    #[command(after_help = "\
Examples:
  finctl restart keycloak
  finctl restart redis redpanda")]
    Restart(RestartArgs),

    /// Run a command in a service's container; its exit code becomes finctl's.
    #[command(after_help = "\
Examples:
  finctl exec redis -- redis-cli -a redis-secret ping
  finctl exec cockroach -- psql -h 127.0.0.1 -p 26257 -U root defaultdb
  echo 'SELECT 1' | finctl exec cockroach -- psql -h 127.0.0.1 -p 26257 -U root defaultdb")]
    Exec(ExecArgs),

    /// Print the addresses of the stack's published endpoints.
    #[command(after_help = "\
Examples:
  finctl urls
  finctl urls --json | jq -r '.[] | select(.service == \"redis\") | .url'")]
    Urls(UrlsArgs),

    /// Check that this machine can run the stack: Docker, memory, ports, images, disk.
    ///
    /// One line per check (✓ or ✗), with a hint for each failure. A port held by the
    /// stack's own container is fine; one held by anything else names the holder.
    #[command(after_help = "\
Exit codes: 0 every check passed, 1 one failed, 2 bad configuration.

JSON (--json): an array of {check, ok, detail, hint}.

Examples:
  finctl doctor --offline
  finctl doctor --json | jq -r '.[] | select(.ok | not) | .check'")]
    Doctor(DoctorArgs),

    /// Open psql on the stack's database (inside its container); piped when stdin is not a TTY.
    ///
    /// Runs `psql -h 127.0.0.1 -p 26257 -U root -d <DB_NAME>` in the database container
    /// (DB_NAME as the services see it, else defaultdb), then any ARGS. psql's exit code
    /// becomes finctl's.
    #[command(after_help = "\
Examples:
  finctl sql
  echo 'select 41+1' | finctl sql -- -tA
  finctl sql -- -c '\\dt'")]
    Sql(ShellArgs),

    /// Open redis-cli on the stack's Redis (inside its container), authenticated.
    ///
    /// Runs `redis-cli -a $REDIS_PASSWORD --no-auth-warning` in the redis container, then
    /// any ARGS. redis-cli's exit code becomes finctl's.
    #[command(after_help = "\
Examples:
  finctl redis
  finctl redis -- ping
  finctl redis -- --scan --pattern 'session:*'")]
    Redis(ShellArgs),

    /// Publish api-config.yaml's APIs to the API gateway: validate, plan, then change only what differs.
    ///
    /// The file is checked first (unknown keys, missing fields, duplicate name+version or
    /// context+version, contexts, backend URLs, policy and role names): every problem is
    /// shown with file, line and value, and nothing is published (exit 2). Then each API is
    /// compared with the target's: create, update (the fields that differ), unchanged, or
    /// with --prune delete (only APIs finctl published). A second run changes nothing.
    #[command(after_help = "\
Targets:
  builtin  the stack's own gateway (admin API: FINCTL_GATEWAY_ADMIN_URL, else its published port)
  wso2     WSO2 API Manager 4.x (FINCTL_WSO2_URL, FINCTL_WSO2_USERNAME, FINCTL_WSO2_PASSWORD)
  kong     Kong's admin API (FINCTL_KONG_ADMIN_URL)

JSON (--json): {config, dry_run, target, location, changes: [{id, name, version, context,
kind, action, fields}], prunable, foreign, applied}.

Examples:
  finctl publish-apis --dry-run               show what would change
  finctl publish-apis                         publish to the built-in gateway
  finctl publish-apis --prune                 also delete APIs removed from the file
  finctl publish-apis --config my-apis.yaml --json | jq -r '.changes[].action'
  finctl publish-apis --target kong")]
    PublishApis(PublishArgs),

    /// List or create Kafka topics with the broker container's own tool (tansu or rpk).
    #[command(after_help = "\
JSON (--json, list): an array of {topic, partitions}.

Examples:
  finctl topics
  finctl topics --json | jq -r '.[].topic'
  finctl topics create payment.refunded --partitions 3")]
    Topics(TopicsArgs),

    /// Make the database, the Kafka topics and the identity realm match compose/bootstrap/.
    #[command(after_help = "\
Declarations: compose/bootstrap/database.yaml, topics.yaml, identity.yaml (every key is in the
README, \"finctl bootstrap\"). Secrets come from the environment or compose/.env, never the files.

Each resource is looked up, then created, updated (only the fields that differ) or left as it
is; nothing is ever deleted. A second run reports nothing to change and writes nothing. A run
that stopped half-way is finished by the next.

Exit codes: 0 done (or nothing to do), 1 a step failed (what was made stays), 2 invalid
declarations (file:line: path: `value`: problem; nothing was contacted).

JSON (--json): {dry_run, idp, changes: [{part, kind, name, action, fields?}], applied}.

Examples:
  finctl bootstrap                       all three parts, in order
  finctl bootstrap identity --dry-run    the realm's plan, nothing changed
  finctl bootstrap topics --json | jq -r '.changes[] | select(.action != \"unchanged\") | .name'
  finctl bootstrap identity --idp keycloak")]
    Bootstrap(BootstrapArgs),

    /// A token from the stack's identity provider, for curl and scripts.
    #[command(after_help = "\
stdout carries only the token, so `TOKEN=$(finctl token --user finance)` works. The password
defaults to the one compose/bootstrap/identity.yaml declares for the user; the client is the
first declared client. --decode prints the header and claims instead (--json: as JSON).

Exit codes: 0 a token, 1 the IdP refused (wrong password, unknown user) or is down.

Examples:
  curl -H \"Authorization: Bearer $(finctl token)\" http://127.0.0.1:8280/api/profile/1.0.0/me
  finctl token --user auditor --decode
  finctl token --user finance --decode --json | jq .summary.roles
  finctl token --client-credentials > client.token")]
    Token(TokenArgs),

    /// Run the smoke, auth, worker and flow suites against the running stack.
    #[command(after_help = "\
Suites (default: all, in this order):
  smoke   every service ready; /health and /readiness directly and through the gateway; every
          published API: 401 without a token, 2xx with one; the IdP's discovery and JWKS
  auth    each declared user's token (user, issuer, audience, roles) and /me through the
          gateway; bad tokens (none, malformed, tampered, expired, wrong issuer or audience,
          alg none, HS256 keyed with the public key, unknown kid): 401 at the gateway and at
          the service; role rules (403/2xx); a client-sent X-JWT-Assertion impersonates no one
  worker  each worker runs an echo job, and dead-letters a job that fails every attempt
  flow    the payment flow through the gateway: wallets, a two-person credit, a payment
          across currencies followed to `completed` (both wallets show it), the idempotent
          retry, and payment.completed carrying it on its topic

Cases are Hurl files under tests/smoke/<suite>/ (one case per request, named by the comment
above it); the rest are built from the stack and compose/bootstrap/. Tokens and passwords are
masked in every output.

Exit codes: 0 every case passed (skipped ones included), 1 a case failed, 2 bad arguments or a
case file that does not parse (file:line: message).

JSON (--json): {totals: {passed, failed, skipped}, duration, cases: [{suite, name, service,
source, result, message?, duration, detail?, log_tail?}]}.

Examples:
  finctl smoke-test                          every suite
  finctl smoke-test smoke auth --fail-fast
  finctl smoke-test worker --service payment
  finctl smoke-test --junit target/smoke.xml  a JUnit file for CI
  finctl smoke-test --list                   every case, nothing run")]
    SmokeTest(SmokeTestArgs),

    /// Make a new service from templates/service: crate, stack entries, route, smoke cases; then
    /// build it, start it, publish its route and smoke-test it.
    ///
    /// Every check comes first (name, port, nothing of that name exists) and every edit is
    /// computed before anything is written: a bad name or a taken port is one line and exit 2
    /// with nothing written. Cargo.toml, the Compose file, api-config.yaml and topics.yaml are
    /// edited in place (comments and layout kept; the diff is additions only). Run again on a
    /// service it made, it finishes what is missing and continues with the remaining steps.
    /// The answers and the template version are kept in platform-services/NAME/.finctl-service.toml.
    #[command(after_help = "\
Steps (unless --no-start): build its image, start NAME and NAME-worker, publish its route to
the gateway, run `finctl smoke-test --service NAME`, print its URLs.

Examples:
  finctl new-service loyalty                         everything, on the running stack
  finctl new-service fx-audit --port 8010 --description \"FX audit trail\"
  finctl new-service loyalty --dry-run               the files and diffs, nothing written
  finctl new-service loyalty --no-worker --no-start  files only, API without a worker
  finctl new-service --update loyalty                merge template changes into it
  finctl new-service --remove loyalty                undo it (files restored as they were)")]
    NewService(NewServiceArgs),
}

const PS_AFTER_HELP: &str = "\
JSON (--json): an array, one object per service:
  service    string          the Compose service
  container  string | null   the container name (null: none exists)
  state      string          missing, created, running, restarting, paused, exited, dead
  health     string          healthy, unhealthy, starting, none (no healthcheck)
  exit_code  number | null   once the container has stopped
  ports      [string]        published ports, \"127.0.0.1:6379->6379/tcp\"
  one_shot   bool            a job that runs to completion
  ok         bool            running and healthy (or no healthcheck); one-shots: exited 0

Examples:
  finctl ps
  finctl ps --json | jq -r '.[] | select(.ok | not) | .service'";

const HEALTH_AFTER_HELP: &str = "\
Exit codes: 0 every enabled service is ok, 1 one is not (unhealthy, exited, missing; a
one-shot that exited 0 is ok), 2 bad configuration.

JSON (--json): the same array as `finctl ps --json` (see `finctl ps --help`).

Examples:
  finctl health && echo ready
  finctl health --watch            redraw every second until Ctrl-C";

/// Which stack: the Compose files, the offline override, profiles.
#[derive(Debug, Args, Clone, Default)]
pub struct StackArgs {
    /// Use compose/offline.yml too: every third-party image swapped for a locally built one.
    #[arg(long)]
    pub offline: bool,

    /// Enable a Compose profile (repeatable): services, gateway, cluster.
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,

    /// A Compose file (repeatable; `-` is stdin); with compose/ in --project-dir, merged after it.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// Build the images first with finctl's image builder: missing or stale ones; up-to-date ones are skipped (nothing is ever pulled).
    #[arg(long)]
    pub build: bool,

    /// How long to wait for everything to be ready (e.g. 90s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,

    /// Do not publish api-config.yaml to the gateway once it is ready.
    #[arg(long)]
    pub no_publish: bool,

    /// Do not run `finctl bootstrap` (database, topics, identity) once the infrastructure is
    /// ready and before the services start.
    #[arg(long)]
    pub no_bootstrap: bool,

    /// Services to start (with their dependencies); default: every enabled service.
    pub services: Vec<String>,
}

fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    finctl_compose::parse_duration(text)
        .ok_or_else(|| format!("`{text}` is not a duration (write 90s, 5m, 1m30s)"))
}

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// Also remove the stack's named volumes (its data).
    #[arg(long)]
    pub volumes: bool,
}

#[derive(Debug, Args)]
pub struct NukeArgs {
    #[command(flatten)]
    pub stack: StackArgs,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    #[command(flatten)]
    pub stack: StackArgs,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// Redraw every second until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Use compose/offline.yml too.
    #[arg(long)]
    pub offline: bool,

    /// Enable a Compose profile (repeatable).
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,

    /// An extra Compose file (repeatable; `-f` means --follow here, as in docker compose).
    #[arg(long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Keep following new output (and containers that restart) until Ctrl-C.
    #[arg(short, long)]
    pub follow: bool,

    /// Only the last N lines of each container.
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,

    /// Only lines newer than this: a duration ago (10m, 1h) or an RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only lines at this level or above (lines without a level are kept).
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub level: Option<LogLevel>,

    /// The lines exactly as the containers wrote them (after the prefix), not rendered.
    #[arg(long)]
    pub raw: bool,

    /// Services to show; default: all.
    pub services: Vec<String>,
}

/// `finctl logs --level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogsArgs {
    pub fn stack(&self) -> StackArgs {
        StackArgs {
            offline: self.offline,
            profiles: self.profiles.clone(),
            files: self.files.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// How long to wait for the services to be ready again.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,

    /// Services to restart.
    #[arg(required = true)]
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// Run as this user (name or uid).
    #[arg(short, long)]
    pub user: Option<String>,

    /// The service whose container runs the command.
    pub service: String,

    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub stack: StackArgs,
}

#[derive(Debug, Args)]
pub struct ShellArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// Extra arguments for the shell (after `--`).
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TopicsArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// What to do; default: list.
    #[command(subcommand)]
    pub action: Option<TopicsCommand>,
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// List the broker's topics and their partition counts.
    List,
    /// Create a topic.
    Create {
        /// The topic's name.
        name: String,
        /// How many partitions.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        partitions: u32,
    },
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// Where to publish.
    #[arg(long, value_enum, default_value = "builtin")]
    pub target: PublishTarget,

    /// The API configuration (default: api-config.yaml at the project's root).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print the plan and stop; nothing is changed.
    #[arg(long)]
    pub dry_run: bool,

    /// Also delete the APIs finctl published that the file no longer lists.
    #[arg(long)]
    pub prune: bool,
}

/// `finctl publish-apis --target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PublishTarget {
    /// The stack's built-in gateway (platform-services/gateway).
    Builtin,
    /// WSO2 API Manager 4.x, through its publisher REST API.
    Wso2,
    /// Kong Gateway 3.x, through its admin API (DB or DB-less).
    Kong,
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// Parts to bootstrap; they run as database, topics, identity whatever the order given.
    /// Default: all three.
    #[arg(value_enum)]
    pub parts: Vec<BootstrapPart>,

    /// Print the plan and stop; nothing is changed.
    #[arg(long)]
    pub dry_run: bool,

    /// The identity provider's kind; default: from the stack's keycloak service image
    /// (Canaille offline, Keycloak upstream).
    #[arg(long, value_enum)]
    pub idp: Option<IdpKind>,

    /// The declarations' folder (default: bootstrap/ beside the Compose file).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum BootstrapPart {
    Database,
    Topics,
    Identity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdpKind {
    /// Canaille, the offline stack's IdP (finctl/idp:offline).
    Canaille,
    /// Keycloak 26, the upstream stack's IdP (KEYCLOAK_ADMIN, KEYCLOAK_ADMIN_PASSWORD).
    Keycloak,
    /// WSO2 Identity Server 7 at FINCTL_WSO2IS_URL (default https://127.0.0.1:9443).
    Wso2is,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// The user (password grant).
    #[arg(long, default_value = "admin", conflicts_with = "client_credentials")]
    pub user: String,

    /// The user's password; default: the one compose/bootstrap/identity.yaml declares.
    #[arg(long, env = "FINCTL_TOKEN_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,

    /// A client_credentials token of the client instead of a user's.
    #[arg(long)]
    pub client_credentials: bool,

    /// The client; default: the first declared client.
    #[arg(long)]
    pub client: Option<String>,

    /// Print the token's header and claims (issuer, audience, subject, roles, expiry).
    #[arg(long)]
    pub decode: bool,
}

#[derive(Debug, Args)]
pub struct SmokeTestArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// The suites to run; default: all.
    #[arg(value_enum, value_name = "SUITE")]
    pub suites: Vec<SmokeSuite>,

    /// Only the cases of this service (repeatable).
    #[arg(long = "service", value_name = "SERVICE")]
    pub services: Vec<String>,

    /// Also write the results as a JUnit XML file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Stop starting cases after the first failure (the rest are reported skipped).
    #[arg(long)]
    pub fail_fast: bool,

    /// List the cases and run nothing.
    #[arg(long)]
    pub list: bool,

    /// How long a case may wait for an eventual result (a job, a message on a topic).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,

    /// The case folder; default: tests/smoke of the project.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `finctl new-service`.
#[derive(Debug, Args)]
pub struct NewServiceArgs {
    #[command(flatten)]
    pub stack: StackArgs,

    /// The service's name: lowercase kebab-case (`loyalty`, `fx-audit`).
    #[arg(value_name = "NAME")]
    pub name: String,

    /// The host port its API is published on (127.0.0.1); default: the next free one after the fleet's.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1024..))]
    pub port: Option<u16>,

    /// One line about what it does (its crate's and its API's description).
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,

    /// No worker container: no jobs, no outbox, no topic.
    #[arg(long)]
    pub no_worker: bool,

    /// Print the files it would create and the diff of each file it would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Write the files only: do not build, start, publish or smoke-test the service.
    #[arg(long)]
    pub no_start: bool,

    /// Bring a generated service up to the current template (three-way merge).
    #[arg(long, conflicts_with_all = ["remove", "port", "description", "no_worker"])]
    pub update: bool,

    /// Undo a generated service: its containers, route, crate, entries and smoke cases.
    #[arg(long, conflicts_with_all = ["port", "description", "no_worker", "no_start"])]
    pub remove: bool,

    /// How long to wait for the service to be ready.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_timeout)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum SmokeSuite {
    Smoke,
    Auth,
    Worker,
    Flow,
}

#[derive(Debug, Args)]
pub struct UrlsArgs {
    #[command(flatten)]
    pub stack: StackArgs,
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Build images from local recipes; up-to-date images are skipped.
    ///
    /// Every image is labelled with a hash of its inputs (recipe files, packages, binaries,
    /// parent image); an image whose label matches is left alone. Nothing is ever pulled
    /// from a registry: the base image comes from debootstrap, packages from Debian's
    /// archive and PyPI fetched on this machine, binaries from cargo.
    #[command(after_help = "\
Examples:
  finctl images build --offline        every image, third-party stand-ins included
  finctl images build                  the base and the platform's own service images
  finctl images build postgres redis   just these (and what they are built FROM)
  finctl images build --force kafka    rebuild even if up to date")]
    Build(ImagesBuildArgs),

    /// List the images finctl knows, whether each is built and up to date.
    #[command(after_help = "\
Examples:
  finctl images list
  finctl images list --json | jq '.[] | select(.state != \"up-to-date\")'")]
    List(ImagesListArgs),
}

#[derive(Debug, Args)]
pub struct ImagesBuildArgs {
    /// Also build the offline stand-ins for third-party images (database, cache, broker, IdP).
    #[arg(long)]
    pub offline: bool,

    /// Rebuild the named images (or all selected) even when their input hash matches.
    #[arg(long)]
    pub force: bool,

    /// With --force: ignore the engine's layer cache too (host-side downloads stay cached).
    #[arg(long, requires = "force")]
    pub no_cache: bool,

    /// Images to build (recipe names, e.g. `base`, `postgres`, `profile`); default: all selected.
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImagesListArgs {
    /// Include the offline stand-ins.
    #[arg(long)]
    pub offline: bool,
}
