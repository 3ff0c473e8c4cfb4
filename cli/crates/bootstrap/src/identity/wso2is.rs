//! The WSO2 Identity Server 7 driver: SCIM 2.0 for roles and users, OAuth2 Dynamic Client
//! Registration (DCR) for clients, both with the super admin's HTTP Basic credentials (which
//! WSO2 IS accepts on these APIs for the super admin, so no token dance is needed).
//!
//! WSO2 IS has no realms: everything lives in the super tenant (`carbon.super`), so the realm
//! is always observed as present and [`Step::CreateRealm`] never reaches this driver. Roles
//! reach tokens in WSO2's own `roles` claim once the application asks for it, so there is no
//! role-claim mapping to drive ([`Observed::role_claim`] is `None`).
//!
//! Shapes follow the WSO2 IS 7.0 API definitions (docs-is `restapis/roles-v2.yaml`,
//! `scim2-users.yaml`, `oauth-dcr.yaml`) and the DCR endpoint's error mapping
//! (identity-inbound-auth-oauth `DCRMUtils.handleErrorResponse`): a DCR application that does
//! not exist answers **401 with an empty body**, not 404, and a duplicate answers **400**
//! (`CONFLICT_*` codes), not 409. Because a 401 on DCR is ambiguous, the driver checks the
//! credentials on SCIM (`GET /scim2/Me`) before reading a DCR 401 as "absent".

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, anyhow, bail};
use async_trait::async_trait;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use super::{Driver, Observed, ObservedClient, ObservedUser, Step};
use crate::decl::{Realm, RealmUser, Secret};

const SCIM_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const SCIM_ROLE: &str = "urn:ietf:params:scim:schemas:extension:2.0:Role";
const SCIM_PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Roles API v2: the one IS 7 documents (the v1 `/scim2/Roles` has no audience).
const ROLES: &str = "/scim2/v2/Roles";
const USERS: &str = "/scim2/Users";
const DCR: &str = "/api/identity/oauth2/dcr/v1.1/register";

/// The variables [`Wso2IsDriver::from_env`] reads.
pub const USERNAME_VAR: &str = "FINCTL_WSO2IS_USERNAME";
pub const PASSWORD_VAR: &str = "FINCTL_WSO2IS_PASSWORD";
pub const INSECURE_TLS_VAR: &str = "FINCTL_WSO2IS_INSECURE_TLS";

/// Drives one WSO2 IS 7 server.
pub struct Wso2IsDriver {
    base: Url,
    admin_user: String,
    admin_password: Secret,
    http: reqwest::Client,
    /// Set once a SCIM call succeeded with these credentials: from then on a DCR 401 means
    /// "no such application" (that is how WSO2's DCR endpoint says it).
    authenticated: bool,
    /// Role name → SCIM id, learnt by `observe` and `CreateRole`, used by user steps.
    role_ids: BTreeMap<String, String>,
    /// User name → SCIM id, learnt by `observe` and `CreateUser`.
    user_ids: BTreeMap<String, String>,
}

/// An answer: status and the JSON body (`Null` when empty or not JSON, with the raw text).
struct Answer {
    status: StatusCode,
    body: Value,
    text: String,
}

impl Answer {
    /// WSO2's own explanation: SCIM's `detail`, DCR's `error_description`, the REST APIs'
    /// `description`/`message`, or the raw text.
    fn reason(&self) -> String {
        [
            "detail",
            "error_description",
            "description",
            "message",
            "error",
        ]
        .iter()
        .find_map(|k| self.body.get(k).and_then(Value::as_str))
        .map(str::to_string)
        .unwrap_or_else(|| {
            let t = self.text.trim();
            if t.is_empty() {
                "no details in the answer".to_string()
            } else {
                t.chars().take(300).collect()
            }
        })
    }

    /// A create that met its resource already there (409, or DCR's 400 `CONFLICT_*`).
    fn already_exists(&self) -> bool {
        match self.status {
            StatusCode::CONFLICT => true,
            StatusCode::BAD_REQUEST => {
                let r = self.reason().to_ascii_lowercase();
                r.contains("already exist")
            }
            _ => false,
        }
    }
}

impl Wso2IsDriver {
    /// `insecure_tls` accepts the self-signed certificate WSO2 IS ships with (dev only).
    pub fn new(
        mut base_url: Url,
        admin_user: String,
        admin_password: Secret,
        insecure_tls: bool,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(insecure_tls)
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client for WSO2 IS")?;
        // A base with a path (`https://host/is`) must end in `/`, or joining drops its last
        // segment.
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        Ok(Self {
            base: base_url,
            admin_user,
            admin_password,
            http,
            authenticated: false,
            role_ids: BTreeMap::new(),
            user_ids: BTreeMap::new(),
        })
    }

    /// Credentials from `FINCTL_WSO2IS_USERNAME` / `FINCTL_WSO2IS_PASSWORD` (both default to
    /// `admin`, WSO2 IS's out-of-the-box super admin) and `FINCTL_WSO2IS_INSECURE_TLS`.
    pub fn from_env(base_url: Url, var: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let set = |name: &str| var(name).filter(|v| !v.is_empty());
        let user = set(USERNAME_VAR).unwrap_or_else(|| "admin".to_string());
        let password = set(PASSWORD_VAR).unwrap_or_else(|| "admin".to_string());
        let insecure = set(INSECURE_TLS_VAR).is_some_and(|v| {
            matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
        });
        Self::new(base_url, user, Secret::new(password), insecure)
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Url> {
        let mut url = self
            .base
            .join(path.trim_start_matches('/'))
            .with_context(|| format!("cannot make a URL of {} and {path}", self.base))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// One call; a transport failure becomes an error naming the call (and the TLS variable
    /// when the certificate was the problem). HTTP errors are returned for the caller to read.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let url = self.url(path, query)?;
        let scim = path.starts_with("/scim2");
        let media = if scim {
            "application/scim+json"
        } else {
            "application/json"
        };
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .basic_auth(&self.admin_user, Some(self.admin_password.expose()))
            .header(reqwest::header::ACCEPT, media);
        if let Some(body) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, media)
                .body(body.to_string());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| transport_error(&method, &url, &e))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .with_context(|| format!("WSO2 IS {method} {path}: cannot read the answer"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, body, text })
    }

    /// An HTTP error as a message naming the call, the status, WSO2's reason and a hint.
    fn failure(&self, what: &str, answer: &Answer) -> anyhow::Error {
        let hint = match answer.status {
            StatusCode::UNAUTHORIZED => format!(
                "; WSO2 IS refused the credentials of `{}`: set {PASSWORD_VAR} (and {USERNAME_VAR} if the admin is not `admin`)",
                self.admin_user
            ),
            StatusCode::FORBIDDEN => format!(
                "; `{}` may not do this: use the super admin ({USERNAME_VAR})",
                self.admin_user
            ),
            _ => String::new(),
        };
        anyhow!(
            "WSO2 IS at {}: {what} answered {}: {}{hint}",
            self.base,
            answer.status,
            answer.reason()
        )
    }

    /// A SCIM call; a success proves the credentials (DCR's 401 cannot: it also means
    /// "not found").
    async fn scim(
        &mut self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let answer = self.send(method, path, query, body).await?;
        if answer.status.is_success() {
            self.authenticated = true;
        }
        Ok(answer)
    }

    /// Makes sure the credentials work (`GET /scim2/Me`), so that a DCR 401 can be read as
    /// "no such application" rather than hiding a wrong password.
    async fn check_credentials(&mut self) -> anyhow::Result<()> {
        if self.authenticated {
            return Ok(());
        }
        let answer = self.scim(Method::GET, "/scim2/Me", &[], None).await?;
        if answer.status.is_success() {
            return Ok(());
        }
        Err(self.failure("GET /scim2/Me (checking the admin credentials)", &answer))
    }

    // ---- roles ---------------------------------------------------------------------------

    /// The SCIM id of the organization-audience role `name`, if it exists.
    async fn find_role(&mut self, name: &str) -> anyhow::Result<Option<String>> {
        let filter = format!("displayName eq {name}");
        let what = format!("GET {ROLES}?filter={filter}");
        let answer = self
            .scim(Method::GET, ROLES, &[("filter", &filter)], None)
            .await?;
        // The v2 API documents 404 for "no role found" on a filtered list.
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !answer.status.is_success() {
            return Err(self.failure(&what, &answer));
        }
        let resources = resources(&answer.body);
        let named = resources
            .iter()
            .filter(|r| r.get("displayName").and_then(Value::as_str) == Some(name));
        // An application-audience role of the same name is someone else's: prefer the
        // organization one (or one without an audience, as older servers answer).
        let mut fallback = None;
        for role in named {
            let Some(id) = role.get("id").and_then(Value::as_str) else {
                continue;
            };
            match role.pointer("/audience/type").and_then(Value::as_str) {
                None | Some("organization") => return Ok(Some(id.to_string())),
                Some(_) => {
                    fallback.get_or_insert_with(|| id.to_string());
                }
            }
        }
        Ok(fallback)
    }

    async fn role_id(&mut self, name: &str) -> anyhow::Result<String> {
        if let Some(id) = self.role_ids.get(name) {
            return Ok(id.clone());
        }
        match self.find_role(name).await? {
            Some(id) => {
                self.role_ids.insert(name.to_string(), id.clone());
                Ok(id)
            }
            None => bail!(
                "WSO2 IS at {}: role `{name}` does not exist (it is created before users; was it deleted meanwhile?)",
                self.base
            ),
        }
    }

    /// The user ids that are members of role `id` (`GET /scim2/v2/Roles/{id}`, `users`).
    async fn role_members(&mut self, name: &str, id: &str) -> anyhow::Result<Vec<String>> {
        let path = format!("{ROLES}/{id}");
        let answer = self.scim(Method::GET, &path, &[], None).await?;
        if !answer.status.is_success() {
            return Err(self.failure(&format!("GET {path} (role `{name}`)"), &answer));
        }
        Ok(answer
            .body
            .get("users")
            .and_then(Value::as_array)
            .map(|users| {
                users
                    .iter()
                    .filter_map(|u| u.get("value").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn create_role(&mut self, name: &str) -> anyhow::Result<()> {
        // No `audience`: IS 7 then gives the role the organization audience (carbon.super),
        // which is what a tenant-wide role is; an application audience would tie it to one app.
        let body = json!({ "schemas": [SCIM_ROLE], "displayName": name });
        let answer = self.scim(Method::POST, ROLES, &[], Some(&body)).await?;
        if answer.status.is_success() {
            if let Some(id) = answer.body.get("id").and_then(Value::as_str) {
                self.role_ids.insert(name.to_string(), id.to_string());
            }
            return Ok(());
        }
        if answer.already_exists() {
            return Ok(());
        }
        Err(self.failure(&format!("POST {ROLES} (role `{name}`)"), &answer))
    }

    /// Adds or removes one user in one role (the v2 API's PATCH on the role's `users`).
    async fn membership(&mut self, role: &str, user_id: &str, add: bool) -> anyhow::Result<()> {
        let role_id = self.role_id(role).await?;
        let op = if add {
            json!({ "op": "add", "path": "users", "value": [{ "value": user_id }] })
        } else {
            json!({ "op": "remove", "path": format!("users[value eq {user_id}]") })
        };
        let body = json!({ "schemas": [SCIM_PATCH], "Operations": [op] });
        let path = format!("{ROLES}/{role_id}");
        let answer = self.scim(Method::PATCH, &path, &[], Some(&body)).await?;
        if answer.status.is_success() {
            return Ok(());
        }
        let verb = if add { "adding" } else { "removing" };
        Err(self.failure(
            &format!("PATCH {path} ({verb} a user in role `{role}`)"),
            &answer,
        ))
    }

    // ---- users ---------------------------------------------------------------------------

    /// The SCIM resource of user `username`, if any.
    async fn find_user(&mut self, username: &str) -> anyhow::Result<Option<Value>> {
        let filter = format!("userName eq \"{username}\"");
        let answer = self
            .scim(Method::GET, USERS, &[("filter", &filter)], None)
            .await?;
        if !answer.status.is_success() {
            return Err(self.failure(&format!("GET {USERS}?filter={filter}"), &answer));
        }
        Ok(resources(&answer.body)
            .into_iter()
            .find(|u| {
                u.get("userName")
                    .and_then(Value::as_str)
                    .is_some_and(|n| plain_name(n) == username)
            })
            .cloned())
    }

    async fn user_id(&mut self, username: &str) -> anyhow::Result<String> {
        if let Some(id) = self.user_ids.get(username) {
            return Ok(id.clone());
        }
        let found = self.find_user(username).await?;
        match found
            .as_ref()
            .and_then(|u| u.get("id"))
            .and_then(Value::as_str)
        {
            Some(id) => {
                self.user_ids.insert(username.to_string(), id.to_string());
                Ok(id.to_string())
            }
            None => bail!("WSO2 IS at {}: user `{username}` does not exist", self.base),
        }
    }

    async fn create_user(&mut self, user: &RealmUser) -> anyhow::Result<()> {
        let body = json!({
            "schemas": [SCIM_USER],
            "userName": user.username,
            "password": user.password.expose(),
            "name": { "givenName": user.first_name, "familyName": user.last_name },
            "emails": [{ "value": user.email, "primary": true }],
            "active": user.enabled,
        });
        let answer = self.scim(Method::POST, USERS, &[], Some(&body)).await?;
        let id = if answer.status.is_success() {
            answer
                .body
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string)
        } else if answer.already_exists() {
            // Another run made it; its roles are for the next plan to put right.
            return Ok(());
        } else {
            return Err(self.failure(&format!("POST {USERS} (user `{}`)", user.username), &answer));
        };
        let id = match id {
            Some(id) => id,
            None => self.user_id(&user.username).await?,
        };
        self.user_ids.insert(user.username.clone(), id.clone());
        for role in &user.roles {
            self.membership(role, &id, true).await?;
        }
        Ok(())
    }

    // ---- clients -------------------------------------------------------------------------

    /// The DCR application of `client_id`, if any.
    async fn find_client(&mut self, client_id: &str) -> anyhow::Result<Option<Value>> {
        let path = format!("{DCR}/{client_id}");
        let answer = self.send(Method::GET, &path, &[], None).await?;
        if answer.status.is_success() {
            return Ok(Some(answer.body));
        }
        // DCR answers 401 (empty body) for an unknown client id, and 404 on some versions.
        if matches!(
            answer.status,
            StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND
        ) {
            self.check_credentials().await?;
            return Ok(None);
        }
        Err(self.failure(&format!("GET {path}"), &answer))
    }

    fn client_body<'a>(realm: &'a Realm, client_id: &str) -> anyhow::Result<(Value, &'a Secret)> {
        let client = realm
            .client(client_id)
            .ok_or_else(|| anyhow!("client `{client_id}` is not declared"))?;
        let body = json!({
            "client_name": client.client_id,
            "grant_types": client.grant_types,
            "redirect_uris": client.redirect_uris,
        });
        Ok((body, &client.secret))
    }
}

#[async_trait]
impl Driver for Wso2IsDriver {
    fn name(&self) -> &'static str {
        "wso2is"
    }

    fn location(&self) -> String {
        self.base.to_string()
    }

    async fn observe(&mut self, realm: &Realm) -> anyhow::Result<Observed> {
        let mut observed = Observed {
            // carbon.super always exists.
            realm: true,
            role_claim: None,
            ..Observed::default()
        };
        for role in &realm.roles {
            if let Some(id) = self.find_role(role).await? {
                self.role_ids.insert(role.clone(), id);
                observed.roles.insert(role.clone());
            }
        }
        let mut by_id: BTreeMap<String, String> = BTreeMap::new();
        for user in &realm.users {
            let Some(found) = self.find_user(&user.username).await? else {
                continue;
            };
            if let Some(id) = found.get("id").and_then(Value::as_str) {
                self.user_ids.insert(user.username.clone(), id.to_string());
                by_id.insert(id.to_string(), user.username.clone());
            }
            observed
                .users
                .insert(user.username.clone(), observed_user(&found));
        }
        // Membership is read from the declared roles themselves: the v2 role resource lists
        // its `users`, which is exact, whereas the user's `roles` attribute mixes audiences.
        if !by_id.is_empty() {
            let found: Vec<(String, String)> = self
                .role_ids
                .iter()
                .filter(|(name, _)| observed.roles.contains(*name))
                .map(|(n, i)| (n.clone(), i.clone()))
                .collect();
            for (name, id) in found {
                for member in self.role_members(&name, &id).await? {
                    if let Some(username) = by_id.get(&member)
                        && let Some(user) = observed.users.get_mut(username)
                    {
                        user.roles.insert(name.clone());
                    }
                }
            }
        }
        for client in &realm.clients {
            let Some(app) = self.find_client(&client.client_id).await? else {
                continue;
            };
            let strings = |key: &str| -> BTreeSet<String> {
                app.get(key)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .flat_map(split_redirect)
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let secret_matches = app
                .get("client_secret")
                .and_then(Value::as_str)
                .map(|s| s == client.secret.expose());
            observed.clients.insert(
                client.client_id.clone(),
                ObservedClient {
                    grant_types: strings("grant_types"),
                    redirect_uris: strings("redirect_uris"),
                    // DCR does not say which audience tokens get: not compared.
                    audience: None,
                    secret_matches,
                },
            );
        }
        Ok(observed)
    }

    async fn apply(&mut self, realm: &Realm, step: &Step) -> anyhow::Result<()> {
        match step {
            // No realms in WSO2 IS, no role claim to map: observe never asks for these, and
            // should a caller do so anyway there is nothing to change.
            Step::CreateRealm | Step::MapRoleClaim => Ok(()),
            Step::CreateRole(name) => self.create_role(name).await,
            Step::CreateClient(client_id) => {
                let (mut body, secret) = Self::client_body(realm, client_id)?;
                body["ext_param_client_id"] = json!(client_id);
                body["ext_param_client_secret"] = json!(secret.expose());
                let answer = self.send(Method::POST, DCR, &[], Some(&body)).await?;
                if answer.status.is_success() || answer.already_exists() {
                    return Ok(());
                }
                Err(self.failure(&format!("POST {DCR} (client `{client_id}`)"), &answer))
            }
            Step::UpdateClient { client_id, .. } => {
                // DCR's PUT replaces the registration: send every declared field.
                let (mut body, secret) = Self::client_body(realm, client_id)?;
                body["client_id"] = json!(client_id);
                body["client_secret"] = json!(secret.expose());
                let path = format!("{DCR}/{client_id}");
                let answer = self.send(Method::PUT, &path, &[], Some(&body)).await?;
                if answer.status.is_success() {
                    return Ok(());
                }
                Err(self.failure(&format!("PUT {path}"), &answer))
            }
            Step::CreateUser(username) => {
                let user = realm
                    .user(username)
                    .ok_or_else(|| anyhow!("user `{username}` is not declared"))?
                    .clone();
                self.create_user(&user).await
            }
            Step::UpdateUser {
                username,
                fields,
                add_roles,
                remove_roles,
            } => {
                let user = realm
                    .user(username)
                    .ok_or_else(|| anyhow!("user `{username}` is not declared"))?
                    .clone();
                let id = self.user_id(username).await?;
                let mut value = serde_json::Map::new();
                let mut name = serde_json::Map::new();
                for field in fields {
                    match field.as_str() {
                        "email" => {
                            value.insert(
                                "emails".into(),
                                json!([{ "value": user.email, "primary": true }]),
                            );
                        }
                        "first_name" => {
                            name.insert("givenName".into(), json!(user.first_name));
                        }
                        "last_name" => {
                            name.insert("familyName".into(), json!(user.last_name));
                        }
                        "enabled" => {
                            value.insert("active".into(), json!(user.enabled));
                        }
                        _ => {}
                    }
                }
                if !name.is_empty() {
                    value.insert("name".into(), Value::Object(name));
                }
                if !value.is_empty() {
                    let body = json!({
                        "schemas": [SCIM_PATCH],
                        "Operations": [{ "op": "replace", "value": value }],
                    });
                    let path = format!("{USERS}/{id}");
                    let answer = self.scim(Method::PATCH, &path, &[], Some(&body)).await?;
                    if !answer.status.is_success() {
                        return Err(
                            self.failure(&format!("PATCH {path} (user `{username}`)"), &answer)
                        );
                    }
                }
                for role in add_roles {
                    self.membership(role, &id, true).await?;
                }
                for role in remove_roles {
                    self.membership(role, &id, false).await?;
                }
                Ok(())
            }
        }
    }
}

/// A transport failure, with the TLS hint when the self-signed certificate is the likely cause.
fn transport_error(method: &Method, url: &Url, err: &reqwest::Error) -> anyhow::Error {
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    let lower = chain.to_ascii_lowercase();
    // rustls says "invalid peer certificate: UnknownIssuer" for the self-signed one, and
    // "corrupt message" when the port speaks plain HTTP to an https:// URL.
    let tls = ["certificate", "tls", "ssl", "handshake", "corrupt message"]
        .iter()
        .any(|k| lower.contains(k));
    let hint = if tls {
        format!(
            "; WSO2 IS ships a self-signed certificate: set {INSECURE_TLS_VAR}=1 to accept it (development only)"
        )
    } else if err.is_connect() {
        "; is WSO2 IS up? It takes a minute or two to start".to_string()
    } else {
        String::new()
    };
    anyhow!("WSO2 IS {method} {}: {chain}{hint}", url.path())
}

/// A SCIM list's `Resources` (absent when there are none).
fn resources(body: &Value) -> Vec<&Value> {
    body.get("Resources")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// A user name without its user store prefix (`PRIMARY/kim` → `kim`).
fn plain_name(name: &str) -> &str {
    name.strip_prefix("PRIMARY/").unwrap_or(name)
}

/// DCR keeps several redirect URIs as one `regexp=(a|b)` callback and may answer it so.
fn split_redirect(value: &str) -> Vec<String> {
    match value
        .strip_prefix("regexp=(")
        .and_then(|v| v.strip_suffix(')'))
    {
        Some(inner) => inner.split('|').map(str::to_string).collect(),
        None => vec![value.to_string()],
    }
}

/// What a SCIM user resource says, in declaration terms (roles are filled in from the roles).
fn observed_user(user: &Value) -> ObservedUser {
    let str_at = |p: &str| user.pointer(p).and_then(Value::as_str).map(str::to_string);
    let emails = user.get("emails").and_then(Value::as_array);
    let email = emails.and_then(|list| {
        let value = |e: &Value| -> Option<String> {
            // WSO2 answers either `{value, primary}` objects or bare strings.
            e.as_str()
                .map(str::to_string)
                .or_else(|| e.get("value").and_then(Value::as_str).map(str::to_string))
        };
        list.iter()
            .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
            .and_then(value)
            .or_else(|| list.first().and_then(value))
    });
    ObservedUser {
        email,
        first_name: str_at("/name/givenName"),
        last_name: str_at("/name/familyName"),
        // WSO2 leaves `active` out for users nobody disabled.
        enabled: user.get("active").and_then(Value::as_bool).unwrap_or(true),
        roles: BTreeSet::new(),
    }
}
