//! The identity realm: one [`Driver`] per identity provider, and the comparison they share.
//!
//! A driver only observes and applies; [`plan`] decides. So every IdP gets the same rules:
//! what is declared and missing is created, what differs is updated (only the fields that
//! differ), nothing undeclared is touched or deleted, and a role is taken from a user only if
//! it is a declared role (a role someone granted by hand outside the declarations stays).
//!
//! Passwords cannot be read back from any IdP: a user's password is set when bootstrap
//! creates the user, and left alone afterwards.

pub mod canaille;
pub mod keycloak;
pub mod wso2is;

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use serde::Serialize;

use crate::decl::Realm;
use crate::{Action, Change};

/// What exists of a declared user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObservedUser {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub enabled: bool,
    /// Every role the user has, declared or not.
    pub roles: BTreeSet<String>,
}

/// What exists of a declared client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObservedClient {
    pub grant_types: BTreeSet<String>,
    pub redirect_uris: BTreeSet<String>,
    /// `None` where the IdP does not say (then it is not compared).
    pub audience: Option<String>,
    /// Whether the stored secret is the declared one; `None` where it cannot be read back.
    pub secret_matches: Option<bool>,
}

/// What a driver found, limited to what the realm declares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Observed {
    pub realm: bool,
    pub roles: BTreeSet<String>,
    pub users: BTreeMap<String, ObservedUser>,
    pub clients: BTreeMap<String, ObservedClient>,
    /// Whether roles reach tokens in the declared claim. `None`: the IdP does that itself
    /// and there is nothing to configure (Canaille's `groups`).
    pub role_claim: Option<bool>,
}

/// One change to make, in [`plan`] order: realm, roles, role claim, clients, users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    CreateRealm,
    CreateRole(String),
    /// Create or fix the mapping that puts realm roles into `realm.role_claim`.
    MapRoleClaim,
    CreateClient(String),
    UpdateClient {
        client_id: String,
        /// Declaration names: `grant_types`, `redirect_uris`, `audience`, `secret`.
        fields: Vec<String>,
    },
    CreateUser(String),
    UpdateUser {
        username: String,
        /// Declaration names: `email`, `first_name`, `last_name`, `enabled`, `roles`.
        fields: Vec<String>,
        add_roles: Vec<String>,
        remove_roles: Vec<String>,
    },
}

/// An identity provider that bootstrap can configure.
#[async_trait]
pub trait Driver: Send {
    /// `canaille`, `keycloak`, `wso2is`.
    fn name(&self) -> &'static str;
    /// Where it is reached, for messages.
    fn location(&self) -> String;
    /// Reads what exists of what `realm` declares; changes nothing.
    async fn observe(&mut self, realm: &Realm) -> anyhow::Result<Observed>;
    /// Makes one change. Steps arrive in [`plan`] order; a step that finds its resource
    /// already there (another run got there first) succeeds.
    async fn apply(&mut self, realm: &Realm, step: &Step) -> anyhow::Result<()>;
}

/// The steps that make `observed` match `realm`, each with its plan row (unchanged rows too).
pub fn plan(realm: &Realm, observed: &Observed) -> Vec<(Change, Option<Step>)> {
    let row = |kind, name: &str, action| Change::new("identity", kind, name, action);
    let mut out = Vec::new();
    if observed.realm {
        out.push((row("realm", &realm.name, Action::Unchanged), None));
    } else {
        out.push((
            row("realm", &realm.name, Action::Create),
            Some(Step::CreateRealm),
        ));
    }
    for role in &realm.roles {
        if observed.roles.contains(role) {
            out.push((row("role", role, Action::Unchanged), None));
        } else {
            out.push((
                row("role", role, Action::Create),
                Some(Step::CreateRole(role.clone())),
            ));
        }
    }
    match observed.role_claim {
        None => {}
        Some(true) => out.push((
            row("role-claim", &realm.role_claim, Action::Unchanged),
            None,
        )),
        Some(false) => out.push((
            row("role-claim", &realm.role_claim, Action::Create),
            Some(Step::MapRoleClaim),
        )),
    }
    for client in &realm.clients {
        let Some(have) = observed.clients.get(&client.client_id) else {
            out.push((
                row("client", &client.client_id, Action::Create),
                Some(Step::CreateClient(client.client_id.clone())),
            ));
            continue;
        };
        let mut fields = Vec::new();
        if have.grant_types != client.grant_types {
            fields.push("grant_types".to_string());
        }
        if have.redirect_uris != client.redirect_uris {
            fields.push("redirect_uris".to_string());
        }
        if have
            .audience
            .as_ref()
            .is_some_and(|a| *a != client.audience)
        {
            fields.push("audience".to_string());
        }
        if have.secret_matches == Some(false) {
            fields.push("secret".to_string());
        }
        if fields.is_empty() {
            out.push((row("client", &client.client_id, Action::Unchanged), None));
        } else {
            out.push((
                row("client", &client.client_id, Action::Update(fields.clone())),
                Some(Step::UpdateClient {
                    client_id: client.client_id.clone(),
                    fields,
                }),
            ));
        }
    }
    let declared: BTreeSet<&String> = realm.roles.iter().collect();
    for user in &realm.users {
        let Some(have) = observed.users.get(&user.username) else {
            out.push((
                row("user", &user.username, Action::Create),
                Some(Step::CreateUser(user.username.clone())),
            ));
            continue;
        };
        let mut fields = Vec::new();
        if have.email.as_deref() != Some(user.email.as_str()) {
            fields.push("email".to_string());
        }
        if have.first_name.as_deref() != Some(user.first_name.as_str()) {
            fields.push("first_name".to_string());
        }
        if have.last_name.as_deref() != Some(user.last_name.as_str()) {
            fields.push("last_name".to_string());
        }
        if have.enabled != user.enabled {
            fields.push("enabled".to_string());
        }
        let add_roles: Vec<String> = user.roles.difference(&have.roles).cloned().collect();
        let remove_roles: Vec<String> = have
            .roles
            .iter()
            .filter(|r| declared.contains(r) && !user.roles.contains(*r))
            .cloned()
            .collect();
        if !add_roles.is_empty() || !remove_roles.is_empty() {
            fields.push("roles".to_string());
        }
        if fields.is_empty() {
            out.push((row("user", &user.username, Action::Unchanged), None));
        } else {
            out.push((
                row("user", &user.username, Action::Update(fields.clone())),
                Some(Step::UpdateUser {
                    username: user.username.clone(),
                    fields,
                    add_roles,
                    remove_roles,
                }),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
