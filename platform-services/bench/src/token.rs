//! An access token from the offline IdP (Canaille), by the password grant for user `admin`.

use anyhow::Context as _;
use serde_json::Value;

pub const USERNAME: &str = "admin";

/// `POST <idp>/oauth/token` as client `finctl`; see `compose/images/idp/README.md`.
pub async fn password_grant(idp: &finctl_testkit::Idp) -> anyhow::Result<String> {
    let resp = reqwest::Client::new()
        .post(format!("{}/oauth/token", idp.base_url()))
        .basic_auth(idp.client_id(), Some(idp.client_secret()))
        .form(&[
            ("grant_type", "password"),
            ("username", USERNAME),
            ("password", "admin"),
            ("scope", "openid profile email groups"),
        ])
        .send()
        .await
        .context("IdP token endpoint")?;
    let status = resp.status();
    let body: Value = resp.json().await.context("IdP token response")?;
    anyhow::ensure!(
        status.is_success(),
        "password grant failed: {status} {body}"
    );
    body["access_token"]
        .as_str()
        .map(str::to_string)
        .context("no access_token in the IdP's answer")
}
