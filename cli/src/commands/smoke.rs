//! `finctl smoke-test`: the suites of `finctl-smoke` against the running stack.
//!
//! Planning needs only the files (the stack, `tests/smoke/`, `compose/bootstrap/`), so
//! `--list` and bad case files contact nothing. Running first asks Docker how every service
//! is, then gathers what the cases need (base URLs, a token per declared user, the bad tokens,
//! Redis and Kafka addresses), then runs the cases in parallel.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use owo_colors::OwoColorize;
use serde_json::{Value, json};

use crate::cli::{GlobalArgs, SmokeSuite, SmokeTestArgs};
use crate::printer::Printer;
use finctl_bootstrap::decl::{self, Part, Realm};
use finctl_compose::{Stack, Variables};
use finctl_engine::{Engine, LogOptions};
use finctl_error::{ExitStatus, UserError};
use finctl_orchestrate::log_render::{LogFormat, LogView};
use finctl_orchestrate::{ServiceStatus, logs, status};
use finctl_smoke::hurl_cases::{self, CaseFile};
use finctl_smoke::report::{self, JsonReport};
use finctl_smoke::run::{Builtin, Job, Options};
use finctl_smoke::{CaseResult, Outcome, Suite, forge, mask, worker};

use super::bootstrap::IDP_SERVICE;
use super::publish::GATEWAY_SERVICE;

/// The port every platform service serves HTTP on in its container.
const SERVICE_PORT: u16 = 8000;
const GATEWAY_PORT: u16 = 8280;
const REDIS_SERVICE: &str = "redis";
const REDIS_PORT: u16 = 6379;
/// Where the offline IdP keeps its private JWKS (compose/images/idp).
const IDP_PRIVATE_JWKS: &str = "/var/lib/idp/jwks.json";
/// How many cases run at once.
const PARALLEL: usize = 8;

/// A case before it runs: what `--list` shows.
#[derive(Debug, Clone, serde::Serialize)]
struct Listed {
    suite: Suite,
    name: String,
    service: Option<String>,
    source: String,
}

/// A case finctl builds itself.
#[derive(Debug, Clone)]
enum Built {
    Ready(String),
    Token(String),
    Me(String),
    Echo(String),
    DeadLetter(String),
    PaymentOnTopic,
}

impl Built {
    fn suite(&self) -> Suite {
        match self {
            Built::Ready(_) => Suite::Smoke,
            Built::Token(_) | Built::Me(_) => Suite::Auth,
            Built::Echo(_) | Built::DeadLetter(_) => Suite::Worker,
            Built::PaymentOnTopic => Suite::Flow,
        }
    }

    fn name(&self) -> String {
        match self {
            Built::Ready(s) => format!("ready: {s}"),
            Built::Token(u) => format!("token: {u} (user, issuer, audience, roles)"),
            Built::Me(u) => format!("me: {u} through the gateway"),
            Built::Echo(s) => format!("echo: {s}"),
            Built::DeadLetter(s) => format!("dead letter: {s}"),
            Built::PaymentOnTopic => {
                "payment: across currencies to payment.completed on its topic".into()
            }
        }
    }

    /// The Compose service whose logs explain a failure.
    fn service(&self) -> Option<String> {
        match self {
            Built::Ready(s) => Some(s.clone()),
            Built::Token(_) => Some(IDP_SERVICE.into()),
            Built::Me(_) => Some(GATEWAY_SERVICE.into()),
            Built::Echo(s) | Built::DeadLetter(s) => Some(format!("{s}-worker")),
            Built::PaymentOnTopic => Some("payment-worker".into()),
        }
    }
}

/// Everything planned: the case files and the built cases, filtered.
struct Plan {
    files: Vec<CaseFile>,
    built: Vec<Built>,
    realm: Realm,
}

impl Plan {
    fn listed(&self) -> Vec<Listed> {
        let mut rows: Vec<Listed> = self
            .built
            .iter()
            .map(|b| Listed {
                suite: b.suite(),
                name: b.name(),
                service: b.service(),
                source: "finctl".into(),
            })
            .chain(self.files.iter().flat_map(|f| {
                f.entries.iter().map(|e| Listed {
                    suite: f.suite,
                    name: f.case_name(e),
                    service: f.service.clone(),
                    source: format!("{}:{}", f.display, e.line),
                })
            }))
            .collect();
        rows.sort_by_key(|r| r.suite);
        rows
    }
}

pub async fn smoke_test(
    global: &GlobalArgs,
    args: SmokeTestArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let stack = super::compose::load(global, &args.stack, printer).await?;
    let plan = plan(&stack, &args)?;
    if args.list {
        let rows = plan.listed();
        if printer.json() {
            printer.data(&serde_json::to_string_pretty(&rows)?);
        } else {
            let mut table = Table::new();
            table
                .load_preset(UTF8_BORDERS_ONLY)
                .set_header(["suite", "case", "service", "source"]);
            for r in &rows {
                table.add_row([
                    r.suite.to_string(),
                    r.name.clone(),
                    r.service.clone().unwrap_or_else(|| "-".into()),
                    r.source.clone(),
                ]);
            }
            printer.data(&table.to_string());
            printer.status(&format!("{} cases", rows.len()));
        }
        return Ok(ExitStatus::Success);
    }

    let began = Instant::now();
    let engine = Engine::connect().await.ok();
    let statuses: BTreeMap<String, ServiceStatus> = match &engine {
        Some(engine) => status::statuses(engine, &stack)
            .await
            .map(|rows| rows.into_iter().map(|r| (r.service.clone(), r)).collect())
            .unwrap_or_default(),
        None => BTreeMap::new(),
    };
    let stack_up = statuses.values().any(|s| s.state == "running");
    let context = if stack_up {
        Some(Arc::new(
            Context::gather(&stack, &plan.realm, engine.as_ref(), args.timeout).await,
        ))
    } else {
        None
    };
    let vars = Arc::new(context.as_ref().map(|c| c.vars.clone()).unwrap_or_default());
    let secrets = vars.secret_values();

    let not_ready = |service: &Option<String>| -> Option<String> {
        let service = service.as_ref()?;
        let s = statuses.get(service)?;
        (!s.ok).then(|| {
            format!(
                "{service} is not ready ({}, health {}): see the case `ready: {service}`",
                s.state, s.health
            )
        })
    };
    let mut jobs = Vec::new();
    for b in &plan.built {
        let meta = |outcome: Outcome| {
            Job::Decided(CaseResult {
                suite: b.suite(),
                name: b.name(),
                service: b.service(),
                source: "finctl".into(),
                outcome,
                duration: Duration::ZERO,
                detail: None,
                log_tail: None,
            })
        };
        if let Built::Ready(service) = b {
            jobs.push(meta(ready(service, statuses.get(service), stack_up)));
            continue;
        }
        let Some(context) = &context else {
            jobs.push(meta(Outcome::Skipped("the stack is not running".into())));
            continue;
        };
        if let Some(why) = not_ready(&b.service()) {
            jobs.push(meta(Outcome::Failed(why)));
            continue;
        }
        jobs.push(Job::Case(Builtin {
            suite: b.suite(),
            name: b.name(),
            service: b.service(),
            run: Box::pin(run_built(b.clone(), context.clone())),
        }));
    }
    for file in plan.files {
        if !stack_up {
            for r in file.all(Outcome::Skipped("the stack is not running".into())) {
                jobs.push(Job::Decided(r));
            }
        } else if let Some(why) = not_ready(&file.service) {
            for r in file.all(Outcome::Failed(why.clone())) {
                jobs.push(Job::Decided(r));
            }
        } else {
            jobs.push(Job::File(file));
        }
    }

    let live = std::io::stderr().is_terminal() && printer.color();
    let options = Options {
        parallel: PARALLEL,
        fail_fast: args.fail_fast,
    };
    let mut results = finctl_smoke::run::run(jobs, vars.clone(), options, |r| {
        if !printer.json() {
            printer.status(&progress_line(r, live));
        }
    })
    .await;
    let elapsed = began.elapsed();

    // The last log lines of each service involved in a failure.
    if let Some(engine) = &engine {
        let mut tails: BTreeMap<String, Option<String>> = BTreeMap::new();
        for r in results.iter_mut().filter(|r| r.outcome.failed()) {
            let Some(service) = r.service.clone() else {
                continue;
            };
            if !tails.contains_key(&service) {
                let tail = log_tail(engine, &stack, &service).await;
                tails.insert(service.clone(), tail.map(|t| mask(&t, &secrets)));
            }
            r.log_tail = tails[&service].clone();
        }
    }

    let totals = report::totals(&results);
    if let Some(path) = &args.junit {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, report::junit(&results, elapsed)?).map_err(|err| {
            UserError::failure(
                format!("cannot write the JUnit file {}: {err}", path.display()),
                "check that its folder is writable",
            )
        })?;
    }
    if printer.json() {
        printer.data(&serde_json::to_string_pretty(&JsonReport {
            totals,
            duration: elapsed,
            cases: &results,
        })?);
    } else {
        printer.data(&summary_table(&results));
        for r in results.iter().filter(|r| r.outcome.failed()) {
            printer.data(&failure_block(r));
        }
        let line = format!(
            "smoke-test: {} passed, {} failed, {} skipped in {:.1}s",
            totals.passed,
            totals.failed,
            totals.skipped,
            elapsed.as_secs_f64()
        );
        printer.status(&line);
        if !stack_up {
            printer.status("the stack is not running: start it with `finctl up` (`finctl up --offline` without a registry)");
        }
    }
    Ok(if totals.failed == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// The cases to run, from the files alone; bad case files and unknown names are errors (2).
fn plan(stack: &Stack, args: &SmokeTestArgs) -> anyhow::Result<Plan> {
    let project = stack
        .working_dir
        .parent()
        .unwrap_or(&stack.working_dir)
        .to_path_buf();
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| project.join("tests").join("smoke"));
    if args.dir.is_some() && !dir.is_dir() {
        return Err(UserError::config(
            format!("{} is not a folder", dir.display()),
            "pass the folder that holds smoke/, auth/, worker/ and flow/",
        )
        .into());
    }
    let files = hurl_cases::load(&dir, &project).map_err(|err| {
        UserError::config(
            err.to_string(),
            "case files are Hurl (https://hurl.dev/docs/hurl-file.html); `finctl smoke-test --list` shows what parses",
        )
    })?;
    for service in &args.services {
        stack.service(service)?;
    }
    let process: BTreeMap<String, String> = std::env::vars().collect();
    let env = Variables::layered(&stack.working_dir, &process)?;
    let var = |name: &str| env.get(name).map(str::to_owned);
    let realm = decl::load(&stack.working_dir.join(decl::DIR), &[Part::Identity], &var)?.identity;

    let suites: BTreeSet<Suite> = if args.suites.is_empty() {
        Suite::ALL.into_iter().collect()
    } else {
        args.suites
            .iter()
            .map(|s| match s {
                SmokeSuite::Smoke => Suite::Smoke,
                SmokeSuite::Auth => Suite::Auth,
                SmokeSuite::Worker => Suite::Worker,
                SmokeSuite::Flow => Suite::Flow,
            })
            .collect()
    };
    let enabled: Vec<String> = stack.enabled_services().map(|s| s.name.clone()).collect();
    let mut built: Vec<Built> = enabled.iter().map(|s| Built::Ready(s.clone())).collect();
    for user in &realm.users {
        built.push(Built::Token(user.username.clone()));
        built.push(Built::Me(user.username.clone()));
    }
    for service in &enabled {
        if enabled.contains(&format!("{service}-worker")) {
            built.push(Built::Echo(service.clone()));
            built.push(Built::DeadLetter(service.clone()));
        }
    }
    if enabled.iter().any(|s| s == "payment") {
        built.push(Built::PaymentOnTopic);
    }
    let wanted = |service: &Option<String>, suite: Suite| {
        suites.contains(&suite)
            && (args.services.is_empty()
                || service.as_ref().is_some_and(|s| {
                    args.services
                        .iter()
                        .any(|w| s == w || s.strip_suffix("-worker") == Some(w.as_str()))
                }))
    };
    built.retain(|b| {
        let service = match b {
            // --service payment keeps payment's own cases, not the IdP's or the gateway's.
            Built::Echo(s) | Built::DeadLetter(s) => Some(s.clone()),
            Built::PaymentOnTopic => Some("payment".into()),
            Built::Token(_) | Built::Me(_) => None,
            Built::Ready(_) => b.service(),
        };
        wanted(&service, b.suite())
    });
    let files: Vec<CaseFile> = files
        .into_iter()
        .filter(|f| wanted(&f.service, f.suite))
        .collect();
    if built.is_empty() && files.iter().all(|f| f.entries.is_empty()) {
        return Err(UserError::config(
            format!(
                "no case of {} is about {}",
                suites
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                if args.services.is_empty() {
                    "this stack".to_owned()
                } else {
                    args.services.join(", ")
                }
            ),
            "`finctl smoke-test --list` shows every case with its service",
        )
        .into());
    }
    Ok(Plan {
        files,
        built,
        realm,
    })
}

fn ready(service: &str, status: Option<&ServiceStatus>, stack_up: bool) -> Outcome {
    match status {
        Some(s) if s.ok => Outcome::Passed,
        _ if !stack_up => Outcome::Failed(format!(
            "{service} is not running: start the stack with `finctl up`"
        )),
        Some(s) => Outcome::Failed(format!(
            "{service} is {}{} (health {}): `finctl logs {service}` says why; `finctl up {service}` starts it",
            s.state,
            s.exit_code.map(|c| format!(" ({c})")).unwrap_or_default(),
            s.health
        )),
        None => Outcome::Failed(format!("{service} has no container: `finctl up {service}`")),
    }
}

/// What the cases need from the running stack.
struct Context {
    vars: hurl_cases::Variables,
    http: reqwest::Client,
    gateway: String,
    issuer: Option<String>,
    audience: String,
    role_claim: String,
    tokens: BTreeMap<String, Result<String, String>>,
    roles: BTreeMap<String, BTreeSet<String>>,
    redis_url: Option<String>,
    kafka: Option<(String, Vec<(String, String)>)>,
    timeout: Duration,
}

impl Context {
    async fn gather(
        stack: &Stack,
        realm: &Realm,
        engine: Option<&Engine>,
        timeout: Duration,
    ) -> Self {
        let process: BTreeMap<String, String> = std::env::vars().collect();
        let env = Variables::layered(&stack.working_dir, &process).unwrap_or_default();
        let var = |name: &str| env.get(name).map(str::to_owned);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let mut vars = hurl_cases::Variables::default();
        let host_url = |service: &str, port: u16| published(stack, service, port);
        let gateway = host_url(GATEWAY_SERVICE, GATEWAY_PORT)
            .unwrap_or_else(|| format!("http://127.0.0.1:{GATEWAY_PORT}"));
        vars.plain.insert("gateway_url".into(), gateway.clone());
        for service in stack.services.keys() {
            if let Some(url) = host_url(service, SERVICE_PORT) {
                vars.plain
                    .insert(format!("{}_url", service.replace('-', "_")), url);
            }
        }
        let audience = var("OIDC_AUDIENCE").unwrap_or_else(|| "finctl".into());
        vars.plain.insert("audience".into(), audience.clone());
        vars.plain
            .insert("run_id".into(), uuid::Uuid::new_v4().to_string());

        // The IdP: discovery, then a token per declared user.
        let issuer_claim =
            var("OIDC_ISSUER").unwrap_or_else(|| "http://keycloak:8080/realms/innover".into());
        let issuer_url = super::urls::from_host(stack, &issuer_claim)
            .trim_end_matches('/')
            .to_owned();
        vars.plain.insert("issuer_url".into(), issuer_url.clone());
        let discovery: Option<Value> = async {
            let url = format!("{issuer_url}/.well-known/openid-configuration");
            http.get(url).send().await.ok()?.json().await.ok()
        }
        .await;
        let issuer = discovery
            .as_ref()
            .and_then(|d| d["issuer"].as_str())
            .map(str::to_owned);
        vars.plain.insert(
            "issuer".into(),
            issuer.clone().unwrap_or(issuer_claim.clone()),
        );
        let jwks_url = discovery
            .as_ref()
            .and_then(|d| d["jwks_uri"].as_str())
            .map(|u| super::urls::from_host(stack, u));
        if let Some(url) = &jwks_url {
            vars.plain.insert("jwks_url".into(), url.clone());
        }
        let token_url = discovery
            .as_ref()
            .and_then(|d| d["token_endpoint"].as_str())
            .map(|u| super::urls::from_host(stack, u));
        let client = realm.clients.first();
        if let Some(client) = client {
            vars.plain
                .insert("client_id".into(), client.client_id.clone());
            vars.secrets
                .insert("client_secret".into(), client.secret.expose().to_owned());
        }
        let mut tokens = BTreeMap::new();
        let mut roles = BTreeMap::new();
        for user in &realm.users {
            // The seeds' passwords are the usernames: those are no secret, and masking
            // them would blank every "user" out of the output.
            let password = user.password.expose().to_owned();
            let name = format!("password_{}", user.username);
            if password == user.username {
                vars.plain.insert(name, password);
            } else {
                vars.secrets.insert(name, password);
            }
            roles.insert(user.username.clone(), user.roles.clone());
            let token = match (&token_url, client) {
                (Some(url), Some(client)) => {
                    password_grant(&http, url, client, &user.username, user.password.expose()).await
                }
                (None, _) => Err(format!(
                    "the IdP's discovery document is not at {issuer_url}/.well-known/openid-configuration: `finctl ps {IDP_SERVICE}`, `finctl bootstrap identity`"
                )),
                (_, None) => Err("compose/bootstrap/identity.yaml declares no client".into()),
            };
            match &token {
                Ok(t) => {
                    vars.secrets
                        .insert(format!("token_{}", user.username), t.clone());
                }
                Err(why) => {
                    vars.unavailable
                        .insert(format!("token_{}", user.username), why.clone());
                }
            }
            tokens.insert(user.username.clone(), token);
        }

        // The bad tokens, from a token of a user without the admin role.
        let genuine = realm
            .users
            .iter()
            .filter(|u| !u.roles.contains("admin"))
            .chain(realm.users.iter())
            .find_map(|u| {
                tokens
                    .get(&u.username)
                    .and_then(|t| t.as_ref().ok())
                    .cloned()
            });
        let forged = match (genuine, &jwks_url) {
            (Some(genuine), Some(jwks_url)) => {
                forge_tokens(stack, engine, &http, &genuine, jwks_url).await
            }
            _ => Err("no token from the IdP to build them from".to_owned()),
        };
        match forged {
            Ok(forged) => {
                vars.secrets.extend(forged.tokens);
                vars.unavailable.extend(forged.unavailable);
            }
            Err(why) => {
                for name in forge::NAMES {
                    vars.unavailable.insert(name.into(), why.clone());
                }
            }
        }

        let redis_url = super::bootstrap::published(stack, REDIS_SERVICE, REDIS_PORT)
            .ok()
            .map(|(host, port)| {
                let password = var("REDIS_PASSWORD").unwrap_or_default();
                if !password.is_empty() {
                    vars.secrets
                        .insert("redis_password".into(), password.clone());
                }
                format!("redis://:{password}@{host}:{port}/")
            });
        let kafka = super::topics::broker_address(stack).ok();
        Self {
            vars,
            http,
            gateway,
            issuer,
            audience,
            role_claim: realm.role_claim.clone(),
            tokens,
            roles,
            redis_url,
            kafka,
            timeout,
        }
    }

    fn token(&self, user: &str) -> Result<&str, String> {
        match self.tokens.get(user) {
            Some(Ok(t)) => Ok(t),
            Some(Err(why)) => Err(why.clone()),
            None => Err(format!("{user} is not declared")),
        }
    }
}

/// `http://127.0.0.1:<published>` of a service's container port.
fn published(stack: &Stack, service: &str, port: u16) -> Option<String> {
    let (host, port) = super::bootstrap::published(stack, service, port).ok()?;
    Some(format!("http://{host}:{port}"))
}

async fn password_grant(
    http: &reqwest::Client,
    url: &str,
    client: &decl::RealmClient,
    user: &str,
    password: &str,
) -> Result<String, String> {
    let response = http
        .post(url)
        .basic_auth(&client.client_id, Some(client.secret.expose()))
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
            ("scope", super::token::SCOPE),
        ])
        .send()
        .await
        .map_err(|err| format!("the IdP is not answering at {url}: {err}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match body["access_token"].as_str() {
        Some(token) if status.is_success() => Ok(token.to_owned()),
        _ => Err(format!(
            "the IdP refused {user}'s password grant: {status} {}: `finctl bootstrap identity` makes the declared users",
            body["error_description"]
                .as_str()
                .or(body["error"].as_str())
                .unwrap_or("")
        )),
    }
}

/// The bad tokens; the private key only where the IdP lets it be read (the offline one).
async fn forge_tokens(
    stack: &Stack,
    engine: Option<&Engine>,
    http: &reqwest::Client,
    genuine: &str,
    jwks_url: &str,
) -> Result<forge::Forged, String> {
    let kid = forge::decode(genuine).and_then(|(h, _)| h["kid"].as_str().map(str::to_owned));
    let private = match (engine, stack.services.get(IDP_SERVICE)) {
        (Some(engine), Some(service)) => {
            let container = stack.container_name(service, 1);
            let cmd = ["cat".to_owned(), IDP_PRIVATE_JWKS.to_owned()];
            match finctl_engine::run_probe(engine, &container, &cmd, Duration::from_secs(10)).await
            {
                Ok((Some(0), text)) => serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|jwks| forge::Key::from_jwks(&jwks, kid.as_deref()).ok()),
                _ => None,
            }
        }
        _ => None,
    };
    let key = match private {
        Some(key) => key,
        None => {
            let jwks: Value = http
                .get(jwks_url)
                .send()
                .await
                .map_err(|err| format!("the IdP's JWKS is not at {jwks_url}: {err}"))?
                .json()
                .await
                .map_err(|err| format!("the IdP's JWKS is not JSON: {err}"))?;
            forge::Key::from_jwks(&jwks, kid.as_deref()).map_err(|err| err.to_string())?
        }
    };
    forge::forge(
        genuine,
        &key,
        "needs the IdP's private key, which only the offline IdP lets finctl read",
    )
    .map_err(|err| err.to_string())
}

/// Runs one built case.
async fn run_built(case: Built, ctx: Arc<Context>) -> (Outcome, Option<String>) {
    let result = match &case {
        Built::Ready(_) => Ok(String::new()),
        Built::Token(user) => check_token(&ctx, user),
        Built::Me(user) => check_me(&ctx, user).await,
        Built::Echo(service) => match &ctx.redis_url {
            Some(url) => worker::echo(url, service, ctx.timeout).await,
            None => Err("the stack's Redis publishes no port".into()),
        },
        Built::DeadLetter(service) => match &ctx.redis_url {
            Some(url) => worker::dead_letter(url, service, ctx.timeout).await,
            None => Err("the stack's Redis publishes no port".into()),
        },
        Built::PaymentOnTopic => payment_on_topic(&ctx).await,
    };
    let secrets = ctx.vars.secret_values();
    match result {
        Ok(_) => (Outcome::Passed, None),
        Err(why) => {
            let mut lines = why.splitn(2, '\n');
            let first = mask(lines.next().unwrap_or_default(), &secrets);
            let detail = lines.next().map(|d| mask(d, &secrets));
            (Outcome::Failed(first), detail)
        }
    }
}

/// A claim by dotted path (`realm_access.roles`).
fn claim<'a>(claims: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(claims, |v, k| &v[k])
}

fn check_token(ctx: &Context, user: &str) -> Result<String, String> {
    let token = ctx.token(user)?;
    let (_, claims) = forge::decode(token).ok_or("the IdP's token is not a JWT")?;
    let mut problems = Vec::new();
    if claims["preferred_username"] != user {
        problems.push(format!(
            "preferred_username is {}",
            claims["preferred_username"]
        ));
    }
    if let Some(issuer) = &ctx.issuer
        && claims["iss"] != issuer.as_str()
    {
        problems.push(format!("iss is {}, the IdP says {issuer}", claims["iss"]));
    }
    let aud_ok = match &claims["aud"] {
        Value::String(a) => a == &ctx.audience,
        Value::Array(a) => a.iter().any(|v| v == ctx.audience.as_str()),
        _ => false,
    };
    if !aud_ok {
        problems.push(format!("aud is {}, want {}", claims["aud"], ctx.audience));
    }
    let have: BTreeSet<String> = claim(&claims, &ctx.role_claim)
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let want = ctx.roles.get(user).cloned().unwrap_or_default();
    if !want.is_subset(&have) {
        problems.push(format!(
            "`{}` holds {have:?}, declared {want:?}",
            ctx.role_claim
        ));
    }
    if problems.is_empty() {
        Ok(format!("{user}'s token holds {have:?}"))
    } else {
        Err(format!("{user}'s token: {}", problems.join("; ")))
    }
}

async fn check_me(ctx: &Context, user: &str) -> Result<String, String> {
    let token = ctx.token(user)?;
    let url = format!("{}/api/profile/1.0.0/me", ctx.gateway);
    let response = ctx
        .http
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|err| format!("GET {url}: {err}: is the gateway up? `finctl ps gateway`"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() && body["user"]["username"] == user {
        Ok(format!("{url} knows {user}"))
    } else {
        Err(format!(
            "GET {url} as {user}: {status}, user {}\nrequest:  GET {url}\nresponse: {status}\nbody:     {}",
            body["user"]["username"],
            excerpt(&body)
        ))
    }
}

fn excerpt(body: &Value) -> String {
    body.to_string().chars().take(400).collect()
}

/// One call through the gateway as `user`; the body on a 2xx (or an accepted status), else
/// the request and response for the report.
async fn call(
    ctx: &Context,
    user: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    ok: &[u16],
) -> Result<Value, String> {
    let token = ctx.token(user)?;
    let url = format!("{}{path}", ctx.gateway);
    let mut request = ctx.http.request(method.clone(), &url).bearer_auth(token);
    if let Some(b) = &body {
        request = request
            .json(b)
            .header("Idempotency-Key", format!("smoke-{}", uuid::Uuid::new_v4()));
    }
    let response = request
        .send()
        .await
        .map_err(|err| format!("{method} {url}: {err}"))?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() || ok.contains(&status.as_u16()) {
        Ok(answer)
    } else {
        Err(format!(
            "{method} {url} as {user}: {status}\nrequest:  {method} {url} {}\nresponse: {status}\nbody:     {}",
            body.map(|b| b.to_string()).unwrap_or_default(),
            excerpt(&answer)
        ))
    }
}

/// `user`'s wallet in `currency`, opened when it has none.
async fn wallet(ctx: &Context, user: &str, currency: &str) -> Result<Value, String> {
    let find = |list: &Value| {
        list.as_array()
            .and_then(|ws| ws.iter().find(|w| w["currency"] == currency).cloned())
    };
    let path = "/api/wallet/1.0.0/wallets";
    if let Some(w) = find(&call(ctx, user, reqwest::Method::GET, path, None, &[]).await?) {
        return Ok(w);
    }
    let body = json!({ "currency": currency });
    call(ctx, user, reqwest::Method::POST, path, Some(body), &[409]).await?;
    find(&call(ctx, user, reqwest::Method::GET, path, None, &[]).await?)
        .ok_or_else(|| format!("{user} has no {currency} wallet after opening one"))
}

/// The whole payment flow through the gateway, then its `payment.completed` on the topic:
/// `user` pays `auditor` across currencies (GBP to EUR: GBP has no velocity rule, so repeated
/// runs never reach a limit), funded by a credit `finance` requests and `admin` approves.
async fn payment_on_topic(ctx: &Context) -> Result<String, String> {
    use reqwest::Method;
    const TOPIC: &str = "payment.completed";
    const AMOUNT: i64 = 1500;
    let payer = wallet(ctx, "user", "GBP").await?;
    let payee = wallet(ctx, "auditor", "EUR").await?;
    let payer_id = payer["id"].as_str().unwrap_or_default().to_owned();
    let payee_id = payee["id"].as_str().unwrap_or_default().to_owned();
    let payee_before = payee["balance"].as_i64().unwrap_or_default();
    let request = call(
        ctx,
        "finance",
        Method::POST,
        &format!("/api/wallet/1.0.0/wallets/{payer_id}/credit-requests"),
        Some(json!({"amount": AMOUNT, "reference": format!("smoke-{}", uuid::Uuid::new_v4())})),
        &[],
    )
    .await?;
    let request_id = request["id"].as_str().unwrap_or_default();
    call(
        ctx,
        "admin",
        Method::POST,
        &format!("/api/wallet/1.0.0/credit-requests/{request_id}/approve"),
        None,
        &[],
    )
    .await?;
    let payment = call(
        ctx,
        "user",
        Method::POST,
        "/api/payment/1.0.0/payments",
        Some(
            json!({"amount": AMOUNT, "currency": "GBP", "payee_wallet_id": payee_id,
            "payee": "smoke-test", "description": "finctl smoke-test flow"}),
        ),
        &[],
    )
    .await?;
    let id = payment["id"].as_str().unwrap_or_default().to_owned();
    // The saga runs in the workers: follow it until it ends.
    let path = format!("/api/payment/1.0.0/payments/{id}");
    let deadline = tokio::time::Instant::now() + ctx.timeout;
    let done = loop {
        let p = call(ctx, "user", Method::GET, &path, None, &[]).await?;
        let status = p["status"].as_str().unwrap_or_default().to_owned();
        if ["completed", "failed", "rejected"].contains(&status.as_str()) {
            break p;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "payment {id} is still {status} after {}s: the saga runs in payment-worker, forex-worker and ledger-worker (`finctl logs payment-worker ledger-worker forex-worker`)\nhistory: {}",
                ctx.timeout.as_secs(),
                excerpt(&p["history"])
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    if done["status"] != "completed" {
        return Err(format!(
            "payment {id} ended {} ({}): {}",
            done["status"],
            done["failure_reason"],
            excerpt(&done["history"])
        ));
    }
    let received = done["payee_amount"].as_i64().unwrap_or_default();
    let payee_after = call(
        ctx,
        "auditor",
        Method::GET,
        &format!("/api/wallet/1.0.0/wallets/{payee_id}"),
        None,
        &[],
    )
    .await?["balance"]
        .as_i64()
        .unwrap_or_default();
    if received <= 0 || payee_after < payee_before + received {
        return Err(format!(
            "payment {id} completed with payee_amount {received}, but the payee's EUR wallet went from {payee_before} to {payee_after}"
        ));
    }
    let Some((bootstrap, rewrites)) = ctx.kafka.clone() else {
        return Err("the broker publishes no Kafka port".into());
    };
    let deadline = ctx.timeout;
    let needle = id.clone();
    let found = tokio::task::spawn_blocking(move || {
        finctl_bootstrap::kafka::find_message(
            &bootstrap,
            &rewrites,
            TOPIC,
            &|_key, payload| String::from_utf8_lossy(payload).contains(&needle),
            deadline,
        )
    })
    .await
    .map_err(|err| err.to_string())?
    .map_err(|err| format!("reading {TOPIC}: {err:#}"))?;
    match found {
        Some(m) => Ok(format!(
            "payment {id}: {AMOUNT} GBP -> {received} EUR, completed; {TOPIC}[{}]@{}",
            m.partition, m.offset
        )),
        None => Err(format!(
            "payment {id} completed but no {TOPIC} event carried it within {}s: the outbox relay runs in payment-worker",
            deadline.as_secs()
        )),
    }
}

/// The last log lines of a service's container.
async fn log_tail(engine: &Engine, stack: &Stack, service: &str) -> Option<String> {
    let svc = stack.services.get(service)?;
    let container = stack.container_name(svc, 1);
    let options = LogOptions {
        follow: false,
        tail: Some(15),
        since: None,
    };
    let view = LogView {
        format: LogFormat::Readable,
        min_level: None,
        color: false,
    };
    let mut lines = Vec::new();
    logs::stream(
        engine,
        vec![(service.to_owned(), container)],
        options,
        view,
        &mut |line| {
            lines.push(line.to_owned());
            true
        },
    )
    .await
    .ok()?;
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn progress_line(r: &CaseResult, color: bool) -> String {
    let label = r.outcome.label();
    let label = if color {
        match r.outcome {
            Outcome::Passed => label.green().to_string(),
            Outcome::Failed(_) => label.red().bold().to_string(),
            Outcome::Skipped(_) => label.yellow().to_string(),
        }
    } else {
        label.to_owned()
    };
    let why = match &r.outcome {
        Outcome::Passed => String::new(),
        Outcome::Failed(m) | Outcome::Skipped(m) => format!(": {m}"),
    };
    format!(
        "{label:>4}  {:<6} {} ({} ms){why}",
        r.suite.name(),
        r.name,
        r.duration.as_millis()
    )
}

fn summary_table(results: &[CaseResult]) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_BORDERS_ONLY)
        .set_header(["suite", "case", "result", "duration"]);
    for r in results {
        table.add_row([
            r.suite.to_string(),
            r.name.clone(),
            r.outcome.label().to_owned(),
            format!("{} ms", r.duration.as_millis()),
        ]);
    }
    table.to_string()
}

fn failure_block(r: &CaseResult) -> String {
    let Outcome::Failed(message) = &r.outcome else {
        return String::new();
    };
    let mut text = format!(
        "\nFAIL {} / {} ({})\n  {message}\n",
        r.suite, r.name, r.source
    );
    for line in report::failure_text(r).lines() {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_found_by_its_dotted_path() {
        let claims = json!({"realm_access": {"roles": ["auditor"]}, "groups": ["x"]});
        assert_eq!(claim(&claims, "realm_access.roles"), &json!(["auditor"]));
        assert_eq!(claim(&claims, "groups"), &json!(["x"]));
        assert!(claim(&claims, "nope.roles").is_null());
    }

    #[test]
    fn ready_says_what_to_do() {
        let down = ServiceStatus {
            service: "profile".into(),
            container: Some("finctl_profile_1".into()),
            state: "exited".into(),
            health: "none".into(),
            exit_code: Some(137),
            ports: vec![],
            one_shot: false,
            ok: false,
        };
        let Outcome::Failed(why) = ready("profile", Some(&down), true) else {
            panic!()
        };
        assert!(
            why.contains("exited (137)") && why.contains("finctl up profile"),
            "{why}"
        );
        let Outcome::Failed(why) = ready("profile", None, false) else {
            panic!()
        };
        assert!(why.contains("finctl up"), "{why}");
    }
}
