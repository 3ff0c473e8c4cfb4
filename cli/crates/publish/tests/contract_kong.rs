//! Recorded contract for `--target kong`: Kong cannot run here, so an in-test server stands in
//! for its Admin API as Kong Gateway 3.x documents it (developer.konghq.com/admin-api, and
//! the entity and plugin schemas in Kong/kong `kong/db/schema/entities`, `kong/plugins/*/schema.lua`):
//! `GET /` with `configuration.database`, services and routes upserted by name with `PUT`,
//! plugins and jwt credentials by id, lists as `{data, next}` pages filtered by `?tags=`,
//! 404 `{message}` for unknown names, 400 `{message, name, code, fields}` for schema
//! violations, and `POST /config` only when `database` is `off`. It also serves the IdP's JWKS.

mod support;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use finctl_publish::definition::Definitions;
use finctl_publish::kong::{Kong, KongConfig};
use finctl_publish::plan::{self, Action, Plan};
use finctl_publish::target::Target;
use gateway_routes::Api;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

const IDP_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAp2x+OVdejU1RRQGHq15Z
UfI6NIAGSB3jVWcUCsyoDM4uWZ/whvnOJJGuhzsuKS2OFor1N9U+1y7FkEJ1X6FI
S0ZZMtm8W4Sc7ER+jgn8bTF2mxVmpOnpVKzJxwRCLS/t82ScZZ+Vel+YlMsMaITY
Hk9ee/Sq+Da+kzqRrXj5n1ZUBsO96aG2ZGtCT1yQ6Thmj7Zir+fsCtqDSLjlkG5g
HxV/BjWwXulkArPB0ZKedQb4rdRRy87bMmCjBtqQCWlPwmnNoGb1Xhk2suHeUVuG
ipSNDpbzTKN4f4MTkClJ3Wrm+WPWgVqF1uQeFWezqw3jrNDIftopJiwYQIIK3J0P
kQIDAQAB
-----END PUBLIC KEY-----
";
const ISSUER: &str = "http://127.0.0.1:8080/realms/finctl";

#[derive(Debug, Clone)]
struct Call {
    method: String,
    path: String,
    body: Value,
}

#[derive(Default)]
struct Kong3 {
    database: String,
    services: Vec<Value>,
    routes: Vec<Value>,
    plugins: Vec<Value>,
    consumers: Vec<Value>,
    jwts: Vec<Value>,
    config: Option<Value>,
    calls: Vec<Call>,
    next_id: u64,
}

type Shared = Arc<Mutex<Kong3>>;

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({ "message": "Not found" })),
    )
        .into_response()
}

fn schema_violation(fields: Value) -> Response {
    let body = json!({
        "code": 2,
        "name": "schema violation",
        "message": format!("schema violation ({fields})"),
        "fields": fields,
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

fn ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

fn has_tag(v: &Value, tag: &str) -> bool {
    v["tags"]
        .as_array()
        .is_some_and(|t| t.iter().any(|x| x == tag))
}

impl Kong3 {
    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("00000000-0000-4000-8000-{:012}", self.next_id)
    }

    /// `{data, next}`, one entity a page so that finctl must follow `next`.
    fn page(items: Vec<Value>, path: &str, query: &str) -> Response {
        let offset: usize = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("offset="))
            .and_then(|o| o.parse().ok())
            .unwrap_or(0);
        let data: Vec<Value> = items.iter().skip(offset).take(1).cloned().collect();
        let next = if offset + 1 < items.len() {
            let rest: Vec<&str> = query
                .split('&')
                .filter(|kv| !kv.is_empty() && !kv.starts_with("offset="))
                .collect();
            let mut q = rest.join("&");
            if !q.is_empty() {
                q.push('&');
            }
            json!(format!("{path}?{q}offset={}", offset + 1))
        } else {
            Value::Null
        };
        ok(json!({ "data": data, "next": next }))
    }

    fn find(list: &[Value], key: &str, name_or_id: &str) -> Option<usize> {
        list.iter()
            .position(|v| v["id"] == name_or_id || v[key] == name_or_id)
    }

    fn upsert(
        list: &mut Vec<Value>,
        key: &str,
        name_or_id: &str,
        mut body: Value,
        id: String,
    ) -> Value {
        match Self::find(list, key, name_or_id) {
            Some(i) => {
                body["id"] = list[i]["id"].clone();
                list[i] = body.clone();
            }
            None => {
                if body["id"].is_null() {
                    body["id"] = json!(id);
                }
                list.push(body.clone());
            }
        }
        body
    }

    fn handle(&mut self, method: &Method, path: &str, query: &str, body: Value) -> Response {
        let segs: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let dbless = self.database == "off";
        if dbless && method != Method::GET && !(method == Method::POST && path == "/config") {
            return (
                StatusCode::METHOD_NOT_ALLOWED,
                axum::Json(json!({"message": "Method not allowed"})),
            )
                .into_response();
        }
        match (method.as_str(), segs.as_slice()) {
            ("GET", []) => {
                ok(json!({ "version": "3.9.1", "configuration": { "database": self.database } }))
            }
            ("GET", ["services"]) => {
                let tag = query.split('&').find_map(|kv| kv.strip_prefix("tags="));
                let items = self
                    .services
                    .iter()
                    .filter(|s| tag.is_none_or(|t| has_tag(s, t)))
                    .cloned()
                    .collect();
                Self::page(items, "/services", query)
            }
            ("GET", ["services", s]) => match Self::find(&self.services, "name", s) {
                Some(i) => ok(self.services[i].clone()),
                None => not_found(),
            },
            ("PUT", ["services", name]) => {
                let Ok(url) = reqwest::Url::parse(body["url"].as_str().unwrap_or_default()) else {
                    return schema_violation(json!({ "url": "missing host in url" }));
                };
                if !matches!(url.scheme(), "http" | "https") {
                    return schema_violation(
                        json!({ "protocol": "expected one of: grpc, grpcs, http, https, tcp, tls, tls_passthrough, udp, ws, wss" }),
                    );
                }
                let mut stored = body.clone();
                stored.as_object_mut().unwrap().remove("url");
                stored["name"] = json!(name);
                stored["protocol"] = json!(url.scheme());
                stored["host"] = json!(url.host_str());
                stored["port"] = json!(url.port_or_known_default());
                stored["path"] = if url.path() == "/" {
                    Value::Null
                } else {
                    json!(url.path())
                };
                let id = self.id();
                ok(Self::upsert(&mut self.services, "name", name, stored, id))
            }
            ("DELETE", ["services", s]) => match Self::find(&self.services, "name", s) {
                Some(i) => {
                    let id = self.services[i]["id"].clone();
                    if self.routes.iter().any(|r| r["service"]["id"] == id) {
                        return (StatusCode::BAD_REQUEST, axum::Json(json!({"message": "an existing 'routes' entity references this 'services' entity"}))).into_response();
                    }
                    self.services.remove(i);
                    StatusCode::NO_CONTENT.into_response()
                }
                None => StatusCode::NO_CONTENT.into_response(),
            },
            ("GET", ["services", s, "routes"]) => {
                let Some(i) = Self::find(&self.services, "name", s) else {
                    return not_found();
                };
                let id = self.services[i]["id"].clone();
                let items = self
                    .routes
                    .iter()
                    .filter(|r| r["service"]["id"] == id)
                    .cloned()
                    .collect();
                Self::page(items, path, query)
            }
            ("GET", ["services", s, "plugins"]) => {
                let Some(i) = Self::find(&self.services, "name", s) else {
                    return not_found();
                };
                let id = self.services[i]["id"].clone();
                let items = self
                    .plugins
                    .iter()
                    .filter(|p| p["service"]["id"] == id)
                    .cloned()
                    .collect();
                Self::page(items, path, query)
            }
            ("PUT", ["routes", name]) => {
                let sid = body["service"]["id"].clone();
                if !self.services.iter().any(|s| s["id"] == sid) {
                    return schema_violation(
                        json!({ "service": format!("the foreign key '{{id=\"{}\"}}' does not reference an existing 'services' entity.", sid.as_str().unwrap_or_default()) }),
                    );
                }
                let bad = body["paths"].as_array().into_iter().flatten().find(|p| {
                    let p = p.as_str().unwrap_or_default();
                    !(p.starts_with('/') || p.starts_with('~'))
                });
                if let Some(p) = bad {
                    return schema_violation(
                        json!({ "paths": [format!("should start with: / (fixed path) or ~/ (regex path), got {p}")] }),
                    );
                }
                let mut stored = body;
                stored["name"] = json!(name);
                let id = self.id();
                ok(Self::upsert(&mut self.routes, "name", name, stored, id))
            }
            ("DELETE", ["routes", r]) => {
                if let Some(i) = Self::find(&self.routes, "name", r) {
                    self.routes.remove(i);
                }
                StatusCode::NO_CONTENT.into_response()
            }
            ("GET", ["routes", r, "plugins"]) => {
                let Some(i) = Self::find(&self.routes, "name", r) else {
                    return not_found();
                };
                let id = self.routes[i]["id"].clone();
                let items = self
                    .plugins
                    .iter()
                    .filter(|p| p["route"]["id"] == id)
                    .cloned()
                    .collect();
                Self::page(items, path, query)
            }
            ("PUT", ["plugins", id]) => {
                let mut stored = body;
                if stored["name"] == "rate-limiting" {
                    for w in ["second", "minute", "hour", "day", "month", "year"] {
                        if stored["config"][w].as_f64().is_some_and(|v| v <= 0.0) {
                            return schema_violation(
                                json!({ "config": { w: "value must be greater than 0" } }),
                            );
                        }
                    }
                }
                if stored["name"] == "cors"
                    && stored["config"]["methods"]
                        .as_array()
                        .is_none_or(|m| m.is_empty())
                {
                    stored["config"]["methods"] = json!([
                        "GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE",
                        "CONNECT"
                    ]);
                }
                stored["id"] = json!(id);
                ok(Self::upsert(
                    &mut self.plugins,
                    "id",
                    id,
                    stored,
                    id.to_string(),
                ))
            }
            ("DELETE", ["plugins", id]) => {
                self.plugins.retain(|p| p["id"] != *id);
                StatusCode::NO_CONTENT.into_response()
            }
            ("PUT", ["consumers", username]) => {
                let mut stored = body;
                stored["username"] = json!(username);
                let id = self.id();
                ok(Self::upsert(
                    &mut self.consumers,
                    "username",
                    username,
                    stored,
                    id,
                ))
            }
            ("PUT", ["consumers", username, "jwt", id]) => {
                let Some(c) = Self::find(&self.consumers, "username", username) else {
                    return not_found();
                };
                if body["algorithm"] == "RS256"
                    && !body["rsa_public_key"]
                        .as_str()
                        .is_some_and(|k| k.starts_with("-----BEGIN PUBLIC KEY-----"))
                {
                    return schema_violation(json!({ "rsa_public_key": "invalid key" }));
                }
                let mut stored = body;
                stored["id"] = json!(id);
                stored["consumer"] = json!({ "id": self.consumers[c]["id"] });
                ok(Self::upsert(
                    &mut self.jwts,
                    "id",
                    id,
                    stored,
                    id.to_string(),
                ))
            }
            ("POST", ["config"]) => {
                if !dbless {
                    return (StatusCode::BAD_REQUEST, axum::Json(json!({"message": "this endpoint is only available when Kong is configured to not use a database"}))).into_response();
                }
                if body["_format_version"] != "3.0" {
                    return (
                        StatusCode::BAD_REQUEST,
                        axum::Json(json!({"message": "expected a declarative configuration"})),
                    )
                        .into_response();
                }
                self.load_declarative(&body);
                self.config = Some(body.clone());
                (StatusCode::CREATED, axum::Json(body)).into_response()
            }
            _ => not_found(),
        }
    }

    /// What DB-less Kong then answers on its GET endpoints.
    fn load_declarative(&mut self, config: &Value) {
        self.services.clear();
        self.routes.clear();
        self.plugins.clear();
        for service in config["services"].as_array().into_iter().flatten() {
            let mut stored = service.clone();
            let obj = stored.as_object_mut().unwrap();
            let routes = obj.remove("routes").unwrap_or_default();
            let url = reqwest::Url::parse(obj.remove("url").unwrap().as_str().unwrap()).unwrap();
            let sid = self.id();
            stored["id"] = json!(sid);
            stored["protocol"] = json!(url.scheme());
            stored["host"] = json!(url.host_str());
            stored["port"] = json!(url.port_or_known_default());
            stored["path"] = if url.path() == "/" {
                Value::Null
            } else {
                json!(url.path())
            };
            self.services.push(stored);
            for route in routes.as_array().into_iter().flatten() {
                let mut r = route.clone();
                let plugins = r
                    .as_object_mut()
                    .unwrap()
                    .remove("plugins")
                    .unwrap_or_default();
                let rid = self.id();
                r["id"] = json!(rid);
                r["service"] = json!({ "id": sid });
                self.routes.push(r);
                for p in plugins.as_array().into_iter().flatten() {
                    let mut p = p.clone();
                    p["route"] = json!({ "id": rid });
                    self.plugins.push(p);
                }
            }
        }
    }
}

async fn serve(
    State(state): State<Shared>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or_default().to_owned();
    if path == "/idp/certs" {
        return ok(jwks());
    }
    let mut s = state.lock().unwrap();
    let recorded = if query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{query}")
    };
    s.calls.push(Call {
        method: method.to_string(),
        path: recorded,
        body: body.clone(),
    });
    s.handle(&method, &path, &query, body)
}

fn jwks() -> Value {
    let key = rsa::RsaPublicKey::from_public_key_pem(IDP_PEM).unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    json!({ "keys": [
        { "kid": "enc", "kty": "RSA", "use": "enc", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB" },
        { "kid": "sig", "kty": "RSA", "use": "sig", "alg": "RS256",
          "n": b64.encode(key.n().to_bytes_be()), "e": b64.encode(key.e().to_bytes_be()) },
    ]})
}

struct Fake {
    state: Shared,
    url: String,
}

impl Fake {
    async fn start(database: &str) -> Self {
        let state: Shared = Arc::new(Mutex::new(Kong3 {
            database: database.into(),
            ..Default::default()
        }));
        let app = Router::new().fallback(serve).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { state, url }
    }

    fn kong(&self) -> Kong {
        Kong::new(fake_config(self)).unwrap()
    }

    fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    fn clear_calls(&self) {
        self.state.lock().unwrap().calls.clear();
    }

    fn writes(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.method != "GET")
            .map(|c| format!("{} {}", c.method, c.path))
            .collect()
    }

    fn plugins_named(&self, name: &str) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .plugins
            .iter()
            .filter(|p| p["name"] == name)
            .cloned()
            .collect()
    }
}

fn api(name: &str, extra: Value) -> Api {
    let mut v = json!({
        "name": name,
        "context": format!("/api/{name}"),
        "version": "v1",
        "backend_url": format!("http://{name}:8000"),
        "access": { "anonymous": false, "roles": ["payments"] },
        "throttle": { "policy": "protected", "requests": 100, "period_seconds": 60 },
        "cors": { "origins": ["https://app.example.com"], "methods": ["GET", "POST"], "headers": ["Authorization"], "credentials": true, "max_age_seconds": 600 },
        "timeouts": { "connect_ms": 500, "response_ms": 30000, "idle_ms": 60000 },
        "operations": [{ "method": "GET", "path": "/payments/{id}", "access": { "anonymous": true } }],
        "owner": "finctl",
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    serde_json::from_value(v).unwrap()
}

async fn publish(kong: &mut Kong, apis: &[Api], prune: bool) -> anyhow::Result<Plan> {
    let remote = kong.list().await?;
    let plan = Plan::new(kong, apis, &remote, prune);
    plan::apply(kong, &plan, &mut |_| {}).await?;
    Ok(plan)
}

#[tokio::test]
async fn contract_kong_first_publish_upserts_service_routes_and_plugins_tagged_finctl() {
    let fake = Fake::start("postgres").await;
    let plan = publish(&mut fake.kong(), &[api("payment", json!({}))], false)
        .await
        .unwrap();
    assert_eq!(plan.count(Action::Create), 1);

    let calls = fake.calls();
    assert_eq!(calls[0].method, "GET");
    assert_eq!(calls[0].path, "/");
    let service = calls
        .iter()
        .find(|c| c.method == "PUT" && c.path == "/services/payment-v1")
        .expect("service upserted by name");
    assert_eq!(service.body["url"], "http://payment:8000");
    assert_eq!(service.body["connect_timeout"], 500);
    assert_eq!(service.body["read_timeout"], 60000);
    assert_eq!(service.body["write_timeout"], 60000);
    let tags: Vec<&str> = service.body["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tags.contains(&"finctl"), "{tags:?}");
    assert!(tags.contains(&"finctl-api:payment:v1"), "{tags:?}");
    assert!(
        tags.iter()
            .all(|t| !t.contains(',') && !t.contains('/') && !t.contains(' ')),
        "{tags:?}"
    );

    let route = calls
        .iter()
        .find(|c| c.method == "PUT" && c.path == "/routes/payment-v1")
        .expect("main route");
    assert_eq!(route.body["paths"], json!(["/api/payment/v1"]));
    assert_eq!(route.body["strip_path"], true);
    assert_eq!(route.body["protocols"], json!(["http", "https"]));
    assert_eq!(route.body["tags"], json!(["finctl"]));
    let service_id = fake.state.lock().unwrap().services[0]["id"].clone();
    assert_eq!(route.body["service"]["id"], service_id);

    let op = calls
        .iter()
        .find(|c| c.method == "PUT" && c.path == "/routes/payment-v1-op1")
        .expect("operation route");
    assert_eq!(op.body["methods"], json!(["GET"]));
    assert_eq!(
        op.body["paths"],
        json!([r"~/api/payment/v1(?<rest>/payments/[^/]+)$"])
    );
    assert_eq!(op.body["strip_path"], false);

    let state = fake.state.lock().unwrap();
    let main_id = state
        .routes
        .iter()
        .find(|r| r["name"] == "payment-v1")
        .unwrap()["id"]
        .clone();
    let on_main: Vec<&str> = state
        .plugins
        .iter()
        .filter(|p| p["route"]["id"] == main_id)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(on_main, ["jwt", "rate-limiting", "cors"]);
    assert!(state.plugins.iter().all(|p| has_tag(p, "finctl")));
    let jwt = state.plugins.iter().find(|p| p["name"] == "jwt").unwrap();
    assert_eq!(jwt["config"]["claims_to_verify"], json!(["exp", "nbf"]));
    assert_eq!(jwt["config"]["key_claim_name"], "iss");
    let rl = state
        .plugins
        .iter()
        .find(|p| p["name"] == "rate-limiting" && p["route"]["id"] == main_id)
        .unwrap();
    assert_eq!(rl["config"]["minute"], 100);
    assert_eq!(rl["config"]["policy"], "local");
    let op_id = state
        .routes
        .iter()
        .find(|r| r["name"] == "payment-v1-op1")
        .unwrap()["id"]
        .clone();
    let on_op: Vec<&str> = state
        .plugins
        .iter()
        .filter(|p| p["route"]["id"] == op_id)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // Anonymous operation: no jwt; its path rewritten to what follows the prefix.
    assert_eq!(on_op, ["rate-limiting", "cors", "request-transformer"]);
    let rewrite = state
        .plugins
        .iter()
        .find(|p| p["name"] == "request-transformer")
        .unwrap();
    assert_eq!(rewrite["config"]["replace"]["uri"], "$(uri_captures.rest)");
    let op_id = state
        .routes
        .iter()
        .find(|r| r["name"] == "payment-v1-op1")
        .unwrap()["id"]
        .clone();
    let on_op: Vec<&str> = state
        .plugins
        .iter()
        .filter(|p| p["route"]["id"] == op_id)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // Anonymous operation: no jwt; its path rewritten to what follows the prefix.
    assert_eq!(on_op, ["rate-limiting", "cors", "request-transformer"]);
    let rewrite = state
        .plugins
        .iter()
        .find(|p| p["name"] == "request-transformer")
        .unwrap();
    assert_eq!(rewrite["config"]["replace"]["uri"], "$(uri_captures.rest)");
    let cors = state.plugins.iter().find(|p| p["name"] == "cors").unwrap();
    assert_eq!(
        cors["config"]["origins"],
        json!(["https://app.example.com"])
    );
    assert_eq!(cors["config"]["credentials"], true);
    assert_eq!(cors["config"]["max_age"], 600);
}

#[tokio::test]
async fn contract_kong_jwt_credential_carries_the_idps_rsa_key_as_pem() {
    let fake = Fake::start("postgres").await;
    publish(&mut fake.kong(), &[api("payment", json!({}))], false)
        .await
        .unwrap();
    let calls = fake.calls();
    let consumer = calls
        .iter()
        .find(|c| c.path == "/consumers/finctl-idp")
        .expect("consumer upserted");
    assert_eq!(consumer.method, "PUT");
    assert_eq!(consumer.body["tags"], json!(["finctl"]));
    let cred = calls
        .iter()
        .find(|c| c.path.starts_with("/consumers/finctl-idp/jwt/"))
        .expect("jwt credential");
    assert_eq!(cred.method, "PUT");
    assert_eq!(cred.body["key"], ISSUER);
    assert_eq!(cred.body["algorithm"], "RS256");
    // The signing key, not the first key of the set (an encryption key).
    assert_eq!(
        cred.body["rsa_public_key"].as_str().unwrap().trim(),
        IDP_PEM.trim()
    );
}

#[tokio::test]
async fn contract_kong_second_run_is_unchanged_and_makes_no_write_call() {
    let fake = Fake::start("postgres").await;
    let apis = [
        api("payment", json!({})),
        api(
            "status",
            json!({ "access": { "anonymous": true }, "throttle": { "policy": "open", "requests": 50, "period_seconds": 10 }, "operations": [], "cors": { "origins": ["*"] } }),
        ),
    ];
    publish(&mut fake.kong(), &apis, false).await.unwrap();
    fake.clear_calls();

    let plan = publish(&mut fake.kong(), &apis, false).await.unwrap();
    assert_eq!(
        plan.count(Action::Unchanged),
        2,
        "{:?}",
        plan.changes
            .iter()
            .map(|c| (&c.id, c.action, &c.fields))
            .collect::<Vec<_>>()
    );
    assert!(!plan.has_changes());
    assert_eq!(fake.writes(), Vec::<String>::new());
    // Two services, one a page: the list followed `next`.
    assert!(
        fake.calls()
            .iter()
            .any(|c| c.path.starts_with("/services?") && c.path.contains("offset=1"))
    );
}

#[tokio::test]
async fn contract_kong_changed_throttle_updates_the_rate_limiting_plugin() {
    let fake = Fake::start("postgres").await;
    publish(&mut fake.kong(), &[api("payment", json!({}))], false)
        .await
        .unwrap();
    fake.clear_calls();

    let changed = api(
        "payment",
        json!({ "throttle": { "policy": "strict", "requests": 5, "period_seconds": 1 } }),
    );
    let plan = publish(&mut fake.kong(), &[changed], false).await.unwrap();
    assert_eq!(plan.changes[0].action, Action::Update);
    assert_eq!(plan.changes[0].fields, ["throttle"]);
    let rl = fake.plugins_named("rate-limiting");
    // The main route's and the operation's (which inherits the API's throttle on its own route).
    assert_eq!(rl.len(), 2, "{rl:?}");
    for p in &rl {
        assert_eq!(p["config"]["second"], 5);
        assert!(p["config"]["minute"].is_null());
        assert!(has_tag(p, "finctl-policy:strict"));
    }
    assert!(fake.writes().iter().any(|w| w.starts_with("PUT /plugins/")));
}

#[tokio::test]
async fn contract_kong_anonymous_api_has_no_jwt_plugin() {
    let fake = Fake::start("postgres").await;
    let open = api(
        "status",
        json!({ "access": { "anonymous": true }, "operations": [] }),
    );
    publish(&mut fake.kong(), &[open], false).await.unwrap();
    assert_eq!(fake.plugins_named("jwt"), Vec::<Value>::new());
    let rl = fake.plugins_named("rate-limiting");
    assert_eq!(rl[0]["config"]["limit_by"], "ip");
}

#[tokio::test]
async fn contract_kong_prune_deletes_only_finctl_services() {
    let fake = Fake::start("postgres").await;
    publish(
        &mut fake.kong(),
        &[api("payment", json!({})), api("ledger", json!({}))],
        false,
    )
    .await
    .unwrap();
    let ledger_id = {
        let mut s = fake.state.lock().unwrap();
        let id = s
            .services
            .iter()
            .find(|x| x["name"] == "ledger-v1")
            .unwrap()["id"]
            .clone();
        s.services.push(json!({ "id": "foreign-1", "name": "someone-else", "protocol": "http", "host": "x", "port": 80, "tags": ["team-a"] }));
        id
    };
    fake.clear_calls();

    let plan = publish(&mut fake.kong(), &[api("payment", json!({}))], true)
        .await
        .unwrap();
    assert_eq!(plan.count(Action::Delete), 1);
    let state = fake.state.lock().unwrap();
    let names: Vec<&str> = state
        .services
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["payment-v1", "someone-else"]);
    assert!(
        state
            .routes
            .iter()
            .all(|r| r["name"].as_str().unwrap().starts_with("payment-v1"))
    );
    let ledger_deletes: Vec<String> = fake_writes(&state.calls);
    assert!(
        ledger_deletes.iter().all(|w| w.starts_with("DELETE")),
        "{ledger_deletes:?}"
    );
    assert_eq!(
        ledger_deletes.last().map(String::as_str),
        Some(format!("DELETE /services/{}", ledger_id.as_str().unwrap()).as_str()),
        "{ledger_deletes:?}"
    );
    assert!(!ledger_deletes.iter().any(|w| w.contains("foreign-1")));
}

fn fake_writes(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.method != "GET")
        .map(|c| format!("{} {}", c.method, c.path))
        .collect()
}

#[tokio::test]
async fn contract_kong_dbless_sends_one_declarative_config() {
    let fake = Fake::start("off").await;
    let apis = [
        api("payment", json!({})),
        api(
            "status",
            json!({ "access": { "anonymous": true }, "operations": [] }),
        ),
    ];
    publish(&mut fake.kong(), &apis, false).await.unwrap();
    assert_eq!(fake.writes(), ["POST /config"]);
    let config = fake.state.lock().unwrap().config.clone().unwrap();
    assert_eq!(config["_format_version"], "3.0");
    let services = config["services"].as_array().unwrap();
    assert_eq!(services.len(), 2);
    assert_eq!(services[0]["name"], "payment-v1");
    assert_eq!(
        services[0]["routes"][0]["paths"],
        json!(["/api/payment/v1"])
    );
    let plugins: Vec<&str> = services[0]["routes"][0]["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(plugins, ["jwt", "rate-limiting", "cors"]);
    let consumer = &config["consumers"][0];
    assert_eq!(consumer["username"], "finctl-idp");
    assert_eq!(consumer["jwt_secrets"][0]["key"], ISSUER);
    assert_eq!(
        consumer["jwt_secrets"][0]["rsa_public_key"]
            .as_str()
            .unwrap()
            .trim(),
        IDP_PEM.trim()
    );

    // Read back through the GET endpoints: the same APIs, nothing to do.
    fake.clear_calls();
    let plan = publish(&mut fake.kong(), &apis, false).await.unwrap();
    assert!(
        !plan.has_changes(),
        "{:?}",
        plan.changes
            .iter()
            .map(|c| (&c.id, &c.fields))
            .collect::<Vec<_>>()
    );
    assert_eq!(fake.writes(), Vec::<String>::new());
}

#[tokio::test]
async fn contract_kong_schema_error_is_reported_with_the_field() {
    let fake = Fake::start("postgres").await;
    let bad = api(
        "payment",
        json!({ "throttle": { "policy": "broken", "requests": 0, "period_seconds": 60 } }),
    );
    let err = publish(&mut fake.kong(), &[bad], false).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("could not create payment:v1 on kong"),
        "{text}"
    );
    assert!(
        text.contains("PUT ") && text.contains("/plugins/"),
        "{text}"
    );
    assert!(text.contains("400"), "{text}");
    assert!(text.contains("schema violation"), "{text}");
    assert!(
        text.contains("minute") && text.contains("value must be greater than 0"),
        "{text}"
    );
}

#[tokio::test]
async fn contract_kong_unreachable_admin_url_names_the_variable() {
    let mut kong = Kong::new(KongConfig {
        admin_url: "http://127.0.0.1:9".into(),
        admin_token: None,
        issuer: ISSUER.into(),
        jwks_url: "http://127.0.0.1:9/certs".into(),
        definitions: Definitions::none(),
    })
    .unwrap();
    let err = kong.list().await.unwrap_err();
    assert!(err.to_string().contains("http://127.0.0.1:9"), "{err}");
    assert!(finctl_error::hint_of(&err).is_some_and(|h| h.contains("FINCTL_KONG_ADMIN_URL")));
}

#[tokio::test]
async fn contract_kong_refuses_to_take_over_an_untagged_service_of_the_same_name() {
    let fake = Fake::start("postgres").await;
    fake.state.lock().unwrap().services.push(json!({
        "id": "foreign-1", "name": "payment-v1", "protocol": "http", "host": "x", "port": 80, "tags": null
    }));
    let err = publish(&mut fake.kong(), &[api("payment", json!({}))], false)
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("payment-v1 that finctl did not create"),
        "{err:#}"
    );
    assert!(
        !fake.writes().iter().any(|w| w.starts_with("PUT /services")),
        "{:?}",
        fake.writes()
    );
}

#[tokio::test]
async fn contract_kong_removed_operation_deletes_its_route_and_plugins() {
    let fake = Fake::start("postgres").await;
    publish(&mut fake.kong(), &[api("payment", json!({}))], false)
        .await
        .unwrap();
    let op_route = fake
        .state
        .lock()
        .unwrap()
        .routes
        .iter()
        .find(|r| r["name"] == "payment-v1-op1")
        .unwrap()["id"]
        .clone();
    fake.clear_calls();

    let plan = publish(
        &mut fake.kong(),
        &[api("payment", json!({ "operations": [] }))],
        false,
    )
    .await
    .unwrap();
    assert_eq!(plan.changes[0].fields, ["operations"]);
    let state = fake.state.lock().unwrap();
    let names: Vec<&str> = state
        .routes
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["payment-v1"]);
    assert!(!state.plugins.iter().any(|p| p["route"]["id"] == op_route));
    assert!(
        fake_writes(&state.calls)
            .contains(&format!("DELETE /routes/{}", op_route.as_str().unwrap()))
    );
}

#[tokio::test]
async fn contract_kong_dbless_gets_a_route_per_documented_operation() {
    let fake = Fake::start("off").await;
    let doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "svc-payment", "version": "0.1.0"},
        "paths": {
            "/payments": {"post": {"operationId": "create_payment", "responses": {}}},
            "/payments/{id}": {
                "parameters": [],
                "get": {"operationId": "get_payment", "responses": {}}
            },
        },
    });
    let gateway = support::document_server("/api/payment/v1", doc).await;
    let apis = [api("payment", json!({}))];
    let kong = || {
        let mut config = fake_config(&fake);
        config.definitions = Definitions::from_gateway(&gateway);
        Kong::new(config).unwrap()
    };
    publish(&mut kong(), &apis, false).await.unwrap();
    assert_eq!(fake.writes(), ["POST /config"]);
    let config = fake.state.lock().unwrap().config.clone().unwrap();
    let routes = config["services"][0]["routes"].as_array().unwrap();
    let names: Vec<&str> = routes.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "payment-v1",
            "payment-v1-op1",
            "payment-v1-create_payment",
            "payment-v1-get_payment"
        ]
    );
    let create = &routes[2];
    assert_eq!(create["methods"], json!(["POST"]));
    assert_eq!(
        create["paths"],
        json!([r"~/api/payment/v1(?<rest>/payments)$"])
    );
    assert_eq!(create["regex_priority"], 0);
    assert_eq!(
        routes[1]["regex_priority"], 1,
        "api-config's operation wins"
    );
    assert!(has_tag(create, "finctl-openapi:create_payment"));
    let plugins: Vec<&str> = create["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        plugins,
        ["jwt", "rate-limiting", "cors", "request-transformer"]
    );
    assert_eq!(
        routes[3]["paths"],
        json!([r"~/api/payment/v1(?<rest>/payments/[^/]+)$"])
    );

    // The document's routes are not read back as operations: nothing to do the second time.
    fake.clear_calls();
    let plan = publish(&mut kong(), &apis, false).await.unwrap();
    assert!(!plan.has_changes());
    assert_eq!(fake.writes(), Vec::<String>::new());
}

fn fake_config(fake: &Fake) -> KongConfig {
    KongConfig {
        admin_url: fake.url.clone(),
        admin_token: None,
        issuer: ISSUER.into(),
        jwks_url: format!("{}/idp/certs", fake.url),
        definitions: Definitions::none(),
    }
}
