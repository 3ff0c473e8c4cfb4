//! The declarations under `compose/bootstrap/`: `database.yaml`, `topics.yaml` and
//! `identity.yaml`. Each is checked whole before anything is contacted: unknown keys, missing
//! fields, duplicates, undeclared roles or users, impossible topic settings, and secret
//! variables that are not set, each with its file, line and the offending value.
//!
//! Secrets are never written in the files: a file names the variable (`password_env`,
//! `secret_env`) and its value comes from the environment or `compose/.env`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use finctl_compose::located::{Invalid, Report, parse_yaml};
use finctl_compose::{LineIndex, Segment, parse_duration};
use finctl_error::UserError;
use serde::{Deserialize, Serialize};

/// The folder, relative to the Compose file's folder.
pub const DIR: &str = "bootstrap";
const CONSEQUENCE: &str = "nothing was changed";

/// The three parts, in the order bootstrap runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Database,
    Topics,
    Identity,
}

impl Part {
    pub const ALL: [Part; 3] = [Part::Database, Part::Topics, Part::Identity];

    pub fn name(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::Topics => "topics",
            Self::Identity => "identity",
        }
    }

    pub fn file(self) -> &'static str {
        match self {
            Self::Database => "database.yaml",
            Self::Topics => "topics.yaml",
            Self::Identity => "identity.yaml",
        }
    }
}

/// A secret's value, read from the variable the file names; never printed.
pub use finctl_env::Secret;

// ---- database.yaml ---------------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseFile {
    #[serde(default)]
    databases: Vec<DatabaseSpec>,
    #[serde(default)]
    users: Vec<DbUserSpec>,
    #[serde(default)]
    grants: Vec<GrantSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseSpec {
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DbUserSpec {
    name: String,
    /// CockroachDB's insecure mode has no passwords: leave it out there.
    password_env: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantSpec {
    user: String,
    database: String,
    privileges: Vec<String>,
}

/// The privileges on a database that CockroachDB and PostgreSQL both grant.
pub const DB_PRIVILEGES: &[&str] = &["ALL", "CONNECT", "CREATE"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseDecl {
    pub databases: Vec<String>,
    pub users: Vec<DbUser>,
    pub grants: Vec<Grant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbUser {
    pub name: String,
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub user: String,
    pub database: String,
    /// Upper case, from [`DB_PRIVILEGES`]; `ALL` stands alone.
    pub privileges: BTreeSet<String>,
}

// ---- topics.yaml -----------------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicsFile {
    #[serde(default)]
    defaults: TopicDefaults,
    #[serde(default)]
    topics: Vec<TopicSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicDefaults {
    partitions: Option<i64>,
    replication_factor: Option<i64>,
    retention: Option<String>,
    cleanup_policy: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicSpec {
    name: String,
    partitions: Option<i64>,
    replication_factor: Option<i64>,
    /// `7d`, `12h`, or `infinite`.
    retention: Option<String>,
    /// `delete`, `compact` or `compact,delete`.
    cleanup_policy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
    /// `None`: kept forever (`retention.ms = -1`).
    pub retention: Option<Duration>,
    pub cleanup_policy: String,
}

impl Topic {
    /// `retention.ms` as Kafka writes it.
    pub fn retention_ms(&self) -> String {
        self.retention
            .map_or_else(|| "-1".to_string(), |d| d.as_millis().to_string())
    }
}

// ---- identity.yaml ---------------------------------------------------------------------

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    realm: Option<String>,
    role_claim: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    users: Vec<UserSpec>,
    #[serde(default)]
    clients: Vec<ClientSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserSpec {
    username: String,
    email: String,
    first_name: String,
    last_name: String,
    password_env: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientSpec {
    client_id: String,
    secret_env: String,
    grant_types: Vec<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    /// The token's `aud`; the client id when left out.
    audience: Option<String>,
}

/// OAuth grant types a declared client may have.
pub const GRANT_TYPES: &[&str] = &[
    "password",
    "client_credentials",
    "refresh_token",
    "authorization_code",
];

/// The identity realm: roles, users, clients, and the claim roles reach the token in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Realm {
    pub name: String,
    pub role_claim: String,
    pub roles: Vec<String>,
    pub users: Vec<RealmUser>,
    pub clients: Vec<RealmClient>,
}

impl Default for Realm {
    fn default() -> Self {
        Self {
            name: "innover".into(),
            role_claim: "groups".into(),
            roles: Vec::new(),
            users: Vec::new(),
            clients: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmUser {
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub password: Secret,
    pub roles: BTreeSet<String>,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealmClient {
    pub client_id: String,
    pub secret: Secret,
    pub grant_types: BTreeSet<String>,
    pub redirect_uris: BTreeSet<String>,
    pub audience: String,
}

impl Realm {
    pub fn user(&self, username: &str) -> Option<&RealmUser> {
        self.users.iter().find(|u| u.username == username)
    }

    pub fn client(&self, client_id: &str) -> Option<&RealmClient> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }
}

// ---- loading ---------------------------------------------------------------------------

/// Everything declared, secrets resolved. A part whose file is absent is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declarations {
    pub dir: PathBuf,
    pub database: DatabaseDecl,
    pub topics: Vec<Topic>,
    pub identity: Realm,
}

/// Reads and checks the files of `parts` in `dir`; `var` looks a variable up (the
/// environment, then `compose/.env`). Every problem of every file is reported together.
pub fn load(
    dir: &Path,
    parts: &[Part],
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Declarations, UserError> {
    let mut out = Declarations {
        dir: dir.to_path_buf(),
        ..Declarations::default()
    };
    let mut invalid = Vec::new();
    for &part in parts {
        let file = dir.join(part.file());
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => {
                return Err(UserError::config(
                    format!("cannot read {}: {err}", file.display()),
                    "check the file's permissions",
                ));
            }
        };
        let result = match part {
            Part::Database => database(&file, &text, var).map(|d| out.database = d),
            Part::Topics => topics(&file, &text).map(|t| out.topics = t),
            Part::Identity => identity(&file, &text, var).map(|r| out.identity = r),
        };
        if let Err(e) = result {
            invalid.push(e);
        }
    }
    if invalid.is_empty() {
        return Ok(out);
    }
    let message = invalid
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    Err(UserError::config(
        message,
        "fix the lines above and run `finctl bootstrap --dry-run` to check again",
    ))
}

fn key(name: &str) -> Segment {
    Segment::key(name)
}

fn at(base: &[Segment], more: &[Segment]) -> Vec<Segment> {
    base.iter().chain(more).cloned().collect()
}

fn item(list: &str, i: usize) -> Vec<Segment> {
    vec![key(list), Segment::Index(i)]
}

/// A name first seen at an earlier index: a duplicate.
fn check_duplicates<'a>(
    report: &mut Report<'_>,
    list: &str,
    field: &str,
    names: impl Iterator<Item = &'a str>,
) {
    let mut seen = BTreeMap::new();
    for (i, name) in names.enumerate() {
        let path = at(&item(list, i), &[key(field)]);
        if let Some(first) = seen.insert(name.to_string(), i) {
            let line = report
                .line(&at(&item(list, first), &[key(field)]))
                .map_or_else(String::new, |l| format!(" (line {l})"));
            report.add(
                &path,
                Some(name),
                format!("declared twice; the first is {list}[{first}]{line}"),
            );
            seen.insert(name.to_string(), first);
        }
    }
}

fn secret(
    report: &mut Report<'_>,
    path: &[Segment],
    variable: &str,
    var: &dyn Fn(&str) -> Option<String>,
) -> Secret {
    if variable.is_empty()
        || !variable
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        report.add(
            path,
            Some(variable),
            "not a variable name (letters, digits, _)",
        );
        return Secret::new("");
    }
    match var(variable) {
        Some(value) if !value.is_empty() => Secret::new(value),
        _ => {
            report.add(
                path,
                Some(variable),
                "the variable is not set: set it in the environment or in compose/.env",
            );
            Secret::new("")
        }
    }
}

fn sql_name(report: &mut Report<'_>, path: &[Segment], name: &str) {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        report.add(
            path,
            Some(name),
            "not a plain SQL name (lower-case letters, digits and _, starting with a letter or _, at most 63)",
        );
    }
}

fn database(
    file: &Path,
    text: &str,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<DatabaseDecl, Invalid> {
    let index = LineIndex::new(text);
    let spec: DatabaseFile = parse_yaml(file, text, &index, CONSEQUENCE)?;
    let mut report = Report::new(file, &index, CONSEQUENCE);
    check_duplicates(
        &mut report,
        "databases",
        "name",
        spec.databases.iter().map(|d| d.name.as_str()),
    );
    check_duplicates(
        &mut report,
        "users",
        "name",
        spec.users.iter().map(|u| u.name.as_str()),
    );
    let mut decl = DatabaseDecl::default();
    for (i, d) in spec.databases.iter().enumerate() {
        sql_name(
            &mut report,
            &at(&item("databases", i), &[key("name")]),
            &d.name,
        );
        decl.databases.push(d.name.clone());
    }
    for (i, u) in spec.users.iter().enumerate() {
        let base = item("users", i);
        sql_name(&mut report, &at(&base, &[key("name")]), &u.name);
        let password = u
            .password_env
            .as_deref()
            .map(|v| secret(&mut report, &at(&base, &[key("password_env")]), v, var));
        decl.users.push(DbUser {
            name: u.name.clone(),
            password,
        });
    }
    for (i, g) in spec.grants.iter().enumerate() {
        let base = item("grants", i);
        if !decl.users.iter().any(|u| u.name == g.user) {
            report.add(
                &at(&base, &[key("user")]),
                Some(&g.user),
                "not a user declared under `users`",
            );
        }
        if !decl.databases.contains(&g.database) {
            report.add(
                &at(&base, &[key("database")]),
                Some(&g.database),
                "not a database declared under `databases`",
            );
        }
        let mut privileges = BTreeSet::new();
        if g.privileges.is_empty() {
            report.add(
                &at(&base, &[key("privileges")]),
                None,
                "name at least one privilege",
            );
        }
        for (j, p) in g.privileges.iter().enumerate() {
            let upper = p.to_ascii_uppercase();
            if DB_PRIVILEGES.contains(&upper.as_str()) {
                privileges.insert(upper);
            } else {
                report.add(
                    &at(&base, &[key("privileges"), Segment::Index(j)]),
                    Some(p),
                    format!(
                        "not a database privilege; one of {}",
                        DB_PRIVILEGES.join(", ")
                    ),
                );
            }
        }
        if privileges.contains("ALL") && privileges.len() > 1 {
            report.add(
                &at(&base, &[key("privileges")]),
                Some("ALL"),
                "ALL includes the others; name it alone",
            );
        }
        decl.grants.push(Grant {
            user: g.user.clone(),
            database: g.database.clone(),
            privileges,
        });
    }
    report.result(decl)
}

/// Reads and checks a topics file's text (`file` names it in problems).
pub fn topics(file: &Path, text: &str) -> Result<Vec<Topic>, Invalid> {
    let index = LineIndex::new(text);
    let spec: TopicsFile = parse_yaml(file, text, &index, CONSEQUENCE)?;
    let mut report = Report::new(file, &index, CONSEQUENCE);
    check_duplicates(
        &mut report,
        "topics",
        "name",
        spec.topics.iter().map(|t| t.name.as_str()),
    );
    let d = &spec.defaults;
    let mut out = Vec::new();
    for (i, t) in spec.topics.iter().enumerate() {
        let base = item("topics", i);
        let name_ok = !t.name.is_empty()
            && t.name.len() <= 249
            && t.name != "."
            && t.name != ".."
            && t.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b));
        if !name_ok {
            report.add(
                &at(&base, &[key("name")]),
                Some(&t.name),
                "not a Kafka topic name (letters, digits, `.`, `_`, `-`; at most 249)",
            );
        }
        let mut count =
            |field: &str, own: Option<i64>, default: Option<i64>, fallback: i64| -> i32 {
                let (value, path) = match own {
                    Some(v) => (v, at(&base, &[key(field)])),
                    None => (
                        default.unwrap_or(fallback),
                        vec![key("defaults"), key(field)],
                    ),
                };
                if !(1..=i64::from(i32::MAX)).contains(&value) {
                    report.add(&path, Some(&value.to_string()), "must be at least 1");
                    return 1;
                }
                value as i32
            };
        let partitions = count("partitions", t.partitions, d.partitions, 1);
        let replication_factor = count(
            "replication_factor",
            t.replication_factor,
            d.replication_factor,
            1,
        );
        let (retention_text, retention_path) = match (&t.retention, &d.retention) {
            (Some(r), _) => (r.clone(), at(&base, &[key("retention")])),
            (None, Some(r)) => (r.clone(), vec![key("defaults"), key("retention")]),
            (None, None) => ("7d".to_string(), vec![]),
        };
        let retention = if retention_text == "infinite" {
            None
        } else {
            match parse_retention(&retention_text) {
                Some(d) if !d.is_zero() => Some(d),
                _ => {
                    report.add(
                        &retention_path,
                        Some(&retention_text),
                        "not a retention: a duration such as 7d, 12h, 30m, or `infinite`",
                    );
                    None
                }
            }
        };
        let (policy, policy_path) = match (&t.cleanup_policy, &d.cleanup_policy) {
            (Some(p), _) => (p.clone(), at(&base, &[key("cleanup_policy")])),
            (None, Some(p)) => (p.clone(), vec![key("defaults"), key("cleanup_policy")]),
            (None, None) => ("delete".to_string(), vec![]),
        };
        let policy = policy.replace(' ', "");
        let policy = match policy.as_str() {
            "delete" | "compact" => policy,
            "compact,delete" | "delete,compact" => "compact,delete".to_string(),
            _ => {
                report.add(
                    &policy_path,
                    Some(&policy),
                    "one of delete, compact, compact,delete",
                );
                policy
            }
        };
        out.push(Topic {
            name: t.name.clone(),
            partitions,
            replication_factor,
            retention,
            cleanup_policy: policy,
        });
    }
    report.result(out)
}

/// Compose's durations, plus days (`7d`), which topic retention is usually written in.
fn parse_retention(text: &str) -> Option<Duration> {
    match text.strip_suffix('d') {
        Some(days) if !days.is_empty() && days.bytes().all(|b| b.is_ascii_digit()) => days
            .parse::<u64>()
            .ok()
            .map(|d| Duration::from_secs(d * 86_400)),
        _ => parse_duration(text),
    }
}

fn identity(
    file: &Path,
    text: &str,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Realm, Invalid> {
    let index = LineIndex::new(text);
    let spec: IdentityFile = parse_yaml(file, text, &index, CONSEQUENCE)?;
    let mut report = Report::new(file, &index, CONSEQUENCE);
    let mut realm = Realm::default();
    if let Some(name) = &spec.realm {
        realm.name = name.clone();
    }
    if realm.name.is_empty()
        || !realm
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        report.add(
            &[key("realm")],
            Some(&realm.name),
            "not a realm name (letters, digits, - and _)",
        );
    }
    if let Some(claim) = &spec.role_claim {
        realm.role_claim = claim.clone();
    }
    if realm.role_claim.trim().is_empty() {
        report.add(
            &[key("role_claim")],
            Some(&realm.role_claim),
            "name the claim roles go in",
        );
    }
    let mut roles = BTreeSet::new();
    for (i, role) in spec.roles.iter().enumerate() {
        let path = vec![key("roles"), Segment::Index(i)];
        if role.is_empty()
            || !role
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            report.add(
                &path,
                Some(role),
                "not a role name (letters, digits, -, _ and .)",
            );
        }
        if !roles.insert(role.clone()) {
            report.add(&path, Some(role), "declared twice");
        }
    }
    realm.roles = spec.roles.clone();
    check_duplicates(
        &mut report,
        "users",
        "username",
        spec.users.iter().map(|u| u.username.as_str()),
    );
    for (i, u) in spec.users.iter().enumerate() {
        let base = item("users", i);
        if u.username.trim().is_empty() || u.username.contains(char::is_whitespace) {
            report.add(
                &at(&base, &[key("username")]),
                Some(&u.username),
                "not a user name (no spaces)",
            );
        }
        if !u.email.contains('@') || u.email.starts_with('@') || u.email.ends_with('@') {
            report.add(
                &at(&base, &[key("email")]),
                Some(&u.email),
                "not an e-mail address",
            );
        }
        for (field, value) in [("first_name", &u.first_name), ("last_name", &u.last_name)] {
            if value.trim().is_empty() {
                report.add(
                    &at(&base, &[key(field)]),
                    Some(value),
                    "must not be empty (Keycloak refuses a login until it is set)",
                );
            }
        }
        for (j, role) in u.roles.iter().enumerate() {
            if !roles.contains(role) {
                let hint = finctl_compose::closest(role, roles.iter())
                    .map_or_else(String::new, |c| format!("; did you mean `{c}`?"));
                report.add(
                    &at(&base, &[key("roles"), Segment::Index(j)]),
                    Some(role),
                    format!("not a role declared under `roles`{hint}"),
                );
            }
        }
        let password = secret(
            &mut report,
            &at(&base, &[key("password_env")]),
            &u.password_env,
            var,
        );
        realm.users.push(RealmUser {
            username: u.username.clone(),
            email: u.email.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            password,
            roles: u.roles.iter().cloned().collect(),
            enabled: u.enabled,
        });
    }
    check_duplicates(
        &mut report,
        "clients",
        "client_id",
        spec.clients.iter().map(|c| c.client_id.as_str()),
    );
    for (i, c) in spec.clients.iter().enumerate() {
        let base = item("clients", i);
        if c.client_id.trim().is_empty() || c.client_id.contains(char::is_whitespace) {
            report.add(
                &at(&base, &[key("client_id")]),
                Some(&c.client_id),
                "not a client id (no spaces)",
            );
        }
        if c.grant_types.is_empty() {
            report.add(
                &at(&base, &[key("grant_types")]),
                None,
                "name at least one grant type",
            );
        }
        for (j, g) in c.grant_types.iter().enumerate() {
            if !GRANT_TYPES.contains(&g.as_str()) {
                report.add(
                    &at(&base, &[key("grant_types"), Segment::Index(j)]),
                    Some(g),
                    format!("not a grant type; one of {}", GRANT_TYPES.join(", ")),
                );
            }
        }
        for (j, uri) in c.redirect_uris.iter().enumerate() {
            let ok = reqwest::Url::parse(uri)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                report.add(
                    &at(&base, &[key("redirect_uris"), Segment::Index(j)]),
                    Some(uri),
                    "not an absolute http(s) URL",
                );
            }
        }
        let secret = secret(
            &mut report,
            &at(&base, &[key("secret_env")]),
            &c.secret_env,
            var,
        );
        realm.clients.push(RealmClient {
            client_id: c.client_id.clone(),
            secret,
            grant_types: c.grant_types.iter().cloned().collect(),
            redirect_uris: c.redirect_uris.iter().cloned().collect(),
            audience: c.audience.clone().unwrap_or_else(|| c.client_id.clone()),
        });
    }
    report.result(realm)
}

#[cfg(test)]
mod tests;
