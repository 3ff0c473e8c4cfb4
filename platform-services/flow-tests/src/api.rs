//! An HTTP client of the fleet's APIs that behaves like a real client under failures: requests
//! rotate over a service's API processes, and a request that got no answer (connection
//! refused or reset, a timeout) or a 5xx is sent again, with the same `Idempotency-Key` when it
//! has one, until the deadline.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::Value;

use crate::fleet::Fleet;

/// One answer: status and JSON body (Null when not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body's string field `name`, or "".
    pub fn str(&self, name: &str) -> &str {
        self.body.get(name).and_then(Value::as_str).unwrap_or("")
    }
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub service: &'a str,
    pub method: reqwest::Method,
    pub path: String,
    pub token: &'a str,
    pub idempotency_key: Option<String>,
    pub body: Option<Value>,
}

impl<'a> Call<'a> {
    pub fn get(service: &'a str, path: impl Into<String>, token: &'a str) -> Self {
        Self {
            service,
            method: reqwest::Method::GET,
            path: path.into(),
            token,
            idempotency_key: None,
            body: None,
        }
    }

    pub fn post(service: &'a str, path: impl Into<String>, token: &'a str, body: Value) -> Self {
        Self {
            method: reqwest::Method::POST,
            body: Some(body),
            ..Self::get(service, path, token)
        }
    }

    pub fn put(service: &'a str, path: impl Into<String>, token: &'a str, body: Value) -> Self {
        Self {
            method: reqwest::Method::PUT,
            ..Self::post(service, path, token, body)
        }
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// The fleet's APIs, by service name.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    urls: Arc<HashMap<String, Vec<String>>>,
    next: Arc<AtomicUsize>,
    /// Attempts that got no answer or a 5xx and were sent again.
    pub retries: Arc<AtomicUsize>,
}

impl Api {
    pub fn new(fleet: &Fleet) -> Self {
        let mut urls = HashMap::new();
        for p in fleet.processes() {
            if p.role == crate::fleet::Role::Serve {
                urls.entry(p.service.to_string())
                    .or_insert_with(Vec::new)
                    .push(p.base_url());
            }
        }
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .pool_max_idle_per_host(64)
                .build()
                .expect("HTTP client"),
            urls: Arc::new(urls),
            next: Arc::new(AtomicUsize::new(0)),
            retries: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The API process `slot` picks (round robin over the service's processes).
    fn base(&self, service: &str, slot: usize) -> anyhow::Result<&str> {
        let Some(urls) = self.urls.get(service).filter(|u| !u.is_empty()) else {
            bail!("the fleet runs no `{service}` API");
        };
        Ok(&urls[slot % urls.len()])
    }

    /// One attempt at the API process `slot` picks (slot modulo the service's processes): an
    /// error when no answer came.
    pub async fn once(&self, call: &Call<'_>, slot: usize) -> anyhow::Result<Reply> {
        let url = format!("{}{}", self.base(call.service, slot)?, call.path);
        let mut req = self
            .http
            .request(call.method.clone(), &url)
            .bearer_auth(call.token);
        if let Some(k) = &call.idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(b) = &call.body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        Ok(Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }

    /// Sends until an answer below 500 comes, or `deadline` (then the last reply or error).
    /// Only safe for idempotent calls: GETs, PUTs, and POSTs with an `Idempotency-Key` or whose
    /// repeat is harmless (a second approval is refused, not applied twice).
    pub async fn send(&self, call: &Call<'_>, deadline: Instant) -> anyhow::Result<Reply> {
        let mut delay = Duration::from_millis(50);
        // Each request starts at the next process; each retry moves on to the one after.
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut attempt = 0;
        loop {
            let result = self.once(call, start + attempt).await;
            match &result {
                Ok(r) if r.status < 500 => return result,
                _ if Instant::now() + delay >= deadline => {
                    return result.map_err(|e| {
                        e.context(format!("{} {} (deadline)", call.method, call.path))
                    });
                }
                _ => {}
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            attempt += 1;
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(1000));
        }
    }

    /// [`Api::send`] that insists on a 2xx.
    pub async fn expect_ok(&self, call: &Call<'_>, deadline: Instant) -> anyhow::Result<Value> {
        let r = self.send(call, deadline).await?;
        if !r.ok() {
            bail!(
                "{} {}{} answered {}: {}",
                call.method,
                call.service,
                call.path,
                r.status,
                r.body
            );
        }
        Ok(r.body)
    }

    /// The service's OpenAPI document's paths (`/openapi.json`), to tell which endpoints exist.
    pub async fn paths(&self, service: &str) -> anyhow::Result<Vec<String>> {
        let url = format!("{}/openapi.json", self.base(service, 0)?);
        let doc: Value = self.http.get(url).send().await?.json().await?;
        Ok(doc
            .get("paths")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default())
    }
}
