//! Recorded contract for the WSO2 Identity Server 7 driver: WSO2 IS cannot run here, so an
//! in-test server stands in for it as the IS 7.0 API definitions document it (docs-is
//! `restapis/roles-v2.yaml`, `scim2-users.yaml`, `oauth-dcr.yaml`) and as the DCR endpoint's
//! source answers errors (identity-inbound-auth-oauth `DCRMUtils.handleErrorResponse`):
//!
//! - SCIM lists are `{totalResults, startIndex, itemsPerPage, schemas, Resources}`, with
//!   `Resources` left out when empty; errors are `{schemas, status, scimType?, detail}`;
//!   a duplicate role or user is 409 (`... already exists in the system.`).
//! - `/scim2/v2/Roles/{id}` lists the role's `users` (`value` = user id); PATCH takes
//!   `add` with path `users` and `remove` with path `users[value eq <id>]`.
//! - DCR answers an unknown client id with **401 and an empty body** (`NOT_FOUND_*` codes
//!   map to 401) and a duplicate with **400** `{error: invalid_client_metadata,
//!   error_description: "Application with the name x already exist in the system"}`;
//!   the client id and secret of a registration are `ext_param_client_id/_secret`.
//! - Wrong Basic credentials: 401 on every API.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use finctl_bootstrap::Action;
use finctl_bootstrap::decl::{Realm, RealmClient, RealmUser, Secret};
use finctl_bootstrap::identity::wso2is::Wso2IsDriver;
use finctl_bootstrap::identity::{self, Driver, Step};
use serde_json::{Value, json};

const ORG_ID: &str = "10084a8d-113f-4211-a0d5-efe36b082211";

#[derive(Debug, Clone)]
struct Call {
    method: String,
    /// Path and decoded query, `?filter=...`.
    path: String,
    body: Value,
    status: u16,
}

#[derive(Debug, Clone)]
struct Role {
    id: String,
    name: String,
    users: Vec<String>,
}

struct Wso2Is {
    password: String,
    roles: Vec<Role>,
    users: Vec<Value>,
    clients: Vec<Value>,
    calls: Vec<Call>,
    next_id: u64,
}

impl Default for Wso2Is {
    fn default() -> Self {
        Self {
            password: "admin".into(),
            roles: Vec::new(),
            users: Vec::new(),
            clients: Vec::new(),
            calls: Vec::new(),
            next_id: 0,
        }
    }
}

type Shared = Arc<Mutex<Wso2Is>>;

fn scim(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/scim+json")],
        body.to_string(),
    )
        .into_response()
}

fn scim_error(status: StatusCode, scim_type: Option<&str>, detail: &str) -> Response {
    let mut body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": status.as_u16().to_string(),
        "detail": detail,
    });
    if let Some(t) = scim_type {
        body["scimType"] = json!(t);
    }
    scim(status, body)
}

fn list(items: Vec<Value>) -> Response {
    let n = items.len();
    let mut body = json!({
        "totalResults": n,
        "startIndex": 1,
        "itemsPerPage": n,
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
    });
    if n > 0 {
        body["Resources"] = json!(items);
    }
    scim(StatusCode::OK, body)
}

fn json_ok(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// `attr eq value` or `attr eq "value"`, the only filters the driver sends.
fn eq_filter<'a>(query: &'a [(String, String)], attr: &str) -> Option<&'a str> {
    let filter = query.iter().find(|(k, _)| k == "filter")?.1.as_str();
    let value = filter
        .strip_prefix(attr)?
        .trim_start()
        .strip_prefix("eq ")?;
    Some(value.trim().trim_matches('"'))
}

impl Wso2Is {
    fn id(&mut self, kind: &str) -> String {
        self.next_id += 1;
        format!("{kind}-{:04}", self.next_id)
    }

    fn role_json(&self, r: &Role, with_users: bool) -> Value {
        let mut v = json!({
            "id": r.id,
            "displayName": r.name,
            "meta": { "location": format!("https://localhost:9443/scim2/v2/Roles/{}", r.id) },
            "audience": { "value": ORG_ID, "display": "carbon.super", "type": "organization" },
        });
        if with_users && !r.users.is_empty() {
            let users: Vec<Value> = r
                .users
                .iter()
                .map(|id| {
                    let name = self
                        .users
                        .iter()
                        .find(|u| u["id"] == json!(id))
                        .and_then(|u| u["userName"].as_str())
                        .unwrap_or_default()
                        .to_string();
                    json!({
                        "value": id,
                        "display": name,
                        "$ref": format!("https://localhost:9443/scim2/Users/{id}"),
                    })
                })
                .collect();
            v["users"] = json!(users);
            v["schemas"] = json!(["urn:ietf:params:scim:schemas:extension:2.0:Role"]);
        }
        v
    }

    fn handle(
        &mut self,
        method: &Method,
        path: &str,
        query: &[(String, String)],
        authorized: bool,
        body: Value,
    ) -> Response {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let is_dcr = path.starts_with("/api/identity/oauth2/dcr/");
        if !authorized {
            if is_dcr {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            return scim_error(
                StatusCode::UNAUTHORIZED,
                None,
                "Authentication failed for this resource.",
            );
        }
        match (method.as_str(), segs.as_slice()) {
            ("GET", ["scim2", "Me"]) => scim(
                StatusCode::OK,
                json!({ "id": "admin-id", "userName": "admin" }),
            ),
            ("GET", ["scim2", "v2", "Roles"]) => {
                let name = eq_filter(query, "displayName");
                let items = self
                    .roles
                    .iter()
                    .filter(|r| name.is_none_or(|n| r.name == n))
                    .map(|r| self.role_json(r, false))
                    .collect();
                list(items)
            }
            ("POST", ["scim2", "v2", "Roles"]) => {
                let Some(name) = body["displayName"].as_str() else {
                    return scim_error(
                        StatusCode::BAD_REQUEST,
                        Some("invalidSyntax"),
                        "Request is unparsable, syntactically incorrect, or violates schema.",
                    );
                };
                if self.roles.iter().any(|r| r.name == name) {
                    return scim_error(
                        StatusCode::CONFLICT,
                        None,
                        &format!("Role with name: {name} already exists in the system."),
                    );
                }
                let role = Role {
                    id: self.id("role"),
                    name: name.to_string(),
                    users: Vec::new(),
                };
                let out = self.role_json(&role, false);
                self.roles.push(role);
                scim(StatusCode::CREATED, out)
            }
            ("GET", ["scim2", "v2", "Roles", id]) => {
                match self.roles.iter().find(|r| r.id == *id) {
                    Some(r) => scim(StatusCode::OK, self.role_json(r, true)),
                    None => {
                        scim_error(StatusCode::NOT_FOUND, None, "Role not found in the system.")
                    }
                }
            }
            ("PATCH", ["scim2", "v2", "Roles", id]) => {
                let Some(i) = self.roles.iter().position(|r| r.id == *id) else {
                    return scim_error(
                        StatusCode::NOT_FOUND,
                        None,
                        "Role not found in the system.",
                    );
                };
                for op in body["Operations"].as_array().cloned().unwrap_or_default() {
                    let path = op["path"].as_str().unwrap_or_default();
                    match op["op"].as_str() {
                        Some("add") if path == "users" => {
                            for v in op["value"].as_array().cloned().unwrap_or_default() {
                                let uid = v["value"].as_str().unwrap_or_default().to_string();
                                if !self.users.iter().any(|u| u["id"] == json!(uid)) {
                                    return scim_error(
                                        StatusCode::BAD_REQUEST,
                                        Some("invalidValue"),
                                        &format!("User id: {uid} does not exist."),
                                    );
                                }
                                if !self.roles[i].users.contains(&uid) {
                                    self.roles[i].users.push(uid);
                                }
                            }
                        }
                        Some("remove") => {
                            let uid = path
                                .strip_prefix("users[value eq ")
                                .and_then(|p| p.strip_suffix(']'))
                                .unwrap_or_default()
                                .to_string();
                            self.roles[i].users.retain(|u| *u != uid);
                        }
                        _ => {
                            return scim_error(
                                StatusCode::BAD_REQUEST,
                                Some("invalidSyntax"),
                                "Unsupported patch operation.",
                            );
                        }
                    }
                }
                let r = self.roles[i].clone();
                scim(StatusCode::OK, self.role_json(&r, false))
            }
            ("GET", ["scim2", "Users"]) => {
                let name = eq_filter(query, "userName");
                let items = self
                    .users
                    .iter()
                    .filter(|u| name.is_none_or(|n| u["userName"] == json!(n)))
                    .cloned()
                    .collect();
                list(items)
            }
            ("POST", ["scim2", "Users"]) => {
                let Some(name) = body["userName"].as_str().map(str::to_string) else {
                    return scim_error(
                        StatusCode::BAD_REQUEST,
                        Some("invalidValue"),
                        "Required attribute userName is missing in the SCIM Object.",
                    );
                };
                if self.users.iter().any(|u| u["userName"] == json!(name)) {
                    return scim_error(
                        StatusCode::CONFLICT,
                        Some("uniqueness"),
                        &format!("User with the name: {name} already exists in the system."),
                    );
                }
                let id = self.id("user");
                let mut user = body.clone();
                let obj = user.as_object_mut().expect("a JSON object");
                obj.remove("password");
                obj.insert("id".into(), json!(id));
                obj.insert(
                    "meta".into(),
                    json!({
                        "resourceType": "User",
                        "location": format!("https://localhost:9443/scim2/Users/{id}"),
                    }),
                );
                // The user's default role, as IS answers it; not a declared one.
                obj.insert(
                    "roles".into(),
                    json!([{ "type": "default", "value": "Internal/everyone" }]),
                );
                self.users.push(user.clone());
                scim(StatusCode::CREATED, user)
            }
            ("PATCH", ["scim2", "Users", id]) => {
                let Some(user) = self.users.iter_mut().find(|u| u["id"] == json!(id)) else {
                    return scim_error(
                        StatusCode::NOT_FOUND,
                        None,
                        &format!(
                            "Specified resource (e.g., User) or endpoint does not exist: {id}"
                        ),
                    );
                };
                for op in body["Operations"].as_array().cloned().unwrap_or_default() {
                    if op["op"] != json!("replace") || !op["path"].is_null() {
                        return scim_error(
                            StatusCode::BAD_REQUEST,
                            Some("invalidSyntax"),
                            "Unsupported patch operation.",
                        );
                    }
                    for (k, v) in op["value"].as_object().cloned().unwrap_or_default() {
                        if k == "name" {
                            for (nk, nv) in v.as_object().cloned().unwrap_or_default() {
                                user["name"][nk] = nv;
                            }
                        } else {
                            user[k] = v;
                        }
                    }
                }
                scim(StatusCode::OK, user.clone())
            }
            ("GET", ["api", "identity", "oauth2", "dcr", "v1.1", "register", cid]) => {
                match self.clients.iter().find(|c| c["client_id"] == json!(cid)) {
                    Some(c) => json_ok(StatusCode::OK, c.clone()),
                    None => StatusCode::UNAUTHORIZED.into_response(),
                }
            }
            ("POST", ["api", "identity", "oauth2", "dcr", "v1.1", "register"]) => {
                let name = body["client_name"].as_str().unwrap_or_default().to_string();
                let cid = body["ext_param_client_id"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| self.id("generated"));
                if self.clients.iter().any(|c| c["client_name"] == json!(name)) {
                    return json_ok(
                        StatusCode::BAD_REQUEST,
                        json!({
                            "error": "invalid_client_metadata",
                            "error_description": format!("Application with the name {name} already exist in the system"),
                        }),
                    );
                }
                if self.clients.iter().any(|c| c["client_id"] == json!(cid)) {
                    return json_ok(
                        StatusCode::BAD_REQUEST,
                        json!({
                            "error": "invalid_client_metadata",
                            "error_description": format!("Client id {cid} already exist in the system"),
                        }),
                    );
                }
                let app = json!({
                    "client_id": cid,
                    "client_secret": body["ext_param_client_secret"].as_str().unwrap_or("generated-secret"),
                    "client_secret_expires_at": 0,
                    "redirect_uris": body["redirect_uris"],
                    "grant_types": body["grant_types"],
                    "client_name": name,
                });
                self.clients.push(app.clone());
                json_ok(StatusCode::CREATED, app)
            }
            ("PUT", ["api", "identity", "oauth2", "dcr", "v1.1", "register", cid]) => {
                let Some(app) = self
                    .clients
                    .iter_mut()
                    .find(|c| c["client_id"] == json!(cid))
                else {
                    return StatusCode::UNAUTHORIZED.into_response();
                };
                for key in [
                    "client_name",
                    "redirect_uris",
                    "grant_types",
                    "client_secret",
                ] {
                    if !body[key].is_null() {
                        app[key] = body[key].clone();
                    }
                }
                json_ok(StatusCode::OK, app.clone())
            }
            _ => scim_error(StatusCode::NOT_FOUND, None, "No such endpoint."),
        }
    }
}

async fn serve(
    State(state): State<Shared>,
    method: Method,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let parsed = reqwest::Url::parse(&format!("http://wso2{uri}")).expect("a URL");
    let query: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    };
    let mut s = state.lock().unwrap();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{}", s.password))
    );
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    let recorded = if query.is_empty() {
        path.clone()
    } else {
        let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{path}?{}", q.join("&"))
    };
    let resp = s.handle(&method, &path, &query, authorized, body.clone());
    s.calls.push(Call {
        method: method.to_string(),
        path: recorded,
        body,
        status: resp.status().as_u16(),
    });
    resp
}

struct Server {
    state: Shared,
    url: reqwest::Url,
}

impl Server {
    async fn start() -> Self {
        let state: Shared = Arc::default();
        let app = Router::new().fallback(serve).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let url = reqwest::Url::parse(&format!("http://{addr}/")).unwrap();
        Self { state, url }
    }

    fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    fn writes_since(&self, mark: usize) -> Vec<Call> {
        self.calls()
            .into_iter()
            .skip(mark)
            .filter(|c| c.method != "GET")
            .collect()
    }

    fn role_id(&self, name: &str) -> String {
        let s = self.state.lock().unwrap();
        s.roles.iter().find(|r| r.name == name).unwrap().id.clone()
    }

    fn user_id(&self, name: &str) -> String {
        let s = self.state.lock().unwrap();
        s.users
            .iter()
            .find(|u| u["userName"] == json!(name))
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A driver as `finctl bootstrap` builds it, with nothing set: admin/admin.
    fn driver(&self) -> Wso2IsDriver {
        Wso2IsDriver::from_env(self.url.clone(), &|_| None).unwrap()
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn realm() -> Realm {
    Realm {
        name: "innover".into(),
        role_claim: "groups".into(),
        roles: vec!["payments-admin".into(), "viewer".into()],
        users: vec![
            RealmUser {
                username: "alice".into(),
                email: "alice@example.com".into(),
                first_name: "Alice".into(),
                last_name: "Liddell".into(),
                password: Secret::new("Alice-pw-1"),
                roles: set(&["viewer"]),
                enabled: true,
            },
            RealmUser {
                username: "bob".into(),
                email: "bob@example.com".into(),
                first_name: "Bob".into(),
                last_name: "Builder".into(),
                password: Secret::new("Bob-pw-1"),
                roles: set(&["payments-admin", "viewer"]),
                enabled: true,
            },
        ],
        clients: vec![RealmClient {
            client_id: "payment-service".into(),
            secret: Secret::new("s3cret"),
            grant_types: set(&["client_credentials", "password"]),
            redirect_uris: set(&["https://app.example.com/callback"]),
            audience: "payment-service".into(),
        }],
    }
}

/// Observes, plans, applies every step; returns the plan's actions by (kind, name).
async fn converge(driver: &mut Wso2IsDriver, realm: &Realm) -> Vec<(String, String, Action)> {
    let observed = driver.observe(realm).await.unwrap();
    let plan = identity::plan(realm, &observed);
    let rows = plan
        .iter()
        .map(|(c, _)| (c.kind.to_string(), c.name.clone(), c.action.clone()))
        .collect();
    for (_, step) in plan {
        if let Some(step) = step {
            driver.apply(realm, &step).await.unwrap();
        }
    }
    rows
}

#[tokio::test]
async fn contract_wso2is_creates_everything_then_nothing_changes() {
    let server = Server::start().await;
    let realm = realm();
    let mut driver = server.driver();
    let rows = converge(&mut driver, &realm).await;
    assert_eq!(
        rows[0],
        ("realm".into(), "innover".into(), Action::Unchanged)
    );
    for (kind, name, action) in &rows[1..] {
        assert_eq!(*action, Action::Create, "{kind} {name}");
    }
    assert!(
        !rows.iter().any(|(k, _, _)| k == "role-claim"),
        "WSO2 IS has no role claim to map"
    );

    let writes: Vec<(String, String)> = server
        .writes_since(0)
        .into_iter()
        .map(|c| (c.method, c.path))
        .collect();
    let admin = server.role_id("payments-admin");
    let viewer = server.role_id("viewer");
    let (alice, bob) = (server.user_id("alice"), server.user_id("bob"));
    let dcr = "/api/identity/oauth2/dcr/v1.1/register";
    let expected: Vec<(String, String)> = [
        ("POST", "/scim2/v2/Roles".to_string()),
        ("POST", "/scim2/v2/Roles".to_string()),
        ("POST", dcr.to_string()),
        ("POST", "/scim2/Users".to_string()),
        ("PATCH", format!("/scim2/v2/Roles/{viewer}")),
        ("POST", "/scim2/Users".to_string()),
        ("PATCH", format!("/scim2/v2/Roles/{admin}")),
        ("PATCH", format!("/scim2/v2/Roles/{viewer}")),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_string(), p))
    .collect();
    assert_eq!(writes, expected);

    let calls = server.calls();
    let role_post = calls
        .iter()
        .find(|c| c.method == "POST" && c.path == "/scim2/v2/Roles")
        .unwrap();
    assert_eq!(
        role_post.body,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:extension:2.0:Role"],
            "displayName": "payments-admin",
        })
    );
    let user_post = calls
        .iter()
        .find(|c| c.method == "POST" && c.path == "/scim2/Users")
        .unwrap();
    assert_eq!(
        user_post.body,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "alice",
            "password": "Alice-pw-1",
            "name": { "givenName": "Alice", "familyName": "Liddell" },
            "emails": [{ "value": "alice@example.com", "primary": true }],
            "active": true,
        })
    );
    let dcr_post = calls
        .iter()
        .find(|c| c.method == "POST" && c.path == dcr)
        .unwrap();
    assert_eq!(
        dcr_post.body,
        json!({
            "client_name": "payment-service",
            "ext_param_client_id": "payment-service",
            "ext_param_client_secret": "s3cret",
            "grant_types": ["client_credentials", "password"],
            "redirect_uris": ["https://app.example.com/callback"],
        })
    );
    let alice_in_viewer = calls
        .iter()
        .find(|c| c.method == "PATCH" && c.path == format!("/scim2/v2/Roles/{viewer}"))
        .unwrap();
    assert_eq!(
        alice_in_viewer.body,
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "add", "path": "users", "value": [{ "value": alice }] }],
        })
    );
    assert!(bob.starts_with("user-"));
    // The filters as WSO2 documents them.
    assert!(
        calls
            .iter()
            .any(|c| c.path == "/scim2/v2/Roles?filter=displayName eq viewer")
    );
    assert!(
        calls
            .iter()
            .any(|c| c.path == "/scim2/Users?filter=userName eq \"alice\"")
    );

    // A second run, with a fresh driver (nothing remembered): only unchanged rows, no writes.
    let mark = server.calls().len();
    let mut again = server.driver();
    let observed = again.observe(&realm).await.unwrap();
    assert!(observed.realm);
    assert_eq!(observed.role_claim, None);
    assert_eq!(
        observed.users["bob"].roles,
        set(&["payments-admin", "viewer"])
    );
    assert_eq!(
        observed.clients["payment-service"].secret_matches,
        Some(true)
    );
    for (change, step) in identity::plan(&realm, &observed) {
        assert_eq!(change.action, Action::Unchanged, "{change:?}");
        assert!(step.is_none());
    }
    assert!(server.writes_since(mark).is_empty());
}

#[tokio::test]
async fn contract_wso2is_changed_user_patches_only_that_user() {
    let server = Server::start().await;
    let mut realm = realm();
    converge(&mut server.driver(), &realm).await;

    let alice = realm
        .users
        .iter_mut()
        .find(|u| u.username == "alice")
        .unwrap();
    alice.email = "alice@wonderland.example".into();
    alice.roles.insert("payments-admin".into());
    let mark = server.calls().len();
    let mut driver = server.driver();
    let observed = driver.observe(&realm).await.unwrap();
    let plan = identity::plan(&realm, &observed);
    let steps: Vec<Step> = plan.iter().filter_map(|(_, s)| s.clone()).collect();
    assert_eq!(
        steps,
        vec![Step::UpdateUser {
            username: "alice".into(),
            fields: vec!["email".into(), "roles".into()],
            add_roles: vec!["payments-admin".into()],
            remove_roles: vec![],
        }]
    );
    for step in &steps {
        driver.apply(&realm, step).await.unwrap();
    }
    let alice_id = server.user_id("alice");
    let admin = server.role_id("payments-admin");
    let writes = server.writes_since(mark);
    let shapes: Vec<(&str, &str)> = writes
        .iter()
        .map(|c| (c.method.as_str(), c.path.as_str()))
        .collect();
    assert_eq!(
        shapes,
        vec![
            ("PATCH", format!("/scim2/Users/{alice_id}").as_str()),
            ("PATCH", format!("/scim2/v2/Roles/{admin}").as_str()),
        ]
    );
    assert_eq!(
        writes[0].body,
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{
                "op": "replace",
                "value": { "emails": [{ "value": "alice@wonderland.example", "primary": true }] },
            }],
        })
    );
    assert_eq!(
        writes[1].body["Operations"],
        json!([{ "op": "add", "path": "users", "value": [{ "value": alice_id }] }])
    );

    // And a role taken away: one PATCH removing the member, nothing else.
    let bob = realm
        .users
        .iter_mut()
        .find(|u| u.username == "bob")
        .unwrap();
    bob.roles.remove("viewer");
    let mark = server.calls().len();
    let rows = converge(&mut server.driver(), &realm).await;
    let updated: Vec<&(String, String, Action)> =
        rows.iter().filter(|(_, _, a)| a.is_write()).collect();
    assert_eq!(
        updated,
        vec![&(
            "user".to_string(),
            "bob".to_string(),
            Action::Update(vec!["roles".into()])
        )]
    );
    let bob_id = server.user_id("bob");
    let viewer = server.role_id("viewer");
    let writes = server.writes_since(mark);
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].path, format!("/scim2/v2/Roles/{viewer}"));
    assert_eq!(
        writes[0].body["Operations"],
        json!([{ "op": "remove", "path": format!("users[value eq {bob_id}]") }])
    );

    // Then a run finds nothing to do.
    let rows = converge(&mut server.driver(), &realm).await;
    assert!(rows.iter().all(|(_, _, a)| *a == Action::Unchanged));
}

#[tokio::test]
async fn contract_wso2is_conflict_on_create_is_exists() {
    let server = Server::start().await;
    let realm = realm();
    converge(&mut server.driver(), &realm).await;

    // Another run got there first: a driver that did not observe creates again.
    let mark = server.calls().len();
    let mut late = server.driver();
    late.apply(&realm, &Step::CreateRole("viewer".into()))
        .await
        .unwrap();
    late.apply(&realm, &Step::CreateUser("alice".into()))
        .await
        .unwrap();
    late.apply(&realm, &Step::CreateClient("payment-service".into()))
        .await
        .unwrap();
    let answers: Vec<(String, String, u16)> = server
        .writes_since(mark)
        .into_iter()
        .map(|c| (c.method, c.path, c.status))
        .collect();
    assert_eq!(
        answers,
        vec![
            ("POST".into(), "/scim2/v2/Roles".into(), 409),
            ("POST".into(), "/scim2/Users".into(), 409),
            // DCR's CONFLICT_* codes answer 400 "... already exist in the system".
            (
                "POST".into(),
                "/api/identity/oauth2/dcr/v1.1/register".into(),
                400
            ),
        ]
    );
    // Nothing was duplicated.
    let s = server.state.lock().unwrap();
    assert_eq!(s.roles.len(), 2);
    assert_eq!(s.users.len(), 2);
    assert_eq!(s.clients.len(), 1);
}

#[tokio::test]
async fn contract_wso2is_wrong_password_names_the_variable() {
    let server = Server::start().await;
    server.state.lock().unwrap().password = "changed-at-install".into();
    let vars = |name: &str| (name == "FINCTL_WSO2IS_PASSWORD").then(|| "admin".to_string());
    let mut driver = Wso2IsDriver::from_env(server.url.clone(), &vars).unwrap();
    let err = driver.observe(&realm()).await.unwrap_err().to_string();
    assert!(err.contains("401"), "{err}");
    assert!(err.contains("FINCTL_WSO2IS_PASSWORD"), "{err}");
    assert!(err.contains("GET /scim2/v2/Roles"), "{err}");
    assert!(
        err.contains("Authentication failed for this resource."),
        "{err}"
    );

    // Clients only: DCR's 401 alone would read as "absent"; the SCIM check tells them apart.
    let clients_only = Realm {
        roles: vec![],
        users: vec![],
        ..realm()
    };
    let mut driver = Wso2IsDriver::from_env(server.url.clone(), &vars).unwrap();
    let err = driver.observe(&clients_only).await.unwrap_err().to_string();
    assert!(err.contains("FINCTL_WSO2IS_PASSWORD"), "{err}");
    assert!(err.contains("/scim2/Me"), "{err}");
    assert!(server.writes_since(0).is_empty());

    // With the right password from the variable, the same realm converges.
    let right =
        |name: &str| (name == "FINCTL_WSO2IS_PASSWORD").then(|| "changed-at-install".to_string());
    let mut driver = Wso2IsDriver::from_env(server.url.clone(), &right).unwrap();
    let observed = driver.observe(&clients_only).await.unwrap();
    assert!(observed.clients.is_empty());
}

#[tokio::test]
async fn contract_wso2is_changed_client_is_put_whole() {
    let server = Server::start().await;
    let mut realm = realm();
    converge(&mut server.driver(), &realm).await;

    let client = &mut realm.clients[0];
    client.secret = Secret::new("rotated");
    client.redirect_uris = set(&[
        "https://app.example.com/callback",
        "https://app.example.com/silent",
    ]);
    let mark = server.calls().len();
    let rows = converge(&mut server.driver(), &realm).await;
    let writes: Vec<&(String, String, Action)> =
        rows.iter().filter(|(_, _, a)| a.is_write()).collect();
    assert_eq!(
        writes,
        vec![&(
            "client".to_string(),
            "payment-service".to_string(),
            Action::Update(vec!["redirect_uris".into(), "secret".into()])
        )]
    );
    let calls = server.writes_since(mark);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "PUT");
    assert_eq!(
        calls[0].path,
        "/api/identity/oauth2/dcr/v1.1/register/payment-service"
    );
    assert_eq!(
        calls[0].body,
        json!({
            "client_name": "payment-service",
            "client_id": "payment-service",
            "client_secret": "rotated",
            "grant_types": ["client_credentials", "password"],
            "redirect_uris": ["https://app.example.com/callback", "https://app.example.com/silent"],
        })
    );
    let rows = converge(&mut server.driver(), &realm).await;
    assert!(rows.iter().all(|(_, _, a)| *a == Action::Unchanged));
}

#[tokio::test]
async fn contract_wso2is_tls_failure_names_the_insecure_variable() {
    // An https:// URL on a port that is not WSO2's TLS listener: the handshake fails.
    let server = Server::start().await;
    let mut url = server.url.clone();
    url.set_scheme("https").unwrap();
    let mut driver = Wso2IsDriver::from_env(url, &|_| None).unwrap();
    let err = driver.observe(&realm()).await.unwrap_err().to_string();
    assert!(err.contains("FINCTL_WSO2IS_INSECURE_TLS=1"), "{err}");
    assert!(err.contains("GET /scim2/v2/Roles: "), "{err}");
    assert!(err.contains("https://127.0.0.1:"), "{err}");

    // Nothing listening: no TLS hint, a hint that the server may still be starting.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = reqwest::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let mut driver = Wso2IsDriver::from_env(url, &|_| None).unwrap();
    let err = driver.observe(&realm()).await.unwrap_err().to_string();
    assert!(!err.contains("INSECURE_TLS"), "{err}");
    assert!(err.contains("is WSO2 IS up?"), "{err}");
}
