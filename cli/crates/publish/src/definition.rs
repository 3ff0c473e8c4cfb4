//! The OpenAPI documents sent to the targets that want one (WSO2's API definition, Kong's
//! routes per operation): each REST API's document as the stack's built-in gateway serves it,
//! `<gateway><context>/<version>/openapi.json`, already rewritten for a gateway (its server URL,
//! the token and roles it asks for, its own error answers).
//!
//! The built-in gateway is where the services' documents are reachable from this machine (the
//! services' own ports are an offline-stack detail). When it does not answer, for example when
//! publishing to WSO2 from a machine without the stack, APIs are published without a document,
//! as before.

use std::time::Duration;

use gateway_routes::{Api, ApiKind};
use serde_json::Value;

/// Where the documents come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definitions {
    /// The gateway's public URL (`http://127.0.0.1:8280`); `None` sends no documents.
    gateway_url: Option<String>,
}

impl Definitions {
    /// No documents.
    pub fn none() -> Self {
        Self { gateway_url: None }
    }

    /// The documents of the gateway at `url` (`http://127.0.0.1:8280`).
    pub fn from_gateway(url: impl Into<String>) -> Self {
        Self {
            gateway_url: Some(url.into().trim_end_matches('/').to_owned()),
        }
    }

    /// [`finctl_env::FINCTL_GATEWAY_URL`] through `lookup`: default `http://127.0.0.1:8280`,
    /// `none` for no documents.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        match lookup(finctl_env::FINCTL_GATEWAY_URL).filter(|v| !v.is_empty()) {
            Some(v) if v == "none" => Self::none(),
            Some(v) => Self::from_gateway(v),
            None => Self::from_gateway("http://127.0.0.1:8280"),
        }
    }

    /// The document of `api`: only REST APIs have one; `None` too when the gateway does not
    /// serve it (not running, API not published there yet, an older gateway).
    pub async fn fetch(&self, api: &Api) -> Option<Value> {
        let base = self.gateway_url.as_ref()?;
        if api.kind != ApiKind::Rest {
            return None;
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .build()
            .ok()?;
        let url = format!("{base}{}/openapi.json", api.prefix());
        let response = http.get(&url).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let doc: Value = response.json().await.ok()?;
        doc.get("openapi").is_some().then_some(doc)
    }
}
