//! Kong Gateway 3.x through its Admin API.
//!
//! One API is one Kong service (named `<name>-<version>`, slugged) with one route for
//! `<context>/<version>` and one extra regex route per operation (a `{id}` segment is
//! `[^/]+`; earlier operations get a higher `regex_priority`), each carrying its own plugins:
//! `jwt` (unless anonymous), `rate-limiting` (the throttle) and `cors`. Every entity is tagged
//! `finctl`; the service also carries `finctl-api:<name>:<version>` and the kind, which is how
//! [`Kong::list`] reads an API back and how `--prune` knows what is finctl's.
//!
//! Tokens are checked by one consumer, `finctl-idp`, holding a jwt credential whose key is the
//! IdP's issuer and whose `rsa_public_key` is the IdP's signing key (from its JWKS).
//!
//! What Kong OSS cannot express is dropped by [`Target::project`], so a second run compares
//! equal:
//! - **roles**: the `jwt` plugin verifies signature, `exp` and `nbf` only; it cannot require a
//!   realm role, so `access.roles` (API and operations) is not enforced by Kong.
//! - `timeouts.total_ms` (no total cap) and a separate response/idle wait: Kong has one
//!   `read_timeout` between two reads, so it is `max(response_ms, idle_ms)`.
//! - throttles are windows of a second, minute, hour or day: another period is rescaled to the
//!   largest of those windows that fits in it.
//! - `graphql` limits and `description`.
//!
//! Throttles are counted per client address for anonymous routes and per bearer token
//! (`limit_by: header`, `Authorization`) otherwise: every token maps to the one `finctl-idp`
//! consumer, so `limit_by: consumer` would make all callers share one bucket.
//!
//! A DB-less Kong's declarative configuration also gets, for a REST API whose OpenAPI document
//! the stack's gateway serves ([`Definitions`]), a route per documented operation, as decK's
//! `openapi2kong` makes them (see `openapi_routes`); they repeat the API's rules and are not
//! read back.
//!
//! DB-less Kong (`database = off`) only takes a whole declarative configuration: `create`,
//! `update` and `delete` record nothing and [`Target::finish`] sends one `POST /config` with
//! every desired API. That replaces Kong's entire configuration: with a DB-less Kong, finctl
//! owns the configuration and anything else in it is removed.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use base64::Engine;
use finctl_error::UserError;
use gateway_routes::{Access, Api, ApiKind, FINCTL_OWNER, Operation, Throttle, Timeouts};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;

use crate::definition::Definitions;
use crate::target::{Remote, Target};

/// The tag on everything finctl creates.
pub const TAG: &str = "finctl";
/// The consumer whose jwt credential carries the IdP's key.
pub const CONSUMER: &str = "finctl-idp";
const API_TAG: &str = "finctl-api:";
const KIND_TAG: &str = "finctl-kind:";
const USER_TAG: &str = "finctl-tag:";
const OP_TAG: &str = "finctl-op:";
/// On the routes made from an API's OpenAPI document: `finctl-openapi:<operationId>`.
const OPENAPI_TAG: &str = "finctl-openapi:";
const POLICY_TAG: &str = "finctl-policy:";
/// What the cors plugin stores when `methods` is not given.
const CORS_DEFAULT_METHODS: [&str; 9] = [
    "GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];
/// Rate-limiting windows, longest first.
const WINDOWS: [(&str, u32); 4] = [
    ("day", 86_400),
    ("hour", 3_600),
    ("minute", 60),
    ("second", 1),
];

#[derive(Debug, Clone)]
pub struct KongConfig {
    pub admin_url: String,
    /// Sent as `Kong-Admin-Token` (Kong Enterprise RBAC).
    pub admin_token: Option<String>,
    /// The IdP's `iss`: the jwt credential's key.
    pub issuer: String,
    /// Where the IdP's signing keys are.
    pub jwks_url: String,
    /// Where each REST API's OpenAPI document comes from (a DB-less Kong gets a route per
    /// documented operation).
    pub definitions: Definitions,
}

impl KongConfig {
    /// FINCTL_KONG_ADMIN_URL (default `http://127.0.0.1:8001`) and FINCTL_KONG_ADMIN_TOKEN.
    pub fn from_env(issuer: impl Into<String>, jwks_url: impl Into<String>) -> Self {
        let admin_url = std::env::var(finctl_env::FINCTL_KONG_ADMIN_URL)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "http://127.0.0.1:8001".to_owned());
        let admin_token = std::env::var(finctl_env::FINCTL_KONG_ADMIN_TOKEN)
            .ok()
            .filter(|v| !v.is_empty());
        Self {
            admin_url,
            admin_token,
            issuer: issuer.into(),
            jwks_url: jwks_url.into(),
            definitions: Definitions::from_lookup(|name| std::env::var(name).ok()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Database,
    DbLess,
}

pub struct Kong {
    config: KongConfig,
    http: reqwest::Client,
    mode: Option<Mode>,
    /// The credential was written during this run (DB mode).
    credential_done: bool,
}

impl Kong {
    pub fn new(mut config: KongConfig) -> anyhow::Result<Self> {
        config.admin_url = config.admin_url.trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .build()
            .context("could not build the HTTP client")?;
        Ok(Self {
            config,
            http,
            mode: None,
            credential_done: false,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        self.send(method, path, body, false)
            .await
            .map(Option::unwrap_or_default)
    }

    /// One Admin API call; `None` for a 404 when `absent_ok` (an entity that is not there).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        absent_ok: bool,
    ) -> anyhow::Result<Option<Value>> {
        let url = format!("{}{path}", self.config.admin_url);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(token) = &self.config.admin_token {
            request = request.header("Kong-Admin-Token", token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|err| {
            UserError::failure(
                format!(
                    "Kong's admin API at {} is not reachable: {err}",
                    self.config.admin_url
                ),
                "start Kong with its admin listener on, or set FINCTL_KONG_ADMIN_URL to it",
            )
        })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if absent_ok && status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status.is_client_error() || status.is_server_error() {
            anyhow::bail!("{method} {url} answered {status}: {}", kong_error(&text));
        }
        if status == StatusCode::NO_CONTENT || text.trim().is_empty() {
            return Ok(Some(Value::Null));
        }
        serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{method} {url} answered non-JSON"))
    }

    async fn mode(&mut self) -> anyhow::Result<Mode> {
        if let Some(mode) = self.mode {
            return Ok(mode);
        }
        let root = self.call(Method::GET, "/", None).await?;
        let mode = match root
            .pointer("/configuration/database")
            .and_then(Value::as_str)
        {
            Some("off") => Mode::DbLess,
            _ => Mode::Database,
        };
        self.mode = Some(mode);
        Ok(mode)
    }

    /// Every page of a list endpoint (`next` until it is null).
    async fn list_all(&self, path: &str) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(page) = next.take() {
            let answer = self.call(Method::GET, &page, None).await?;
            if let Some(data) = answer.get("data").and_then(Value::as_array) {
                out.extend(data.iter().cloned());
            }
            next = answer
                .get("next")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(|n| match n.find("://") {
                    // Some versions answer an absolute URL: keep its path.
                    Some(i) => n[i + 3..]
                        .find('/')
                        .map_or(n.to_owned(), |j| n[i + 3 + j..].to_owned()),
                    None => n.to_owned(),
                });
        }
        Ok(out)
    }

    /// The consumer and its jwt credential, from the IdP's current key.
    async fn credential(&self) -> anyhow::Result<(Value, Value)> {
        let pem = self.idp_pem().await?;
        let consumer = json!({ "username": CONSUMER, "tags": [TAG] });
        let jwt = json!({
            "key": self.config.issuer,
            "algorithm": "RS256",
            "rsa_public_key": pem,
            "tags": [TAG],
        });
        Ok((consumer, jwt))
    }

    async fn ensure_credential(&mut self) -> anyhow::Result<()> {
        if self.credential_done {
            return Ok(());
        }
        let (consumer, jwt) = self.credential().await?;
        self.call(
            Method::PUT,
            &format!("/consumers/{CONSUMER}"),
            Some(&consumer),
        )
        .await?;
        let id = uuid_for(&format!("jwt:{}", self.config.issuer));
        self.call(
            Method::PUT,
            &format!("/consumers/{CONSUMER}/jwt/{id}"),
            Some(&jwt),
        )
        .await?;
        self.credential_done = true;
        Ok(())
    }

    async fn idp_pem(&self) -> anyhow::Result<String> {
        let jwks: Value = self
            .http
            .get(&self.config.jwks_url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|err| {
                UserError::failure(
                    format!(
                        "the IdP's keys at {} could not be fetched: {err}",
                        self.config.jwks_url
                    ),
                    "Kong needs the IdP's RSA key for its jwt credential: start the IdP first",
                )
            })?
            .json()
            .await
            .with_context(|| format!("{} is not a JWKS", self.config.jwks_url))?;
        jwk_to_pem(&jwks).with_context(|| format!("no usable RSA key in {}", self.config.jwks_url))
    }

    /// Upserts one API's service, routes and plugins; removes finctl's routes and plugins of
    /// that service that are no longer wanted.
    async fn upsert(&mut self, api: &Api) -> anyhow::Result<()> {
        self.ensure_credential().await?;
        let spec = ServiceSpec::of(api);
        let service = self
            .call(
                Method::PUT,
                &format!("/services/{}", spec.name),
                Some(&spec.body),
            )
            .await?;
        let service_id = service
            .get("id")
            .and_then(Value::as_str)
            .context("Kong's service has no id")?
            .to_owned();
        let existing_routes = self
            .list_all(&format!("/services/{service_id}/routes"))
            .await?;
        for route in &spec.routes {
            let mut body = route.body.clone();
            body["service"] = json!({ "id": service_id });
            let stored = self
                .call(Method::PUT, &format!("/routes/{}", route.name), Some(&body))
                .await?;
            let route_id = stored
                .get("id")
                .and_then(Value::as_str)
                .context("Kong's route has no id")?
                .to_owned();
            let wanted: Vec<String> = route.plugins.iter().map(|p| p.id.clone()).collect();
            for plugin in &route.plugins {
                let mut body = plugin.body.clone();
                body["route"] = json!({ "id": route_id });
                self.call(Method::PUT, &format!("/plugins/{}", plugin.id), Some(&body))
                    .await?;
            }
            for old in self
                .list_all(&format!("/routes/{route_id}/plugins"))
                .await?
            {
                let id = str_of(&old, "id");
                if is_finctls(&old) && !wanted.iter().any(|w| w == id) {
                    self.call(Method::DELETE, &format!("/plugins/{id}"), None)
                        .await?;
                }
            }
        }
        for old in existing_routes {
            let name = str_of(&old, "name");
            if is_finctls(&old) && !spec.routes.iter().any(|r| r.name == name) {
                self.delete_route(&old).await?;
            }
        }
        Ok(())
    }

    async fn delete_route(&self, route: &Value) -> anyhow::Result<()> {
        let id = str_of(route, "id");
        for plugin in self.list_all(&format!("/routes/{id}/plugins")).await? {
            self.call(
                Method::DELETE,
                &format!("/plugins/{}", str_of(&plugin, "id")),
                None,
            )
            .await?;
        }
        self.call(Method::DELETE, &format!("/routes/{id}"), None)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Target for Kong {
    fn name(&self) -> &'static str {
        "kong"
    }

    fn location(&self) -> String {
        self.config.admin_url.clone()
    }

    fn project(&self, api: &Api) -> Api {
        project(api)
    }

    /// The services tagged `finctl`, read back from their tags, routes and plugins. Untagged
    /// services are not listed: they are not finctl's, and [`Target::create`] refuses to take
    /// one over by name.
    async fn list(&mut self) -> anyhow::Result<Vec<Remote>> {
        self.mode().await?;
        let mut out = Vec::new();
        for service in self.list_all(&format!("/services?tags={TAG}")).await? {
            let id = str_of(&service, "id").to_owned();
            let mut routes = Vec::new();
            for route in self.list_all(&format!("/services/{id}/routes")).await? {
                let plugins = self
                    .list_all(&format!("/routes/{}/plugins", str_of(&route, "id")))
                    .await?;
                routes.push((route, plugins));
            }
            if let Some(api) = read_back(&service, &routes) {
                out.push(Remote {
                    api,
                    owned: is_finctls(&service),
                    handle: id,
                });
            }
        }
        Ok(out)
    }

    async fn create(&mut self, api: &Api) -> anyhow::Result<()> {
        if self.mode().await? == Mode::DbLess {
            return Ok(());
        }
        let name = service_name(api);
        let existing = self
            .send(Method::GET, &format!("/services/{name}"), None, true)
            .await?;
        if existing.is_some_and(|service| !is_finctls(&service)) {
            return Err(UserError::failure(
                format!("Kong already has a service {name} that finctl did not create"),
                "rename the API in api-config.yaml, or tag that service `finctl` to hand it over",
            )
            .into());
        }
        self.upsert(api).await
    }

    async fn update(
        &mut self,
        _remote: &Remote,
        api: &Api,
        _fields: &[String],
    ) -> anyhow::Result<()> {
        if self.mode().await? == Mode::DbLess {
            return Ok(());
        }
        self.upsert(api).await
    }

    async fn delete(&mut self, remote: &Remote) -> anyhow::Result<()> {
        if self.mode().await? == Mode::DbLess {
            return Ok(());
        }
        let id = &remote.handle;
        for route in self.list_all(&format!("/services/{id}/routes")).await? {
            self.delete_route(&route).await?;
        }
        for plugin in self.list_all(&format!("/services/{id}/plugins")).await? {
            self.call(
                Method::DELETE,
                &format!("/plugins/{}", str_of(&plugin, "id")),
                None,
            )
            .await?;
        }
        self.call(Method::DELETE, &format!("/services/{id}"), None)
            .await?;
        Ok(())
    }

    async fn finish(&mut self, desired: &[Api]) -> anyhow::Result<()> {
        if self.mode().await? != Mode::DbLess {
            return Ok(());
        }
        let config = self.declarative(desired).await?;
        self.call(Method::POST, "/config", Some(&config)).await?;
        Ok(())
    }
}

impl Kong {
    /// The whole DB-less configuration: services with their routes and plugins nested, and
    /// the consumer with its jwt credential.
    async fn declarative(&self, desired: &[Api]) -> anyhow::Result<Value> {
        let (mut consumer, mut jwt) = self.credential().await?;
        jwt["id"] = json!(uuid_for(&format!("jwt:{}", self.config.issuer)));
        consumer["jwt_secrets"] = json!([jwt]);
        let mut documents = Vec::with_capacity(desired.len());
        for api in desired {
            documents.push(self.config.definitions.fetch(api).await);
        }
        let services: Vec<Value> = desired
            .iter()
            .zip(&documents)
            .map(|(api, doc)| {
                let mut spec = ServiceSpec::of(api);
                if let Some(doc) = doc {
                    spec.routes.extend(openapi_routes(&spec.name, api, doc));
                }
                let mut service = spec.body;
                service["name"] = json!(spec.name);
                service["routes"] = spec
                    .routes
                    .into_iter()
                    .map(|route| {
                        let mut body = route.body;
                        body["name"] = json!(route.name);
                        body["plugins"] = route
                            .plugins
                            .into_iter()
                            .map(|p| {
                                let mut body = p.body;
                                body["id"] = json!(p.id);
                                body
                            })
                            .collect();
                        body
                    })
                    .collect();
                service
            })
            .collect();
        Ok(json!({
            "_format_version": "3.0",
            "services": services,
            "consumers": [consumer],
        }))
    }
}

/// `{message, name, code, fields}` as one line: the message, then each field's complaint.
fn kong_error(text: &str) -> String {
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        return text.to_owned();
    };
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or(text)
        .to_owned();
    match body.get("fields") {
        Some(fields @ Value::Object(map)) if !map.is_empty() => {
            format!("{message}; fields: {fields}")
        }
        _ => message,
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn tags_of(v: &Value) -> Vec<&str> {
    v.get("tags")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn is_finctls(v: &Value) -> bool {
    tags_of(v).contains(&TAG)
}

/// Kong tags allow printable ASCII except `,` and `/` (and, in the docs, no space):
/// anything else, and `%` itself, is percent-encoded.
pub fn tag_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if (33..=126).contains(&b) && !matches!(b, b',' | b'/' | b'%') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn tag_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Kong names allow letters, digits, `.`, `-`, `_` and `~`.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

pub fn service_name(api: &Api) -> String {
    slug(&format!("{}-{}", api.name, api.version))
}

/// A stable id for a plugin or credential, so PUT upserts it instead of adding another.
fn uuid_for(seed: &str) -> String {
    let h = sha2::Sha256::digest(format!("finctl:{seed}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x: String = b.iter().map(|v| format!("{v:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// The first RSA signing key of a JWKS as an SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
pub fn jwk_to_pem(jwks: &Value) -> anyhow::Result<String> {
    use rsa::pkcs8::EncodePublicKey;
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .context("no `keys`")?;
    let key = keys
        .iter()
        .find(|k| {
            str_of(k, "kty") == "RSA"
                && matches!(str_of(k, "use"), "" | "sig")
                && matches!(str_of(k, "alg"), "" | "RS256")
        })
        .context("no RSA key for RS256 signatures")?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let n = b64
        .decode(str_of(key, "n").trim_end_matches('='))
        .context("the key's `n` is not base64url")?;
    let e = b64
        .decode(str_of(key, "e").trim_end_matches('='))
        .context("the key's `e` is not base64url")?;
    let public = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(&n),
        rsa::BigUint::from_bytes_be(&e),
    )
    .context("the key's n/e are not an RSA key")?;
    public
        .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
        .context("could not encode the key as PEM")
}

/// The desired API as Kong reads it back (see the module doc).
pub fn project(api: &Api) -> Api {
    let mut out = api.clone();
    out.description = None;
    out.graphql = None;
    out.owner = Some(FINCTL_OWNER.to_owned());
    out.backend_url = normal_url(&api.backend_url);
    out.access.roles.clear();
    out.throttle = api.throttle.as_ref().map(rescale);
    let response_ms = api.timeouts.response_ms.max(api.timeouts.idle_ms);
    out.timeouts = Timeouts {
        connect_ms: api.timeouts.connect_ms,
        response_ms,
        idle_ms: api.timeouts.idle_ms,
        total_ms: None,
    };
    if let Some(cors) = &mut out.cors
        && cors.methods.is_empty()
    {
        cors.methods = CORS_DEFAULT_METHODS.iter().map(|m| m.to_string()).collect();
    }
    out.operations = api
        .operations
        .iter()
        .map(|op| {
            let access = effective_access(&out.access, op);
            let throttle = op.throttle.as_ref().map(rescale).or(out.throttle.clone());
            normal_op(&out, &op.method, &op.path, access, throttle)
        })
        .collect();
    out
}

fn effective_access(api_access: &Access, op: &Operation) -> Access {
    Access {
        anonymous: op
            .access
            .as_ref()
            .map_or(api_access.anonymous, |a| a.anonymous),
        roles: Vec::new(),
    }
}

/// An operation with only what differs from its API (the same read back either way).
fn normal_op(
    api: &Api,
    method: &str,
    path: &str,
    access: Access,
    throttle: Option<Throttle>,
) -> Operation {
    Operation {
        method: method.to_owned(),
        path: path.to_owned(),
        access: (access != api.access).then_some(access),
        throttle: if throttle == api.throttle {
            None
        } else {
            throttle
        },
    }
}

/// `http://payment:8000` with an explicit port and no trailing `/`, as Kong answers it.
fn normal_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let port = u
                .port_or_known_default()
                .map(|p| format!(":{p}"))
                .unwrap_or_default();
            let path = u.path().trim_end_matches('/');
            format!(
                "{}://{}{port}{path}",
                u.scheme(),
                u.host_str().unwrap_or_default()
            )
        }
        Err(_) => url.to_owned(),
    }
}

/// The largest Kong window that fits in the period, with the rate kept.
fn rescale(t: &Throttle) -> Throttle {
    let (_, window) = WINDOWS
        .iter()
        .find(|(_, w)| *w <= t.period_seconds.max(1))
        .copied()
        .unwrap_or(("second", 1));
    let requests = if window == t.period_seconds {
        t.requests
    } else {
        let scaled = u64::from(t.requests) * u64::from(window);
        scaled.div_ceil(u64::from(t.period_seconds.max(1))) as u32
    };
    Throttle {
        policy: t.policy.clone(),
        requests,
        period_seconds: window,
    }
}

struct PluginSpec {
    id: String,
    body: Value,
}

struct RouteSpec {
    name: String,
    body: Value,
    plugins: Vec<PluginSpec>,
}

struct ServiceSpec {
    name: String,
    body: Value,
    routes: Vec<RouteSpec>,
}

impl ServiceSpec {
    fn of(api: &Api) -> Self {
        let api = project(api);
        let name = service_name(&api);
        let mut tags = vec![
            TAG.to_owned(),
            format!(
                "{API_TAG}{}:{}",
                tag_encode(&api.name),
                tag_encode(&api.version)
            ),
            format!("{KIND_TAG}{}", kind_str(api.kind)),
        ];
        tags.extend(
            api.tags
                .iter()
                .map(|t| format!("{USER_TAG}{}", tag_encode(t))),
        );
        let body = json!({
            "name": name,
            "url": api.backend_url,
            "connect_timeout": api.timeouts.connect_ms,
            "read_timeout": api.timeouts.response_ms,
            "write_timeout": api.timeouts.idle_ms,
            "tags": tags,
        });
        let prefix = api.prefix();
        let mut routes = vec![RouteSpec {
            name: name.clone(),
            body: json!({
                "name": name,
                "paths": [prefix],
                "strip_path": true,
                // WebSocket upgrades are proxied on http/https routes.
                "protocols": ["http", "https"],
                "tags": [TAG],
            }),
            plugins: plugins_for(&name, &api, &api.access, api.throttle.as_ref()),
        }];
        let count = api.operations.len();
        for (i, op) in api.operations.iter().enumerate() {
            let route_name = format!("{name}-op{}", i + 1);
            let access = op.access.clone().unwrap_or_else(|| api.access.clone());
            let throttle = op.throttle.as_ref().or(api.throttle.as_ref());
            let mut body = json!({
                "name": route_name,
                "paths": [op_regex(&prefix, &op.path)],
                "strip_path": false,
                "protocols": ["http", "https"],
                // The file's first matching operation wins: earlier ones get a higher priority.
                "regex_priority": count - i,
                "tags": [TAG, format!("{OP_TAG}{}:{}", tag_encode(&op.method), tag_encode(&op.path))],
            });
            if op.method != "*" {
                body["methods"] = json!([op.method]);
            }
            let mut plugins = plugins_for(&route_name, &api, &access, throttle);
            plugins.push(rewrite_to_backend(&route_name, &api));
            routes.push(RouteSpec {
                plugins,
                name: route_name,
                body,
            });
        }
        Self { name, body, routes }
    }
}

/// The `request-transformer` a regex route needs to reach `<backend path><rest>`.
fn rewrite_to_backend(route_name: &str, api: &Api) -> PluginSpec {
    let backend_path = reqwest::Url::parse(&api.backend_url)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    PluginSpec {
        id: uuid_for(&format!("{route_name}:request-transformer")),
        body: json!({
            "name": "request-transformer",
            "config": { "replace": { "uri": format!("{backend_path}$(uri_captures.rest)") } },
            "tags": [TAG],
        }),
    }
}

/// One route per operation of the API's OpenAPI document, as decK's `openapi2kong` makes
/// them: named `<service>-<operationId>`, the path template as a regex, the documented
/// methods. They carry the API's own rules (token, throttling, CORS), below every
/// `operations` route of `api-config.yaml` in priority, so those still decide; what they add
/// is the operation's name in Kong's logs and metrics, and that only documented operations
/// have a route of their own.
fn openapi_routes(service: &str, api: &Api, doc: &Value) -> Vec<RouteSpec> {
    let api = project(api);
    let prefix = api.prefix();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let Some(operation_id) = op.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            let name = format!("{service}-{}", slug(operation_id));
            let mut plugins = plugins_for(&name, &api, &api.access, api.throttle.as_ref());
            plugins.push(rewrite_to_backend(&name, &api));
            routes.push(RouteSpec {
                body: json!({
                    "name": name,
                    "paths": [op_regex(&prefix, path)],
                    "methods": [method.to_uppercase()],
                    "strip_path": false,
                    "protocols": ["http", "https"],
                    "regex_priority": 0,
                    "tags": [TAG, format!("{OPENAPI_TAG}{}", tag_encode(operation_id))],
                }),
                name,
                plugins,
            });
        }
    }
    routes
}

/// A regex path matching the operation, with the part after `<context>/<version>` captured
/// as `rest`. Kong 3.x's default router (`traditional_compatible`, ATC) has no lookaround,
/// and `strip_path` on a regex route strips the whole match, so operation routes keep the path
/// and the `request-transformer` plugin rewrites it to `<backend path>$(uri_captures.rest)`.
fn op_regex(prefix: &str, path: &str) -> String {
    let mut rest = String::new();
    let mut segments = path.trim_start_matches('/').split('/').peekable();
    while let Some(seg) = segments.next() {
        if seg == "*" && segments.peek().is_none() {
            rest.push_str("(/.*)?");
            continue;
        }
        rest.push('/');
        if seg.starts_with('{') && seg.ends_with('}') {
            rest.push_str("[^/]+");
        } else {
            rest.push_str(&regex_escape(seg));
        }
    }
    format!("~{}(?<rest>{rest})$", regex_escape(prefix))
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn plugins_for(
    route: &str,
    api: &Api,
    access: &Access,
    throttle: Option<&Throttle>,
) -> Vec<PluginSpec> {
    let mut out = Vec::new();
    if !access.anonymous {
        out.push(PluginSpec {
            id: uuid_for(&format!("{route}:jwt")),
            body: json!({
                "name": "jwt",
                "config": {
                    "claims_to_verify": ["exp", "nbf"],
                    "key_claim_name": "iss",
                },
                "tags": [TAG],
            }),
        });
    }
    if let Some(t) = throttle {
        let t = rescale(t);
        let window = WINDOWS
            .iter()
            .find(|(_, w)| *w == t.period_seconds)
            .map_or("second", |(n, _)| *n);
        let mut config = json!({ window: t.requests, "policy": "local" });
        if access.anonymous {
            config["limit_by"] = json!("ip");
        } else {
            config["limit_by"] = json!("header");
            config["header_name"] = json!("Authorization");
        }
        out.push(PluginSpec {
            id: uuid_for(&format!("{route}:rate-limiting")),
            body: json!({
                "name": "rate-limiting",
                "config": config,
                "tags": [TAG, format!("{POLICY_TAG}{}", tag_encode(&t.policy))],
            }),
        });
    }
    if let Some(cors) = &api.cors {
        let mut config = json!({
            "origins": cors.origins,
            "methods": cors.methods,
            "headers": cors.headers,
            "credentials": cors.credentials,
        });
        if let Some(max_age) = cors.max_age_seconds {
            config["max_age"] = json!(max_age);
        }
        out.push(PluginSpec {
            id: uuid_for(&format!("{route}:cors")),
            body: json!({ "name": "cors", "config": config, "tags": [TAG] }),
        });
    }
    out
}

fn kind_str(kind: ApiKind) -> &'static str {
    match kind {
        ApiKind::Rest => "rest",
        ApiKind::Graphql => "graphql",
        ApiKind::Websocket => "websocket",
        ApiKind::Ai => "ai",
    }
}

/// Access, throttle and cors as a route's plugins say.
fn read_plugins(plugins: &[Value]) -> (Access, Option<Throttle>, Option<gateway_routes::Cors>) {
    let by_name = |n: &str| plugins.iter().find(|p| str_of(p, "name") == n);
    let access = Access {
        anonymous: by_name("jwt").is_none(),
        roles: Vec::new(),
    };
    let throttle = by_name("rate-limiting").and_then(|p| {
        let config = p.get("config")?;
        let (_, period) = WINDOWS
            .iter()
            .rev()
            .find(|(n, _)| config.get(*n).is_some_and(|v| !v.is_null()))?;
        let requests = config.get(WINDOWS.iter().find(|(_, w)| w == period).map(|(n, _)| *n)?)?;
        let policy = tags_of(p)
            .iter()
            .find_map(|t| t.strip_prefix(POLICY_TAG))
            .map(tag_decode)
            .unwrap_or_default();
        Some(Throttle {
            policy,
            requests: requests.as_f64()? as u32,
            period_seconds: *period,
        })
    });
    let cors = by_name("cors").and_then(|p| {
        let config = p.get("config")?;
        let list = |k: &str| -> Vec<String> {
            config
                .get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        Some(gateway_routes::Cors {
            origins: list("origins"),
            methods: list("methods"),
            headers: list("headers"),
            credentials: config
                .get("credentials")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            max_age_seconds: config
                .get("max_age")
                .and_then(Value::as_f64)
                .map(|v| v as u32),
        })
    });
    (access, throttle, cors)
}

/// The API a finctl-tagged service describes; `None` when its tags do not name one.
fn read_back(service: &Value, routes: &[(Value, Vec<Value>)]) -> Option<Api> {
    let tags = tags_of(service);
    let (name, version) = tags
        .iter()
        .find_map(|t| t.strip_prefix(API_TAG))?
        .split_once(':')?;
    let (name, version) = (tag_decode(name), tag_decode(version));
    let kind = match tags.iter().find_map(|t| t.strip_prefix(KIND_TAG)) {
        Some("graphql") => ApiKind::Graphql,
        Some("websocket") => ApiKind::Websocket,
        Some("ai") => ApiKind::Ai,
        _ => ApiKind::Rest,
    };
    let user_tags = tags
        .iter()
        .filter_map(|t| t.strip_prefix(USER_TAG))
        .map(tag_decode)
        .collect();
    let port = service.get("port").and_then(Value::as_u64);
    let backend_url = format!(
        "{}://{}{}{}",
        str_of(service, "protocol"),
        str_of(service, "host"),
        port.map(|p| format!(":{p}")).unwrap_or_default(),
        str_of(service, "path").trim_end_matches('/'),
    );
    let ms = |k: &str| service.get(k).and_then(Value::as_u64).unwrap_or(60_000);
    // Routes made from the OpenAPI document repeat the API's own rules: not read back.
    let routes: Vec<&(Value, Vec<Value>)> = routes
        .iter()
        .filter(|(r, _)| !tags_of(r).iter().any(|t| t.starts_with(OPENAPI_TAG)))
        .collect();
    let main = routes
        .iter()
        .find(|(r, _)| !tags_of(r).iter().any(|t| t.starts_with(OP_TAG)))?;
    let prefix = main
        .0
        .get("paths")
        .and_then(Value::as_array)
        .and_then(|p| p.first())
        .and_then(Value::as_str)?;
    let context = prefix
        .strip_suffix(&format!("/{version}"))
        .unwrap_or(prefix)
        .to_owned();
    let (access, throttle, cors) = read_plugins(&main.1);
    let mut api = Api {
        name,
        context,
        version,
        kind,
        backend_url,
        description: None,
        tags: user_tags,
        access,
        throttle,
        operations: Vec::new(),
        cors,
        timeouts: Timeouts {
            connect_ms: ms("connect_timeout"),
            response_ms: ms("read_timeout"),
            idle_ms: ms("write_timeout"),
            total_ms: None,
        },
        graphql: None,
        owner: is_finctls(service).then(|| FINCTL_OWNER.to_owned()),
    };
    let mut ops: Vec<(i64, Operation)> = Vec::new();
    for (route, plugins) in routes {
        let Some(op) = tags_of(route).iter().find_map(|t| t.strip_prefix(OP_TAG)) else {
            continue;
        };
        let Some((method, path)) = op.split_once(':') else {
            continue;
        };
        let (access, throttle, _) = read_plugins(plugins);
        let priority = route
            .get("regex_priority")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        ops.push((
            priority,
            normal_op(
                &api,
                &tag_decode(method),
                &tag_decode(path),
                access,
                throttle,
            ),
        ));
    }
    ops.sort_by_key(|(p, _)| -p);
    api.operations = ops.into_iter().map(|(_, op)| op).collect();
    Some(api)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_encode_what_kong_refuses() {
        assert_eq!(tag_encode("payments/v1, beta"), "payments%2Fv1%2C%20beta");
        assert_eq!(tag_decode(&tag_encode("a/b c,%")), "a/b c,%");
    }

    #[test]
    fn operation_regex_matches_only_the_prefix() {
        assert_eq!(
            op_regex("/api/payment/v1", "/payments/{id}"),
            r"~/api/payment/v1(?<rest>/payments/[^/]+)$"
        );
        assert_eq!(
            op_regex("/api/x/v1", "/admin/*"),
            r"~/api/x/v1(?<rest>/admin(/.*)?)$"
        );
    }

    #[test]
    fn throttles_are_rescaled_to_a_kong_window() {
        let t = |requests, period_seconds| Throttle {
            policy: "p".into(),
            requests,
            period_seconds,
        };
        assert_eq!(rescale(&t(100, 60)), t(100, 60));
        assert_eq!(rescale(&t(100, 10)), t(10, 1));
        assert_eq!(rescale(&t(5, 120)), t(3, 60));
    }
}
