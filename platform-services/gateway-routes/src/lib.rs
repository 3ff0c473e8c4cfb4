//! The built-in gateway's route table: the one contract between `finctl publish-apis`
//! (which resolves `api-config.yaml` into it) and the gateway's admin API (which serves,
//! stores and applies it).
//!
//! Everything here is resolved: no policy names to look up, no defaults left to apply, so
//! the gateway never needs `api-config.yaml` and the publisher never needs the gateway.
//! This crate is serde types and their invariants ([`validate`], [`path`]) only; it must not
//! depend on any other crate of the workspace.
//!
//! JSON shapes on the admin API (listener `ADMIN_PORT`, `Authorization: Bearer $GATEWAY_ADMIN_TOKEN`):
//!
//! | call                          | body            | answer                         |
//! |-------------------------------|-----------------|--------------------------------|
//! | `GET /admin/apis`             |                 | `RouteTable`                   |
//! | `GET /admin/apis/{id}`        |                 | `Api` or 404                   |
//! | `PUT /admin/apis/{id}`        | `Api`           | 200 (updated) / 201 (created)  |
//! | `DELETE /admin/apis/{id}`     |                 | 204 / 404                      |
//! | `PUT /admin/apis`             | `RouteTable`    | 200, the whole table replaced  |
//!
//! `{id}` is [`Api::id`]: `<name>:<version>` percent-encoded as a path segment.

pub mod path;
pub mod validate;

use serde::{Deserialize, Serialize};

/// The marker `finctl publish-apis` puts in [`Api::owner`]; `--prune` deletes only APIs
/// carrying it.
pub const FINCTL_OWNER: &str = "finctl";

/// Every API the gateway serves. Order carries no meaning: the longest matching
/// `context/version` prefix wins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTable {
    #[serde(default)]
    pub apis: Vec<Api>,
}

/// One published API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    pub name: String,
    /// Leading `/`, no trailing `/`: `/api/payment`.
    pub context: String,
    pub version: String,
    #[serde(default)]
    pub kind: ApiKind,
    /// `http://payment:8000` (no trailing `/`); a request for
    /// `<context>/<version>/<rest>` goes to `<backend_url>/<rest>`.
    pub backend_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Who may call the API unless an operation says otherwise.
    #[serde(default)]
    pub access: Access,
    /// The throttling policy for the whole API, unless an operation has its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Throttle>,
    /// Per-operation rules; the first whose method and path pattern match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<Operation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Only for `kind: graphql`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graphql: Option<GraphqlSettings>,
    /// `finctl` when `finctl publish-apis` created it ([`FINCTL_OWNER`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl Api {
    /// The API's identity on every target: `<name>:<version>`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.name, self.version)
    }

    /// The public path prefix: `<context>/<version>`.
    pub fn prefix(&self) -> String {
        format!("{}/{}", self.context, self.version)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiKind {
    #[default]
    Rest,
    Graphql,
    Websocket,
    /// AI/LLM backends: long upstream timeouts, streamed replies.
    Ai,
}

/// Who may call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    /// No token needed (a token that is sent is still verified and forwarded).
    #[serde(default)]
    pub anonymous: bool,
    /// Any one of these realm roles; empty means any valid token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// A rule for the requests of an API that match `method` and `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    /// `GET`, `POST`, ... or `*` for any.
    pub method: String,
    /// Relative to the API: `/health`, `/payments/{id}` (one segment), `/admin/*` (the rest).
    pub path: String,
    /// Replaces the API's access rule for matching requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    /// Replaces the API's throttling policy for matching requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Throttle>,
}

/// A resolved throttling policy: `requests` per `period_seconds`, counted per token
/// subject (per client address for anonymous calls), with bursts up to `requests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    /// The policy's name in `api-config.yaml` (`protected`), reported in headers and metrics.
    pub policy: String,
    pub requests: u32,
    pub period_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    /// Exact origins, or `*`.
    pub origins: Vec<String>,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub credentials: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u32>,
}

/// Upstream time limits, in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// Connecting to the backend: a refusing backend answers 502 well within a second.
    pub connect_ms: u64,
    /// Until the backend's response head arrives (504 after it).
    pub response_ms: u64,
    /// Longest silence inside a streamed body or a WebSocket before the gateway closes it.
    pub idle_ms: u64,
    /// Total cap on one request, streaming included; `None` is no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<u64>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect_ms: 500,
            response_ms: 30_000,
            idle_ms: 60_000,
            total_ms: None,
        }
    }
}

/// GraphQL limits enforced before forwarding, and the schema published with the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlSettings {
    /// Largest query document, in bytes.
    pub max_query_bytes: usize,
    /// Deepest selection-set nesting.
    pub max_depth: usize,
    /// The SDL, as published (WSO2 imports it; the gateway serves it at `<prefix>/schema.graphql`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
}
