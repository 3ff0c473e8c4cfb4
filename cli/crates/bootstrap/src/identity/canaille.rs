//! Canaille (the offline stack's IdP, `finctl/idp:offline`): roles are SCIM 2.0 groups, users
//! SCIM users, clients go through the image's admin API (`/admin/clients/<id>`, see
//! `compose/images/idp/idp.py`), all authorised by the image's one admin client
//! (`IDP_ADMIN_CLIENT_ID`, `IDP_ADMIN_CLIENT_SECRET`), as Keycloak's admin API is by
//! `KEYCLOAK_ADMIN`.
//!
//! Canaille's limits, handled here: it has no realms (the realm always exists); roles reach
//! tokens only in `groups`; a group cannot be empty, so a role is created together with its
//! first member (a role that no declared user has waits until one does); and the last member
//! of a group cannot be taken out of it.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, anyhow, bail};
use async_trait::async_trait;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use super::{Driver, Observed, ObservedClient, ObservedUser, Step};
use crate::decl::{Realm, RealmUser, Secret};

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Scopes the declared clients get: tokens carry profile, e-mail and `groups` claims.
const CLIENT_SCOPES: &[&str] = &["openid", "profile", "email", "groups"];
const HINT: &str = "is the stack up (`finctl up --offline`)?";

/// A group as SCIM lists it.
#[derive(Debug, Clone)]
struct Group {
    id: String,
    members: BTreeSet<String>,
}

pub struct CanailleDriver {
    http: reqwest::Client,
    base: Url,
    admin_id: String,
    admin_secret: Secret,
    token: Option<String>,
    /// Groups by name, as last listed.
    groups: BTreeMap<String, Group>,
    /// Declared users that exist.
    users: BTreeSet<String>,
}

impl CanailleDriver {
    pub fn new(base: Url, admin_id: String, admin_secret: Secret) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            base,
            admin_id,
            admin_secret,
            token: None,
            groups: BTreeMap::new(),
            users: BTreeSet::new(),
        }
    }

    /// The admin client from `IDP_ADMIN_CLIENT_ID` (default `finctl-admin`) and
    /// `IDP_ADMIN_CLIENT_SECRET`.
    pub fn from_env(base: Url, var: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let id = var("IDP_ADMIN_CLIENT_ID")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "finctl-admin".into());
        let secret = var("IDP_ADMIN_CLIENT_SECRET")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                anyhow!(
                    "IDP_ADMIN_CLIENT_SECRET is not set: the offline IdP's admin client secret (compose/.env has the development default)"
                )
            })?;
        Ok(Self::new(base, id, Secret::new(secret)))
    }

    fn url(&self, path: &str) -> anyhow::Result<Url> {
        self.base
            .join(path)
            .with_context(|| format!("{path} is not a path under {}", self.base))
    }

    async fn token(&mut self) -> anyhow::Result<String> {
        if let Some(t) = &self.token {
            return Ok(t.clone());
        }
        let url = self.url("/oauth/token")?;
        let response = self
            .http
            .post(url.clone())
            .basic_auth(&self.admin_id, Some(self.admin_secret.expose()))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .with_context(|| {
                format!(
                    "the identity provider at {} is not answering; {HINT}",
                    self.base
                )
            })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status == StatusCode::UNAUTHORIZED || body["error"] == "invalid_client" {
            bail!(
                "the IdP refused the admin client `{}` ({status}): check IDP_ADMIN_CLIENT_SECRET against the one the IdP container was started with",
                self.admin_id
            );
        }
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| anyhow!("POST {url}: {status}, no access_token in {body}"))?
            .to_string();
        self.token = Some(token.clone());
        Ok(token)
    }

    /// One SCIM call; a 401 renews the token once. Returns the status and the JSON body.
    async fn scim(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        for attempt in 0..2 {
            let token = self.token().await?;
            let url = self.url(path)?;
            let mut request = self.http.request(method.clone(), url).bearer_auth(token);
            if let Some(b) = &body {
                request = request
                    .header("content-type", "application/scim+json")
                    .body(b.to_string());
            }
            let response = request
                .send()
                .await
                .with_context(|| format!("{method} {path}: the IdP is not answering; {HINT}"))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                self.token = None;
                continue;
            }
            let text = response.text().await.unwrap_or_default();
            return Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)));
        }
        bail!("{method} {path}: the IdP refused a fresh admin token")
    }

    /// A SCIM call that must succeed (2xx), or an error naming it and SCIM's `detail`.
    async fn scim_ok(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (status, reply) = self.scim(method.clone(), path, body).await?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {}", detail(&reply));
        }
        Ok(reply)
    }

    async fn list_groups(&mut self) -> anyhow::Result<()> {
        let reply = self.scim_ok(Method::GET, "/scim/v2/Groups", None).await?;
        self.groups = reply["Resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| {
                let name = g["displayName"].as_str()?.to_string();
                let members = g["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m["value"].as_str().map(str::to_string))
                    .collect();
                Some((
                    name,
                    Group {
                        id: g["id"].as_str()?.to_string(),
                        members,
                    },
                ))
            })
            .collect();
        Ok(())
    }

    fn member(&self, username: &str) -> anyhow::Result<Value> {
        Ok(
            json!({"value": username, "$ref": self.url(&format!("/scim/v2/Users/{username}"))?.as_str()}),
        )
    }

    async fn add_to_role(&mut self, role: &str, username: &str) -> anyhow::Result<()> {
        let member = self.member(username)?;
        match self.groups.get(role).cloned() {
            Some(g) if g.members.contains(username) => Ok(()),
            Some(g) => {
                let body = json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "add", "path": "members", "value": [member]}]});
                self.scim_ok(
                    Method::PATCH,
                    &format!("/scim/v2/Groups/{}", g.id),
                    Some(body),
                )
                .await
                .with_context(|| format!("giving {username} the role {role}"))?;
                if let Some(g) = self.groups.get_mut(role) {
                    g.members.insert(username.to_string());
                }
                Ok(())
            }
            None => {
                // Canaille's groups cannot be empty: the role is made with its first member.
                let body =
                    json!({"schemas": [GROUP_SCHEMA], "displayName": role, "members": [member]});
                let (status, reply) = self
                    .scim(Method::POST, "/scim/v2/Groups", Some(body))
                    .await?;
                if status.is_success() || status == StatusCode::CONFLICT {
                    return self.list_groups().await;
                }
                bail!(
                    "creating the role {role} with {username}: {status}: {}",
                    detail(&reply)
                )
            }
        }
    }

    async fn remove_from_role(&mut self, role: &str, username: &str) -> anyhow::Result<()> {
        let Some(g) = self.groups.get(role).cloned() else {
            return Ok(());
        };
        if !g.members.contains(username) {
            return Ok(());
        }
        if g.members.len() == 1 {
            bail!(
                "cannot take the role {role} from {username}: Canaille cannot leave a role without members; give it to another user first"
            );
        }
        let body = json!({"schemas": [PATCH_SCHEMA], "Operations": [{"op": "remove", "path": format!("members[value eq \"{username}\"]")}]});
        self.scim_ok(
            Method::PATCH,
            &format!("/scim/v2/Groups/{}", g.id),
            Some(body),
        )
        .await
        .with_context(|| format!("taking the role {role} from {username}"))?;
        if let Some(g) = self.groups.get_mut(role) {
            g.members.remove(username);
        }
        Ok(())
    }

    fn user_body(user: &RealmUser, password: bool) -> Value {
        let mut body = json!({
            "schemas": [USER_SCHEMA],
            "userName": user.username,
            "name": {
                "formatted": format!("{} {}", user.first_name, user.last_name),
                "givenName": user.first_name,
                "familyName": user.last_name,
            },
            "displayName": user.username,
            "emails": [{"value": user.email}],
            "active": user.enabled,
        });
        if password {
            body["password"] = json!(user.password.expose());
        }
        body
    }

    async fn admin_client(
        &mut self,
        method: Method,
        client_id: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let url = self.url(&format!("/admin/clients/{client_id}"))?;
        let mut request = self
            .http
            .request(method.clone(), url)
            .basic_auth(&self.admin_id, Some(self.admin_secret.expose()));
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request.send().await.with_context(|| {
            format!("{method} /admin/clients/{client_id}: the IdP is not answering; {HINT}")
        })?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            bail!(
                "the IdP's admin API refused the admin client `{}`: check IDP_ADMIN_CLIENT_SECRET",
                self.admin_id
            );
        }
        if status == StatusCode::NOT_FOUND
            && response
                .headers()
                .get("content-type")
                .is_some_and(|v| v.to_str().unwrap_or("").contains("html"))
        {
            bail!(
                "the IdP at {} has no admin API (/admin/clients): rebuild its image (`finctl images build idp`)",
                self.base
            );
        }
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }
}

fn detail(reply: &Value) -> String {
    if reply.is_null() {
        return "the IdP answered without a JSON body (see `finctl logs keycloak`)".into();
    }
    reply["detail"]
        .as_str()
        .or(reply["error_description"].as_str())
        .map_or_else(|| reply.to_string(), str::to_string)
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

#[async_trait]
impl Driver for CanailleDriver {
    fn name(&self) -> &'static str {
        "canaille"
    }

    fn location(&self) -> String {
        self.base.to_string()
    }

    async fn observe(&mut self, realm: &Realm) -> anyhow::Result<Observed> {
        if realm.role_claim != "groups" {
            bail!(
                "Canaille puts roles only in the `groups` claim; identity.yaml asks for `{}` (set role_claim: groups, or use Keycloak)",
                realm.role_claim
            );
        }
        self.list_groups().await?;
        let mut observed = Observed {
            realm: true,
            role_claim: None,
            ..Observed::default()
        };
        // A role no declared user has cannot exist here (groups are never empty): there is
        // nothing to make until a user gets it, so it is not planned again and again.
        observed.roles = realm
            .roles
            .iter()
            .filter(|r| {
                self.groups.contains_key(*r) || !realm.users.iter().any(|u| u.roles.contains(*r))
            })
            .cloned()
            .collect();
        self.users.clear();
        for user in &realm.users {
            let (status, u) = self
                .scim(
                    Method::GET,
                    &format!("/scim/v2/Users/{}", user.username),
                    None,
                )
                .await?;
            if status == StatusCode::NOT_FOUND {
                continue;
            }
            if !status.is_success() {
                bail!(
                    "GET /scim/v2/Users/{}: {status}: {}",
                    user.username,
                    detail(&u)
                );
            }
            self.users.insert(user.username.clone());
            let roles = self
                .groups
                .iter()
                .filter(|(_, g)| g.members.contains(&user.username))
                .map(|(name, _)| name.clone())
                .collect();
            observed.users.insert(
                user.username.clone(),
                ObservedUser {
                    email: u["emails"][0]["value"].as_str().map(str::to_string),
                    first_name: u["name"]["givenName"].as_str().map(str::to_string),
                    last_name: u["name"]["familyName"].as_str().map(str::to_string),
                    enabled: u["active"].as_bool().unwrap_or(true),
                    roles,
                },
            );
        }
        for client in &realm.clients {
            let (status, c) = self
                .admin_client(Method::GET, &client.client_id, None)
                .await?;
            if status == StatusCode::NOT_FOUND {
                continue;
            }
            if !status.is_success() {
                bail!(
                    "GET /admin/clients/{}: {status}: {}",
                    client.client_id,
                    detail(&c)
                );
            }
            let audience = strings(&c["audience"]);
            observed.clients.insert(
                client.client_id.clone(),
                ObservedClient {
                    grant_types: strings(&c["grant_types"]),
                    redirect_uris: strings(&c["redirect_uris"]),
                    // One audience, as declared; anything else is a difference.
                    audience: Some(if audience.len() == 1 {
                        audience.into_iter().next().unwrap_or_default()
                    } else {
                        audience.into_iter().collect::<Vec<_>>().join(",")
                    }),
                    secret_matches: Some(
                        c["client_secret"].as_str() == Some(client.secret.expose()),
                    ),
                },
            );
        }
        Ok(observed)
    }

    async fn apply(&mut self, realm: &Realm, step: &Step) -> anyhow::Result<()> {
        match step {
            // Canaille has no realms and maps roles to `groups` itself.
            Step::CreateRealm | Step::MapRoleClaim => Ok(()),
            Step::CreateRole(role) => {
                // Made with its first existing member; otherwise when a user first gets it.
                let first = realm
                    .users
                    .iter()
                    .find(|u| u.roles.contains(role) && self.users.contains(&u.username))
                    .map(|u| u.username.clone());
                match first {
                    Some(username) => self.add_to_role(role, &username).await,
                    None => Ok(()),
                }
            }
            Step::CreateClient(id) | Step::UpdateClient { client_id: id, .. } => {
                let client = realm
                    .client(id)
                    .ok_or_else(|| anyhow!("client {id} is not declared"))?;
                let body = json!({
                    "client_secret": client.secret.expose(),
                    "grant_types": client.grant_types,
                    "redirect_uris": client.redirect_uris,
                    "scope": CLIENT_SCOPES,
                    "audience": [client.audience],
                });
                let (status, reply) = self.admin_client(Method::PUT, id, Some(body)).await?;
                if !status.is_success() {
                    bail!("PUT /admin/clients/{id}: {status}: {}", detail(&reply));
                }
                Ok(())
            }
            Step::CreateUser(username) => {
                let user = realm
                    .user(username)
                    .ok_or_else(|| anyhow!("user {username} is not declared"))?;
                let (status, reply) = self
                    .scim(
                        Method::POST,
                        "/scim/v2/Users",
                        Some(Self::user_body(user, true)),
                    )
                    .await?;
                // 409: another run made it first; its fields are converged next run.
                if !status.is_success() && status != StatusCode::CONFLICT {
                    bail!("creating the user {username}: {status}: {}", detail(&reply));
                }
                self.users.insert(username.clone());
                for role in user.roles.clone() {
                    self.add_to_role(&role, username).await?;
                }
                Ok(())
            }
            Step::UpdateUser {
                username,
                fields,
                add_roles,
                remove_roles,
            } => {
                let user = realm
                    .user(username)
                    .ok_or_else(|| anyhow!("user {username} is not declared"))?;
                if fields.iter().any(|f| f != "roles") {
                    self.scim_ok(
                        Method::PUT,
                        &format!("/scim/v2/Users/{username}"),
                        Some(Self::user_body(user, false)),
                    )
                    .await
                    .with_context(|| format!("updating the user {username}"))?;
                }
                for role in add_roles {
                    self.add_to_role(role, username).await?;
                }
                for role in remove_roles {
                    self.remove_from_role(role, username).await?;
                }
                Ok(())
            }
        }
    }
}
