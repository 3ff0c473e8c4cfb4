//! An in-process identity provider for tests: OIDC discovery and a JWKS served by axum on
//! 127.0.0.1, and tokens signed with fixed test RSA keys. Built with the `test-support`
//! feature; never in a release image.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio::sync::RwLock;

pub mod infra;

use crate::auth::{JwksOptions, KeySource, TokenVerifier};

pub const AUDIENCE: &str = "finctl-test";

/// One of the two bundled test keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKey {
    A,
    B,
}

impl TestKey {
    pub fn kid(self) -> &'static str {
        match self {
            Self::A => "test-key-a",
            Self::B => "test-key-b",
        }
    }

    pub fn private_pem(self) -> &'static str {
        match self {
            Self::A => include_str!("testing/keys/test-key-a.pem"),
            Self::B => include_str!("testing/keys/test-key-b.pem"),
        }
    }

    pub fn public_pem(self) -> &'static str {
        match self {
            Self::A => include_str!("testing/keys/test-key-a.pub.pem"),
            Self::B => panic!("only key A's public PEM is bundled"),
        }
    }

    pub fn jwk(self) -> Value {
        let raw = match self {
            Self::A => include_str!("testing/keys/test-key-a.jwk.json"),
            Self::B => include_str!("testing/keys/test-key-b.jwk.json"),
        };
        serde_json::from_str(raw).expect("bundled JWK is JSON")
    }
}

struct State {
    base: String,
    published: RwLock<Vec<TestKey>>,
    jwks_hits: AtomicUsize,
}

/// A running test IdP. The server stops when the value is dropped.
pub struct TestIdp {
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestIdp {
    /// Starts serving with key A published.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            base,
            published: RwLock::new(vec![TestKey::A]),
            jwks_hits: AtomicUsize::new(0),
        });
        let s1 = state.clone();
        let s2 = state.clone();
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let s = s1.clone();
                    async move {
                        axum::Json(json!({
                            "issuer": s.base,
                            "jwks_uri": format!("{}/jwks", s.base),
                            "id_token_signing_alg_values_supported": ["RS256"],
                        }))
                    }
                }),
            )
            .route(
                "/jwks",
                get(move || {
                    let s = s2.clone();
                    async move {
                        s.jwks_hits.fetch_add(1, Ordering::SeqCst);
                        let keys: Vec<Value> =
                            s.published.read().await.iter().map(|k| k.jwk()).collect();
                        axum::Json(json!({ "keys": keys }))
                    }
                }),
            );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { state, task }
    }

    pub fn issuer(&self) -> &str {
        &self.state.base
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.state.base)
    }

    /// How often the JWKS has been fetched.
    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    /// Replace the published key set (key rotation).
    pub async fn publish(&self, keys: &[TestKey]) {
        *self.state.published.write().await = keys.to_vec();
    }

    /// A verifier pointed at this IdP, refreshing on unknown kids at most every `min_refresh`.
    pub fn verifier(&self, min_refresh: Duration) -> TokenVerifier {
        TokenVerifier::with_source(
            KeySource::Discovery(self.discovery_url()),
            self.issuer(),
            &[AUDIENCE.to_string()],
            JwksOptions {
                min_refresh_interval: min_refresh,
                ..JwksOptions::default()
            },
        )
    }

    /// Environment for a service process that should trust this IdP.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("OIDC_ISSUER".into(), self.issuer().to_string()),
            ("OIDC_AUDIENCE".into(), AUDIENCE.into()),
        ]
    }

    /// Standard claims for `username` with `roles` in the `groups` claim (as Canaille does).
    pub fn claims(&self, username: &str, roles: &[&str]) -> Value {
        let now = jsonwebtoken::get_current_timestamp();
        json!({
            "iss": self.issuer(),
            "aud": AUDIENCE,
            "sub": username,
            "preferred_username": username,
            "email": format!("{username}@innover.local"),
            "groups": roles,
            "iat": now,
            "exp": now + 300,
        })
    }

    /// A valid token for `username` with `roles`, signed by key A.
    pub fn token(&self, username: &str, roles: &[&str]) -> String {
        sign(&self.claims(username, roles), TestKey::A)
    }
}

/// Sign `claims` with RS256 and the test key's `kid`.
pub fn sign(claims: &Value, key: TestKey) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid().to_string());
    let k = EncodingKey::from_rsa_pem(key.private_pem().as_bytes()).expect("bundled PEM");
    encode(&header, claims, &k).expect("sign")
}
