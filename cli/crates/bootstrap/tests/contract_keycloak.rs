//! Recorded contract for the Keycloak 26 identity driver: Keycloak cannot run here, so an
//! in-test server stands in for the parts of its Admin REST API the driver uses, as Keycloak
//! documents and implements them (`services/.../resources/admin/*Resource.java`):
//! - `POST /realms/master/protocol/openid-connect/token` (password grant of `admin-cli`):
//!   `{access_token, expires_in, ...}`, or 401 `{error: invalid_grant, error_description}`;
//!   an admin call with a stale token is 401 `{"error":"HTTP 401 Unauthorized"}`.
//! - creates answer 201 with `Location: .../{id}`, duplicates 409 `{errorMessage}`
//!   (`ErrorResponse.exists`); updates and role mappings 204; unknown things 404 `{error}`.
//! - a realm comes with `default-roles-{realm}`, `offline_access` and `uma_authorization`,
//!   and every new user is mapped to `default-roles-{realm}`.
//! - `GET .../clients?clientId=` returns full representations, protocol mappers included;
//!   `GET .../users?username=&exact=true` matches the lower-cased username exactly.
//!
//! Every call is recorded (method, path with query, body, status) and the tests assert the
//! sequence and the bodies, not only the outcome.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use finctl_bootstrap::decl::{Realm, RealmClient, RealmUser, Secret};
use finctl_bootstrap::identity::keycloak::KeycloakDriver;
use finctl_bootstrap::identity::{self, Driver, Step};
use finctl_bootstrap::{Action, Change};
use serde_json::{Value, json};

const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "admin-secret";
const TOKEN_PATH: &str = "/realms/master/protocol/openid-connect/token";

#[derive(Debug, Clone)]
struct Call {
    method: String,
    path: String,
    body: Value,
    status: u16,
    bearer: Option<String>,
}

impl Call {
    fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn is_write(&self) -> bool {
        self.method != "GET" && self.path != TOKEN_PATH
    }
}

#[derive(Default)]
struct KcRealm {
    roles: Vec<Value>,
    users: Vec<Value>,
    /// Realm role ids by user id.
    mappings: BTreeMap<String, Vec<String>>,
    clients: Vec<Value>,
}

#[derive(Default)]
struct Keycloak26 {
    expires_in: u64,
    issued: u64,
    valid: BTreeSet<String>,
    /// The next admin calls answered 401, as for a token that ran out.
    expire_next: usize,
    /// A forced answer to the next `POST .../users`.
    user_create_answer: Option<(StatusCode, Value)>,
    /// After this many admin writes, Keycloak "goes away": every call answers 503.
    down_after_writes: Option<usize>,
    writes: usize,
    realms: BTreeMap<String, KcRealm>,
    passwords: BTreeMap<String, String>,
    calls: Vec<Call>,
    next_id: u64,
}

type Shared = Arc<Mutex<Keycloak26>>;

fn error(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn not_found(what: &str) -> Response {
    error(StatusCode::NOT_FOUND, json!({ "error": what }))
}

fn exists(message: String) -> Response {
    error(StatusCode::CONFLICT, json!({ "errorMessage": message }))
}

fn created(location: String) -> Response {
    (StatusCode::CREATED, [("location", location)]).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

fn pairs(text: &str) -> BTreeMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{text}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn find<'a>(list: &'a mut [Value], key: &str, value: &str) -> Option<&'a mut Value> {
    list.iter_mut().find(|v| v[key] == value)
}

impl Keycloak26 {
    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("00000000-0000-4000-8000-{:012}", self.next_id)
    }

    fn token(&mut self, form: &BTreeMap<String, String>) -> Response {
        let right = form.get("grant_type").map(String::as_str) == Some("password")
            && form.get("client_id").map(String::as_str) == Some("admin-cli")
            && form.get("username").map(String::as_str) == Some(ADMIN)
            && form.get("password").map(String::as_str) == Some(ADMIN_PASSWORD);
        if !right {
            return error(
                StatusCode::UNAUTHORIZED,
                json!({ "error": "invalid_grant", "error_description": "Invalid user credentials" }),
            );
        }
        self.issued += 1;
        let token = format!("token-{}", self.issued);
        self.valid.insert(token.clone());
        ok(json!({
            "access_token": token,
            "expires_in": self.expires_in,
            "refresh_expires_in": 1800,
            "refresh_token": format!("refresh-{}", self.issued),
            "token_type": "Bearer",
            "not-before-policy": 0,
            "session_state": "3f1c",
            "scope": "profile email",
        }))
    }

    fn create_realm(&mut self, body: &Value) -> Response {
        let Some(name) = body["realm"].as_str().map(str::to_owned) else {
            return error(
                StatusCode::BAD_REQUEST,
                json!({ "errorMessage": "Realm name cannot be empty" }),
            );
        };
        if self.realms.contains_key(&name) {
            return exists("Conflict detected. See logs for details".into());
        }
        let mut realm = KcRealm::default();
        for role in [
            format!("default-roles-{name}"),
            "offline_access".into(),
            "uma_authorization".into(),
        ] {
            let id = self.id();
            realm.roles.push(json!({ "id": id, "name": role, "composite": false, "clientRole": false, "containerId": name }));
        }
        self.realms.insert(name.clone(), realm);
        created(format!("http://kc/admin/realms/{name}"))
    }

    fn handle(&mut self, method: &Method, path: &str, query: &str, body: Value) -> Response {
        let q = pairs(query);
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let base = "http://kc/admin/realms";
        if segments.as_slice() == ["admin", "realms"] && method == Method::POST {
            return self.create_realm(&body);
        }
        let ["admin", "realms", realm_name, rest @ ..] = segments.as_slice() else {
            return not_found("Unable to find matching target resource method");
        };
        let realm_name = realm_name.to_string();
        let mut ids = Vec::new();
        for _ in 0..4 {
            ids.push(self.id());
        }
        let Some(realm) = self.realms.get_mut(&realm_name) else {
            return not_found("Realm not found.");
        };
        match (method.as_str(), rest) {
            ("GET", []) => ok(json!({ "id": realm_name, "realm": realm_name, "enabled": true })),
            ("GET", ["roles"]) => ok(json!(realm.roles)),
            ("POST", ["roles"]) => {
                let name = body["name"].as_str().unwrap_or_default().to_owned();
                if find(&mut realm.roles, "name", &name).is_some() {
                    return exists(format!("Role with name {name} already exists"));
                }
                realm.roles.push(json!({ "id": ids[0], "name": name, "composite": false, "clientRole": false, "containerId": realm_name }));
                created(format!("{base}/{realm_name}/roles/{name}"))
            }
            ("GET", ["roles", name]) => match find(&mut realm.roles, "name", name) {
                Some(role) => ok(role.clone()),
                None => not_found("Could not find role"),
            },
            ("GET", ["users"]) => {
                let wanted = q.get("username").map(|u| u.to_lowercase());
                let exact = q.get("exact").map(String::as_str) == Some("true");
                let users: Vec<Value> = realm
                    .users
                    .iter()
                    .filter(|u| match &wanted {
                        None => true,
                        Some(w) if exact => u["username"] == w.as_str(),
                        Some(w) => u["username"]
                            .as_str()
                            .unwrap_or_default()
                            .contains(w.as_str()),
                    })
                    .cloned()
                    .collect();
                ok(json!(users))
            }
            ("POST", ["users"]) => {
                if let Some((status, answer)) = self.user_create_answer.take() {
                    return error(status, answer);
                }
                let username = body["username"].as_str().unwrap_or_default().to_lowercase();
                if username.is_empty() {
                    return error(
                        StatusCode::BAD_REQUEST,
                        json!({ "errorMessage": "User name is missing" }),
                    );
                }
                if find(&mut realm.users, "username", &username).is_some() {
                    return exists("User exists with same username".into());
                }
                let id = ids[0].clone();
                let password = body["credentials"][0]["value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                realm.users.push(json!({
                    "id": id,
                    "username": username,
                    "firstName": body["firstName"],
                    "lastName": body["lastName"],
                    "email": body["email"],
                    "emailVerified": body["emailVerified"].as_bool().unwrap_or(false),
                    "enabled": body["enabled"].as_bool().unwrap_or(false),
                    "createdTimestamp": 1_764_000_000_000u64,
                    "totp": false,
                    "requiredActions": body["requiredActions"],
                    "notBefore": 0,
                }));
                let default_role = realm.roles[0]["id"].as_str().unwrap_or_default().to_owned();
                realm.mappings.insert(id.clone(), vec![default_role]);
                self.passwords.insert(username, password);
                created(format!("{base}/{realm_name}/users/{id}"))
            }
            ("PUT", ["users", id]) => {
                let Some(user) = find(&mut realm.users, "id", id) else {
                    return not_found("User not found");
                };
                for key in [
                    "username",
                    "email",
                    "firstName",
                    "lastName",
                    "enabled",
                    "emailVerified",
                ] {
                    if !body[key].is_null() {
                        user[key] = body[key].clone();
                    }
                }
                no_content()
            }
            (verb, ["users", id, "role-mappings", "realm"]) => {
                let id = id.to_string();
                if find(&mut realm.users, "id", &id).is_none() {
                    return not_found("User not found");
                }
                let role_ids: Vec<String> = body
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|r| r["id"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                if role_ids
                    .iter()
                    .any(|r| find(&mut realm.roles, "id", r).is_none())
                {
                    return not_found("Role not found");
                }
                let mapped = realm.mappings.entry(id).or_default();
                match verb {
                    "GET" => {
                        let roles: Vec<Value> = realm
                            .roles
                            .iter()
                            .filter(|r| mapped.iter().any(|m| r["id"] == m.as_str()))
                            .cloned()
                            .collect();
                        ok(json!(roles))
                    }
                    "POST" => {
                        for r in role_ids {
                            if !mapped.contains(&r) {
                                mapped.push(r);
                            }
                        }
                        no_content()
                    }
                    "DELETE" => {
                        mapped.retain(|m| !role_ids.contains(m));
                        no_content()
                    }
                    _ => not_found("Unable to find matching target resource method"),
                }
            }
            ("GET", ["clients"]) => {
                let wanted = q.get("clientId");
                let clients: Vec<Value> = realm
                    .clients
                    .iter()
                    .filter(|c| wanted.is_none_or(|w| c["clientId"] == w.as_str()))
                    .cloned()
                    .collect();
                ok(json!(clients))
            }
            ("POST", ["clients"]) => {
                let client_id = body["clientId"].as_str().unwrap_or_default().to_owned();
                if find(&mut realm.clients, "clientId", &client_id).is_some() {
                    return exists(format!("Client {client_id} already exists"));
                }
                let mut client = body.clone();
                client["id"] = json!(ids[0]);
                client["bearerOnly"] = json!(false);
                client["fullScopeAllowed"] = json!(true);
                client["webOrigins"] = json!([]);
                client["attributes"]["backchannel.logout.session.required"] = json!("true");
                client["attributes"]["realm_client"] = json!("false");
                if let Some(mappers) = client["protocolMappers"].as_array_mut() {
                    for (i, m) in mappers.iter_mut().enumerate() {
                        m["id"] = json!(ids[1 + i.min(2)]);
                    }
                }
                let uuid = ids[0].clone();
                realm.clients.push(client);
                created(format!("{base}/{realm_name}/clients/{uuid}"))
            }
            ("PUT", ["clients", uuid]) => {
                let Some(client) = find(&mut realm.clients, "id", uuid) else {
                    return not_found("Could not find client");
                };
                if let Some(fields) = body.as_object() {
                    for (key, value) in fields {
                        match key.as_str() {
                            "id" | "protocolMappers" => {}
                            "attributes" => {
                                for (k, v) in value.as_object().into_iter().flatten() {
                                    client["attributes"][k] = v.clone();
                                }
                            }
                            _ => client[key] = value.clone(),
                        }
                    }
                }
                no_content()
            }
            ("GET", ["clients", uuid, "client-secret"]) => {
                match find(&mut realm.clients, "id", uuid) {
                    Some(client) => ok(json!({ "type": "secret", "value": client["secret"] })),
                    None => not_found("Could not find client"),
                }
            }
            ("POST", ["clients", uuid, "protocol-mappers", "models"]) => {
                let Some(client) = find(&mut realm.clients, "id", uuid) else {
                    return not_found("Could not find client");
                };
                if !client["protocolMappers"].is_array() {
                    client["protocolMappers"] = json!([]);
                }
                let mappers = client["protocolMappers"].as_array_mut().unwrap();
                if mappers.iter().any(|m| m["name"] == body["name"]) {
                    return exists("Protocol mapper exists with same name".into());
                }
                let mut mapper = body.clone();
                mapper["id"] = json!(ids[0]);
                mappers.push(mapper);
                created(format!(
                    "{base}/{realm_name}/clients/{uuid}/protocol-mappers/models/{}",
                    ids[0]
                ))
            }
            ("PUT", ["clients", uuid, "protocol-mappers", "models", mapper_id]) => {
                let Some(client) = find(&mut realm.clients, "id", uuid) else {
                    return not_found("Could not find client");
                };
                let mappers = client["protocolMappers"].as_array_mut();
                let Some(mapper) =
                    mappers.and_then(|m| m.iter_mut().find(|m| m["id"] == *mapper_id))
                else {
                    return not_found("Model not found");
                };
                *mapper = body.clone();
                mapper["id"] = json!(mapper_id);
                no_content()
            }
            _ => not_found("Unable to find matching target resource method"),
        }
    }
}

async fn serve(
    State(state): State<Shared>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or_default().to_owned();
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let mut s = state.lock().unwrap();
    let (recorded_body, response) = if path == TOKEN_PATH && method == Method::POST {
        let form = pairs(&text);
        (json!(form), s.token(&form))
    } else {
        let json_body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let authorized = bearer.as_ref().is_some_and(|b| s.valid.contains(b));
        let is_write = method != Method::GET;
        let down = s.down_after_writes.is_some_and(|n| s.writes >= n);
        let response = if down {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "error": "unavailable" }),
            )
        } else if s.expire_next > 0 || !authorized {
            if s.expire_next > 0 {
                s.expire_next -= 1;
                s.valid.clear();
            }
            error(
                StatusCode::UNAUTHORIZED,
                json!({ "error": "HTTP 401 Unauthorized" }),
            )
        } else {
            if is_write {
                s.writes += 1;
            }
            s.handle(&method, &path, &query, json_body.clone())
        };
        (json_body, response)
    };
    let recorded = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    s.calls.push(Call {
        method: method.to_string(),
        path: recorded,
        body: recorded_body,
        status: response.status().as_u16(),
        bearer,
    });
    response
}

struct Fake {
    state: Shared,
    url: reqwest::Url,
}

impl Fake {
    async fn start() -> Self {
        let state: Shared = Arc::new(Mutex::new(Keycloak26 {
            expires_in: 60,
            ..Default::default()
        }));
        let app = Router::new().fallback(serve).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { state, url }
    }

    fn driver(&self) -> KeycloakDriver {
        self.driver_with(ADMIN_PASSWORD)
    }

    fn driver_with(&self, password: &str) -> KeycloakDriver {
        KeycloakDriver::new(self.url.clone(), ADMIN.into(), Secret::new(password))
    }

    fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The calls made since `mark` (a previous `calls().len()`).
    fn since(&self, mark: usize) -> Vec<Call> {
        self.calls().split_off(mark)
    }

    fn mark(&self) -> usize {
        self.state.lock().unwrap().calls.len()
    }

    fn user_id(&self, realm: &str, username: &str) -> String {
        let s = self.state.lock().unwrap();
        let user = s.realms[realm]
            .users
            .iter()
            .find(|u| u["username"] == username);
        user.unwrap()["id"].as_str().unwrap().to_owned()
    }

    fn client_uuid(&self, realm: &str, client_id: &str) -> String {
        let s = self.state.lock().unwrap();
        let client = s.realms[realm]
            .clients
            .iter()
            .find(|c| c["clientId"] == client_id);
        client.unwrap()["id"].as_str().unwrap().to_owned()
    }

    fn role_id(&self, realm: &str, name: &str) -> String {
        let s = self.state.lock().unwrap();
        let role = s.realms[realm].roles.iter().find(|r| r["name"] == name);
        role.unwrap()["id"].as_str().unwrap().to_owned()
    }

    fn user_roles(&self, realm: &str, username: &str) -> BTreeSet<String> {
        let id = self.user_id(realm, username);
        let s = self.state.lock().unwrap();
        let realm = &s.realms[realm];
        realm.mappings[&id]
            .iter()
            .map(|rid| {
                let role = realm
                    .roles
                    .iter()
                    .find(|r| r["id"] == rid.as_str())
                    .unwrap();
                role["name"].as_str().unwrap().to_owned()
            })
            .collect()
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn user(username: &str, email: &str, roles: &[&str]) -> RealmUser {
    RealmUser {
        username: username.into(),
        email: email.into(),
        first_name: format!("{}first", username),
        last_name: format!("{}last", username),
        password: Secret::new(format!("{username}-password")),
        roles: set(roles),
        enabled: true,
    }
}

/// Five roles, a password client (its own audience) and a code-flow client (a custom
/// audience), two users.
fn realm() -> Realm {
    Realm {
        name: "innover".into(),
        role_claim: "groups".into(),
        roles: ["customer", "merchant", "support", "admin", "auditor"]
            .map(String::from)
            .to_vec(),
        users: vec![
            user("alice", "alice@example.test", &["customer"]),
            user("bob", "bob@example.test", &["merchant", "support"]),
        ],
        clients: vec![
            RealmClient {
                client_id: "finctl-gateway".into(),
                secret: Secret::new("gateway-secret"),
                grant_types: set(&["password", "refresh_token", "client_credentials"]),
                redirect_uris: BTreeSet::new(),
                audience: "finctl-gateway".into(),
            },
            RealmClient {
                client_id: "backoffice".into(),
                secret: Secret::new("backoffice-secret"),
                grant_types: set(&["authorization_code", "refresh_token"]),
                redirect_uris: set(&["http://127.0.0.1:3000/callback"]),
                audience: "finctl-api".into(),
            },
        ],
    }
}

/// Observes, plans and applies every step, as `finctl bootstrap identity` does.
async fn bootstrap(driver: &mut KeycloakDriver, realm: &Realm) -> Vec<(Change, Option<Step>)> {
    let observed = driver.observe(realm).await.unwrap();
    let plan = identity::plan(realm, &observed);
    for (_, step) in &plan {
        if let Some(step) = step {
            driver.apply(realm, step).await.unwrap();
        }
    }
    plan
}

fn steps(plan: &[(Change, Option<Step>)]) -> Vec<Step> {
    plan.iter().filter_map(|(_, s)| s.clone()).collect()
}

fn lines(calls: &[Call]) -> Vec<String> {
    calls.iter().map(Call::line).collect()
}

fn writes(calls: &[Call]) -> Vec<Call> {
    calls.iter().filter(|c| c.is_write()).cloned().collect()
}

#[tokio::test]
async fn contract_keycloak_creates_everything_then_plans_nothing() {
    let kc = Fake::start().await;
    let realm = realm();
    let mut driver = kc.driver();
    let plan = bootstrap(&mut driver, &realm).await;
    assert_eq!(
        steps(&plan),
        vec![
            Step::CreateRealm,
            Step::CreateRole("customer".into()),
            Step::CreateRole("merchant".into()),
            Step::CreateRole("support".into()),
            Step::CreateRole("admin".into()),
            Step::CreateRole("auditor".into()),
            Step::MapRoleClaim,
            Step::CreateClient("finctl-gateway".into()),
            Step::CreateClient("backoffice".into()),
            Step::CreateUser("alice".into()),
            Step::CreateUser("bob".into()),
        ]
    );

    let calls = kc.calls();
    let alice = kc.user_id("innover", "alice");
    let bob = kc.user_id("innover", "bob");
    let r = "/admin/realms/innover";
    assert_eq!(
        lines(&calls),
        vec![
            format!("POST {TOKEN_PATH}"),
            format!("GET {r}"),
            "POST /admin/realms".to_owned(),
            format!("POST {r}/roles"),
            format!("POST {r}/roles"),
            format!("POST {r}/roles"),
            format!("POST {r}/roles"),
            format!("POST {r}/roles"),
            // The role claim step finds no client yet: they get the mapper when created.
            format!("GET {r}/clients?clientId=finctl-gateway"),
            format!("GET {r}/clients?clientId=backoffice"),
            format!("POST {r}/clients"),
            format!("POST {r}/clients"),
            format!("POST {r}/users"),
            format!("GET {r}/roles/customer"),
            format!("POST {r}/users/{alice}/role-mappings/realm"),
            format!("POST {r}/users"),
            format!("GET {r}/roles/merchant"),
            format!("GET {r}/roles/support"),
            format!("POST {r}/users/{bob}/role-mappings/realm"),
        ]
    );
    assert_eq!(calls[1].status, 404);
    assert_eq!(
        calls[0].body,
        json!({ "grant_type": "password", "client_id": "admin-cli", "username": ADMIN, "password": ADMIN_PASSWORD })
    );
    assert!(
        calls[1..]
            .iter()
            .all(|c| c.bearer.as_deref() == Some("token-1"))
    );
    assert_eq!(
        calls[2].body,
        json!({ "realm": "innover", "enabled": true })
    );
    assert_eq!(calls[3].body, json!({ "name": "customer" }));
    assert_eq!(calls[7].body, json!({ "name": "auditor" }));

    let gateway = &calls[10].body;
    assert_eq!(gateway["clientId"], "finctl-gateway");
    assert_eq!(gateway["publicClient"], false);
    assert_eq!(gateway["secret"], "gateway-secret");
    assert_eq!(gateway["directAccessGrantsEnabled"], true);
    assert_eq!(gateway["serviceAccountsEnabled"], true);
    assert_eq!(gateway["standardFlowEnabled"], false);
    assert_eq!(gateway["redirectUris"], json!([]));
    assert_eq!(gateway["attributes"]["managed-by"], "finctl");
    assert_eq!(gateway["attributes"]["use.refresh.tokens"], "true");
    assert_eq!(
        gateway["protocolMappers"],
        json!([
            {
                "name": "realm roles",
                "protocol": "openid-connect",
                "protocolMapper": "oidc-usermodel-realm-role-mapper",
                "consentRequired": false,
                "config": {
                    "claim.name": "groups",
                    "multivalued": "true",
                    "access.token.claim": "true",
                    "id.token.claim": "true",
                    "userinfo.token.claim": "true",
                    "jsonType.label": "String",
                },
            },
            {
                "name": "audience",
                "protocol": "openid-connect",
                "protocolMapper": "oidc-audience-mapper",
                "consentRequired": false,
                "config": {
                    "included.client.audience": "finctl-gateway",
                    "id.token.claim": "false",
                    "access.token.claim": "true",
                },
            },
        ])
    );
    let backoffice = &calls[11].body;
    assert_eq!(backoffice["standardFlowEnabled"], true);
    assert_eq!(backoffice["directAccessGrantsEnabled"], false);
    assert_eq!(backoffice["serviceAccountsEnabled"], false);
    assert_eq!(
        backoffice["redirectUris"],
        json!(["http://127.0.0.1:3000/callback"])
    );
    assert_eq!(
        backoffice["protocolMappers"][1]["config"]["included.custom.audience"],
        "finctl-api"
    );

    assert_eq!(
        calls[12].body,
        json!({
            "username": "alice",
            "email": "alice@example.test",
            "firstName": "alicefirst",
            "lastName": "alicelast",
            "enabled": true,
            "emailVerified": true,
            "requiredActions": [],
            "credentials": [{ "type": "password", "value": "alice-password", "temporary": false }],
            "attributes": { "managed-by": ["finctl"] },
        })
    );
    assert_eq!(
        calls[14].body,
        json!([{ "id": kc.role_id("innover", "customer"), "name": "customer" }])
    );
    assert_eq!(
        calls[18].body,
        json!([
            { "id": kc.role_id("innover", "merchant"), "name": "merchant" },
            { "id": kc.role_id("innover", "support"), "name": "support" },
        ])
    );
    assert_eq!(
        kc.user_roles("innover", "bob"),
        set(&["default-roles-innover", "merchant", "support"])
    );

    // Second run: everything reads back as declared, and nothing is written.
    let mark = kc.mark();
    let observed = driver.observe(&realm).await.unwrap();
    let plan = identity::plan(&realm, &observed);
    assert!(
        plan.iter()
            .all(|(c, s)| c.action == Action::Unchanged && s.is_none()),
        "{plan:#?}"
    );
    assert_eq!(plan.len(), 1 + 5 + 1 + 2 + 2);
    let gateway_uuid = kc.client_uuid("innover", "finctl-gateway");
    let backoffice_uuid = kc.client_uuid("innover", "backoffice");
    let again = kc.since(mark);
    assert_eq!(
        lines(&again),
        vec![
            format!("GET {r}"),
            format!("GET {r}/roles"),
            format!("GET {r}/users?username=alice&exact=true"),
            format!("GET {r}/users/{alice}/role-mappings/realm"),
            format!("GET {r}/users?username=bob&exact=true"),
            format!("GET {r}/users/{bob}/role-mappings/realm"),
            format!("GET {r}/clients?clientId=finctl-gateway"),
            format!("GET {r}/clients/{gateway_uuid}/client-secret"),
            format!("GET {r}/clients?clientId=backoffice"),
            format!("GET {r}/clients/{backoffice_uuid}/client-secret"),
        ]
    );
    assert!(writes(&again).is_empty());
}

#[tokio::test]
async fn contract_keycloak_expired_token_is_renewed_once_and_the_call_retried() {
    let kc = Fake::start().await;
    let realm = realm();
    let mut driver = kc.driver();
    bootstrap(&mut driver, &realm).await;

    // Keycloak forgot the token (it ran out early, or Keycloak restarted).
    kc.state.lock().unwrap().expire_next = 1;
    let mark = kc.mark();
    let observed = driver.observe(&realm).await.unwrap();
    assert!(observed.realm);
    let calls = kc.since(mark);
    assert_eq!(
        lines(&calls[..3]),
        vec![
            "GET /admin/realms/innover".to_owned(),
            format!("POST {TOKEN_PATH}"),
            "GET /admin/realms/innover".to_owned(),
        ]
    );
    assert_eq!(calls[0].status, 401);
    assert_eq!(calls[0].bearer.as_deref(), Some("token-1"));
    assert_eq!(calls[1].status, 200);
    assert_eq!(calls[2].status, 200);
    assert!(
        calls[2..]
            .iter()
            .all(|c| c.bearer.as_deref() == Some("token-2"))
    );
    assert_eq!(calls.iter().filter(|c| c.path == TOKEN_PATH).count(), 1);

    // A token refused right after renewal is not retried forever: one renewal, then the error.
    kc.state.lock().unwrap().expire_next = 2;
    let mark = kc.mark();
    let err = driver.observe(&realm).await.unwrap_err();
    let calls = kc.since(mark);
    assert_eq!(
        lines(&calls),
        vec![
            "GET /admin/realms/innover".to_owned(),
            format!("POST {TOKEN_PATH}"),
            "GET /admin/realms/innover".to_owned(),
        ]
    );
    let message = err.to_string();
    assert!(
        message.contains("reading Keycloak realm `innover`"),
        "{message}"
    );
    assert!(message.contains("401"), "{message}");
    assert!(message.contains("HTTP 401 Unauthorized"), "{message}");
    let hint = finctl_error::hint_of(&err).unwrap();
    assert!(hint.contains("KEYCLOAK_ADMIN_PASSWORD"), "{hint}");
}

#[tokio::test]
async fn contract_keycloak_token_is_renewed_before_it_runs_out() {
    let kc = Fake::start().await;
    // Shorter than the ten seconds of margin: every call needs a fresh token.
    kc.state.lock().unwrap().expires_in = 5;
    let realm = Realm {
        users: vec![],
        clients: vec![],
        ..realm()
    };
    let mut driver = kc.driver();
    driver.observe(&realm).await.unwrap();
    driver.apply(&realm, &Step::CreateRealm).await.unwrap();
    let calls = kc.calls();
    assert_eq!(
        lines(&calls),
        vec![
            format!("POST {TOKEN_PATH}"),
            "GET /admin/realms/innover".to_owned(),
            format!("POST {TOKEN_PATH}"),
            "POST /admin/realms".to_owned(),
        ]
    );
    assert!(calls.iter().all(|c| c.status != 401));
    assert_eq!(calls[3].bearer.as_deref(), Some("token-2"));
}

/// A realm whose roles and clients exist, without users.
async fn without_users(kc: &Fake) -> (Realm, KeycloakDriver) {
    let realm = realm();
    let mut driver = kc.driver();
    let empty = Realm {
        users: vec![],
        ..realm.clone()
    };
    bootstrap(&mut driver, &empty).await;
    (realm, driver)
}

#[tokio::test]
async fn contract_keycloak_conflict_on_user_create_counts_as_exists() {
    let kc = Fake::start().await;
    let (realm, mut driver) = without_users(&kc).await;
    kc.state.lock().unwrap().user_create_answer = Some((
        StatusCode::CONFLICT,
        json!({ "errorMessage": "User exists with same username" }),
    ));
    let mark = kc.mark();
    driver
        .apply(&realm, &Step::CreateUser("alice".into()))
        .await
        .unwrap();
    let calls = kc.since(mark);
    // The user another run made is left to the next run's comparison: no role mapping now.
    assert_eq!(lines(&calls), vec!["POST /admin/realms/innover/users"]);
    assert_eq!(calls[0].status, 409);
    assert_eq!(calls[0].body["username"], "alice");
}

#[tokio::test]
async fn contract_keycloak_bad_request_saying_exists_counts_as_exists() {
    let kc = Fake::start().await;
    let (realm, mut driver) = without_users(&kc).await;
    // The user profile's duplicate check answers 400 with its message key.
    kc.state.lock().unwrap().user_create_answer = Some((
        StatusCode::BAD_REQUEST,
        json!({ "field": "username", "errorMessage": "usernameExistsMessage", "params": ["username", "alice"] }),
    ));
    let mark = kc.mark();
    driver
        .apply(&realm, &Step::CreateUser("alice".into()))
        .await
        .unwrap();
    let calls = kc.since(mark);
    assert_eq!(lines(&calls), vec!["POST /admin/realms/innover/users"]);
    assert_eq!(calls[0].status, 400);

    // Any other 400 is an error that says what failed and what Keycloak said.
    kc.state.lock().unwrap().user_create_answer = Some((
        StatusCode::BAD_REQUEST,
        json!({ "errorMessage": "Password policy not met" }),
    ));
    let err = driver
        .apply(&realm, &Step::CreateUser("bob".into()))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("creating user `bob`"), "{message}");
    assert!(message.contains("400 Bad Request"), "{message}");
    assert!(message.contains("Password policy not met"), "{message}");
    assert!(finctl_error::hint_of(&err).is_some());
}

#[tokio::test]
async fn contract_keycloak_changed_user_is_updated_with_only_its_changes() {
    let kc = Fake::start().await;
    let mut realm = realm();
    let mut driver = kc.driver();
    bootstrap(&mut driver, &realm).await;

    // alice: a new role and a new address; bob: one role fewer.
    realm.users[0].email = "alice@new.example.test".into();
    realm.users[0].roles.insert("support".into());
    realm.users[1].roles.remove("support");
    let observed = driver.observe(&realm).await.unwrap();
    let plan = identity::plan(&realm, &observed);
    assert_eq!(
        steps(&plan),
        vec![
            Step::UpdateUser {
                username: "alice".into(),
                fields: vec!["email".into(), "roles".into()],
                add_roles: vec!["support".into()],
                remove_roles: vec![],
            },
            Step::UpdateUser {
                username: "bob".into(),
                fields: vec!["roles".into()],
                add_roles: vec![],
                remove_roles: vec!["support".into()],
            },
        ]
    );
    let mark = kc.mark();
    for step in steps(&plan) {
        driver.apply(&realm, &step).await.unwrap();
    }
    let calls = kc.since(mark);
    let alice = kc.user_id("innover", "alice");
    let bob = kc.user_id("innover", "bob");
    let r = "/admin/realms/innover";
    let support = json!([{ "id": kc.role_id("innover", "support"), "name": "support" }]);
    let written = writes(&calls);
    assert_eq!(
        lines(&written),
        vec![
            format!("PUT {r}/users/{alice}"),
            format!("POST {r}/users/{alice}/role-mappings/realm"),
            format!("DELETE {r}/users/{bob}/role-mappings/realm"),
        ]
    );
    assert_eq!(
        written[0].body,
        json!({
            "username": "alice",
            "email": "alice@new.example.test",
            "firstName": "alicefirst",
            "lastName": "alicelast",
            "emailVerified": true,
        })
    );
    assert_eq!(written[1].body, support);
    assert_eq!(written[2].body, support);
    assert_eq!(
        kc.user_roles("innover", "alice"),
        set(&["default-roles-innover", "customer", "support"])
    );
    assert_eq!(
        kc.user_roles("innover", "bob"),
        set(&["default-roles-innover", "merchant"])
    );

    let observed = driver.observe(&realm).await.unwrap();
    assert!(steps(&identity::plan(&realm, &observed)).is_empty());
}

#[tokio::test]
async fn contract_keycloak_changed_client_and_claim_are_updated() {
    let kc = Fake::start().await;
    let mut realm = realm();
    let mut driver = kc.driver();
    bootstrap(&mut driver, &realm).await;

    realm.role_claim = "roles".into();
    realm.clients[0].secret = Secret::new("rotated-secret");
    realm.clients[0].grant_types = set(&["client_credentials"]);
    realm.clients[1].audience = "backoffice".into();
    let observed = driver.observe(&realm).await.unwrap();
    let plan = identity::plan(&realm, &observed);
    assert_eq!(
        steps(&plan),
        vec![
            Step::MapRoleClaim,
            Step::UpdateClient {
                client_id: "finctl-gateway".into(),
                fields: vec!["grant_types".into(), "secret".into()],
            },
            Step::UpdateClient {
                client_id: "backoffice".into(),
                fields: vec!["audience".into()],
            },
        ]
    );
    let mark = kc.mark();
    for step in steps(&plan) {
        driver.apply(&realm, &step).await.unwrap();
    }
    let written = writes(&kc.since(mark));
    let gateway = kc.client_uuid("innover", "finctl-gateway");
    let backoffice = kc.client_uuid("innover", "backoffice");
    let r = "/admin/realms/innover";
    let line = |c: &Call| c.line();
    let got: Vec<String> = written.iter().map(line).collect();
    assert_eq!(got.len(), 4, "{got:#?}");
    assert!(got[0].starts_with(&format!(
        "PUT {r}/clients/{gateway}/protocol-mappers/models/"
    )));
    assert!(got[1].starts_with(&format!(
        "PUT {r}/clients/{backoffice}/protocol-mappers/models/"
    )));
    assert_eq!(got[2], format!("PUT {r}/clients/{gateway}"));
    assert!(got[3].starts_with(&format!(
        "PUT {r}/clients/{backoffice}/protocol-mappers/models/"
    )));
    assert_eq!(written[0].body["name"], "realm roles");
    assert_eq!(written[0].body["config"]["claim.name"], "roles");
    assert_eq!(written[0].body["id"], got[0].rsplit('/').next().unwrap());
    let put = &written[2].body;
    assert_eq!(put["secret"], "rotated-secret");
    assert_eq!(put["directAccessGrantsEnabled"], false);
    assert_eq!(put["serviceAccountsEnabled"], true);
    assert_eq!(put["attributes"]["use.refresh.tokens"], "false");
    assert!(put.get("protocolMappers").is_none());
    assert_eq!(written[3].body["name"], "audience");
    assert_eq!(
        written[3].body["config"]["included.client.audience"],
        "backoffice"
    );

    let observed = driver.observe(&realm).await.unwrap();
    assert!(steps(&identity::plan(&realm, &observed)).is_empty());
}

#[tokio::test]
async fn contract_keycloak_wrong_admin_password_names_the_variable() {
    let kc = Fake::start().await;
    let mut driver = kc.driver_with("not-the-password");
    let err = driver.observe(&realm()).await.unwrap_err();
    let calls = kc.calls();
    assert_eq!(lines(&calls), vec![format!("POST {TOKEN_PATH}")]);
    assert_eq!(calls[0].status, 401);
    let message = err.to_string();
    assert!(message.contains("admin login of `admin`"), "{message}");
    assert!(message.contains("401 Unauthorized"), "{message}");
    assert!(message.contains("invalid_grant"), "{message}");
    assert!(message.contains("Invalid user credentials"), "{message}");
    assert!(!message.contains("not-the-password"), "{message}");
    let hint = finctl_error::hint_of(&err).unwrap();
    assert!(hint.contains("KEYCLOAK_ADMIN_PASSWORD"), "{hint}");
}

#[tokio::test]
async fn contract_keycloak_from_env_reads_the_admin_variables() {
    let kc = Fake::start().await;
    let env = |name: &str| match name {
        "KEYCLOAK_ADMIN" => Some(ADMIN.to_owned()),
        "KEYCLOAK_ADMIN_PASSWORD" => Some(ADMIN_PASSWORD.to_owned()),
        _ => None,
    };
    let mut driver = KeycloakDriver::from_env(kc.url.clone(), &env).unwrap();
    assert_eq!(driver.name(), "keycloak");
    assert!(!driver.observe(&realm()).await.unwrap().realm);

    let only_user = |name: &str| (name == "KEYCLOAK_ADMIN").then(|| ADMIN.to_owned());
    let err = KeycloakDriver::from_env(kc.url.clone(), &only_user)
        .err()
        .unwrap();
    assert!(err.to_string().contains("KEYCLOAK_ADMIN_PASSWORD"), "{err}");
    assert!(!err.to_string().contains("KEYCLOAK_ADMIN,"), "{err}");
}

/// Keycloak goes away half-way (after a few writes): the run stops with an error naming the
/// step, what it made stays, and the next run makes only what is missing.
#[tokio::test]
async fn contract_keycloak_a_run_stopped_half_way_is_finished_by_the_next() {
    let kc = Fake::start().await;
    let realm = realm();
    kc.state.lock().unwrap().down_after_writes = Some(4);
    let mut driver = kc.driver();
    let plan = identity::plan(&realm, &driver.observe(&realm).await.unwrap());
    let mut failed = None;
    let mut done = 0;
    for step in steps(&plan) {
        match driver.apply(&realm, &step).await {
            Ok(()) => done += 1,
            Err(e) => {
                failed = Some(format!("{e:#}"));
                break;
            }
        }
    }
    let failed = failed.expect("the run stops when Keycloak goes away");
    assert!(failed.contains("503"), "{failed}");
    assert!(done >= 1 && done < steps(&plan).len(), "{done} steps done");

    // Back up: the next run plans only what the first did not make, then nothing.
    kc.state.lock().unwrap().down_after_writes = None;
    let mut driver = kc.driver();
    let second = identity::plan(&realm, &driver.observe(&realm).await.unwrap());
    let remaining = steps(&second);
    assert!(
        !remaining.is_empty() && remaining.len() < steps(&plan).len(),
        "{remaining:?}"
    );
    assert!(
        !remaining.contains(&Step::CreateRealm),
        "the realm made before the failure stays: {remaining:?}"
    );
    for step in &remaining {
        driver.apply(&realm, step).await.unwrap();
    }
    let third = identity::plan(&realm, &driver.observe(&realm).await.unwrap());
    assert_eq!(steps(&third), vec![], "finished");
}
