//! `api-config.yaml`: its schema, its validation (every problem with file, line and value),
//! and its resolution into the [`RouteTable`] every target is published from.
//!
//! The file is read in two passes: serde with `deny_unknown_fields` (unknown keys, missing
//! fields, wrong types: located by the path serde was at), then the checks serde cannot make
//! (duplicates, contexts, URLs, policy and role names, durations), then the gateway's own
//! invariants ([`gateway_routes::validate`]) on the resolved table, so a file that passes
//! here is one the gateway accepts. Every problem found is reported, not only the first.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use finctl_compose::located::{Report, parse_yaml};
use finctl_compose::{LineIndex, Segment, closest, display_path, parse_duration};
use finctl_error::UserError;
use gateway_routes::{
    Access, Api, ApiKind, Cors, FINCTL_OWNER, GraphqlSettings, Operation, RouteTable, Throttle,
    Timeouts,
};
use serde::Deserialize;

/// The file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// The realm roles APIs may name; when given, any other role name is an error (a typo
    /// would otherwise lock everyone out).
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Named throttling policies (WSO2's tiers): `public: {requests: 20, per: 1m}`.
    #[serde(default)]
    pub policies: BTreeMap<String, PolicySpec>,
    /// What every API gets unless it says otherwise.
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub rest_apis: Vec<ApiSpec>,
    #[serde(default)]
    pub graphql_apis: Vec<ApiSpec>,
    #[serde(default)]
    pub websocket_apis: Vec<ApiSpec>,
    /// AI/LLM backends: long upstream timeouts, replies streamed as they arrive.
    #[serde(default)]
    pub ai_apis: Vec<ApiSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    pub requests: u32,
    /// A duration: `1m`, `10s`, `1h`.
    pub per: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// A policy name; `none` for no throttling.
    #[serde(default)]
    pub throttle: Option<String>,
    #[serde(default)]
    pub timeouts: TimeoutsSpec,
    #[serde(default)]
    pub cors: Option<CorsSpec>,
}

/// One API in any of the four lists; the list sets its kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSpec {
    pub name: String,
    pub context: String,
    pub version: String,
    pub backend_url: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub access: Option<AccessSpec>,
    /// A policy name; `none` for no throttling; default: `defaults.throttle`.
    #[serde(default)]
    pub throttle: Option<String>,
    #[serde(default)]
    pub operations: Vec<OperationSpec>,
    /// Replaces `defaults.cors` for this API.
    #[serde(default)]
    pub cors: Option<CorsSpec>,
    /// Each one given replaces the default for this API.
    #[serde(default)]
    pub timeouts: TimeoutsSpec,
    /// GraphQL only: the SDL file, relative to this file.
    #[serde(default)]
    pub schema: Option<PathBuf>,
    /// GraphQL only (default 10).
    #[serde(default)]
    pub max_depth: Option<usize>,
    /// GraphQL only (default 16384).
    #[serde(default)]
    pub max_query_bytes: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSpec {
    #[serde(default)]
    pub anonymous: bool,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationSpec {
    /// `GET`, `POST`, ... or `*`.
    pub method: String,
    /// `/health`, `/payments/{id}`, `/admin/*`.
    pub path: String,
    #[serde(default)]
    pub access: Option<AccessSpec>,
    #[serde(default)]
    pub throttle: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSpec {
    pub origins: Vec<String>,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub credentials: bool,
    /// A duration: `10m`.
    #[serde(default)]
    pub max_age: Option<String>,
}

/// Durations as written (`500ms`, `30s`, `5m`); `total: none` for no cap.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSpec {
    #[serde(default)]
    pub connect: Option<String>,
    #[serde(default)]
    pub response: Option<String>,
    #[serde(default)]
    pub idle: Option<String>,
    #[serde(default)]
    pub total: Option<String>,
}

/// The four lists, in the order the file's kinds are documented.
pub const API_LISTS: [(&str, ApiKind); 4] = [
    ("rest_apis", ApiKind::Rest),
    ("graphql_apis", ApiKind::Graphql),
    ("websocket_apis", ApiKind::Websocket),
    ("ai_apis", ApiKind::Ai),
];

/// The default name of the file, at the project's root.
pub const DEFAULT_FILE: &str = "api-config.yaml";

pub use finctl_compose::located::{Invalid, Problem};

/// What a file that fails validation leaves undone.
const CONSEQUENCE: &str = "nothing was published";

/// The error the CLI reports for an invalid file (exit 2).
pub fn user_error(invalid: Invalid) -> UserError {
    invalid.into_user_error(
        "fix the lines above and run `finctl publish-apis --dry-run` to check again",
    )
}

/// The validated file: the table to publish, and where each API is written.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub file: PathBuf,
    pub table: RouteTable,
}

/// Reads, validates and resolves the file at `path`.
pub fn load(path: &Path) -> Result<Resolved, UserError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        UserError::config(
            format!("cannot read {}: {err}", path.display()),
            "pass the file with --config FILE (default: api-config.yaml at the project's root)",
        )
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    resolve_text(path, &text, &|schema| {
        std::fs::read_to_string(base.join(schema))
    })
    .map_err(user_error)
}

/// Validates and resolves `text` (read from `file`); `read_schema` reads a GraphQL schema
/// path as written in the file.
pub fn resolve_text(
    file: &Path,
    text: &str,
    read_schema: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Resolved, Invalid> {
    let index = LineIndex::new(text);
    let config: ApiConfig = parse_yaml(file, text, &index, CONSEQUENCE)?;
    let mut report = Report::new(file, &index, CONSEQUENCE);
    let table = Resolver {
        config: &config,
        report: &mut report,
        read_schema,
    }
    .resolve();
    report.result(Resolved {
        file: file.to_path_buf(),
        table,
    })
}

fn key(name: &str) -> Segment {
    Segment::key(name)
}

fn at(base: &[Segment], more: &[Segment]) -> Vec<Segment> {
    [base, more].concat()
}

/// Policy name meaning "no throttling".
const NO_THROTTLE: &str = "none";

struct Resolver<'a, 'r> {
    config: &'a ApiConfig,
    report: &'r mut Report<'a>,
    read_schema: &'a dyn Fn(&Path) -> std::io::Result<String>,
}

impl Resolver<'_, '_> {
    fn resolve(mut self) -> RouteTable {
        let policies = self.policies();
        let default_throttle = match &self.config.defaults.throttle {
            Some(name) => self.policy(&policies, name, &[key("defaults"), key("throttle")]),
            None => None,
        };
        let default_cors = self
            .config
            .defaults
            .cors
            .as_ref()
            .and_then(|c| self.cors(c, &[key("defaults"), key("cors")]));
        let mut apis = Vec::new();
        // (id or prefix) -> where it was first written
        let mut ids: HashMap<String, Vec<Segment>> = HashMap::new();
        let mut prefixes: HashMap<String, Vec<Segment>> = HashMap::new();
        for (list, kind) in API_LISTS {
            let specs = match list {
                "rest_apis" => &self.config.rest_apis,
                "graphql_apis" => &self.config.graphql_apis,
                "websocket_apis" => &self.config.websocket_apis,
                _ => &self.config.ai_apis,
            };
            for (i, spec) in specs.iter().enumerate() {
                let base = vec![key(list), Segment::Index(i)];
                let id = format!("{}:{}", spec.name, spec.version);
                let prefix = format!("{}/{}", spec.context.trim_end_matches('/'), spec.version);
                if let Some(first) = ids.get(&id) {
                    let first_line = self.line(first);
                    self.report.add(
                        &at(&base, &[key("name")]),
                        Some(&id),
                        format!(
                            "name and version are already used by {}{first_line}",
                            display_path(first)
                        ),
                    );
                } else {
                    ids.insert(id, base.clone());
                }
                if let Some(first) = prefixes.get(&prefix) {
                    let first_line = self.line(first);
                    self.report.add(
                        &at(&base, &[key("context")]),
                        Some(&prefix),
                        format!(
                            "context and version are already used by {}{first_line}",
                            display_path(first)
                        ),
                    );
                } else {
                    prefixes.insert(prefix, base.clone());
                }
                let Some(api) = self.api(
                    spec,
                    kind,
                    &base,
                    &policies,
                    default_throttle.as_ref(),
                    default_cors.as_ref(),
                ) else {
                    continue;
                };
                apis.push(api);
            }
        }
        RouteTable { apis }
    }

    fn line(&self, path: &[Segment]) -> String {
        self.report
            .line(path)
            .map_or_else(String::new, |line| format!(" (line {line})"))
    }

    fn policies(&mut self) -> BTreeMap<String, Throttle> {
        let mut out = BTreeMap::new();
        for (name, spec) in &self.config.policies {
            let path = [key("policies"), key(name)];
            if name == NO_THROTTLE {
                self.report.add(
                    &path,
                    Some(name),
                    "`none` is reserved: it means no throttling",
                );
                continue;
            }
            if spec.requests == 0 {
                self.report.add(
                    &at(&path, &[key("requests")]),
                    Some("0"),
                    "must be at least 1",
                );
                continue;
            }
            let Some(per) = self.duration(&spec.per, &at(&path, &[key("per")])) else {
                continue;
            };
            if per.as_secs() == 0 || per.subsec_nanos() != 0 {
                self.report.add(
                    &at(&path, &[key("per")]),
                    Some(&spec.per),
                    "must be a whole number of seconds, at least 1s",
                );
                continue;
            }
            out.insert(
                name.clone(),
                Throttle {
                    policy: name.clone(),
                    requests: spec.requests,
                    period_seconds: u32::try_from(per.as_secs()).unwrap_or(u32::MAX),
                },
            );
        }
        out
    }

    /// `None` for `none`, an unknown name (reported) or no policy.
    fn policy(
        &mut self,
        policies: &BTreeMap<String, Throttle>,
        name: &str,
        path: &[Segment],
    ) -> Option<Throttle> {
        if name == NO_THROTTLE {
            return None;
        }
        match policies.get(name) {
            Some(policy) => Some(policy.clone()),
            None => {
                let known: Vec<&str> = policies.keys().map(String::as_str).collect();
                let message = if self.config.policies.contains_key(name) {
                    "this policy is itself invalid (see its own problem)".to_owned()
                } else if known.is_empty() {
                    "no such policy: declare it under `policies:` (or write `none`)".to_owned()
                } else {
                    format!("no such policy; declared: {} (or `none`)", known.join(", "))
                };
                self.report.add(path, Some(name), message);
                None
            }
        }
    }

    fn duration(&mut self, text: &str, path: &[Segment]) -> Option<Duration> {
        match parse_duration(text) {
            Some(d) if !d.is_zero() => Some(d),
            Some(_) => {
                self.report
                    .add(path, Some(text), "must be longer than zero");
                None
            }
            None => {
                self.report.add(
                    path,
                    Some(text),
                    "not a duration (write 500ms, 30s, 5m, 1h)",
                );
                None
            }
        }
    }

    fn millis(&mut self, text: &Option<String>, path: &[Segment]) -> Option<u64> {
        let text = text.as_ref()?;
        self.duration(text, path)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1))
    }

    fn access(&mut self, spec: &AccessSpec, path: &[Segment]) -> Access {
        if let Some(known) = &self.config.roles {
            for (i, role) in spec.roles.iter().enumerate() {
                if !known.contains(role) {
                    let hint = closest(role, known.iter())
                        .map_or_else(String::new, |c| format!(" (did you mean `{c}`?)"));
                    self.report.add(
                        &at(path, &[key("roles"), Segment::Index(i)]),
                        Some(role),
                        format!("not one of the declared roles: {}{hint}", known.join(", ")),
                    );
                }
            }
        }
        if spec.anonymous && !spec.roles.is_empty() {
            self.report.add(
                &at(path, &[key("anonymous")]),
                Some("true"),
                "anonymous access cannot also require roles; choose one",
            );
        }
        Access {
            anonymous: spec.anonymous,
            roles: spec.roles.clone(),
        }
    }

    fn cors(&mut self, spec: &CorsSpec, path: &[Segment]) -> Option<Cors> {
        if spec.origins.is_empty() {
            self.report.add(
                &at(path, &[key("origins")]),
                None,
                "list at least one origin (or `*`)",
            );
            return None;
        }
        if spec.credentials && spec.origins.iter().any(|o| o == "*") {
            self.report.add(
                &at(path, &[key("credentials")]),
                Some("true"),
                "browsers refuse credentials with origin `*`: list the origins",
            );
        }
        let max_age_seconds = match &spec.max_age {
            Some(text) => self
                .duration(text, &at(path, &[key("max_age")]))
                .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX)),
            None => None,
        };
        Some(Cors {
            origins: spec.origins.clone(),
            methods: spec
                .methods
                .iter()
                .map(|m| m.to_ascii_uppercase())
                .collect(),
            headers: spec.headers.clone(),
            credentials: spec.credentials,
            max_age_seconds,
        })
    }

    fn timeouts(&mut self, kind: ApiKind, spec: &TimeoutsSpec, path: &[Segment]) -> Timeouts {
        let defaults = &self.config.defaults.timeouts;
        let mut t = kind_timeouts(kind);
        let dpath = [key("defaults"), key("timeouts")];
        let tpath = at(path, &[key("timeouts")]);
        // The API's own value wins over `defaults:`, which wins over the kind's default.
        let pick = |own: &Option<String>, default: &Option<String>| {
            own.clone()
                .map(|v| (v, true))
                .or_else(|| default.clone().map(|v| (v, false)))
        };
        for (field, own, default) in [
            ("connect", &spec.connect, &defaults.connect),
            ("response", &spec.response, &defaults.response),
            ("idle", &spec.idle, &defaults.idle),
            ("total", &spec.total, &defaults.total),
        ] {
            let Some((text, is_own)) = pick(own, default) else {
                continue;
            };
            let fpath = at(if is_own { &tpath } else { &dpath }, &[key(field)]);
            if field == "total" && text == "none" {
                t.total_ms = None;
                continue;
            }
            let Some(ms) = self.millis(&Some(text), &fpath) else {
                continue;
            };
            match field {
                "connect" => t.connect_ms = ms,
                "response" => t.response_ms = ms,
                "idle" => t.idle_ms = ms,
                _ => t.total_ms = Some(ms),
            }
        }
        t
    }

    fn api(
        &mut self,
        spec: &ApiSpec,
        kind: ApiKind,
        base: &[Segment],
        policies: &BTreeMap<String, Throttle>,
        default_throttle: Option<&Throttle>,
        default_cors: Option<&Cors>,
    ) -> Option<Api> {
        let before = self.report.problems.len();
        let field = |name: &str| at(base, &[key(name)]);
        if !spec.context.starts_with('/') {
            self.report.add(
                &field("context"),
                Some(&spec.context),
                "must start with `/` (like `/api/payment`)",
            );
        }
        match reqwest::Url::parse(&spec.backend_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
            Ok(_) => self.report.add(
                &field("backend_url"),
                Some(&spec.backend_url),
                "must be an http:// or https:// URL with a host (like http://payment:8000)",
            ),
            Err(err) => self.report.add(
                &field("backend_url"),
                Some(&spec.backend_url),
                format!("not a URL: {err}"),
            ),
        }
        let access = spec
            .access
            .as_ref()
            .map(|a| self.access(a, &field("access")))
            .unwrap_or_default();
        let throttle = match &spec.throttle {
            Some(name) => self.policy(policies, name, &field("throttle")),
            None => default_throttle.cloned(),
        };
        let mut operations = Vec::new();
        for (i, op) in spec.operations.iter().enumerate() {
            let opath = at(base, &[key("operations"), Segment::Index(i)]);
            let access = op
                .access
                .as_ref()
                .map(|a| self.access(a, &at(&opath, &[key("access")])));
            let throttle = op
                .throttle
                .as_ref()
                .and_then(|name| self.policy(policies, name, &at(&opath, &[key("throttle")])));
            operations.push(Operation {
                method: op.method.to_ascii_uppercase(),
                path: op.path.clone(),
                access,
                throttle,
            });
        }
        let cors = match &spec.cors {
            Some(c) => self.cors(c, &field("cors")),
            None => default_cors.cloned(),
        };
        let timeouts = self.timeouts(kind, &spec.timeouts, base);
        let graphql = if kind == ApiKind::Graphql {
            self.graphql(spec, base)
        } else {
            for name in ["schema", "max_depth", "max_query_bytes"] {
                let set = match name {
                    "schema" => spec.schema.is_some(),
                    "max_depth" => spec.max_depth.is_some(),
                    _ => spec.max_query_bytes.is_some(),
                };
                if set {
                    self.report.add(
                        &field(name),
                        None,
                        "only GraphQL APIs (under graphql_apis) take this key",
                    );
                }
            }
            None
        };
        let api = Api {
            name: spec.name.clone(),
            context: spec.context.trim_end_matches('/').to_owned(),
            version: spec.version.clone(),
            kind,
            backend_url: spec.backend_url.trim_end_matches('/').to_owned(),
            description: spec.description.clone(),
            tags: spec.tags.clone(),
            access,
            throttle,
            operations,
            cors,
            timeouts,
            graphql,
            owner: Some(FINCTL_OWNER.to_owned()),
        };
        if self.report.problems.len() > before {
            return None;
        }
        // The gateway's own rules, on what was resolved: the field it names is a key of ours.
        if let Err(invalid) = gateway_routes::validate::validate_api(&api, "") {
            let path = at(base, &parse_field(&invalid.field));
            let value = value_at(&api, &invalid.field);
            self.report.add(&path, value.as_deref(), invalid.reason);
            return None;
        }
        Some(api)
    }

    fn graphql(&mut self, spec: &ApiSpec, base: &[Segment]) -> Option<GraphqlSettings> {
        let schema = match &spec.schema {
            Some(file) => match (self.read_schema)(file) {
                Ok(sdl) => match graphql_parser::parse_schema::<String>(&sdl) {
                    Ok(_) => Some(sdl),
                    Err(err) => {
                        self.report.add(
                            &at(base, &[key("schema")]),
                            Some(&file.display().to_string()),
                            format!("not a GraphQL schema: {err}"),
                        );
                        None
                    }
                },
                Err(err) => {
                    self.report.add(
                        &at(base, &[key("schema")]),
                        Some(&file.display().to_string()),
                        format!("cannot read the schema (relative to this file): {err}"),
                    );
                    None
                }
            },
            None => {
                self.report.add(
                    &at(base, &[key("name")]),
                    Some(&spec.name),
                    "a GraphQL API needs `schema:` (its SDL file, relative to this file)",
                );
                None
            }
        };
        Some(GraphqlSettings {
            max_query_bytes: spec.max_query_bytes.unwrap_or(16 * 1024),
            max_depth: spec.max_depth.unwrap_or(10),
            schema,
        })
    }
}

/// The default timeouts of each kind: AI backends think for a long time and stream;
/// WebSockets sit idle between messages.
pub fn kind_timeouts(kind: ApiKind) -> Timeouts {
    let base = Timeouts::default();
    match kind {
        ApiKind::Rest | ApiKind::Graphql => base,
        ApiKind::Websocket => Timeouts {
            idle_ms: 300_000,
            ..base
        },
        ApiKind::Ai => Timeouts {
            response_ms: 300_000,
            idle_ms: 120_000,
            total_ms: Some(600_000),
            ..base
        },
    }
}

/// `operations[0].method` -> [operations, 0, method].
fn parse_field(field: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in field.split('.').filter(|p| !p.is_empty()) {
        match part.split_once('[') {
            Some((name, rest)) => {
                out.push(key(name));
                if let Ok(i) = rest.trim_end_matches(']').parse() {
                    out.push(Segment::Index(i));
                }
            }
            None => out.push(key(part)),
        }
    }
    out
}

/// The value of a resolved field, for the error line.
fn value_at(api: &Api, field: &str) -> Option<String> {
    let mut value = serde_json::to_value(api).ok()?;
    for segment in parse_field(field) {
        value = match segment {
            Segment::Key(k) => value.get(&k)?.clone(),
            Segment::Index(i) => value.get(i)?.clone(),
        };
    }
    match value {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Object(_) | serde_json::Value::Array(_) => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests;
