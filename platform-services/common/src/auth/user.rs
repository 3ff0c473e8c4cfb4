use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The caller, normalised from whichever claims the IdP uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    /// The stable subject (`sub`, or the IdP's user-id claim): what data is keyed by. A
    /// username can be renamed; the subject cannot.
    pub id: String,
    /// For display and logs only.
    pub username: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
}

/// Claims that carry roles, in the order they are read. Keycloak puts realm roles in
/// `realm_access.roles`, Canaille and Keycloak group mappers in `groups`, WSO2 in its
/// role claim URI, many others in `roles`.
const ROLE_CLAIMS: &[&[&str]] = &[
    &["roles"],
    &["groups"],
    &["realm_access", "roles"],
    &["http://wso2.org/claims/role"],
];

const USERNAME_CLAIMS: &[&str] = &[
    "preferred_username",
    "username",
    "http://wso2.org/claims/username",
    "sub",
];

/// Claims that carry the stable subject; without one, the username stands in.
const SUBJECT_CLAIMS: &[&str] = &["sub", "http://wso2.org/claims/userid"];

impl User {
    /// `None` when no claim names the user.
    pub fn from_claims(claims: &Value) -> Option<User> {
        let username = USERNAME_CLAIMS
            .iter()
            .find_map(|c| claims.get(*c).and_then(Value::as_str))
            .map(str::trim)
            .filter(|s| !s.is_empty())?
            .to_string();
        let id = SUBJECT_CLAIMS
            .iter()
            .find_map(|c| claims.get(*c).and_then(Value::as_str))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(&username)
            .to_string();
        let email = claims
            .get("email")
            .or_else(|| claims.get("http://wso2.org/claims/emailaddress"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut roles: Vec<String> = Vec::new();
        for path in ROLE_CLAIMS {
            let mut v = Some(claims);
            for seg in *path {
                v = v.and_then(|v| v.get(*seg));
            }
            let Some(v) = v else { continue };
            for role in role_values(v) {
                if !roles.contains(&role) {
                    roles.push(role);
                }
            }
        }
        Some(User {
            id,
            username,
            email,
            roles,
        })
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn has_any_role(&self, roles: &[&str]) -> bool {
        roles.iter().any(|r| self.has_role(r))
    }

    pub fn has_all_roles(&self, roles: &[&str]) -> bool {
        roles.iter().all(|r| self.has_role(r))
    }
}

/// A roles claim is an array of strings, or one string (WSO2 sends `"a,b"`).
fn role_values(v: &Value) -> Vec<String> {
    let raw: Vec<&str> = match v {
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        Value::String(s) => s.split(',').collect(),
        _ => Vec::new(),
    };
    raw.into_iter()
        .map(normalise_role)
        .filter(|r| !r.is_empty())
        .collect()
}

/// Keycloak group paths look like `/admin`; WSO2 internal roles like `Internal/admin`.
fn normalise_role(r: &str) -> String {
    let r = r.trim();
    let r = r.strip_prefix("Internal/").unwrap_or(r);
    r.trim_start_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roles(claims: Value) -> Vec<String> {
        User::from_claims(&claims).unwrap().roles
    }

    #[test]
    fn roles_claim_array() {
        assert_eq!(
            roles(json!({"sub": "u", "roles": ["admin", "finance"]})),
            ["admin", "finance"]
        );
    }

    #[test]
    fn groups_claim_with_keycloak_paths() {
        assert_eq!(
            roles(json!({"sub": "u", "groups": ["/ops_user", "auditor"]})),
            ["ops_user", "auditor"]
        );
    }

    #[test]
    fn realm_access_roles() {
        assert_eq!(
            roles(json!({"sub": "u", "realm_access": {"roles": ["user"]}})),
            ["user"]
        );
    }

    #[test]
    fn wso2_role_claim_comma_string() {
        assert_eq!(
            roles(json!({"sub": "u", "http://wso2.org/claims/role": "Internal/admin,finance"})),
            ["admin", "finance"]
        );
    }

    #[test]
    fn claims_are_merged_without_duplicates() {
        assert_eq!(
            roles(json!({"sub": "u", "roles": ["admin"], "groups": ["admin", "user"]})),
            ["admin", "user"]
        );
    }

    #[test]
    fn username_prefers_preferred_username_and_reads_email() {
        let u = User::from_claims(&json!({
            "sub": "1234", "preferred_username": "admin", "email": "admin@innover.local"
        }))
        .unwrap();
        assert_eq!(u.username, "admin");
        assert_eq!(
            u.id, "1234",
            "data is keyed by the subject, not the mutable username"
        );
        assert_eq!(u.email.as_deref(), Some("admin@innover.local"));
        assert!(u.roles.is_empty());
    }

    #[test]
    fn no_subject_means_no_user() {
        assert!(User::from_claims(&json!({"roles": ["admin"]})).is_none());
    }

    #[test]
    fn role_checks() {
        let u = User {
            id: "a".into(),
            username: "a".into(),
            email: None,
            roles: vec!["admin".into(), "finance".into()],
        };
        assert!(u.has_any_role(&["ops_user", "admin"]));
        assert!(!u.has_any_role(&["ops_user"]));
        assert!(u.has_all_roles(&["admin", "finance"]));
        assert!(!u.has_all_roles(&["admin", "auditor"]));
    }
}
