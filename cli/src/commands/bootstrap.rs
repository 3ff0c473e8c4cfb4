//! `finctl bootstrap`, and the bootstrap `finctl up` runs once the infrastructure is ready and
//! before the services start.
//!
//! Every part is planned before anything is written (so a part whose server is down, or an
//! invalid declaration, changes nothing anywhere), then applied in order: database, topics,
//! identity. The plan is one table; `--dry-run` stops after it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::Context as _;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

use crate::cli::{BootstrapArgs, BootstrapPart, GlobalArgs, IdpKind};
use crate::printer::Printer;
use finctl_bootstrap::decl::{self, Declarations, Part, Topic};
use finctl_bootstrap::identity::{self, Driver, Step};
use finctl_bootstrap::kafka::Admin;
use finctl_bootstrap::{Action, Change, database};
use finctl_compose::{Stack, Variables};
use finctl_engine::Engine;
use finctl_error::{ExitStatus, UserError};
use finctl_orchestrate::Hook;

use super::topics::{BROKER_SERVICE, blocking};

/// The Compose services bootstrap talks to.
pub(super) const DATABASE_SERVICE: &str = "cockroach";
pub(super) const IDP_SERVICE: &str = "keycloak";
/// The ports they serve in their containers.
const SQL_PORT: u16 = 26257;
const IDP_PORT: u16 = 8080;

#[derive(Debug, Serialize)]
struct Report {
    dry_run: bool,
    idp: Option<IdpKind>,
    changes: Vec<Change>,
    /// How many changes were made (0 with --dry-run).
    applied: usize,
}

pub async fn bootstrap(
    global: &GlobalArgs,
    args: BootstrapArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let stack = super::compose::load(global, &args.stack, printer).await?;
    let parts = parts(&args.parts);
    let report = run(
        &stack,
        args.dir.as_deref(),
        &parts,
        args.dry_run,
        args.idp,
        printer,
        true,
    )
    .await?;
    if printer.json() {
        printer.data(&serde_json::to_string_pretty(&report)?);
    }
    let writes = report
        .changes
        .iter()
        .filter(|c| c.action.is_write())
        .count();
    if writes == 0 {
        printer.status("Nothing to change: everything is as compose/bootstrap/ declares.");
    } else if args.dry_run {
        printer.status(&format!(
            "Dry run: {}; nothing was changed.",
            summary(&report.changes, false)
        ));
    } else {
        printer.status(&format!(
            "Bootstrapped: {}.",
            summary(&report.changes, true)
        ));
    }
    Ok(ExitStatus::Success)
}

/// `finctl up`'s bootstrap: for each part, a hook on the service it talks to, run by `up` as
/// soon as that service is ready (before its dependents start). Each part's summary line is
/// added to `done`, for [`report_for_up`]. Nothing is printed meanwhile: `up`'s progress lines
/// are on screen.
pub(super) fn hooks_for_up(
    stack: &Stack,
    parts: &[Part],
    done: &Arc<std::sync::Mutex<Vec<(Part, String)>>>,
) -> HashMap<String, Hook> {
    parts
        .iter()
        .map(|&part| {
            let stack = stack.clone();
            let done = Arc::clone(done);
            let hook: Hook = Arc::new(move || {
                let stack = stack.clone();
                let done = Arc::clone(&done);
                Box::pin(async move {
                    let report = run(
                        &stack,
                        None,
                        &[part],
                        false,
                        None,
                        &Printer::silent(),
                        false,
                    )
                    .await
                    .map_err(|err| {
                        err.context(format!(
                            "bootstrapping the {} failed (`finctl bootstrap {}` retries it; \
                                 `finctl up --no-bootstrap` skips it)",
                            describe(part),
                            part.name()
                        ))
                    })?;
                    let writes = report.changes.iter().any(|c| c.action.is_write());
                    let line = if writes {
                        summary(&report.changes, true)
                    } else {
                        format!(
                            "as declared ({} resources, nothing to change)",
                            report.changes.len()
                        )
                    };
                    if let Ok(mut done) = done.lock() {
                        done.push((part, line));
                    }
                    Ok(())
                })
            });
            (service_of(part).to_owned(), hook)
        })
        .collect()
}

/// One status line per part `up` bootstrapped, in the parts' order.
pub(super) fn report_for_up(
    parts: &[Part],
    done: &std::sync::Mutex<Vec<(Part, String)>>,
    printer: &Printer,
) {
    let Ok(done) = done.lock() else { return };
    for part in parts {
        if let Some((_, line)) = done.iter().find(|(p, _)| p == part) {
            printer.status(&format!("Bootstrap {}: {line}.", part.name()));
        }
    }
}

fn describe(part: Part) -> &'static str {
    match part {
        Part::Database => "database",
        Part::Topics => "topics",
        Part::Identity => "identity provider",
    }
}

/// The parts whose server is among `services` (what `up` is starting).
pub(super) fn parts_in(services: &[String]) -> Vec<Part> {
    Part::ALL
        .into_iter()
        .filter(|p| services.iter().any(|s| s == service_of(*p)))
        .collect()
}

fn service_of(part: Part) -> &'static str {
    match part {
        Part::Database => DATABASE_SERVICE,
        Part::Topics => BROKER_SERVICE,
        Part::Identity => IDP_SERVICE,
    }
}

fn parts(given: &[BootstrapPart]) -> Vec<Part> {
    let mut parts: Vec<Part> = if given.is_empty() {
        Part::ALL.to_vec()
    } else {
        given
            .iter()
            .map(|p| match p {
                BootstrapPart::Database => Part::Database,
                BootstrapPart::Topics => Part::Topics,
                BootstrapPart::Identity => Part::Identity,
            })
            .collect()
    };
    parts.sort();
    parts.dedup();
    parts
}

/// What each part will do, observed before anything is written.
enum Planned {
    Database {
        client: tokio_postgres::Client,
        statements: Vec<database::Statement>,
    },
    Topics {
        admin: Arc<Admin>,
        steps: Vec<(Change, Option<TopicOp>)>,
    },
    Identity {
        driver: Box<dyn Driver>,
        realm: Box<decl::Realm>,
        steps: Vec<(Change, Option<Step>)>,
    },
}

impl Planned {
    fn changes(&self) -> Vec<Change> {
        match self {
            Self::Database { statements, .. } => {
                statements.iter().map(|s| s.change.clone()).collect()
            }
            Self::Topics { steps, .. } => {
                let mut rows: Vec<Change> = steps.iter().map(|(c, _)| c.clone()).collect();
                rows.dedup_by(|a, b| a.name == b.name);
                rows
            }
            Self::Identity { steps, .. } => steps.iter().map(|(c, _)| c.clone()).collect(),
        }
    }
}

async fn run(
    stack: &Stack,
    dir: Option<&std::path::Path>,
    parts: &[Part],
    dry_run: bool,
    idp: Option<IdpKind>,
    printer: &Printer,
    show_unchanged: bool,
) -> anyhow::Result<Report> {
    let process: BTreeMap<String, String> = std::env::vars().collect();
    let vars = Variables::layered(&stack.working_dir, &process)?;
    let var = |name: &str| vars.get(name).map(str::to_owned);
    let dir = dir.map_or_else(
        || stack.working_dir.join(decl::DIR),
        std::path::Path::to_path_buf,
    );
    let decl = decl::load(&dir, parts, &var)?;

    let mut planned = Vec::new();
    let mut idp_kind = None;
    let mut cluster = None;
    if parts.contains(&Part::Database) && !dry_run && is_cluster(stack) {
        cluster = Some(init_cluster(stack).await?);
    }
    for part in parts {
        planned.push(match part {
            Part::Database => plan_database(stack, &var, &decl).await?,
            Part::Topics => {
                let (planned, settings_unread) = plan_topics(stack, &decl.topics).await?;
                if settings_unread && show_unchanged {
                    printer.warn(
                        "topics: the broker does not describe topic settings (DescribeConfigs): \
                         retention and cleanup policy are set when bootstrap creates a topic, and \
                         existing topics' settings are not compared",
                    );
                }
                planned
            }
            Part::Identity => {
                let kind = match idp {
                    Some(kind) => kind,
                    None => idp_of(stack).await,
                };
                idp_kind = Some(kind);
                plan_identity(stack, &var, &decl, kind).await?
            }
        });
    }
    let changes: Vec<Change> = cluster
        .into_iter()
        .chain(planned.iter().flat_map(Planned::changes))
        .collect();
    let writes = changes.iter().any(|c| c.action.is_write());
    if !printer.json() && (show_unchanged || writes) {
        printer.data(&table(&changes, show_unchanged));
    }
    let mut applied = 0;
    if !dry_run && writes {
        for p in planned {
            applied += apply(p, printer).await?;
        }
    }
    Ok(Report {
        dry_run,
        idp: idp_kind,
        changes,
        applied,
    })
}

async fn apply(planned: Planned, printer: &Printer) -> anyhow::Result<usize> {
    let done = |c: &Change| {
        printer.detail(&format!("  {} {} {}", past(&c.action), c.kind, c.name));
    };
    let mut count = 0;
    match planned {
        Planned::Database { client, statements } => {
            for s in &statements {
                let Some(sql) = &s.sql else { continue };
                client.batch_execute(sql).await.map_err(|err| {
                    UserError::failure(
                        format!(
                            "database: {} {} {} failed: {}",
                            s.change.action.label(),
                            s.change.kind,
                            s.change.name,
                            db_error(&err)
                        ),
                        "what was made before stays; fix the cause and run `finctl bootstrap database` again",
                    )
                })?;
                done(&s.change);
                count += 1;
            }
        }
        Planned::Topics { admin, steps } => {
            let mut last = None;
            for (change, op) in steps {
                let Some(op) = op else { continue };
                apply_topic(&admin, &change.name, op).await?;
                // A topic's update may take several writes: one row, counted once.
                if last.as_ref() != Some(&change.name) {
                    done(&change);
                    count += 1;
                    last = Some(change.name.clone());
                }
            }
        }
        Planned::Identity {
            mut driver,
            realm,
            steps,
        } => {
            for (change, step) in &steps {
                let Some(step) = step else { continue };
                driver.apply(&realm, step).await.map_err(|err| {
                    UserError::failure(
                        format!(
                            "identity ({} at {}): {} {} {} failed: {err:#}",
                            driver.name(),
                            driver.location(),
                            change.action.label(),
                            change.kind,
                            change.name
                        ),
                        "what was made before stays; fix the cause and run `finctl bootstrap identity` again",
                    )
                })?;
                done(change);
                count += 1;
            }
        }
    }
    Ok(count)
}

fn db_error(err: &tokio_postgres::Error) -> String {
    err.as_db_error()
        .map_or_else(|| err.to_string(), |db| db.message().to_owned())
}

/// The address and port this machine reaches `service`'s container port `target` at.
pub(super) fn published(
    stack: &Stack,
    service: &str,
    target: u16,
) -> anyhow::Result<(String, u16)> {
    let svc = stack.service(service)?;
    let port = svc
        .ports
        .iter()
        .find(|p| p.target == target && p.published.is_some())
        .ok_or_else(|| {
            UserError::config(
                format!("{service} does not publish its port {target}"),
                format!("publish it in the Compose file (`127.0.0.1:{target}:{target}`)"),
            )
        })?;
    Ok((
        super::urls::client_host(port).to_owned(),
        port.published.unwrap_or(target),
    ))
}

async fn plan_database(
    stack: &Stack,
    var: &(dyn Fn(&str) -> Option<String> + Sync),
    decl: &Declarations,
) -> anyhow::Result<Planned> {
    let (host, port) = published(stack, DATABASE_SERVICE, SQL_PORT)?;
    let mut config = tokio_postgres::Config::new();
    config
        .host(&host)
        .port(port)
        .user(
            var("DB_USER")
                .filter(|u| !u.is_empty())
                .as_deref()
                .unwrap_or("root"),
        )
        .dbname("defaultdb")
        .application_name("finctl-bootstrap")
        .connect_timeout(std::time::Duration::from_secs(5));
    if let Some(password) = var("DB_PASSWORD").filter(|p| !p.is_empty()) {
        config.password(password);
    }
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|err| {
        UserError::failure(
            format!(
                "database: cannot connect to {host}:{port}: {}",
                db_error(&err)
            ),
            format!(
                "is the stack up? `finctl up {DATABASE_SERVICE}`, then `finctl bootstrap database`"
            ),
        )
    })?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let statements = database::plan(&client, &decl.database).await?;
    Ok(Planned::Database { client, statements })
}

/// The cluster profile on the upstream images: three CockroachDB nodes to initialise.
fn is_cluster(stack: &Stack) -> bool {
    stack.active_profiles.iter().any(|p| p == "cluster")
        && stack
            .services
            .get(DATABASE_SERVICE)
            .and_then(|s| s.image.as_deref())
            .is_some_and(|i| i.starts_with("cockroachdb/"))
}

/// `cockroach init` in the first node's container, then all three nodes live.
async fn init_cluster(stack: &Stack) -> anyhow::Result<Change> {
    struct DockerExec<'a> {
        engine: Engine,
        stack: &'a Stack,
    }
    #[async_trait::async_trait]
    impl finctl_bootstrap::cockroach::Exec for DockerExec<'_> {
        async fn exec(&self, node: &str, cmd: &[String]) -> anyhow::Result<(i64, String)> {
            let service = self.stack.service(node)?;
            let container = self.stack.container_name(service, 1);
            let (code, out) = finctl_engine::run_probe(
                &self.engine,
                &container,
                cmd,
                std::time::Duration::from_secs(30),
            )
            .await?;
            Ok((code.unwrap_or(-1), out))
        }
    }
    let exec = DockerExec {
        engine: Engine::connect().await?,
        stack,
    };
    let nodes = [DATABASE_SERVICE, "cockroach-2", "cockroach-3"].map(String::from);
    finctl_bootstrap::cockroach::init_cluster(&exec, &nodes, std::time::Duration::from_secs(120))
        .await
        .map_err(|err| {
            UserError::failure(
                format!("database: the CockroachDB cluster: {err:#}"),
                "`finctl ps --profile cluster` shows the nodes; `finctl logs cockroach-2` why one is missing",
            )
            .into()
        })
}

/// `retention.ms` and `cleanup.policy`, as the broker stores them.
fn topic_configs(topic: &Topic) -> Vec<(&'static str, String)> {
    vec![
        ("retention.ms", topic.retention_ms()),
        ("cleanup.policy", topic.cleanup_policy.clone()),
    ]
}

/// What a topics step writes.
enum TopicOp {
    Create(Topic),
    Partitions { total: usize, had: usize },
    Configs(Vec<(&'static str, String)>),
}

/// The plan, and whether existing topics' settings went unread (a broker without
/// DescribeConfigs for topics, as tansu).
async fn plan_topics(stack: &Stack, topics: &[Topic]) -> anyhow::Result<(Planned, bool)> {
    let admin = super::topics::admin(stack)?;
    let existing = super::topics::listed(&admin).await?;
    let mut steps = Vec::new();
    let mut settings_unread = false;
    for topic in topics {
        let row = |action| Change::new("topics", "topic", &topic.name, action);
        let Some(&partitions) = existing.get(&topic.name) else {
            steps.push((row(Action::Create), Some(TopicOp::Create(topic.clone()))));
            continue;
        };
        let declared = usize::try_from(topic.partitions).unwrap_or(1);
        if partitions > declared {
            return Err(UserError::failure(
                format!(
                    "topics: {} has {partitions} partitions and topics.yaml declares {declared}: Kafka cannot take partitions away",
                    topic.name
                ),
                format!("declare partitions: {partitions} for {}", topic.name),
            )
            .into());
        }
        let mut fields = Vec::new();
        let mut ops = Vec::new();
        if partitions < declared {
            fields.push("partitions".to_owned());
            ops.push(TopicOp::Partitions {
                total: declared,
                had: partitions,
            });
        }
        let name = topic.name.clone();
        match blocking(&admin, move |a| a.describe_configs(&name)).await? {
            // A broker that answers with no settings at all has nothing to compare.
            Ok(have) if have.is_empty() => settings_unread = true,
            Ok(have) => {
                let differ: Vec<(&str, String)> = topic_configs(topic)
                    .into_iter()
                    .filter(|(k, v)| have.get(*k) != Some(v))
                    .collect();
                if !differ.is_empty() {
                    fields.extend(differ.iter().map(|(k, _)| (*k).to_owned()));
                    ops.push(TopicOp::Configs(differ));
                }
            }
            Err(err) if err.unsupported() => settings_unread = true,
            Err(err) => {
                return Err(UserError::failure(
                    format!("topics: cannot read the settings of {}: {err}", topic.name),
                    format!("`finctl logs {BROKER_SERVICE}` says why"),
                )
                .into());
            }
        }
        if ops.is_empty() {
            steps.push((row(Action::Unchanged), None));
        } else {
            // One row per topic, naming every field; its writes run in order.
            let last = ops.pop();
            let update = row(Action::Update(fields));
            for op in ops {
                steps.push((update.clone(), Some(op)));
            }
            steps.push((update, last));
        }
    }
    Ok((Planned::Topics { admin, steps }, settings_unread))
}

/// One topics write; what the broker cannot do names the topic and the broker's limit.
async fn apply_topic(admin: &Arc<Admin>, name: &str, op: TopicOp) -> anyhow::Result<()> {
    let topic = name.to_owned();
    let (what, result) = match op {
        TopicOp::Create(t) => {
            let configs = topic_configs(&t);
            let result = blocking(admin, move |a| {
                a.create_topic(&t.name, t.partitions, t.replication_factor, &configs)
            })
            .await?;
            ("CreateTopics", result)
        }
        TopicOp::Partitions { total, had } => {
            let result = blocking(admin, move |a| a.create_partitions(&topic, total)).await?;
            if let Err(err) = &result
                && err.unsupported()
            {
                return Err(UserError::failure(
                    format!(
                        "topics: {name} has {had} partition(s) and topics.yaml declares {total}, but the broker ({BROKER_SERVICE}) has no CreatePartitions: {err}"
                    ),
                    format!(
                        "declare partitions: {had} for {name}, or recreate the topic (the offline broker keeps topics in memory: `finctl restart {BROKER_SERVICE}` empties it)"
                    ),
                )
                .into());
            }
            ("CreatePartitions", result)
        }
        TopicOp::Configs(configs) => {
            let keys: Vec<&str> = configs.iter().map(|(k, _)| *k).collect();
            let keys = keys.join(", ");
            let result = blocking(admin, move |a| a.alter_configs(&topic, &configs)).await?;
            if let Err(err) = &result
                && err.unsupported()
            {
                return Err(UserError::failure(
                    format!(
                        "topics: {name}'s {keys} differ from topics.yaml, but the broker ({BROKER_SERVICE}) has no IncrementalAlterConfigs: {err}"
                    ),
                    format!("declare the settings {name} has, or recreate the topic"),
                )
                .into());
            }
            ("IncrementalAlterConfigs", result)
        }
    };
    result.map_err(|err| {
        UserError::failure(
            format!("topics: {what} for {name} failed: {err}"),
            "what was made before stays; fix the cause and run `finctl bootstrap topics` again",
        )
        .into()
    })
}

/// The stack's IdP, by the image its container runs (so `finctl bootstrap` without
/// `--offline` still finds the offline IdP), else by the Compose file: the offline image is
/// Canaille, anything else Keycloak.
async fn idp_of(stack: &Stack) -> IdpKind {
    let mut image = stack
        .services
        .get(IDP_SERVICE)
        .and_then(|s| s.image.clone())
        .unwrap_or_default();
    if let (Ok(engine), Ok(service)) = (Engine::connect().await, stack.service(IDP_SERVICE)) {
        let container = stack.container_name(service, 1);
        if let Ok(inspect) = engine.api().inspect_container(&container, None).await
            && let Some(running) = inspect.config.and_then(|c| c.image)
        {
            image = running;
        }
    }
    if image.starts_with("finctl/idp") {
        IdpKind::Canaille
    } else {
        IdpKind::Keycloak
    }
}

/// The IdP's base URL from this machine, and the driver for its kind.
pub(super) fn driver(
    stack: &Stack,
    var: &(dyn Fn(&str) -> Option<String> + Sync),
    kind: IdpKind,
) -> anyhow::Result<Box<dyn Driver>> {
    let base =
        |url: String| reqwest::Url::parse(&url).with_context(|| format!("{url} is not a URL"));
    let stack_idp = || -> anyhow::Result<reqwest::Url> {
        let (host, port) = published(stack, IDP_SERVICE, IDP_PORT)?;
        base(format!("http://{host}:{port}/"))
    };
    Ok(match kind {
        IdpKind::Canaille => Box::new(identity::canaille::CanailleDriver::from_env(
            stack_idp()?,
            var,
        )?),
        IdpKind::Keycloak => Box::new(identity::keycloak::KeycloakDriver::from_env(
            stack_idp()?,
            var,
        )?),
        IdpKind::Wso2is => {
            let url = var("FINCTL_WSO2IS_URL").unwrap_or_else(|| "https://127.0.0.1:9443/".into());
            Box::new(identity::wso2is::Wso2IsDriver::from_env(base(url)?, var)?)
        }
    })
}

async fn plan_identity(
    stack: &Stack,
    var: &(dyn Fn(&str) -> Option<String> + Sync),
    decl: &Declarations,
    kind: IdpKind,
) -> anyhow::Result<Planned> {
    let mut driver = driver(stack, var, kind)?;
    let observed = driver.observe(&decl.identity).await.map_err(|err| {
        UserError::failure(
            format!(
                "identity ({} at {}): {err:#}",
                driver.name(),
                driver.location()
            ),
            "`finctl up` starts the IdP; `finctl logs keycloak` shows why it is not answering",
        )
    })?;
    let steps = identity::plan(&decl.identity, &observed);
    Ok(Planned::Identity {
        driver,
        realm: Box::new(decl.identity.clone()),
        steps,
    })
}

fn past(action: &Action) -> &'static str {
    match action {
        Action::Create => "created",
        Action::Update(_) => "updated",
        Action::Unchanged => "unchanged",
    }
}

/// `2 to create, 1 unchanged` for a plan; `2 created, 1 unchanged` once applied.
fn summary(changes: &[Change], applied: bool) -> String {
    let count = |label: &str| changes.iter().filter(|c| c.action.label() == label).count();
    let (create, update, same) = (count("create"), count("update"), count("unchanged"));
    let mut parts = Vec::new();
    for (n, planned, done) in [
        (create, "to create", "created"),
        (update, "to update", "updated"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {}", if applied { done } else { planned }));
        }
    }
    parts.push(format!("{same} unchanged"));
    parts.join(", ")
}

fn table(changes: &[Change], show_unchanged: bool) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_BORDERS_ONLY)
        .set_header(["part", "kind", "name", "action", "changes"]);
    for c in changes {
        if !show_unchanged && !c.action.is_write() {
            continue;
        }
        let fields = match &c.action {
            Action::Update(f) => f.join(", "),
            _ => String::new(),
        };
        table.add_row([
            c.part.to_string(),
            c.kind.to_string(),
            c.name.clone(),
            c.action.label().to_string(),
            fields,
        ]);
    }
    table.to_string()
}
