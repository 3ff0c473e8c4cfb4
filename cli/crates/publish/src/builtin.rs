//! The built-in gateway (`platform-services/gateway`) through its admin API: the route table
//! is already in the gateway's terms, so nothing is lost in translation and every field
//! round-trips.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use finctl_error::UserError;
use gateway_routes::{Api, FINCTL_OWNER, RouteTable};
use reqwest::{Method, StatusCode};

use crate::target::{Remote, Target};

pub struct Builtin {
    admin_url: String,
    token: String,
    http: reqwest::Client,
}

impl Builtin {
    /// `admin_url`: the admin listener (`http://127.0.0.1:8281`); `token`: GATEWAY_ADMIN_TOKEN.
    pub fn new(admin_url: impl Into<String>, token: impl Into<String>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .build()
            .context("could not build the HTTP client")?;
        Ok(Self {
            admin_url: admin_url.into().trim_end_matches('/').to_owned(),
            token: token.into(),
            http,
        })
    }

    fn url_for(&self, id: &str) -> String {
        let id = percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC);
        format!("{}/admin/apis/{id}", self.admin_url)
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Api>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = self
            .http
            .request(method.clone(), url)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|err| {
            UserError::failure(
                format!("the gateway's admin API at {} is not reachable: {err}", self.admin_url),
                "start the stack with `finctl up --offline` (the gateway is part of it), or set FINCTL_GATEWAY_ADMIN_URL",
            )
        })?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(UserError::failure(
                format!("the gateway at {} refused the admin token", self.admin_url),
                "finctl sends GATEWAY_ADMIN_TOKEN (from the environment, else compose/.env): it must be the gateway's",
            )
            .into());
        }
        if status.is_client_error() || status.is_server_error() {
            let text = response.text().await.unwrap_or_default();
            let detail = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
                .unwrap_or(text);
            anyhow::bail!("{method} {url} answered {status}: {detail}");
        }
        Ok(response)
    }
}

#[async_trait]
impl Target for Builtin {
    fn name(&self) -> &'static str {
        "builtin"
    }

    fn location(&self) -> String {
        self.admin_url.clone()
    }

    async fn list(&mut self) -> anyhow::Result<Vec<Remote>> {
        let url = format!("{}/admin/apis", self.admin_url);
        let table: RouteTable = self
            .call(Method::GET, &url, None)
            .await?
            .json()
            .await
            .context("the gateway's route table is not what finctl expects")?;
        Ok(table
            .apis
            .into_iter()
            .map(|api| Remote {
                owned: api.owner.as_deref() == Some(FINCTL_OWNER),
                handle: api.id(),
                api,
            })
            .collect())
    }

    async fn create(&mut self, api: &Api) -> anyhow::Result<()> {
        self.call(Method::PUT, &self.url_for(&api.id()), Some(api))
            .await?;
        Ok(())
    }

    async fn update(
        &mut self,
        remote: &Remote,
        api: &Api,
        _fields: &[String],
    ) -> anyhow::Result<()> {
        self.call(Method::PUT, &self.url_for(&remote.handle), Some(api))
            .await?;
        Ok(())
    }

    async fn delete(&mut self, remote: &Remote) -> anyhow::Result<()> {
        self.call(Method::DELETE, &self.url_for(&remote.handle), None)
            .await?;
        Ok(())
    }
}
