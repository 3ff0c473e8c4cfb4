//! `finctl token`: a token from the stack's IdP, found by OIDC discovery of the services'
//! `OIDC_ISSUER` through the IdP's published port. stdout carries only the token.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::{Value, json};

use crate::cli::{GlobalArgs, TokenArgs};
use crate::printer::Printer;
use finctl_bootstrap::decl::{self, Part};
use finctl_compose::{Stack, Variables};
use finctl_error::{ExitStatus, UserError};

/// Scopes asked for with the password grant: the claims the services read.
pub(super) const SCOPE: &str = "openid profile email groups";
/// Where tokens carry roles, in the order the services read them.
const ROLE_CLAIMS: &[&[&str]] = &[
    &["roles"],
    &["groups"],
    &["realm_access", "roles"],
    &["http://wso2.org/claims/role"],
];

pub async fn token(
    global: &GlobalArgs,
    args: TokenArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let stack = super::compose::load(global, &args.stack, printer).await?;
    let process: BTreeMap<String, String> = std::env::vars().collect();
    let vars = Variables::layered(&stack.working_dir, &process)?;
    let var = |name: &str| vars.get(name).map(str::to_owned);
    let realm = decl::load(&stack.working_dir.join(decl::DIR), &[Part::Identity], &var)?.identity;

    let client = match &args.client {
        Some(id) => realm.client(id).ok_or_else(|| {
            UserError::config(
                format!("client {id} is not declared in compose/bootstrap/identity.yaml"),
                format!(
                    "declared: {}",
                    realm
                        .clients
                        .iter()
                        .map(|c| c.client_id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?,
        None => realm.clients.first().ok_or_else(|| {
            UserError::config(
                "compose/bootstrap/identity.yaml declares no client",
                "declare one under `clients:`",
            )
        })?,
    };
    let mut form = vec![];
    if args.client_credentials {
        form.push(("grant_type", "client_credentials".to_string()));
    } else {
        let password = match (&args.password, realm.user(&args.user)) {
            (Some(p), _) => p.clone(),
            (None, Some(user)) => user.password.expose().to_owned(),
            (None, None) => {
                return Err(UserError::failure(
                    format!(
                        "unknown user `{}`: compose/bootstrap/identity.yaml does not declare it",
                        args.user
                    ),
                    format!(
                        "declared: {} (or pass --password for a user made by hand)",
                        realm
                            .users
                            .iter()
                            .map(|u| u.username.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .into());
            }
        };
        form.push(("grant_type", "password".to_string()));
        form.push(("username", args.user.clone()));
        form.push(("password", password));
        form.push(("scope", SCOPE.to_string()));
    }

    let token_url = token_endpoint(&stack, &var).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let response = http
        .post(&token_url)
        .basic_auth(&client.client_id, Some(client.secret.expose()))
        .form(&form)
        .send()
        .await
        .map_err(|err| down(&token_url, &err))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let Some(token) = body["access_token"]
        .as_str()
        .filter(|_| status.is_success())
    else {
        return Err(refused(&args, &client.client_id, status, &body).into());
    };
    if !args.decode {
        if printer.json() {
            printer.data(&serde_json::to_string_pretty(&json!({
                "access_token": token,
                "token_type": body["token_type"],
                "expires_in": body["expires_in"],
            }))?);
        } else {
            printer.data(token);
        }
        return Ok(ExitStatus::Success);
    }
    let (header, claims) = finctl_smoke::forge::decode(token).ok_or_else(|| {
        UserError::failure(
            "the IdP's access token is not a JWT (opaque tokens cannot be decoded)",
            "client_credentials tokens of Canaille are opaque; decode a user's token instead",
        )
    })?;
    let summary = summary(&claims);
    if printer.json() {
        printer.data(&serde_json::to_string_pretty(&json!({
            "header": header,
            "claims": claims,
            "summary": summary,
        }))?);
    } else {
        let mut table = Table::new();
        table.load_preset(UTF8_BORDERS_ONLY).set_header(["", ""]);
        table.add_row(["algorithm".to_string(), text(&header["alg"])]);
        table.add_row(["key id".to_string(), text(&header["kid"])]);
        for (k, v) in summary.as_object().into_iter().flatten() {
            table.add_row([k.replace('_', " "), text(v)]);
        }
        printer.data(&table.to_string());
    }
    Ok(ExitStatus::Success)
}

/// The token endpoint from the issuer's discovery document, as reached from this machine.
async fn token_endpoint(
    stack: &Stack,
    var: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<String> {
    let issuer = var("OIDC_ISSUER").unwrap_or_else(|| "http://keycloak:8080/realms/innover".into());
    let discovery = format!(
        "{}/.well-known/openid-configuration",
        super::urls::from_host(stack, &issuer).trim_end_matches('/')
    );
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?
        .get(&discovery)
        .send()
        .await
        .map_err(|err| down(&discovery, &err))?;
    if !response.status().is_success() {
        return Err(UserError::failure(
            format!(
                "{discovery}: {}: the IdP has no realm there",
                response.status()
            ),
            "`finctl bootstrap identity` makes the realm",
        )
        .into());
    }
    let doc: Value = response.json().await?;
    let endpoint = doc["token_endpoint"].as_str().ok_or_else(|| {
        UserError::failure(
            format!("{discovery} names no token_endpoint"),
            "is OIDC_ISSUER the IdP's issuer?",
        )
    })?;
    Ok(super::urls::from_host(stack, endpoint))
}

fn down(url: &str, err: &reqwest::Error) -> UserError {
    UserError::failure(
        format!("the identity provider is not answering at {url}: {err}"),
        "start the stack with `finctl up` (`finctl ps keycloak` shows its state)",
    )
}

fn refused(args: &TokenArgs, client: &str, status: reqwest::StatusCode, body: &Value) -> UserError {
    let error = body["error"].as_str().unwrap_or("");
    let detail = body["error_description"].as_str().unwrap_or(error);
    if error == "invalid_client" || (status == 401 && args.client_credentials) {
        return UserError::failure(
            format!("the IdP refused the client `{client}` ({status}): {detail}"),
            "its secret is IDP_CLIENT_SECRET (compose/.env); `finctl bootstrap identity` sets it on the IdP",
        );
    }
    if args.client_credentials {
        return UserError::failure(
            format!(
                "the IdP refused a client_credentials token for `{client}` ({status}): {detail}"
            ),
            "`finctl bootstrap identity` gives the client its declared grant types",
        );
    }
    UserError::failure(
        format!(
            "the IdP refused `{}`: wrong password or unknown user ({status}: {detail})",
            args.user
        ),
        "`finctl bootstrap identity` makes the declared users with their declared passwords; check --password",
    )
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// What people look for in a token, in words.
fn summary(claims: &Value) -> Value {
    let roles = ROLE_CLAIMS
        .iter()
        .find_map(|path| {
            let mut v = claims;
            for key in *path {
                v = v.get(key)?;
            }
            v.as_array().cloned()
        })
        .unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let expires = claims["exp"].as_u64().map(|exp| {
        let at = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(exp));
        let relative = if exp >= now {
            format!(
                "in {}",
                humantime::format_duration(Duration::from_secs(exp - now))
            )
        } else {
            format!(
                "expired {} ago",
                humantime::format_duration(Duration::from_secs(now - exp))
            )
        };
        format!("{at} ({relative})")
    });
    json!({
        "issuer": claims["iss"],
        "audience": claims["aud"],
        "subject": claims["sub"],
        "username": claims.get("preferred_username").unwrap_or(&claims["sub"]),
        "email": claims["email"],
        "roles": roles,
        "expires": expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn jwt(claims: &Value) -> String {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        format!(
            "{}.{}.sig",
            part(&json!({"alg": "RS256", "kid": "k1"})),
            part(claims)
        )
    }

    #[test]
    fn decode_reads_header_and_claims_and_refuses_opaque_tokens() {
        let (header, claims) = finctl_smoke::forge::decode(&jwt(&json!({"sub": "ada"}))).unwrap();
        assert_eq!(
            (header["kid"].as_str(), claims["sub"].as_str()),
            (Some("k1"), Some("ada"))
        );
        assert!(finctl_smoke::forge::decode("opaque-client-token").is_none());
    }

    #[test]
    fn summary_finds_roles_wherever_the_idp_puts_them_and_says_when_it_expires() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let keycloak = json!({"realm_access": {"roles": ["auditor"]}, "exp": now + 252, "preferred_username": "audrey", "sub": "f3c1"});
        let s = summary(&keycloak);
        assert_eq!(s["roles"], json!(["auditor"]));
        assert_eq!(s["username"], "audrey");
        let expires = s["expires"].as_str().unwrap();
        assert!(
            expires.contains("(in 4m 1") || expires.contains("(in 4m 12s)"),
            "{expires}"
        );
        let canaille = json!({"groups": ["finance"], "exp": now - 60, "sub": "finance"});
        let s = summary(&canaille);
        assert_eq!(
            (s["roles"].clone(), s["username"].clone()),
            (json!(["finance"]), json!("finance"))
        );
        assert!(
            s["expires"].as_str().unwrap().contains("expired 1m ago"),
            "{s}"
        );
    }
}
