//! WSO2 API Manager 4.x through its publisher REST API (`/api/am/publisher/v4`).
//!
//! The calls, as WSO2's publisher OpenAPI (`publisher-api.yaml` of wso2/carbon-apimgt)
//! describes them:
//!
//! 1. `POST /client-registration/v0.17/register` (basic auth, the user) registers finctl's
//!    OAuth client once per run; `POST /oauth2/token` (basic auth, the client) gets a
//!    password-grant token with [`SCOPES`]. A 401 later renews the token and retries that
//!    call once.
//! 2. `GET /apis?limit&offset` (paginated), then `GET /apis/{id}` for each (and
//!    `GET /apis/{id}/graphql-schema` for GraphQL APIs) to read them back.
//! 3. Create: `POST /apis` (REST, WebSocket, AI) or `POST /apis/import-graphql-schema`
//!    (multipart: `type`, `file`, `additionalProperties`); update: `PUT /apis/{id}` (and
//!    `PUT /apis/{id}/graphql-schema`). Then a revision (`POST /apis/{id}/revisions`, keeping
//!    under WSO2's cap of [`MAX_REVISIONS`] by deleting the oldest undeployed one), its
//!    deployment (`POST /apis/{id}/deploy-revision?revisionId=`) to the gateway environment,
//!    and `POST /apis/change-lifecycle?apiId=&action=Publish` unless already `PUBLISHED`.
//!    A REST API whose OpenAPI document the stack's gateway serves ([`Definitions`]) gets it
//!    as its API definition: `PUT /apis/{id}/swagger` (multipart `apiDefinition`), before the
//!    update, or after the create and followed by `PUT /apis/{id}` again, so the API's
//!    resources stay its `operations` and WSO2 keeps the document's parameters, schemas and
//!    responses for them.
//! 4. Delete: `DELETE /apis/{id}`.
//!
//! finctl marks what it creates with the additional property [`OWNER_PROPERTY`] (not shown
//! on the developer portal); `--prune` deletes only APIs carrying it.
//!
//! Throttling: `throttle.policy` is sent by name as the API-level `apiThrottlingPolicy` and
//! as each operation's `throttlingPolicy`. WSO2 does not take the numbers: a policy of that
//! name must already exist in WSO2 (Admin portal, Rate Limiting Policies, Advanced
//! Policies). Subscriptions use the built-in `Unlimited` tier.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use finctl_error::UserError;
use gateway_routes::{
    Access, Api, ApiKind, Cors, FINCTL_OWNER, GraphqlSettings, Operation, Throttle, Timeouts,
};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::definition::Definitions;
use crate::target::{Remote, Target};

/// The additional property marking APIs finctl published (value [`FINCTL_OWNER`]).
pub const OWNER_PROPERTY: &str = "finctl-owner";
/// The additional property keeping `kind: ai`, which WSO2 publishes as a plain HTTP API.
pub const KIND_PROPERTY: &str = "finctl-kind";
/// WSO2 keeps at most this many revisions of an API.
pub const MAX_REVISIONS: usize = 5;
/// What finctl asks of the token: read, create/update, revise/deploy/publish, delete.
pub const SCOPES: &str =
    "apim:api_view apim:api_create apim:api_publish apim:api_manage apim:api_delete";
/// The five verbs an operation with method `*` stands for (WSO2 has no wildcard verb).
const ANY_METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];
const PUBLISHER: &str = "/api/am/publisher/v4";
const PAGE: usize = 100;
const ANONYMOUS_AUTH: &str = "None";
const TOKEN_AUTH: &str = "Application & Application User";
const UNLIMITED: &str = "Unlimited";

pub use finctl_env::Secret;

#[derive(Debug, Clone)]
pub struct Wso2Config {
    /// `https://127.0.0.1:9443`: the management listener (publisher API, DCR, token).
    pub url: String,
    pub username: String,
    pub password: Secret,
    /// The gateway environment revisions are deployed to (`Default`).
    pub gateway_env: String,
    /// Accept API Manager's self-signed certificate.
    pub insecure_tls: bool,
    /// Where each REST API's OpenAPI document comes from (sent as its API definition).
    pub definitions: Definitions,
}

impl Wso2Config {
    /// From [`finctl_env::FINCTL_WSO2_URL`] and its siblings, with WSO2's out-of-the-box defaults.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`Self::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str, default: &str| {
            lookup(name)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Self {
            url: get(finctl_env::FINCTL_WSO2_URL, "https://127.0.0.1:9443"),
            username: get(finctl_env::FINCTL_WSO2_USERNAME, "admin"),
            password: Secret::new(get(finctl_env::FINCTL_WSO2_PASSWORD, "admin")),
            gateway_env: get(finctl_env::FINCTL_WSO2_GATEWAY_ENV, "Default"),
            insecure_tls: lookup(finctl_env::FINCTL_WSO2_INSECURE_TLS).as_deref() == Some("1"),
            definitions: Definitions::from_lookup(&lookup),
        }
    }
}

/// What a call sends. Kept as data, not as a built request, so a call refused with 401 can
/// be sent again with a new token.
enum Body {
    Empty,
    Json(Value),
    /// Multipart fields: name, content, file name (for file parts).
    Multipart(Vec<(&'static str, String, Option<String>)>),
}

struct Client {
    id: String,
    secret: Secret,
}

pub struct Wso2 {
    config: Wso2Config,
    base: String,
    http: reqwest::Client,
    client: Option<Client>,
    token: Option<Secret>,
}

impl Wso2 {
    pub fn new(config: Wso2Config) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .danger_accept_invalid_certs(config.insecure_tls)
            .build()
            .context("could not build the HTTP client")?;
        Ok(Self {
            base: config.url.trim_end_matches('/').to_owned(),
            config,
            http,
            client: None,
            token: None,
        })
    }

    fn unreachable(&self, err: reqwest::Error) -> anyhow::Error {
        UserError::failure(
            format!("WSO2 API Manager at {} is not reachable: {err}", self.base),
            "start API Manager, or set FINCTL_WSO2_URL to where it listens (and FINCTL_WSO2_INSECURE_TLS=1 for its self-signed certificate)",
        )
        .into()
    }

    /// Registers finctl's OAuth client (once) and gets a new access token.
    async fn renew_token(&mut self) -> anyhow::Result<()> {
        if self.client.is_none() {
            let url = format!("{}/client-registration/v0.17/register", self.base);
            let response = self
                .http
                .post(&url)
                .basic_auth(&self.config.username, Some(self.config.password.expose()))
                .json(&json!({
                    "callbackUrl": "www.finctl.invalid",
                    "clientName": "finctl_publisher",
                    "owner": self.config.username,
                    "grantType": "password refresh_token",
                    "saasApp": true,
                }))
                .send()
                .await
                .map_err(|err| self.unreachable(err))?;
            if response.status() == StatusCode::UNAUTHORIZED {
                return Err(UserError::failure(
                    format!("WSO2 API Manager at {} refused user {}", self.base, self.config.username),
                    "set FINCTL_WSO2_USERNAME and FINCTL_WSO2_PASSWORD to a user allowed to publish",
                )
                .into());
            }
            let registered: Registration = checked("POST", &url, response)
                .await?
                .json()
                .await
                .with_context(|| {
                    format!("POST {url}: the client registration is not what finctl expects")
                })?;
            self.client = Some(Client {
                id: registered.client_id,
                secret: Secret::new(registered.client_secret),
            });
        }
        let Some(client) = &self.client else {
            unreachable!("registered above")
        };
        let url = format!("{}/oauth2/token", self.base);
        let response = self
            .http
            .post(&url)
            .basic_auth(&client.id, Some(client.secret.expose()))
            .form(&[
                ("grant_type", "password"),
                ("username", self.config.username.as_str()),
                ("password", self.config.password.expose()),
                ("scope", SCOPES),
            ])
            .send()
            .await
            .map_err(|err| self.unreachable(err))?;
        let token: TokenAnswer = checked("POST", &url, response)
            .await?
            .json()
            .await
            .with_context(|| format!("POST {url}: the token answer is not what finctl expects"))?;
        self.token = Some(Secret::new(token.access_token));
        Ok(())
    }

    /// One publisher API call (`path` under `/api/am/publisher/v4`), with the token; a 401
    /// renews the token and sends it once more.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Body,
    ) -> anyhow::Result<reqwest::Response> {
        if self.token.is_none() {
            self.renew_token().await?;
        }
        let url = format!("{}{PUBLISHER}{path}", self.base);
        let mut renewed = false;
        loop {
            let token = self
                .token
                .as_ref()
                .map(|t| t.expose().to_owned())
                .unwrap_or_default();
            let mut request = self.http.request(method.clone(), &url).bearer_auth(token);
            request = match &body {
                Body::Empty => request,
                Body::Json(value) => request.json(value),
                Body::Multipart(fields) => {
                    let mut form = reqwest::multipart::Form::new();
                    for (name, content, file) in fields {
                        let part = reqwest::multipart::Part::text(content.clone());
                        let part = match file {
                            Some(file) => part.file_name(file.clone()),
                            None => part,
                        };
                        form = form.part(*name, part);
                    }
                    request.multipart(form)
                }
            };
            let response = request.send().await.map_err(|err| self.unreachable(err))?;
            if response.status() == StatusCode::UNAUTHORIZED && !renewed {
                renewed = true;
                self.renew_token().await?;
                continue;
            }
            return checked(method.as_str(), &url, response).await;
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &mut self,
        method: Method,
        path: &str,
        body: Body,
    ) -> anyhow::Result<T> {
        let what = format!("{method} {PUBLISHER}{path}");
        self.call(method, path, body)
            .await?
            .json()
            .await
            .with_context(|| format!("{what}: WSO2's answer is not what finctl expects"))
    }

    async fn read(&mut self, id: &str) -> anyhow::Result<Remote> {
        let body: Value = self
            .json(Method::GET, &format!("/apis/{id}"), Body::Empty)
            .await?;
        let mut api = from_wso2(&body);
        if api.kind == ApiKind::Graphql {
            let schema: GraphqlSchema = self
                .json(
                    Method::GET,
                    &format!("/apis/{id}/graphql-schema"),
                    Body::Empty,
                )
                .await?;
            if let Some(settings) = api.graphql.as_mut() {
                settings.schema = schema.schema_definition;
            }
        }
        Ok(Remote {
            owned: api.owner.as_deref() == Some(FINCTL_OWNER),
            handle: id.to_owned(),
            api,
        })
    }

    /// `PUT /apis/{id}/swagger` with the API's OpenAPI document (form field `apiDefinition`),
    /// when [`Definitions`] has one; whether it was sent.
    async fn send_definition(&mut self, id: &str, api: &Api) -> anyhow::Result<bool> {
        let Some(doc) = self.config.definitions.fetch(api).await else {
            return Ok(false);
        };
        let fields = vec![("apiDefinition", doc.to_string(), None)];
        self.call(
            Method::PUT,
            &format!("/apis/{id}/swagger"),
            Body::Multipart(fields),
        )
        .await?;
        Ok(true)
    }

    /// Revises, deploys and (unless it already is) publishes the API as it now is.
    async fn roll_out(
        &mut self,
        id: &str,
        api: &Api,
        lifecycle: Option<&str>,
    ) -> anyhow::Result<()> {
        let revisions: RevisionList = self
            .json(Method::GET, &format!("/apis/{id}/revisions"), Body::Empty)
            .await?;
        if revisions.list.len() >= MAX_REVISIONS {
            let mut undeployed: Vec<&Revision> = revisions
                .list
                .iter()
                .filter(|r| r.deployment_info.is_empty())
                .collect();
            // Oldest first; the list's own order breaks ties.
            undeployed.sort_by(|a, b| a.created_time.cmp(&b.created_time));
            let Some(oldest) = undeployed.first() else {
                anyhow::bail!(
                    "{} has {} revisions, all deployed, and WSO2 keeps at most {MAX_REVISIONS}: undeploy one (Publisher, Deployments) and run again",
                    api.id(),
                    revisions.list.len()
                );
            };
            let path = format!("/apis/{id}/revisions/{}", oldest.id);
            self.call(Method::DELETE, &path, Body::Empty).await?;
        }
        let revision: Revision = self
            .json(
                Method::POST,
                &format!("/apis/{id}/revisions"),
                Body::Json(json!({ "description": format!("finctl publish-apis: {}", api.id()) })),
            )
            .await?;
        let path = format!("/apis/{id}/deploy-revision?revisionId={}", revision.id);
        let deployment = json!([{
            "name": self.config.gateway_env,
            "vhost": "localhost",
            "displayOnDevportal": true,
        }]);
        self.call(Method::POST, &path, Body::Json(deployment))
            .await?;
        if lifecycle != Some("PUBLISHED") {
            let path = format!("/apis/change-lifecycle?apiId={id}&action=Publish");
            self.call(Method::POST, &path, Body::Empty).await?;
        }
        Ok(())
    }
}

/// Passes 2xx answers; turns the others into an error naming the call and WSO2's
/// `message: description`.
async fn checked(
    method: &str,
    url: &str,
    response: reqwest::Response,
) -> anyhow::Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    let detail = match serde_json::from_str::<Wso2Error>(&text) {
        Ok(Wso2Error {
            message,
            description: Some(d),
        }) if !d.is_empty() && d != message => {
            format!("{message}: {d}")
        }
        Ok(Wso2Error { message, .. }) => message,
        Err(_) => text,
    };
    anyhow::bail!("{method} {url} answered {status}: {detail}")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Registration {
    client_id: String,
    client_secret: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

/// WSO2's error body (`Error` in the spec).
#[derive(Deserialize)]
struct Wso2Error {
    message: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct ApiList {
    #[serde(default)]
    list: Vec<ApiInfo>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct ApiInfo {
    id: String,
}

#[derive(Deserialize)]
struct Pagination {
    total: usize,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphqlSchema {
    #[serde(default)]
    schema_definition: Option<String>,
}

#[derive(Deserialize)]
struct RevisionList {
    #[serde(default)]
    list: Vec<Revision>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Revision {
    id: String,
    #[serde(default)]
    created_time: Option<String>,
    #[serde(default)]
    deployment_info: Vec<Value>,
}

#[async_trait]
impl Target for Wso2 {
    fn name(&self) -> &'static str {
        "wso2"
    }

    fn location(&self) -> String {
        self.base.clone()
    }

    fn project(&self, api: &Api) -> Api {
        project(api)
    }

    async fn list(&mut self) -> anyhow::Result<Vec<Remote>> {
        let mut ids = Vec::new();
        loop {
            let path = format!("/apis?limit={PAGE}&offset={}", ids.len());
            let page: ApiList = self.json(Method::GET, &path, Body::Empty).await?;
            let got = page.list.len();
            ids.extend(page.list.into_iter().map(|info| info.id));
            let more = match page.pagination {
                Some(p) => ids.len() < p.total,
                None => got == PAGE,
            };
            if got == 0 || !more {
                break;
            }
        }
        let mut remote = Vec::with_capacity(ids.len());
        for id in ids {
            remote.push(self.read(&id).await?);
        }
        Ok(remote)
    }

    async fn create(&mut self, api: &Api) -> anyhow::Result<()> {
        let body = to_wso2(api);
        let created: Value = match (
            &api.kind,
            api.graphql.as_ref().and_then(|g| g.schema.clone()),
        ) {
            (ApiKind::Graphql, Some(sdl)) => {
                let fields = vec![
                    ("type", "GRAPHQL".to_owned(), None),
                    ("file", sdl, Some(format!("{}.graphql", api.name))),
                    ("additionalProperties", body.to_string(), None),
                ];
                self.json(
                    Method::POST,
                    "/apis/import-graphql-schema",
                    Body::Multipart(fields),
                )
                .await?
            }
            (ApiKind::Graphql, None) => anyhow::bail!(
                "{}: WSO2 creates a GraphQL API from its schema: give it `schema:` in api-config.yaml",
                api.id()
            ),
            _ => self.json(Method::POST, "/apis", Body::Json(body)).await?,
        };
        let id = created
            .get("id")
            .and_then(Value::as_str)
            .context("POST /apis: WSO2's answer has no API id")?
            .to_owned();
        if self.send_definition(&id, api).await? {
            // The definition's paths replaced the resources; the API's own operations again.
            let mut body = to_wso2(api);
            body["id"] = json!(id);
            self.call(Method::PUT, &format!("/apis/{id}"), Body::Json(body))
                .await?;
        }
        let lifecycle = created
            .get("lifeCycleStatus")
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.roll_out(&id, api, lifecycle.as_deref()).await
    }

    async fn update(
        &mut self,
        remote: &Remote,
        api: &Api,
        fields: &[String],
    ) -> anyhow::Result<()> {
        let id = &remote.handle;
        // The definition first: the update then sets the resources to the API's operations.
        self.send_definition(id, api).await?;
        let mut body = to_wso2(api);
        body["id"] = json!(id);
        let updated: Value = self
            .json(Method::PUT, &format!("/apis/{id}"), Body::Json(body))
            .await?;
        if api.kind == ApiKind::Graphql && fields.iter().any(|f| f == "graphql") {
            if let Some(sdl) = api.graphql.as_ref().and_then(|g| g.schema.clone()) {
                let fields = vec![("schemaDefinition", sdl, None)];
                self.call(
                    Method::PUT,
                    &format!("/apis/{id}/graphql-schema"),
                    Body::Multipart(fields),
                )
                .await?;
            }
        }
        let lifecycle = updated
            .get("lifeCycleStatus")
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.roll_out(id, api, lifecycle.as_deref()).await
    }

    async fn delete(&mut self, remote: &Remote) -> anyhow::Result<()> {
        self.call(
            Method::DELETE,
            &format!("/apis/{}", remote.handle),
            Body::Empty,
        )
        .await?;
        Ok(())
    }
}

/// What WSO2 keeps of an API, in finctl's terms:
///
/// - `access.roles` (API and operations) are dropped: WSO2 restricts by OAuth scopes,
///   which finctl does not create.
/// - Operations are what WSO2 stores: method `*` becomes the five verbs, an API without
///   operations gets `/*` for the five verbs, and each operation carries its effective
///   access (`authType`) and throttling policy. `access.anonymous` of the API is true
///   when every operation is anonymous (WSO2 has no API-wide flag).
/// - `throttle.requests` and `period_seconds` (API and operations) become 0: WSO2 takes
///   the policy by name; its limits live in WSO2.
/// - `cors.max_age_seconds` is dropped (not in WSO2's CORS configuration).
/// - `timeouts`: only `response_ms` is kept (the endpoint's `actionDuration`); connect,
///   idle and total are WSO2's own and read back as finctl's defaults.
/// - `graphql.max_query_bytes` and `max_depth` become 0: WSO2 limits GraphQL depth and
///   complexity through its own policies. The schema is kept.
pub fn project(api: &Api) -> Api {
    let mut out = api.clone();
    out.access.roles.clear();
    let throttle = out.throttle.as_ref().map(zero_limits);
    let mut operations = Vec::new();
    let source = if api.operations.is_empty() {
        vec![Operation {
            method: "*".into(),
            path: "/*".into(),
            access: None,
            throttle: None,
        }]
    } else {
        api.operations.clone()
    };
    for op in &source {
        let access = Access {
            anonymous: op.access.as_ref().unwrap_or(&api.access).anonymous,
            roles: Vec::new(),
        };
        let op_throttle = op
            .throttle
            .as_ref()
            .map(zero_limits)
            .or_else(|| throttle.clone());
        let methods: Vec<String> = if op.method == "*" {
            ANY_METHODS.iter().map(|m| (*m).to_owned()).collect()
        } else {
            vec![op.method.to_ascii_uppercase()]
        };
        for method in methods {
            operations.push(Operation {
                method,
                path: op.path.clone(),
                access: Some(access.clone()),
                throttle: op_throttle.clone(),
            });
        }
    }
    out.access.anonymous = operations
        .iter()
        .all(|op| op.access.as_ref().is_some_and(|a| a.anonymous));
    out.operations = operations;
    out.throttle = throttle;
    if let Some(cors) = out.cors.as_mut() {
        cors.max_age_seconds = None;
    }
    out.timeouts = Timeouts {
        response_ms: api.timeouts.response_ms,
        ..Timeouts::default()
    };
    if let Some(graphql) = out.graphql.as_mut() {
        graphql.max_query_bytes = 0;
        graphql.max_depth = 0;
    }
    out
}

fn zero_limits(t: &Throttle) -> Throttle {
    Throttle {
        policy: t.policy.clone(),
        requests: 0,
        period_seconds: 0,
    }
}

/// `http://x` as WSO2's WebSocket endpoint `ws://x` (and back with [`from_ws_url`]).
fn to_ws_url(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        url.to_owned()
    }
}

fn from_ws_url(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        url.to_owned()
    }
}

/// The publisher API's `API` object for a (projected) API.
fn to_wso2(api: &Api) -> Value {
    let api = &project(api);
    let (kind, endpoint_type, url) = match api.kind {
        ApiKind::Rest | ApiKind::Ai => ("HTTP", "http", api.backend_url.clone()),
        ApiKind::Graphql => ("GRAPHQL", "http", api.backend_url.clone()),
        ApiKind::Websocket => ("WS", "ws", to_ws_url(&api.backend_url)),
    };
    // `actionDuration` is the endpoint timeout in ms; `fault` makes a timeout an error. These
    // are the keys of the Publisher portal's Advanced Endpoint Configuration: the OpenAPI
    // schema leaves `endpointConfig` free-form.
    let endpoint = json!({
        "url": url,
        "config": {
            "actionSelect": "fault",
            "actionDuration": api.timeouts.response_ms.to_string(),
        },
    });
    let mut properties =
        vec![json!({ "name": OWNER_PROPERTY, "value": FINCTL_OWNER, "display": false })];
    if api.kind == ApiKind::Ai {
        properties.push(json!({ "name": KIND_PROPERTY, "value": "ai", "display": false }));
    }
    let operations: Vec<Value> = api
        .operations
        .iter()
        .map(|op| {
            let anonymous = op.access.as_ref().is_some_and(|a| a.anonymous);
            json!({
                "target": op.path,
                "verb": op.method,
                "authType": if anonymous { ANONYMOUS_AUTH } else { TOKEN_AUTH },
                "throttlingPolicy": op.throttle.as_ref().map_or(UNLIMITED, |t| t.policy.as_str()),
                "scopes": [],
            })
        })
        .collect();
    let cors = match &api.cors {
        Some(cors) => json!({
            "corsConfigurationEnabled": true,
            "accessControlAllowOrigins": cors.origins,
            "accessControlAllowMethods": cors.methods,
            "accessControlAllowHeaders": cors.headers,
            "accessControlAllowCredentials": cors.credentials,
        }),
        None => json!({ "corsConfigurationEnabled": false }),
    };
    let mut body = json!({
        "name": api.name,
        "context": api.context,
        "version": api.version,
        "type": kind,
        "description": api.description,
        "tags": api.tags,
        "policies": [UNLIMITED],
        "endpointConfig": {
            "endpoint_type": endpoint_type,
            "production_endpoints": endpoint,
            "sandbox_endpoints": endpoint,
        },
        "operations": operations,
        "corsConfiguration": cors,
        "additionalProperties": properties,
    });
    if let Some(throttle) = &api.throttle {
        body["apiThrottlingPolicy"] = json!(throttle.policy);
    }
    body
}

/// An API as `GET /apis/{id}` answers it, in finctl's terms (the GraphQL schema is read
/// separately).
fn from_wso2(body: &Value) -> Api {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let property = |name: &str| {
        body.get("additionalProperties")
            .and_then(Value::as_array)
            .and_then(|props| {
                props
                    .iter()
                    .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
            })
            .and_then(|p| text(p, "value"))
    };
    let kind = match (
        text(body, "type").as_deref(),
        property(KIND_PROPERTY).as_deref(),
    ) {
        (Some("GRAPHQL"), _) => ApiKind::Graphql,
        (Some("WS"), _) => ApiKind::Websocket,
        (_, Some("ai")) => ApiKind::Ai,
        _ => ApiKind::Rest,
    };
    let endpoint = body
        .get("endpointConfig")
        .and_then(|c| c.get("production_endpoints"))
        .map(|e| {
            if let Some(first) = e.as_array().and_then(|a| a.first()) {
                first
            } else {
                e
            }
        });
    let url = endpoint.and_then(|e| text(e, "url")).unwrap_or_default();
    let backend_url = match kind {
        ApiKind::Websocket => from_ws_url(&url),
        _ => url,
    };
    let response_ms = endpoint
        .and_then(|e| e.get("config"))
        .and_then(|c| c.get("actionDuration"))
        .and_then(|d| {
            d.as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| d.as_u64())
        })
        .unwrap_or(Timeouts::default().response_ms);
    let throttle = text(body, "apiThrottlingPolicy").map(|policy| Throttle {
        policy,
        requests: 0,
        period_seconds: 0,
    });
    let operations: Vec<Operation> = body
        .get("operations")
        .and_then(Value::as_array)
        .map(|ops| {
            ops.iter()
                .map(|op| Operation {
                    method: text(op, "verb").unwrap_or_default().to_ascii_uppercase(),
                    path: text(op, "target").unwrap_or_default(),
                    access: Some(Access {
                        anonymous: text(op, "authType").as_deref() == Some(ANONYMOUS_AUTH),
                        roles: Vec::new(),
                    }),
                    throttle: text(op, "throttlingPolicy").filter(|p| p != UNLIMITED).map(
                        |policy| Throttle {
                            policy,
                            requests: 0,
                            period_seconds: 0,
                        },
                    ),
                })
                .collect()
        })
        .unwrap_or_default();
    let cors = body
        .get("corsConfiguration")
        .filter(|c| c.get("corsConfigurationEnabled").and_then(Value::as_bool) == Some(true))
        .map(|c| Cors {
            origins: strings(c.get("accessControlAllowOrigins")),
            methods: strings(c.get("accessControlAllowMethods")),
            headers: strings(c.get("accessControlAllowHeaders")),
            credentials: c
                .get("accessControlAllowCredentials")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            max_age_seconds: None,
        });
    Api {
        name: text(body, "name").unwrap_or_default(),
        context: text(body, "context").unwrap_or_default(),
        version: text(body, "version").unwrap_or_default(),
        kind,
        backend_url,
        description: text(body, "description").filter(|d| !d.is_empty()),
        tags: strings(body.get("tags")),
        access: Access {
            anonymous: !operations.is_empty()
                && operations
                    .iter()
                    .all(|op| op.access.as_ref().is_some_and(|a| a.anonymous)),
            roles: Vec::new(),
        },
        throttle,
        operations,
        cors,
        timeouts: Timeouts {
            response_ms,
            ..Timeouts::default()
        },
        graphql: (kind == ApiKind::Graphql).then_some(GraphqlSettings {
            max_query_bytes: 0,
            max_depth: 0,
            schema: None,
        }),
        owner: property(OWNER_PROPERTY),
    }
}
