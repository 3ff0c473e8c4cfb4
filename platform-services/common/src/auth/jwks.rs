//! The IdP's signing keys, fetched through OIDC discovery and cached.
//!
//! A token whose `kid` is not cached triggers a refresh (key rotation), but at most once
//! per `min_refresh_interval` so that garbage `kid`s cannot make us hammer the IdP.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use super::AuthError;

/// Where the key set comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// An OIDC discovery document whose `jwks_uri` names the key set.
    Discovery(String),
    /// The key set URL itself.
    Jwks(String),
}

#[derive(Debug, Clone)]
pub struct JwksOptions {
    /// Minimum time between two fetches triggered by unknown `kid`s.
    pub min_refresh_interval: Duration,
    /// Keys older than this are re-fetched on the next request.
    pub max_age: Duration,
    pub http_timeout: Duration,
}

impl Default for JwksOptions {
    fn default() -> Self {
        Self {
            min_refresh_interval: Duration::from_secs(30),
            max_age: Duration::from_secs(600),
            http_timeout: Duration::from_secs(5),
        }
    }
}

struct Cached {
    keys: HashMap<String, Arc<DecodingKey>>,
    /// The key used for tokens without `kid`, when the set has exactly one RSA key.
    only: Option<Arc<DecodingKey>>,
    fetched_at: Option<Instant>,
}

pub struct JwksCache {
    source: KeySource,
    options: JwksOptions,
    http: reqwest::Client,
    cached: RwLock<Cached>,
    /// Serialises fetches and remembers when the last one started.
    last_fetch: Mutex<Option<Instant>>,
    jwks_uri: RwLock<Option<String>>,
}

#[derive(Deserialize)]
struct Discovery {
    jwks_uri: String,
}

impl JwksCache {
    pub fn new(source: KeySource, options: JwksOptions) -> Self {
        let http = reqwest::Client::builder()
            .timeout(options.http_timeout)
            .build()
            .expect("reqwest client with rustls builds");
        Self {
            source,
            options,
            http,
            cached: RwLock::new(Cached {
                keys: HashMap::new(),
                only: None,
                fetched_at: None,
            }),
            last_fetch: Mutex::new(None),
            jwks_uri: RwLock::new(None),
        }
    }

    /// The key for `kid` (or the only key when the token has no `kid`).
    ///
    /// Never queues behind a fetch another request started: a known key is served (stale if
    /// need be) while the fetch runs, and an unknown `kid` is refused at once. Only the very
    /// first load, with nothing cached, waits for the fetch in progress.
    pub async fn key(&self, kid: Option<&str>) -> Result<Arc<DecodingKey>, AuthError> {
        let (known, empty) = {
            let c = self.cached.read().await;
            let fresh = c
                .fetched_at
                .is_some_and(|t| t.elapsed() < self.options.max_age);
            match lookup(&c, kid) {
                Some(k) if fresh => return Ok(k),
                known => (known, c.keys.is_empty() && c.only.is_none()),
            }
        };
        let guard = if empty {
            self.last_fetch.lock().await
        } else {
            match self.last_fetch.try_lock() {
                Ok(g) => g,
                // A fetch is running: use what we have rather than wait for it.
                Err(_) => {
                    return known
                        .ok_or_else(|| AuthError::UnknownKey(kid.unwrap_or("<none>").to_string()));
                }
            }
        };
        // Stale or unknown: refresh, at most once per `min_refresh_interval` unless empty.
        self.refresh_locked(guard, !empty).await?;
        let c = self.cached.read().await;
        lookup(&c, kid)
            .or(known)
            .ok_or_else(|| AuthError::UnknownKey(kid.unwrap_or("<none>").to_string()))
    }

    /// Fetches the key set now (at start, for readiness); Ok once at least one key is cached.
    pub async fn load(&self) -> Result<(), AuthError> {
        let guard = self.last_fetch.lock().await;
        self.refresh_locked(guard, false).await?;
        let c = self.cached.read().await;
        if c.keys.is_empty() && c.only.is_none() {
            return Err(AuthError::KeysUnavailable(
                "the key set has no usable key".into(),
            ));
        }
        Ok(())
    }

    async fn refresh_locked(
        &self,
        mut last: tokio::sync::MutexGuard<'_, Option<Instant>>,
        rate_limited: bool,
    ) -> Result<(), AuthError> {
        if let Some(t) = *last {
            if rate_limited && t.elapsed() < self.options.min_refresh_interval {
                return Ok(());
            }
            // Someone refreshed while we waited for the lock.
            if t.elapsed() < Duration::from_millis(50) {
                return Ok(());
            }
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(set) => {
                let mut c = self.cached.write().await;
                *c = set;
                tracing::info!(keys = c.keys.len(), "loaded signing keys");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not fetch signing keys");
                // Keep serving cached keys when the IdP blips.
                let c = self.cached.read().await;
                if c.keys.is_empty() && c.only.is_none() {
                    Err(e)
                } else {
                    Ok(())
                }
            }
        }
    }

    async fn jwks_url(&self) -> Result<String, AuthError> {
        match &self.source {
            KeySource::Jwks(u) => Ok(u.clone()),
            KeySource::Discovery(d) => {
                if let Some(u) = self.jwks_uri.read().await.clone() {
                    return Ok(u);
                }
                let doc: Discovery = self.get_json(d).await?;
                *self.jwks_uri.write().await = Some(doc.jwks_uri.clone());
                Ok(doc.jwks_uri)
            }
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, AuthError> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| AuthError::KeysUnavailable(format!("{url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(AuthError::KeysUnavailable(format!(
                "{url}: HTTP {}",
                resp.status()
            )));
        }
        resp.json()
            .await
            .map_err(|e| AuthError::KeysUnavailable(format!("{url}: {e}")))
    }

    async fn fetch(&self) -> Result<Cached, AuthError> {
        let url = self.jwks_url().await?;
        let set: JwkSet = self.get_json(&url).await?;
        let mut keys = HashMap::new();
        let mut rsa = Vec::new();
        for jwk in &set.keys {
            // Only RSA signing keys meant for RS256 (or with no alg stated) are usable.
            if !matches!(jwk.algorithm, AlgorithmParameters::RSA(_)) {
                continue;
            }
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            if jwk
                .common
                .key_algorithm
                .is_some_and(|a| a != KeyAlgorithm::RS256)
            {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            let key = Arc::new(key);
            rsa.push(key.clone());
            if let Some(kid) = &jwk.common.key_id {
                keys.insert(kid.clone(), key);
            }
        }
        let only = if rsa.len() == 1 { rsa.pop() } else { None };
        Ok(Cached {
            keys,
            only,
            fetched_at: Some(Instant::now()),
        })
    }
}

fn lookup(c: &Cached, kid: Option<&str>) -> Option<Arc<DecodingKey>> {
    match kid {
        Some(kid) => c.keys.get(kid).cloned(),
        None => c.only.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// A JWKS endpoint serving test key A until `hang` is set, then never answering.
    async fn flaky_jwks(hang: Arc<AtomicBool>) -> String {
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let hang = hang.clone();
                async move {
                    if hang.load(Ordering::SeqCst) {
                        std::future::pending::<()>().await;
                    }
                    axum::Json(serde_json::json!({
                        "keys": [platform_testing::TestKey::A.jwk()]
                    }))
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        url
    }

    #[tokio::test]
    async fn no_request_waits_behind_a_hanging_fetch() {
        let hang = Arc::new(AtomicBool::new(false));
        let url = flaky_jwks(hang.clone()).await;
        let cache = Arc::new(JwksCache::new(
            KeySource::Jwks(url),
            JwksOptions {
                min_refresh_interval: Duration::ZERO,
                // Always stale: every lookup wants a refresh.
                max_age: Duration::ZERO,
                http_timeout: Duration::from_secs(30),
            },
        ));
        cache.load().await.unwrap();
        hang.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(60)).await;
        // The first request starts a fetch that hangs.
        let first = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.key(Some("test-key-a")).await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!first.is_finished());
        // Others are answered from the last good keys at once.
        let known = tokio::time::timeout(Duration::from_secs(1), cache.key(Some("test-key-a")))
            .await
            .expect("a known kid does not wait for the fetch");
        assert!(known.is_ok());
        let unknown = tokio::time::timeout(Duration::from_secs(1), cache.key(Some("other")))
            .await
            .expect("an unknown kid does not wait for the fetch");
        assert!(matches!(unknown, Err(AuthError::UnknownKey(_))));
        first.abort();
    }
}
