//! Keycloak 26 through its Admin REST API (`/admin/realms/...`), as the master realm's admin.
//!
//! The admin token comes from the password grant of `admin-cli` in the master realm. It lives
//! 60 s by default, less than a long bootstrap takes, so it is renewed shortly before it runs
//! out, and once more when Keycloak answers 401 anyway (clock skew, a restarted Keycloak).
//!
//! How the declarations map onto Keycloak:
//! - roles are realm roles; a user's roles are its realm role mappings.
//! - a client is a confidential OpenID Connect client; its grant types are Keycloak's flow
//!   switches (`directAccessGrantsEnabled` is `password`, `serviceAccountsEnabled` is
//!   `client_credentials`, `standardFlowEnabled` is `authorization_code`) and `refresh_token`
//!   is the `use.refresh.tokens` attribute (with `client_credentials.use_refresh_token` for a
//!   client that only has service accounts), so that a second run reads back what it wrote.
//! - the audience is an `oidc-audience-mapper` named `audience` on the client.
//! - roles reach tokens through an `oidc-usermodel-realm-role-mapper` on every declared client
//!   whose `claim.name` is the realm's `role_claim`: Keycloak's own `roles` scope puts them in
//!   `realm_access.roles`, which the services do not read.
//!
//! Keycloak answers 409 for a resource that already exists, and some versions 400 with a
//! message that says so; both mean another run got there first, and the step succeeds.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use finctl_error::UserError;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use super::{Driver, Observed, ObservedClient, ObservedUser, Step};
use crate::decl::{Realm, RealmClient, RealmUser, Secret};

/// The variable holding the master realm's admin user name.
pub const ADMIN_USER_VAR: &str = "KEYCLOAK_ADMIN";
/// The variable holding that user's password.
pub const ADMIN_PASSWORD_VAR: &str = "KEYCLOAK_ADMIN_PASSWORD";
/// The attribute that marks what bootstrap created (users take lists, clients strings).
pub const MANAGED_BY: &str = "managed-by";
const OWNER: &str = "finctl";
/// The protocol mapper that puts realm roles into a claim, and the name bootstrap gives it.
const ROLE_MAPPER: &str = "oidc-usermodel-realm-role-mapper";
const ROLE_MAPPER_NAME: &str = "realm roles";
/// The protocol mapper that adds an audience, and the name bootstrap gives it.
const AUDIENCE_MAPPER: &str = "oidc-audience-mapper";
const AUDIENCE_MAPPER_NAME: &str = "audience";
/// Renew the admin token this long before Keycloak says it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(10);

/// An admin token and when to stop trusting it.
struct Token {
    value: String,
    renew_at: Instant,
}

/// One answer of the Admin REST API, whatever its status.
struct Reply {
    status: StatusCode,
    body: Value,
    location: Option<String>,
    method: Method,
    url: Url,
}

/// What a create call came to.
enum Created {
    /// Made now; the `Location` header's last segment is the new id, when Keycloak sent one.
    New(Option<String>),
    /// It was already there (409, or 400 saying it exists).
    Exists,
}

/// The [`Driver`] for Keycloak 26: one admin session, held for the whole run.
pub struct KeycloakDriver {
    base: Url,
    admin_user: String,
    admin_password: Secret,
    http: reqwest::Client,
    token: Option<Token>,
    /// User ids by declared username, learned while observing or creating, so that giving a
    /// new user its roles does not search for it again. Clients are always read whole (their
    /// mappers are part of the representation), so their ids need no such cache.
    user_ids: BTreeMap<String, String>,
}

impl KeycloakDriver {
    pub fn new(base_url: Url, admin_user: String, admin_password: Secret) -> Self {
        // A client without timeouts is the only fallback reqwest offers if the builder fails
        // (it fails only when the TLS backend cannot start).
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            base: base_url,
            admin_user,
            admin_password,
            http,
            token: None,
            user_ids: BTreeMap::new(),
        }
    }

    /// The admin credentials from `KEYCLOAK_ADMIN` and `KEYCLOAK_ADMIN_PASSWORD`, the same
    /// variables the Keycloak container is started with.
    pub fn from_env(base_url: Url, var: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |name: &str| var(name).filter(|v| !v.is_empty());
        let missing: Vec<&str> = [ADMIN_USER_VAR, ADMIN_PASSWORD_VAR]
            .into_iter()
            .filter(|name| get(name).is_none())
            .collect();
        match (get(ADMIN_USER_VAR), get(ADMIN_PASSWORD_VAR)) {
            (Some(user), Some(password)) => Ok(Self::new(base_url, user, Secret::new(password))),
            _ => Err(UserError::config(
                format!(
                    "Keycloak's admin credentials are not set: {}",
                    missing.join(", ")
                ),
                format!(
                    "set {ADMIN_USER_VAR} and {ADMIN_PASSWORD_VAR} in the environment or in compose/.env (the values Keycloak was started with)"
                ),
            )
            .into()),
        }
    }

    fn url(&self, segments: &[&str]) -> anyhow::Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("{} cannot be a base URL", self.base))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn admin(&self, realm: &str, rest: &[&str]) -> anyhow::Result<Url> {
        let mut segments = vec!["admin", "realms", realm];
        segments.extend_from_slice(rest);
        self.url(&segments)
    }

    fn unreachable(&self, err: &reqwest::Error) -> anyhow::Error {
        UserError::failure(
            format!("Keycloak at {} is not reachable: {err}", self.base),
            "start the stack (`finctl up`) and wait for Keycloak to be healthy, or check its URL",
        )
        .into()
    }

    /// A fresh admin token from the master realm's password grant.
    async fn renew(&mut self) -> anyhow::Result<String> {
        let url = self.url(&["realms", "master", "protocol", "openid-connect", "token"])?;
        let form = [
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", self.admin_user.as_str()),
            ("password", self.admin_password.expose()),
        ];
        let started = Instant::now();
        let response = self
            .http
            .post(url.clone())
            .form(&form)
            .send()
            .await
            .map_err(|err| self.unreachable(&err))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            return Err(UserError::failure(
                format!(
                    "Keycloak refused the admin login of `{}` (POST {url} answered {status}: {})",
                    self.admin_user,
                    keycloak_message(&body)
                ),
                format!(
                    "set {ADMIN_PASSWORD_VAR} (and {ADMIN_USER_VAR}) to the master realm admin's credentials Keycloak was first started with"
                ),
            )
            .into());
        }
        let value = body
            .get("access_token")
            .and_then(Value::as_str)
            .with_context(|| format!("POST {url} answered {status} without an access_token"))?
            .to_owned();
        let lifetime =
            Duration::from_secs(body.get("expires_in").and_then(Value::as_u64).unwrap_or(60));
        self.token = Some(Token {
            value: value.clone(),
            renew_at: started + lifetime.saturating_sub(RENEW_BEFORE),
        });
        Ok(value)
    }

    async fn bearer(&mut self) -> anyhow::Result<String> {
        match &self.token {
            Some(token) if Instant::now() < token.renew_at => Ok(token.value.clone()),
            _ => self.renew().await,
        }
    }

    /// One admin call; a 401 renews the token and tries once more. Any status is returned.
    async fn send(
        &mut self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> anyhow::Result<Reply> {
        let mut renewed = false;
        loop {
            let token = self.bearer().await?;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|err| self.unreachable(&err))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !renewed {
                self.token = None;
                renewed = true;
                continue;
            }
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let text = response.text().await.unwrap_or_default();
            let body = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            return Ok(Reply {
                status,
                body,
                location,
                method,
                url,
            });
        }
    }

    /// A read; `None` when Keycloak answers 404.
    async fn get(&mut self, what: &str, url: Url) -> anyhow::Result<Option<Value>> {
        let reply = self.send(Method::GET, url, None).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !reply.status.is_success() {
            return Err(failure(what, &reply));
        }
        Ok(Some(reply.body))
    }

    /// A read that must find something.
    async fn get_list(&mut self, what: &str, url: Url) -> anyhow::Result<Vec<Value>> {
        match self.get(what, url.clone()).await? {
            Some(Value::Array(items)) => Ok(items),
            Some(other) => {
                anyhow::bail!("{what}: GET {url} answered {other} where a list was expected")
            }
            None => anyhow::bail!("{what}: GET {url} answered 404 Not Found"),
        }
    }

    async fn create(&mut self, what: &str, url: Url, body: &Value) -> anyhow::Result<Created> {
        let reply = self.send(Method::POST, url, Some(body)).await?;
        if exists(&reply) {
            return Ok(Created::Exists);
        }
        if !reply.status.is_success() {
            return Err(failure(what, &reply));
        }
        let id = reply
            .location
            .as_deref()
            .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
            .filter(|id| !id.is_empty())
            .map(str::to_owned);
        Ok(Created::New(id))
    }

    /// A write whose only answer that matters is success.
    async fn write(
        &mut self,
        what: &str,
        method: Method,
        url: Url,
        body: &Value,
    ) -> anyhow::Result<()> {
        let reply = self.send(method, url, Some(body)).await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(failure(what, &reply))
        }
    }

    /// The user's representation, found by exact username (Keycloak stores it lower-cased).
    async fn find_user(&mut self, realm: &str, username: &str) -> anyhow::Result<Option<Value>> {
        let mut url = self.admin(realm, &["users"])?;
        url.query_pairs_mut()
            .append_pair("username", username)
            .append_pair("exact", "true");
        let users = self
            .get_list(&format!("looking up user `{username}`"), url)
            .await?;
        let found = users.into_iter().find(|u| {
            u.get("username")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(username))
        });
        if let Some(id) = found
            .as_ref()
            .and_then(|u| u.get("id"))
            .and_then(Value::as_str)
        {
            self.user_ids.insert(username.to_owned(), id.to_owned());
        }
        Ok(found)
    }

    async fn user_id(&mut self, realm: &str, username: &str) -> anyhow::Result<String> {
        if let Some(id) = self.user_ids.get(username) {
            return Ok(id.clone());
        }
        self.find_user(realm, username)
            .await?
            .and_then(|u| u.get("id").and_then(Value::as_str).map(str::to_owned))
            .with_context(|| format!("user `{username}` is not in Keycloak realm `{realm}`"))
    }

    /// The client's full representation (protocol mappers included), by client id.
    async fn find_client(&mut self, realm: &str, client_id: &str) -> anyhow::Result<Option<Value>> {
        let mut url = self.admin(realm, &["clients"])?;
        url.query_pairs_mut().append_pair("clientId", client_id);
        let clients = self
            .get_list(&format!("looking up client `{client_id}`"), url)
            .await?;
        Ok(clients
            .into_iter()
            .find(|c| c.get("clientId").and_then(Value::as_str) == Some(client_id)))
    }

    /// The realm role's representation (`id` and `name`), which role mappings are made of.
    async fn role(&mut self, realm: &str, name: &str) -> anyhow::Result<Value> {
        let url = self.admin(realm, &["roles", name])?;
        let role = self
            .get(&format!("looking up role `{name}`"), url)
            .await?
            .with_context(|| format!("role `{name}` is not in Keycloak realm `{realm}`"))?;
        Ok(json!({ "id": role.get("id"), "name": role.get("name") }))
    }

    async fn roles(&mut self, realm: &str, names: &[String]) -> anyhow::Result<Value> {
        let mut out = Vec::new();
        for name in names {
            out.push(self.role(realm, name).await?);
        }
        Ok(Value::Array(out))
    }

    async fn map_roles(
        &mut self,
        realm: &str,
        username: &str,
        user_id: &str,
        method: Method,
        names: &[String],
    ) -> anyhow::Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let roles = self.roles(realm, names).await?;
        let url = self.admin(realm, &["users", user_id, "role-mappings", "realm"])?;
        let verb = if method == Method::DELETE {
            "taking"
        } else {
            "giving"
        };
        let what = format!("{verb} user `{username}` the roles {}", names.join(", "));
        self.write(&what, method, url, &roles).await
    }

    async fn create_user(&mut self, realm: &Realm, user: &RealmUser) -> anyhow::Result<()> {
        let url = self.admin(&realm.name, &["users"])?;
        let what = format!("creating user `{}`", user.username);
        let id = match self.create(&what, url, &user_body(user)).await? {
            Created::New(Some(id)) => id,
            Created::New(None) => self.user_id(&realm.name, &user.username).await?,
            // Someone else made it: its roles are compared on the next run, like any user's.
            Created::Exists => return Ok(()),
        };
        self.user_ids.insert(user.username.clone(), id.clone());
        let roles: Vec<String> = user.roles.iter().cloned().collect();
        self.map_roles(&realm.name, &user.username, &id, Method::POST, &roles)
            .await
    }

    async fn update_user(
        &mut self,
        realm: &Realm,
        user: &RealmUser,
        fields: &[String],
        add_roles: &[String],
        remove_roles: &[String],
    ) -> anyhow::Result<()> {
        let found = self
            .find_user(&realm.name, &user.username)
            .await?
            .with_context(|| {
                format!(
                    "user `{}` is not in Keycloak realm `{}`",
                    user.username, realm.name
                )
            })?;
        let id = found
            .get("id")
            .and_then(Value::as_str)
            .with_context(|| format!("Keycloak's user `{}` has no id", user.username))?
            .to_owned();
        if fields.iter().any(|f| f != "roles") {
            // The user profile (always on in Keycloak 26) validates the whole user on every
            // update, so the attributes it requires go along with the changed ones; the
            // username as Keycloak stores it, because another spelling reads as a rename.
            let stored = found
                .get("username")
                .and_then(Value::as_str)
                .unwrap_or(&user.username);
            let mut body = json!({
                "username": stored,
                "email": user.email,
                "firstName": user.first_name,
                "lastName": user.last_name,
            });
            if fields.iter().any(|f| f == "enabled") {
                body["enabled"] = json!(user.enabled);
            }
            if fields.iter().any(|f| f == "email") {
                // A changed address is unverified again, and an unverified user may be sent
                // to "verify your e-mail" before the first token.
                body["emailVerified"] = json!(true);
            }
            let url = self.admin(&realm.name, &["users", &id])?;
            let what = format!("updating user `{}` ({})", user.username, fields.join(", "));
            self.write(&what, Method::PUT, url, &body).await?;
        }
        self.map_roles(&realm.name, &user.username, &id, Method::POST, add_roles)
            .await?;
        self.map_roles(
            &realm.name,
            &user.username,
            &id,
            Method::DELETE,
            remove_roles,
        )
        .await
    }

    async fn create_client(&mut self, realm: &Realm, client: &RealmClient) -> anyhow::Result<()> {
        let url = self.admin(&realm.name, &["clients"])?;
        let what = format!("creating client `{}`", client.client_id);
        self.create(&what, url, &client_body(realm, client))
            .await
            .map(drop)
    }

    async fn update_client(
        &mut self,
        realm: &Realm,
        client: &RealmClient,
        fields: &[String],
    ) -> anyhow::Result<()> {
        let mut rep = self
            .find_client(&realm.name, &client.client_id)
            .await?
            .with_context(|| {
                format!(
                    "client `{}` is not in Keycloak realm `{}`",
                    client.client_id, realm.name
                )
            })?;
        let uuid = rep
            .get("id")
            .and_then(Value::as_str)
            .with_context(|| format!("Keycloak's client `{}` has no id", client.client_id))?
            .to_owned();
        let has = |name: &str| fields.iter().any(|f| f == name);
        let existing_mappers = mappers(&rep);
        if has("grant_types") || has("redirect_uris") || has("secret") {
            // The representation Keycloak gave, changed where the declaration differs: a PUT
            // of the whole client is what the admin console does too. The mappers have their
            // own endpoints and are left out. `POST client-secret` would generate a secret, so
            // the declared one is set here.
            if let Some(object) = rep.as_object_mut() {
                object.remove("protocolMappers");
            }
            if has("grant_types") {
                set_grant_types(&mut rep, &client.grant_types);
            }
            if has("redirect_uris") {
                rep["redirectUris"] = json!(client.redirect_uris);
            }
            if has("secret") {
                rep["secret"] = json!(client.secret.expose());
            }
            let url = self.admin(&realm.name, &["clients", &uuid])?;
            let what = format!(
                "updating client `{}` ({})",
                client.client_id,
                fields.join(", ")
            );
            self.write(&what, Method::PUT, url, &rep).await?;
        }
        if has("audience") {
            let wanted = audience_mapper(realm, &client.audience);
            let existing = existing_mappers
                .into_iter()
                .find(|m| is_mapper(m, AUDIENCE_MAPPER, Some(AUDIENCE_MAPPER_NAME)));
            let what = format!("setting the audience of client `{}`", client.client_id);
            self.put_mapper(&realm.name, &uuid, existing, wanted, &what)
                .await?;
        }
        Ok(())
    }

    /// Creates `wanted`, or replaces `existing` with it (keeping its id).
    async fn put_mapper(
        &mut self,
        realm: &str,
        uuid: &str,
        existing: Option<Value>,
        mut wanted: Value,
        what: &str,
    ) -> anyhow::Result<()> {
        match existing
            .as_ref()
            .and_then(|m| m.get("id"))
            .and_then(Value::as_str)
        {
            Some(id) => {
                wanted["id"] = json!(id);
                let url =
                    self.admin(realm, &["clients", uuid, "protocol-mappers", "models", id])?;
                self.write(what, Method::PUT, url, &wanted).await
            }
            None => {
                let url = self.admin(realm, &["clients", uuid, "protocol-mappers", "models"])?;
                self.create(what, url, &wanted).await.map(drop)
            }
        }
    }

    async fn map_role_claim(&mut self, realm: &Realm) -> anyhow::Result<()> {
        for client in &realm.clients {
            // A client not made yet gets the mapper when it is created.
            let Some(rep) = self.find_client(&realm.name, &client.client_id).await? else {
                continue;
            };
            let all = mappers(&rep);
            if all.iter().any(|m| role_mapper_ok(m, &realm.role_claim)) {
                continue;
            }
            let uuid = rep
                .get("id")
                .and_then(Value::as_str)
                .with_context(|| format!("Keycloak's client `{}` has no id", client.client_id))?
                .to_owned();
            let existing = all
                .into_iter()
                .find(|m| is_mapper(m, ROLE_MAPPER, Some(ROLE_MAPPER_NAME)));
            let what = format!(
                "mapping realm roles to the `{}` claim of client `{}`",
                realm.role_claim, client.client_id
            );
            self.put_mapper(
                &realm.name,
                &uuid,
                existing,
                role_mapper(&realm.role_claim),
                &what,
            )
            .await?;
        }
        Ok(())
    }

    async fn observe_client(
        &mut self,
        realm: &Realm,
        client: &RealmClient,
    ) -> anyhow::Result<Option<(ObservedClient, bool)>> {
        let Some(rep) = self.find_client(&realm.name, &client.client_id).await? else {
            return Ok(None);
        };
        let uuid = rep
            .get("id")
            .and_then(Value::as_str)
            .with_context(|| format!("Keycloak's client `{}` has no id", client.client_id))?
            .to_owned();
        let url = self.admin(&realm.name, &["clients", &uuid, "client-secret"])?;
        let secret = self
            .get(
                &format!("reading the secret of client `{}`", client.client_id),
                url,
            )
            .await?;
        let secret_matches = secret
            .as_ref()
            .and_then(|s| s.get("value"))
            .and_then(Value::as_str)
            .map(|v| v == client.secret.expose());
        let all = mappers(&rep);
        // Missing reads as the empty audience, so that the plan sees a difference.
        let audience = all
            .iter()
            .find(|m| is_mapper(m, AUDIENCE_MAPPER, Some(AUDIENCE_MAPPER_NAME)))
            .and_then(|m| {
                let config = m.get("config")?;
                config
                    .get("included.client.audience")
                    .and_then(Value::as_str)
                    .filter(|a| !a.is_empty())
                    .or_else(|| {
                        config
                            .get("included.custom.audience")
                            .and_then(Value::as_str)
                    })
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let mapped = all.iter().any(|m| role_mapper_ok(m, &realm.role_claim));
        let observed = ObservedClient {
            grant_types: grant_types(&rep),
            redirect_uris: strings(rep.get("redirectUris")),
            audience: Some(audience),
            secret_matches: Some(secret_matches.unwrap_or(false)),
        };
        Ok(Some((observed, mapped)))
    }
}

#[async_trait]
impl Driver for KeycloakDriver {
    fn name(&self) -> &'static str {
        "keycloak"
    }

    fn location(&self) -> String {
        self.base.to_string()
    }

    async fn observe(&mut self, realm: &Realm) -> anyhow::Result<Observed> {
        let url = self.admin(&realm.name, &[])?;
        let what = format!("reading Keycloak realm `{}`", realm.name);
        if self.get(&what, url).await?.is_none() {
            return Ok(Observed {
                realm: false,
                role_claim: Some(false),
                ..Observed::default()
            });
        }
        let mut observed = Observed {
            realm: true,
            ..Observed::default()
        };
        let url = self.admin(&realm.name, &["roles"])?;
        let what = format!("listing the roles of realm `{}`", realm.name);
        let existing: BTreeSet<String> = self
            .get_list(&what, url)
            .await?
            .iter()
            .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        observed.roles = realm
            .roles
            .iter()
            .filter(|r| existing.contains(*r))
            .cloned()
            .collect();
        for user in &realm.users {
            let Some(rep) = self.find_user(&realm.name, &user.username).await? else {
                continue;
            };
            let id = rep
                .get("id")
                .and_then(Value::as_str)
                .with_context(|| format!("Keycloak's user `{}` has no id", user.username))?;
            let url = self.admin(&realm.name, &["users", id, "role-mappings", "realm"])?;
            let what = format!("reading the roles of user `{}`", user.username);
            let roles = self
                .get_list(&what, url)
                .await?
                .iter()
                .filter_map(|r| r.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect();
            let text = |key: &str| rep.get(key).and_then(Value::as_str).map(str::to_owned);
            observed.users.insert(
                user.username.clone(),
                ObservedUser {
                    email: text("email"),
                    first_name: text("firstName"),
                    last_name: text("lastName"),
                    enabled: rep.get("enabled").and_then(Value::as_bool).unwrap_or(false),
                    roles,
                },
            );
        }
        let mut all_mapped = true;
        for client in &realm.clients {
            // A client that is not there yet will be created with the mapper.
            if let Some((have, mapped)) = self.observe_client(realm, client).await? {
                all_mapped &= mapped;
                observed.clients.insert(client.client_id.clone(), have);
            }
        }
        observed.role_claim = Some(all_mapped);
        Ok(observed)
    }

    async fn apply(&mut self, realm: &Realm, step: &Step) -> anyhow::Result<()> {
        match step {
            Step::CreateRealm => {
                let url = self.url(&["admin", "realms"])?;
                let body = json!({ "realm": realm.name, "enabled": true });
                let what = format!("creating Keycloak realm `{}`", realm.name);
                self.create(&what, url, &body).await.map(drop)
            }
            Step::CreateRole(name) => {
                let url = self.admin(&realm.name, &["roles"])?;
                let what = format!("creating role `{name}`");
                self.create(&what, url, &json!({ "name": name }))
                    .await
                    .map(drop)
            }
            Step::MapRoleClaim => self.map_role_claim(realm).await,
            Step::CreateClient(id) => {
                let client = declared_client(realm, id)?;
                self.create_client(realm, client).await
            }
            Step::UpdateClient { client_id, fields } => {
                let client = declared_client(realm, client_id)?;
                self.update_client(realm, client, fields).await
            }
            Step::CreateUser(username) => {
                let user = declared_user(realm, username)?;
                self.create_user(realm, user).await
            }
            Step::UpdateUser {
                username,
                fields,
                add_roles,
                remove_roles,
            } => {
                let user = declared_user(realm, username)?;
                self.update_user(realm, user, fields, add_roles, remove_roles)
                    .await
            }
        }
    }
}

fn declared_user<'a>(realm: &'a Realm, username: &str) -> anyhow::Result<&'a RealmUser> {
    realm.user(username).with_context(|| {
        format!(
            "user `{username}` is not declared in realm `{}`",
            realm.name
        )
    })
}

fn declared_client<'a>(realm: &'a Realm, client_id: &str) -> anyhow::Result<&'a RealmClient> {
    realm.client(client_id).with_context(|| {
        format!(
            "client `{client_id}` is not declared in realm `{}`",
            realm.name
        )
    })
}

/// A new user as Keycloak takes it. Verified e-mail, both names and no required actions are
/// what keeps Keycloak from answering the first login with "Account is not fully set up".
fn user_body(user: &RealmUser) -> Value {
    json!({
        "username": user.username,
        "email": user.email,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "enabled": user.enabled,
        "emailVerified": true,
        "requiredActions": [],
        "credentials": [{
            "type": "password",
            "value": user.password.expose(),
            "temporary": false,
        }],
        "attributes": { MANAGED_BY: [OWNER] },
    })
}

/// A new confidential client with its role and audience mappers.
fn client_body(realm: &Realm, client: &RealmClient) -> Value {
    let mut body = json!({
        "clientId": client.client_id,
        "enabled": true,
        "protocol": "openid-connect",
        "publicClient": false,
        "clientAuthenticatorType": "client-secret",
        "secret": client.secret.expose(),
        "redirectUris": client.redirect_uris,
        "attributes": { MANAGED_BY: OWNER },
        "protocolMappers": [
            role_mapper(&realm.role_claim),
            audience_mapper(realm, &client.audience),
        ],
    });
    set_grant_types(&mut body, &client.grant_types);
    body
}

/// Realm roles into `claim` as a list, in the access token (what the services read), the ID
/// token and userinfo.
fn role_mapper(claim: &str) -> Value {
    json!({
        "name": ROLE_MAPPER_NAME,
        "protocol": "openid-connect",
        "protocolMapper": ROLE_MAPPER,
        "consentRequired": false,
        "config": {
            "claim.name": claim,
            "multivalued": "true",
            "access.token.claim": "true",
            "id.token.claim": "true",
            "userinfo.token.claim": "true",
            "jsonType.label": "String",
        },
    })
}

/// `aud` in the access token. A declared client is named by `included.client.audience`;
/// anything else is a custom audience (Keycloak checks that an included client exists).
fn audience_mapper(realm: &Realm, audience: &str) -> Value {
    let key = if realm.client(audience).is_some() {
        "included.client.audience"
    } else {
        "included.custom.audience"
    };
    json!({
        "name": AUDIENCE_MAPPER_NAME,
        "protocol": "openid-connect",
        "protocolMapper": AUDIENCE_MAPPER,
        "consentRequired": false,
        "config": {
            key: audience,
            "id.token.claim": "false",
            "access.token.claim": "true",
        },
    })
}

/// The flow switches and refresh-token attributes that express `grant_types`.
fn set_grant_types(rep: &mut Value, grants: &BTreeSet<String>) {
    let has = |g: &str| grants.contains(g);
    rep["directAccessGrantsEnabled"] = json!(has("password"));
    rep["serviceAccountsEnabled"] = json!(has("client_credentials"));
    rep["standardFlowEnabled"] = json!(has("authorization_code"));
    rep["implicitFlowEnabled"] = json!(false);
    let refresh = has("refresh_token");
    // Service accounts get refresh tokens only when asked, and only when that is the one way a
    // refresh token can come (so that reading it back gives the declared set).
    let for_service_accounts =
        refresh && has("client_credentials") && !has("password") && !has("authorization_code");
    if !rep.get("attributes").is_some_and(Value::is_object) {
        rep["attributes"] = json!({});
    }
    rep["attributes"]["use.refresh.tokens"] = json!(refresh.to_string());
    rep["attributes"]["client_credentials.use_refresh_token"] =
        json!(for_service_accounts.to_string());
}

/// The grant types a client representation allows, in the declarations' names.
fn grant_types(rep: &Value) -> BTreeSet<String> {
    let flag = |key: &str| rep.get(key).and_then(Value::as_bool).unwrap_or(false);
    let attribute = |key: &str| {
        rep.get("attributes")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
    };
    let mut out = BTreeSet::new();
    let password = flag("directAccessGrantsEnabled");
    let code = flag("standardFlowEnabled");
    let service = flag("serviceAccountsEnabled");
    for (on, name) in [
        (password, "password"),
        (service, "client_credentials"),
        (code, "authorization_code"),
    ] {
        if on {
            out.insert(name.to_owned());
        }
    }
    // Keycloak issues refresh tokens with the password and code flows unless
    // `use.refresh.tokens` is off, and with service accounts only when that is switched on.
    let refresh = attribute("use.refresh.tokens") != Some("false")
        && (password
            || code
            || (service && attribute("client_credentials.use_refresh_token") == Some("true")));
    if refresh {
        out.insert("refresh_token".to_owned());
    }
    out
}

fn strings(value: Option<&Value>) -> BTreeSet<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn mappers(rep: &Value) -> Vec<Value> {
    rep.get("protocolMappers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn is_mapper(mapper: &Value, kind: &str, name: Option<&str>) -> bool {
    mapper.get("protocolMapper").and_then(Value::as_str) == Some(kind)
        && name.is_none_or(|n| mapper.get("name").and_then(Value::as_str) == Some(n))
}

/// Whether `mapper` puts realm roles, as a list, into `claim` of the access token.
fn role_mapper_ok(mapper: &Value, claim: &str) -> bool {
    let config = mapper.get("config").cloned().unwrap_or(Value::Null);
    let setting = |key: &str| config.get(key).and_then(Value::as_str);
    is_mapper(mapper, ROLE_MAPPER, None)
        && setting("claim.name") == Some(claim)
        && setting("multivalued") == Some("true")
        && setting("access.token.claim") == Some("true")
}

/// 409, or a 400 that says the resource exists: both mean it is already there.
fn exists(reply: &Reply) -> bool {
    reply.status == StatusCode::CONFLICT
        || (reply.status == StatusCode::BAD_REQUEST
            && keycloak_message(&reply.body)
                .to_ascii_lowercase()
                .contains("exists"))
}

/// What Keycloak said: `errorMessage` (admin API), `error` and `error_description` (OAuth
/// and JAX-RS errors), or the body itself.
fn keycloak_message(body: &Value) -> String {
    let field = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = field("errorMessage") {
        parts.push(m.to_owned());
    }
    if let Some(f) = field("field") {
        parts.push(format!("(field `{f}`)"));
    }
    if let Some(e) = field("error") {
        parts.push(e.to_owned());
    }
    if let Some(d) = field("error_description") {
        parts.push(format!("({d})"));
    }
    if parts.is_empty() {
        let text = match body {
            Value::Null => "no body".to_owned(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return text.chars().take(300).collect();
    }
    parts.join(" ")
}

fn failure(what: &str, reply: &Reply) -> anyhow::Error {
    let hint = match reply.status {
        StatusCode::UNAUTHORIZED => format!(
            "Keycloak refused a fresh admin token: check {ADMIN_USER_VAR} and {ADMIN_PASSWORD_VAR}"
        ),
        StatusCode::FORBIDDEN => format!(
            "the user in {ADMIN_USER_VAR} needs the master realm's `admin` role"
        ),
        StatusCode::BAD_REQUEST => {
            "Keycloak refused the representation: fix the declaration in compose/bootstrap/identity.yaml the message points at".to_owned()
        }
        StatusCode::NOT_FOUND => {
            "it disappeared while bootstrap ran: run `finctl bootstrap identity` again".to_owned()
        }
        s if s.is_server_error() => {
            "see Keycloak's log (`docker compose logs keycloak`), then run bootstrap again".to_owned()
        }
        _ => "run `finctl bootstrap identity --dry-run` to see what bootstrap would change".to_owned(),
    };
    UserError::failure(
        format!(
            "{what} failed: {} {} answered {}: {}",
            reply.method,
            reply.url,
            reply.status,
            keycloak_message(&reply.body)
        ),
        hint,
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Every declared set of grant types reads back as itself (except `refresh_token` alone,
    /// which no Keycloak flow can give).
    #[test]
    fn grant_types_read_back_as_written() {
        for grants in [
            set(&["password"]),
            set(&["password", "refresh_token"]),
            set(&["client_credentials"]),
            set(&["client_credentials", "refresh_token"]),
            set(&["authorization_code", "refresh_token"]),
            set(&[
                "password",
                "client_credentials",
                "refresh_token",
                "authorization_code",
            ]),
        ] {
            let mut rep = json!({});
            set_grant_types(&mut rep, &grants);
            assert_eq!(grant_types(&rep), grants, "{rep}");
        }
    }

    #[test]
    fn messages_name_keycloak_fields() {
        assert_eq!(
            keycloak_message(
                &json!({"error": "invalid_grant", "error_description": "Invalid user credentials"})
            ),
            "invalid_grant (Invalid user credentials)"
        );
        assert_eq!(
            keycloak_message(&json!({"errorMessage": "User exists with same username"})),
            "User exists with same username"
        );
        assert_eq!(keycloak_message(&Value::Null), "no body");
    }
}
