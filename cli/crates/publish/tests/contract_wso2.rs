//! Recorded contract of WSO2 API Manager 4.x, which cannot run here: an in-test HTTP server
//! answers the calls finctl's `wso2` target makes, as WSO2's publisher REST API describes
//! them, and records each call so the tests can assert the exact sequence and bodies.
//!
//! Written from `publisher-api.yaml` of wso2/carbon-apimgt (components/apimgt/
//! org.wso2.carbon.apimgt.rest.api.publisher.v1/src/main/resources, the revision-era spec:
//! `/apis`, `/apis/{apiId}`, `/apis/{apiId}/revisions`, `/deploy-revision`,
//! `/apis/change-lifecycle`, the `API`, `APIOperations`, `APICorsConfiguration`,
//! `APIRevision`, `APIRevisionDeployment` and `Error` schemas), its DCR and password-grant
//! token description, and the API Manager 4.x documentation (five revisions at most per API).
//! The snapshot read declares `info.version: v2` (API Manager 4.0/4.1); finctl and this
//! server use the 4.3+ base path `/api/am/publisher/v4`, assuming these resources kept their
//! shapes, which a real API Manager 4.3+ should confirm.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
mod support;

use finctl_publish::definition::Definitions;
use finctl_publish::plan::{self, Action, Plan};
use finctl_publish::target::Target;
use finctl_publish::wso2::{Secret, Wso2, Wso2Config};
use gateway_routes::{Access, Api, ApiKind, Cors, GraphqlSettings, Operation, Throttle, Timeouts};
use serde_json::{Value, json};

const PUBLISHER: &str = "/api/am/publisher/v4";

#[derive(Debug, Clone)]
struct Call {
    method: String,
    /// Path and query: `/api/am/publisher/v4/apis?limit=100&offset=0`.
    target: String,
    /// JSON bodies as they are; multipart as `{field: content}`; forms as `{key: value}`.
    body: Value,
}

impl Call {
    fn line(&self) -> String {
        format!("{} {}", self.method, self.target)
    }
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    apis: BTreeMap<String, Value>,
    schemas: BTreeMap<String, String>,
    revisions: BTreeMap<String, Vec<Value>>,
    /// API definitions (`PUT /apis/{id}/swagger`), as sent.
    definitions: BTreeMap<String, String>,
    next_id: usize,
    tokens_issued: usize,
    /// The next publisher call is answered 401, as for an expired token.
    expire_next: usize,
}

type Shared = Arc<Mutex<State>>;

fn error(status: StatusCode, message: &str, description: &str) -> Response {
    let body = json!({
        "code": status.as_u16(),
        "message": message,
        "description": description,
        "moreInfo": "",
        "error": [],
    });
    (status, axum::Json(body)).into_response()
}

fn ok(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Enough of RFC 7578 for reqwest's forms: `{name: content}`.
fn multipart(content_type: &str, body: &[u8]) -> Value {
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .expect("multipart boundary")
        .trim_matches('"');
    let text = String::from_utf8_lossy(body);
    let mut fields = serde_json::Map::new();
    for part in text.split(&format!("--{boundary}")) {
        let Some((head, content)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let Some(name) = head
            .split("name=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        else {
            continue;
        };
        let content = content.strip_suffix("\r\n").unwrap_or(content);
        fields.insert(name.to_owned(), Value::String(content.to_owned()));
    }
    Value::Object(fields)
}

fn basic(headers: &HeaderMap) -> Option<String> {
    use base64_decode as decode;
    let value = headers.get("authorization")?.to_str().ok()?;
    decode(value.strip_prefix("Basic ")?)
}

/// Base64 (standard alphabet) without a dependency.
fn base64_decode(input: &str) -> Option<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in input.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    String::from_utf8(out).ok()
}

async fn handle(
    axum::extract::State(state): axum::extract::State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let recorded = if content_type.starts_with("multipart/form-data") {
        multipart(&content_type, &body)
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let form: BTreeMap<String, String> = serde_urlencoded_lite(&String::from_utf8_lossy(&body));
        json!(form)
    } else if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    let target = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut s = state.lock().unwrap();
    s.calls.push(Call {
        method: method.to_string(),
        target: target.clone(),
        body: recorded.clone(),
    });
    let path = uri.path().to_owned();
    let q = query(&uri);

    if path == "/client-registration/v0.17/register" {
        if basic(&headers).as_deref() != Some("admin:admin") {
            return error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "bad user credentials",
            );
        }
        return ok(
            StatusCode::OK,
            json!({
                "clientId": "finctl-client-id",
                "clientName": recorded["clientName"],
                "callBackURL": recorded["callbackUrl"],
                "clientSecret": "finctl-client-secret",
                "isSaasApplication": true,
                "appOwner": recorded["owner"],
                "jsonString": "{}",
                "jsonAppAttribute": "{}",
                "tokenType": null,
            }),
        );
    }
    if path == "/oauth2/token" {
        if basic(&headers).as_deref() != Some("finctl-client-id:finctl-client-secret")
            || recorded["grant_type"] != "password"
        {
            return ok(
                StatusCode::UNAUTHORIZED,
                json!({"error": "invalid_client", "error_description": "Client Authentication failed."}),
            );
        }
        s.tokens_issued += 1;
        return ok(
            StatusCode::OK,
            json!({
                "access_token": format!("token-{}", s.tokens_issued),
                "refresh_token": "refresh",
                "scope": recorded["scope"],
                "token_type": "Bearer",
                "expires_in": 3600,
            }),
        );
    }
    let Some(rest) = path.strip_prefix(PUBLISHER) else {
        return error(StatusCode::NOT_FOUND, "Not Found", "no such resource");
    };
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    if s.expire_next > 0 || bearer != Some(format!("token-{}", s.tokens_issued)) {
        s.expire_next = s.expire_next.saturating_sub(1);
        return error(
            StatusCode::UNAUTHORIZED,
            "Invalid Credentials",
            "Invalid Credentials. Make sure you have provided the correct security credentials",
        );
    }
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["apis"]) => {
            let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(25);
            let offset: usize = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
            let list: Vec<Value> = s
                .apis
                .values()
                .skip(offset)
                .take(limit)
                .map(|a| {
                    json!({
                        "id": a["id"], "name": a["name"], "context": a["context"],
                        "version": a["version"], "type": a["type"],
                        "lifeCycleStatus": a["lifeCycleStatus"],
                    })
                })
                .collect();
            let total = s.apis.len();
            ok(
                StatusCode::OK,
                json!({
                    "count": list.len(),
                    "list": list,
                    "pagination": {"offset": offset, "limit": limit, "total": total},
                }),
            )
        }
        ("POST", ["apis"]) | ("POST", ["apis", "import-graphql-schema"]) => {
            let mut api = if segments.len() == 2 {
                if recorded["type"] != "GRAPHQL" || recorded.get("file").is_none() {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "Bad Request",
                        "type and file are required",
                    );
                }
                serde_json::from_str(recorded["additionalProperties"].as_str().unwrap_or("{}"))
                    .unwrap_or(Value::Null)
            } else {
                recorded.clone()
            };
            for key in ["name", "context", "version"] {
                if !api[key].is_string() {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "Bad Request",
                        &format!("{key} is required"),
                    );
                }
            }
            if s.apis
                .values()
                .any(|a| a["name"] == api["name"] && a["version"] == api["version"])
            {
                return error(
                    StatusCode::CONFLICT,
                    "Conflict",
                    &format!("The API {}:{} already exists.", api["name"], api["version"]),
                );
            }
            s.next_id += 1;
            let id = format!("api-{}", s.next_id);
            api["id"] = json!(id);
            api["lifeCycleStatus"] = json!("CREATED");
            if segments.len() == 2 {
                api["type"] = json!("GRAPHQL");
                let sdl = recorded["file"].as_str().unwrap_or("").to_owned();
                s.schemas.insert(id.clone(), sdl);
            }
            s.apis.insert(id, api.clone());
            ok(StatusCode::CREATED, api)
        }
        ("POST", ["apis", "change-lifecycle"]) => {
            let id = q.get("apiId").cloned().unwrap_or_default();
            let Some(api) = s.apis.get_mut(&id) else {
                return error(
                    StatusCode::NOT_FOUND,
                    "Not Found",
                    &format!("Requested API with Id '{id}' not found"),
                );
            };
            if q.get("action").map(String::as_str) != Some("Publish") {
                return error(StatusCode::BAD_REQUEST, "Bad Request", "unsupported action");
            }
            if api["lifeCycleStatus"] == "PUBLISHED" {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Bad Request",
                    "Publish is not a valid action in PUBLISHED",
                );
            }
            api["lifeCycleStatus"] = json!("PUBLISHED");
            ok(
                StatusCode::OK,
                json!({"workflowStatus": "APPROVED", "lifecycleState": {"state": "Published"}}),
            )
        }
        (verb, ["apis", id, more @ ..]) => {
            let id = (*id).to_owned();
            if !s.apis.contains_key(&id) {
                return error(
                    StatusCode::NOT_FOUND,
                    "Not Found",
                    &format!("Requested API with Id '{id}' not found"),
                );
            }
            match (verb, more) {
                ("GET", []) => ok(StatusCode::OK, s.apis[&id].clone()),
                ("PUT", []) => {
                    let old = s.apis[&id].clone();
                    let mut api = recorded.clone();
                    for kept in [
                        "id",
                        "name",
                        "version",
                        "context",
                        "lifeCycleStatus",
                        "type",
                    ] {
                        api[kept] = old[kept].clone();
                    }
                    s.apis.insert(id, api.clone());
                    ok(StatusCode::OK, api)
                }
                ("DELETE", []) => {
                    s.apis.remove(&id);
                    s.revisions.remove(&id);
                    ok(StatusCode::OK, Value::Null)
                }
                ("PUT", ["swagger"]) => {
                    let text = recorded["apiDefinition"].as_str().unwrap_or("").to_owned();
                    let Ok(doc) = serde_json::from_str::<Value>(&text) else {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "Bad Request",
                            "Error while validating the API definition",
                        );
                    };
                    // As API Manager does: the definition's paths become the API's resources.
                    let operations: Vec<Value> = doc["paths"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .flat_map(|(path, item)| {
                            item.as_object()
                                .into_iter()
                                .flatten()
                                .map(move |(verb, _)| {
                                    json!({
                                        "target": path,
                                        "verb": verb.to_uppercase(),
                                        "authType": "Application & Application User",
                                        "throttlingPolicy": "Unlimited",
                                        "scopes": [],
                                    })
                                })
                        })
                        .collect();
                    if let Some(api) = s.apis.get_mut(&id) {
                        api["operations"] = json!(operations);
                    }
                    s.definitions.insert(id, text.clone());
                    ok(StatusCode::OK, json!(text))
                }
                ("GET", ["graphql-schema"]) => ok(
                    StatusCode::OK,
                    json!({"name": format!("admin--{id}.graphql"), "schemaDefinition": s.schemas.get(&id)}),
                ),
                ("PUT", ["graphql-schema"]) => {
                    let sdl = recorded["schemaDefinition"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned();
                    s.schemas.insert(id, sdl);
                    ok(StatusCode::OK, json!(""))
                }
                ("GET", ["revisions"]) => {
                    let list = s.revisions.get(&id).cloned().unwrap_or_default();
                    ok(StatusCode::OK, json!({"count": list.len(), "list": list}))
                }
                ("POST", ["revisions"]) => {
                    let n = s.revisions.get(&id).map_or(0, Vec::len);
                    if n >= 5 {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "Bad Request",
                            "Maximum number of revisions per API has reached. Need to remove stale revision to create a new Revision for API",
                        );
                    }
                    s.next_id += 1;
                    let revision = json!({
                        "id": format!("rev-{}", s.next_id),
                        "displayName": format!("Revision {}", s.next_id),
                        "description": recorded["description"],
                        "createdTime": format!("2026-01-01T00:00:{:02}Z", s.next_id),
                        "apiInfo": {"id": id},
                        "deploymentInfo": [],
                    });
                    s.revisions.entry(id).or_default().push(revision.clone());
                    ok(StatusCode::CREATED, revision)
                }
                ("DELETE", ["revisions", rid]) => {
                    let list = s.revisions.entry(id).or_default();
                    let Some(pos) = list.iter().position(|r| r["id"] == *rid) else {
                        return error(StatusCode::NOT_FOUND, "Not Found", "no such revision");
                    };
                    if list[pos]["deploymentInfo"]
                        .as_array()
                        .is_some_and(|d| !d.is_empty())
                    {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "Bad Request",
                            "Cannot delete a deployed revision",
                        );
                    }
                    list.remove(pos);
                    let list = list.clone();
                    ok(StatusCode::OK, json!({"count": list.len(), "list": list}))
                }
                ("POST", ["deploy-revision"]) => {
                    let rid = q.get("revisionId").cloned().unwrap_or_default();
                    let Some(deployments) = recorded.as_array().cloned() else {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "Bad Request",
                            "a list of deployments is expected",
                        );
                    };
                    let list = s.revisions.entry(id).or_default();
                    if !list.iter().any(|r| r["id"] == rid) {
                        return error(StatusCode::NOT_FOUND, "Not Found", "no such revision");
                    }
                    // One revision per gateway environment: deploying moves it.
                    for revision in list.iter_mut() {
                        if revision["id"] == rid {
                            revision["deploymentInfo"] = json!(deployments);
                        } else if let Some(info) = revision["deploymentInfo"].as_array_mut() {
                            info.retain(|d| !deployments.iter().any(|n| n["name"] == d["name"]));
                        }
                    }
                    ok(StatusCode::CREATED, json!(deployments))
                }
                _ => error(StatusCode::NOT_FOUND, "Not Found", "no such resource"),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found", "no such resource"),
    }
}

fn serde_urlencoded_lite(text: &str) -> BTreeMap<String, String> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        percent_encoding::percent_decode_str(&s)
            .decode_utf8_lossy()
            .into_owned()
    };
    text.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

struct Server {
    url: String,
    state: Shared,
}

impl Server {
    async fn start() -> Self {
        let state = Shared::default();
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, state }
    }

    fn target(&self) -> Wso2 {
        self.target_with(Definitions::none())
    }

    fn target_with(&self, definitions: Definitions) -> Wso2 {
        Wso2::new(Wso2Config {
            url: self.url.clone(),
            username: "admin".into(),
            password: Secret::new("admin"),
            gateway_env: "Default".into(),
            insecure_tls: false,
            definitions,
        })
        .unwrap()
    }

    /// Forgets the calls so far.
    fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.state.lock().unwrap().calls)
    }

    fn lines(calls: &[Call]) -> Vec<String> {
        calls.iter().map(Call::line).collect()
    }

    /// A revision already there (deployed or not), as WSO2 would list it.
    fn add_revision(&self, api_id: &str, n: usize, deployed: bool) {
        let mut s = self.state.lock().unwrap();
        let info = if deployed {
            json!([{"name": "Default", "vhost": "localhost", "displayOnDevportal": true}])
        } else {
            json!([])
        };
        s.revisions
            .entry(api_id.to_owned())
            .or_default()
            .push(json!({
                "id": format!("old-{n}"),
                "displayName": format!("Revision {n}"),
                "createdTime": format!("2025-06-01T00:00:{n:02}Z"),
                "deploymentInfo": info,
            }));
    }
}

/// What `finctl publish-apis` does: list, plan, apply.
async fn publish(target: &mut Wso2, apis: &[Api], prune: bool) -> Plan {
    let remote = target.list().await.unwrap();
    let plan = Plan::new(target, apis, &remote, prune);
    plan::apply(target, &plan, &mut |_| {}).await.unwrap();
    plan
}

fn payment() -> Api {
    Api {
        name: "payment".into(),
        context: "/api/payment".into(),
        version: "v1".into(),
        kind: ApiKind::Rest,
        backend_url: "http://payment:8000".into(),
        description: Some("Payments".into()),
        tags: vec!["payments".into()],
        access: Access::default(),
        throttle: Some(Throttle {
            policy: "protected".into(),
            requests: 100,
            period_seconds: 60,
        }),
        operations: vec![
            Operation {
                method: "GET".into(),
                path: "/health".into(),
                access: Some(Access {
                    anonymous: true,
                    roles: vec![],
                }),
                throttle: None,
            },
            Operation {
                method: "*".into(),
                path: "/payments/*".into(),
                access: Some(Access {
                    anonymous: false,
                    roles: vec!["payer".into()],
                }),
                throttle: Some(Throttle {
                    policy: "strict".into(),
                    requests: 10,
                    period_seconds: 1,
                }),
            },
        ],
        cors: Some(Cors {
            origins: vec!["https://app.example".into()],
            methods: vec!["GET".into(), "POST".into()],
            headers: vec!["authorization".into()],
            credentials: true,
            max_age_seconds: Some(600),
        }),
        timeouts: Timeouts::default(),
        graphql: None,
        owner: Some("finctl".into()),
    }
}

fn named(name: &str, kind: ApiKind, backend: &str) -> Api {
    Api {
        name: name.into(),
        context: format!("/api/{name}"),
        kind,
        backend_url: backend.into(),
        description: None,
        tags: vec![],
        throttle: None,
        operations: vec![],
        cors: None,
        ..payment()
    }
}

fn writes(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| {
            c.method != "GET"
                && !c.target.starts_with("/oauth2/")
                && !c.target.starts_with("/client-registration/")
        })
        .map(Call::line)
        .collect()
}

#[tokio::test]
async fn contract_wso2_first_publish_registers_a_client_gets_a_token_creates_revises_deploys_publishes()
 {
    let server = Server::start().await;
    let mut target = server.target();
    let plan = publish(&mut target, &[payment()], false).await;
    assert_eq!(plan.count(Action::Create), 1);

    let calls = server.take_calls();
    assert_eq!(
        Server::lines(&calls),
        [
            "POST /client-registration/v0.17/register",
            "POST /oauth2/token",
            "GET /api/am/publisher/v4/apis?limit=100&offset=0",
            "POST /api/am/publisher/v4/apis",
            "GET /api/am/publisher/v4/apis/api-1/revisions",
            "POST /api/am/publisher/v4/apis/api-1/revisions",
            "POST /api/am/publisher/v4/apis/api-1/deploy-revision?revisionId=rev-2",
            "POST /api/am/publisher/v4/apis/change-lifecycle?apiId=api-1&action=Publish",
        ]
    );
    let register = &calls[0].body;
    assert_eq!(register["grantType"], "password refresh_token");
    assert_eq!(register["saasApp"], true);
    assert_eq!(register["owner"], "admin");
    let token = &calls[1].body;
    assert_eq!(token["grant_type"], "password");
    assert_eq!(token["username"], "admin");
    let scope = token["scope"].as_str().unwrap();
    for needed in ["apim:api_view", "apim:api_create", "apim:api_publish"] {
        assert!(
            scope.split(' ').any(|s| s == needed),
            "{needed} missing from {scope}"
        );
    }

    let api = &calls[3].body;
    assert_eq!(api["name"], "payment");
    assert_eq!(api["context"], "/api/payment");
    assert_eq!(api["version"], "v1");
    assert_eq!(api["type"], "HTTP");
    assert_eq!(api["description"], "Payments");
    assert_eq!(api["tags"], json!(["payments"]));
    assert_eq!(api["apiThrottlingPolicy"], "protected");
    assert_eq!(api["endpointConfig"]["endpoint_type"], "http");
    assert_eq!(
        api["endpointConfig"]["production_endpoints"]["url"],
        "http://payment:8000"
    );
    assert_eq!(
        api["endpointConfig"]["sandbox_endpoints"]["url"],
        "http://payment:8000"
    );
    assert_eq!(
        api["endpointConfig"]["production_endpoints"]["config"]["actionDuration"],
        "30000"
    );
    assert_eq!(
        api["additionalProperties"],
        json!([{"name": "finctl-owner", "value": "finctl", "display": false}])
    );
    let ops = api["operations"].as_array().unwrap();
    assert_eq!(
        ops.len(),
        6,
        "GET /health and the five verbs of `*`: {ops:?}"
    );
    assert_eq!(ops[0]["target"], "/health");
    assert_eq!(ops[0]["verb"], "GET");
    assert_eq!(ops[0]["authType"], "None");
    assert_eq!(ops[0]["throttlingPolicy"], "protected");
    let verbs: Vec<&str> = ops[1..]
        .iter()
        .map(|o| o["verb"].as_str().unwrap())
        .collect();
    assert_eq!(verbs, ["GET", "POST", "PUT", "DELETE", "PATCH"]);
    assert!(
        ops[1..]
            .iter()
            .all(|o| o["authType"] == "Application & Application User"
                && o["throttlingPolicy"] == "strict"
                && o["target"] == "/payments/*")
    );
    assert_eq!(
        api["corsConfiguration"],
        json!({
            "corsConfigurationEnabled": true,
            "accessControlAllowOrigins": ["https://app.example"],
            "accessControlAllowMethods": ["GET", "POST"],
            "accessControlAllowHeaders": ["authorization"],
            "accessControlAllowCredentials": true,
        })
    );
    assert!(
        calls[5].body["description"]
            .as_str()
            .unwrap()
            .contains("payment:v1")
    );
    assert_eq!(
        calls[6].body,
        json!([{"name": "Default", "vhost": "localhost", "displayOnDevportal": true}])
    );
    assert_eq!(
        server.state.lock().unwrap().apis["api-1"]["lifeCycleStatus"],
        "PUBLISHED"
    );
}

#[tokio::test]
async fn contract_wso2_second_run_is_unchanged_and_makes_no_write_call() {
    let server = Server::start().await;
    let apis = [payment(), named("ws", ApiKind::Websocket, "http://ws:9000")];
    publish(&mut server.target(), &apis, false).await;
    server.take_calls();

    let mut again = server.target();
    let plan = publish(&mut again, &apis, false).await;
    assert!(
        !plan.has_changes(),
        "{:?}",
        plan.changes
            .iter()
            .map(|c| (&c.id, &c.fields))
            .collect::<Vec<_>>()
    );
    assert_eq!(plan.count(Action::Unchanged), 2);
    let calls = server.take_calls();
    assert_eq!(
        Server::lines(&calls),
        [
            "POST /client-registration/v0.17/register",
            "POST /oauth2/token",
            "GET /api/am/publisher/v4/apis?limit=100&offset=0",
            "GET /api/am/publisher/v4/apis/api-1",
            "GET /api/am/publisher/v4/apis/api-3",
        ]
    );
    assert!(writes(&calls).is_empty());
}

#[tokio::test]
async fn contract_wso2_changed_backend_updates_and_deploys_a_new_revision() {
    let server = Server::start().await;
    publish(&mut server.target(), &[payment()], false).await;
    server.take_calls();

    let changed = Api {
        backend_url: "http://payment-v2:8000".into(),
        ..payment()
    };
    let plan = publish(&mut server.target(), &[changed], false).await;
    assert_eq!(plan.changes[0].action, Action::Update);
    assert_eq!(plan.changes[0].fields, ["backend_url"]);
    let calls = server.take_calls();
    assert_eq!(
        writes(&calls),
        [
            "PUT /api/am/publisher/v4/apis/api-1",
            "POST /api/am/publisher/v4/apis/api-1/revisions",
            "POST /api/am/publisher/v4/apis/api-1/deploy-revision?revisionId=rev-3",
        ],
        "already published: no lifecycle change"
    );
    let put = calls.iter().find(|c| c.method == "PUT").unwrap();
    assert_eq!(put.body["id"], "api-1");
    assert_eq!(
        put.body["endpointConfig"]["production_endpoints"]["url"],
        "http://payment-v2:8000"
    );
    assert_eq!(put.body["additionalProperties"][0]["name"], "finctl-owner");
    let s = server.state.lock().unwrap();
    let deployed: Vec<&Value> = s.revisions["api-1"]
        .iter()
        .filter(|r| {
            r["deploymentInfo"]
                .as_array()
                .is_some_and(|d| !d.is_empty())
        })
        .map(|r| &r["id"])
        .collect();
    assert_eq!(deployed, [&json!("rev-3")]);
}

#[tokio::test]
async fn contract_wso2_revision_cap_deletes_the_oldest_undeployed_revision() {
    let server = Server::start().await;
    publish(&mut server.target(), &[payment()], false).await;
    // rev-2 is deployed; four older ones, the oldest two of them undeployed.
    {
        let mut s = server.state.lock().unwrap();
        let current = s.revisions.get_mut("api-1").unwrap().remove(0);
        drop(s);
        server.add_revision("api-1", 2, false);
        server.add_revision("api-1", 1, false);
        server.add_revision("api-1", 3, false);
        server.add_revision("api-1", 4, true);
        s = server.state.lock().unwrap();
        s.revisions.get_mut("api-1").unwrap().push(current);
    }
    server.take_calls();

    let changed = Api {
        description: Some("Payments, v2".into()),
        ..payment()
    };
    publish(&mut server.target(), &[changed], false).await;
    let calls = server.take_calls();
    assert_eq!(
        writes(&calls),
        [
            "PUT /api/am/publisher/v4/apis/api-1",
            "DELETE /api/am/publisher/v4/apis/api-1/revisions/old-1",
            "POST /api/am/publisher/v4/apis/api-1/revisions",
            "POST /api/am/publisher/v4/apis/api-1/deploy-revision?revisionId=rev-3",
        ]
    );

    // Every revision deployed (to several environments): a clear error, no revision made.
    {
        let mut s = server.state.lock().unwrap();
        for r in s.revisions.get_mut("api-1").unwrap() {
            r["deploymentInfo"] = json!([{"name": "Elsewhere", "vhost": "localhost"}]);
        }
    }
    let mut target = server.target();
    let remote = target.list().await.unwrap();
    let again = Api {
        description: Some("Payments, v3".into()),
        ..payment()
    };
    let plan = Plan::new(&target, &[again], &remote, false);
    let err = plan::apply(&mut target, &plan, &mut |_| {})
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("5 revisions, all deployed"), "{text}");
    assert!(text.contains("undeploy one"), "{text}");
    assert!(
        !Server::lines(&server.take_calls())
            .iter()
            .any(|l| l.starts_with("POST") && l.ends_with("/revisions"))
    );
}

#[tokio::test]
async fn contract_wso2_expired_token_is_renewed_once() {
    let server = Server::start().await;
    let mut target = server.target();
    target.list().await.unwrap();
    server.take_calls();

    server.state.lock().unwrap().expire_next = 1;
    target.list().await.unwrap();
    assert_eq!(
        Server::lines(&server.take_calls()),
        [
            "GET /api/am/publisher/v4/apis?limit=100&offset=0",
            "POST /oauth2/token",
            "GET /api/am/publisher/v4/apis?limit=100&offset=0",
        ],
        "renewed with the registered client, not a new registration"
    );

    server.state.lock().unwrap().expire_next = 2;
    let err = target.list().await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("401"), "{text}");
    assert!(text.contains("Invalid Credentials"), "{text}");
    assert!(
        text.contains("GET ") && text.contains("/api/am/publisher/v4/apis"),
        "{text}"
    );
    assert_eq!(
        Server::lines(&server.take_calls()).len(),
        3,
        "one call, one renewal, one retry, no more"
    );
}

#[tokio::test]
async fn contract_wso2_graphql_api_is_imported_with_its_schema() {
    let server = Server::start().await;
    let sdl = "type Query {\n  balance(account: ID!): Int\n}\n";
    let api = Api {
        graphql: Some(GraphqlSettings {
            max_query_bytes: 10_000,
            max_depth: 8,
            schema: Some(sdl.into()),
        }),
        ..named("ledger", ApiKind::Graphql, "http://ledger:8000/graphql")
    };
    publish(&mut server.target(), std::slice::from_ref(&api), false).await;
    let calls = server.take_calls();
    assert_eq!(
        writes(&calls),
        [
            "POST /api/am/publisher/v4/apis/import-graphql-schema",
            "POST /api/am/publisher/v4/apis/api-1/revisions",
            "POST /api/am/publisher/v4/apis/api-1/deploy-revision?revisionId=rev-2",
            "POST /api/am/publisher/v4/apis/change-lifecycle?apiId=api-1&action=Publish",
        ]
    );
    let import = &calls[3].body;
    let mut fields: Vec<&String> = import.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["additionalProperties", "file", "type"]);
    assert_eq!(import["type"], "GRAPHQL");
    assert_eq!(import["file"], sdl);
    let props: Value =
        serde_json::from_str(import["additionalProperties"].as_str().unwrap()).unwrap();
    assert_eq!(props["name"], "ledger");
    assert_eq!(props["type"], "GRAPHQL");
    assert_eq!(
        props["endpointConfig"]["production_endpoints"]["url"],
        "http://ledger:8000/graphql"
    );

    // Read back with its schema: unchanged.
    let plan = publish(&mut server.target(), std::slice::from_ref(&api), false).await;
    assert!(!plan.has_changes(), "{:?}", plan.changes[0].fields);
    assert!(
        Server::lines(&server.take_calls())
            .contains(&"GET /api/am/publisher/v4/apis/api-1/graphql-schema".to_owned())
    );

    // A changed schema is sent to the schema resource.
    let changed_sdl = "type Query {\n  balance(account: ID!): Int\n  currency: String\n}\n";
    let changed = Api {
        graphql: Some(GraphqlSettings {
            schema: Some(changed_sdl.into()),
            ..api.graphql.clone().unwrap()
        }),
        ..api
    };
    publish(&mut server.target(), &[changed], false).await;
    let calls = server.take_calls();
    let put = calls
        .iter()
        .find(|c| c.target.ends_with("/graphql-schema") && c.method == "PUT")
        .unwrap();
    assert_eq!(put.body["schemaDefinition"], changed_sdl);
}

#[tokio::test]
async fn contract_wso2_websocket_and_ai_apis_get_their_endpoint_settings() {
    let server = Server::start().await;
    let ws = named("quotes", ApiKind::Websocket, "http://forex:8000");
    let ai = Api {
        timeouts: Timeouts {
            connect_ms: 1_000,
            response_ms: 300_000,
            idle_ms: 120_000,
            total_ms: Some(600_000),
        },
        ..named("assistant", ApiKind::Ai, "https://llm.internal:8443")
    };
    publish(&mut server.target(), &[ws.clone(), ai.clone()], false).await;
    let calls = server.take_calls();
    let created: Vec<&Value> = calls
        .iter()
        .filter(|c| c.method == "POST" && c.target == "/api/am/publisher/v4/apis")
        .map(|c| &c.body)
        .collect();
    assert_eq!(created.len(), 2);
    let (ws_body, ai_body) = (created[0], created[1]);
    assert_eq!(ws_body["type"], "WS");
    assert_eq!(ws_body["endpointConfig"]["endpoint_type"], "ws");
    assert_eq!(
        ws_body["endpointConfig"]["production_endpoints"]["url"],
        "ws://forex:8000"
    );
    assert_eq!(ai_body["type"], "HTTP");
    assert_eq!(
        ai_body["endpointConfig"]["production_endpoints"]["url"],
        "https://llm.internal:8443"
    );
    assert_eq!(
        ai_body["endpointConfig"]["production_endpoints"]["config"]["actionDuration"],
        "300000"
    );
    assert_eq!(
        ai_body["additionalProperties"],
        json!([
            {"name": "finctl-owner", "value": "finctl", "display": false},
            {"name": "finctl-kind", "value": "ai", "display": false},
        ])
    );

    // Both read back as what they are.
    let remote = server.target().list().await.unwrap();
    let kinds: Vec<(String, ApiKind, String)> = remote
        .iter()
        .map(|r| (r.api.name.clone(), r.api.kind, r.api.backend_url.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "quotes".to_owned(),
                ApiKind::Websocket,
                "http://forex:8000".to_owned()
            ),
            (
                "assistant".to_owned(),
                ApiKind::Ai,
                "https://llm.internal:8443".to_owned()
            ),
        ]
    );
    let plan = publish(&mut server.target(), &[ws, ai], false).await;
    assert!(!plan.has_changes());
}

#[tokio::test]
async fn contract_wso2_prune_deletes_only_finctl_apis() {
    let server = Server::start().await;
    let mine = named("old", ApiKind::Rest, "http://old:8000");
    publish(&mut server.target(), &[payment(), mine], false).await;
    // Someone else's API, created in the Publisher portal: no finctl-owner property.
    {
        let mut s = server.state.lock().unwrap();
        s.apis.insert(
            "foreign-1".into(),
            json!({
                "id": "foreign-1", "name": "PizzaShackAPI", "context": "/pizzashack",
                "version": "1.0.0", "type": "HTTP", "lifeCycleStatus": "PUBLISHED",
                "endpointConfig": {"endpoint_type": "http", "production_endpoints": {"url": "https://localhost:9443/am/sample/pizzashack/v1/api/"}},
                "operations": [{"target": "/menu", "verb": "GET", "authType": "Application & Application User", "throttlingPolicy": "Unlimited"}],
            }),
        );
    }
    server.take_calls();

    let plan = publish(&mut server.target(), &[payment()], true).await;
    assert_eq!(plan.foreign, ["PizzaShackAPI:1.0.0"]);
    assert_eq!(plan.count(Action::Delete), 1);
    let calls = server.take_calls();
    assert_eq!(writes(&calls), ["DELETE /api/am/publisher/v4/apis/api-3"]);
    let s = server.state.lock().unwrap();
    let left: Vec<&str> = s
        .apis
        .values()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["payment", "PizzaShackAPI"]);
}

#[tokio::test]
async fn contract_wso2_unknown_api_and_conflict_surface_wso2s_message() {
    let server = Server::start().await;
    let mut target = server.target();
    let gone = finctl_publish::target::Remote {
        api: payment(),
        owned: true,
        handle: "missing-id".into(),
    };
    let text = format!("{:#}", target.delete(&gone).await.unwrap_err());
    assert!(text.contains("DELETE"), "{text}");
    assert!(text.contains("404"), "{text}");
    assert!(
        text.contains("Not Found: Requested API with Id 'missing-id' not found"),
        "{text}"
    );

    target.create(&payment()).await.unwrap();
    let text = format!("{:#}", target.create(&payment()).await.unwrap_err());
    assert!(
        text.contains("409") && text.contains("Conflict: The API"),
        "{text}"
    );
}

#[tokio::test]
async fn contract_wso2_unreachable_host_names_the_url_and_what_to_set() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut target = Wso2::new(Wso2Config {
        url: url.clone(),
        username: "admin".into(),
        password: Secret::new("admin"),
        gateway_env: "Default".into(),
        insecure_tls: true,
        definitions: Definitions::none(),
    })
    .unwrap();
    let err = target.list().await.unwrap_err();
    assert!(err.to_string().contains(&url), "{err}");
    assert!(finctl_error::hint_of(&err).is_some_and(|h| h.contains("FINCTL_WSO2_URL")));
}

#[test]
fn contract_wso2_config_reads_finctl_env_with_wso2_defaults() {
    let config = Wso2Config::from_lookup(|_| None);
    assert_eq!(config.url, "https://127.0.0.1:9443");
    assert_eq!(config.username, "admin");
    assert_eq!(config.password.expose(), "admin");
    assert_eq!(config.gateway_env, "Default");
    assert!(!config.insecure_tls);
    assert!(
        !format!("{config:?}").contains("\"admin\", gateway"),
        "password kept out of Debug"
    );

    let config = Wso2Config::from_lookup(|name| match name {
        "FINCTL_WSO2_URL" => Some("https://apim:9443".into()),
        "FINCTL_WSO2_PASSWORD" => Some("s3cret".into()),
        "FINCTL_WSO2_GATEWAY_ENV" => Some("Production".into()),
        "FINCTL_WSO2_INSECURE_TLS" => Some("1".into()),
        _ => None,
    });
    assert_eq!(config.url, "https://apim:9443");
    assert_eq!(config.password.expose(), "s3cret");
    assert_eq!(config.gateway_env, "Production");
    assert!(config.insecure_tls);
    assert!(!format!("{config:?}").contains("s3cret"));
    assert_eq!(
        config.definitions,
        Definitions::from_gateway("http://127.0.0.1:8280")
    );
    let config =
        Wso2Config::from_lookup(|name| (name == "FINCTL_GATEWAY_URL").then(|| "none".to_owned()));
    assert_eq!(config.definitions, Definitions::none());
}

#[tokio::test]
async fn contract_wso2_rest_api_gets_its_openapi_document_as_its_definition() {
    let server = Server::start().await;
    let doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "svc-payment", "version": "0.1.0"},
        "servers": [{"url": "http://127.0.0.1:8280/api/payment/v1"}],
        "paths": {
            "/health": {"get": {"responses": {"200": {"description": "ok"}}}},
            "/payments/{id}": {"get": {"responses": {"200": {"description": "ok"}}}},
        },
    });
    let gateway = support::document_server("/api/payment/v1", doc.clone()).await;
    let apis = [payment(), named("ws", ApiKind::Websocket, "http://ws:9000")];
    let mut target = server.target_with(Definitions::from_gateway(&gateway));
    publish(&mut target, &apis, false).await;
    let calls = server.take_calls();
    let written = writes(&calls);
    let at = |line: &str| {
        written
            .iter()
            .position(|w| w == line)
            .unwrap_or_else(|| panic!("{line} not in {written:#?}"))
    };
    // Created, then the definition, then the API's own operations again, then rolled out.
    let swagger = at("PUT /api/am/publisher/v4/apis/api-1/swagger");
    assert!(at("POST /api/am/publisher/v4/apis") < swagger);
    assert_eq!(written[swagger + 1], "PUT /api/am/publisher/v4/apis/api-1");
    assert!(swagger + 1 < at("POST /api/am/publisher/v4/apis/api-1/revisions"));
    // Only REST APIs have a document.
    assert_eq!(
        written.iter().filter(|w| w.ends_with("/swagger")).count(),
        1
    );
    {
        let state = server.state.lock().unwrap();
        let sent: Value = serde_json::from_str(&state.definitions["api-1"]).unwrap();
        assert_eq!(sent, doc);
        let ops = state.apis["api-1"]["operations"].as_array().unwrap();
        assert_eq!(ops[0]["target"], "/health", "the API's operations: {ops:?}");
    }

    // A second run finds everything as published: no write at all.
    let mut again = server.target_with(Definitions::from_gateway(&gateway));
    let plan = publish(&mut again, &apis, false).await;
    assert!(!plan.has_changes());
    assert_eq!(writes(&server.take_calls()), Vec::<String>::new());
}
