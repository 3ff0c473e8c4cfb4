//! Test support for the platform services: an in-process identity provider (OIDC discovery
//! and a JWKS served by axum on 127.0.0.1, tokens signed with fixed test RSA keys), real
//! Postgres/Redis/Kafka for integration tests ([`infra`]), a service's full app wired to them
//! ([`service_app`]) and the sample job tasks tests use ([`tasks`]).
//!
//! A dev-dependency only: it must never be a normal dependency of a shipped crate, since it
//! bundles private keys and pulls in the container test kit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio::sync::RwLock;

pub mod env;
pub mod infra;
pub mod openapi;
pub mod tasks;

/// A port free on 127.0.0.1 right now: the test kit's one `free_port`.
pub use finctl_testkit::free_port;

use platform_common::auth::{JwksOptions, KeySource, TokenVerifier};
use platform_common::env as service_env;

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
            Self::A => include_str!("keys/test-key-a.pem"),
            Self::B => include_str!("keys/test-key-b.pem"),
        }
    }

    pub fn public_pem(self) -> &'static str {
        match self {
            Self::A => include_str!("keys/test-key-a.pub.pem"),
            Self::B => panic!("only key A's public PEM is bundled"),
        }
    }

    pub fn jwk(self) -> Value {
        let raw = match self {
            Self::A => include_str!("keys/test-key-a.jwk.json"),
            Self::B => include_str!("keys/test-key-b.jwk.json"),
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
            (service_env::OIDC_ISSUER.into(), self.issuer().to_string()),
            (service_env::OIDC_AUDIENCE.into(), AUDIENCE.into()),
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

/// A service's full HTTP app wired to real Postgres and Redis (from [`infra`]) and to `idp`,
/// with migrations applied: what `serve` runs, minus the socket.
pub async fn service_app(
    spec: &platform_common::service::ServiceSpec,
    idp: &TestIdp,
    extra_env: &[(&str, &str)],
) -> (
    axum::Router,
    platform_common::service::Context,
    Vec<infra::Guard>,
) {
    use std::collections::HashMap;

    let (db, g1) = infra::postgres().await;
    let (redis, g2) = infra::redis().await;
    let mut env: HashMap<String, String> = extra_env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in idp.env() {
        env.insert(k, v);
    }
    let env = std::sync::Arc::new(env);
    let redis = platform_common::redis_handle::RedisHandle::new(&redis).expect("redis config");
    // A unique queue name per test keeps parallel tests apart.
    let ctx = platform_common::service::Context {
        service: format!("svc-{}", spec.name),
        name: spec.name,
        db: platform_common::db::pool(&db, 8),
        jobs: platform_common::jobs::JobClient::new(&infra::unique(spec.name), redis.clone()),
        redis,
        env,
    };
    platform_common::migrate::run(&ctx.db, spec.name, spec.migrations)
        .await
        .expect("migrations apply");
    let app = assemble(spec, &ctx, idp);
    (app, ctx, vec![g1, g2])
}

/// What `serve` builds from a context: the service's routes inside the shared router, its
/// tokens checked against `idp`.
fn assemble(
    spec: &platform_common::service::ServiceSpec,
    ctx: &platform_common::service::Context,
    idp: &TestIdp,
) -> axum::Router {
    let routes = (spec.routes)(ctx).expect("service config");
    platform_common::http::router(
        platform_common::http::Platform {
            service: ctx.service.clone(),
            verifier: std::sync::Arc::new(idp.verifier(Duration::from_secs(30))),
            readiness: std::sync::Arc::new(platform_common::health::Readiness::new(
                ctx.service.clone(),
            )),
            metrics: std::sync::Arc::new(platform_common::metrics::Metrics::new(&ctx.service)),
        },
        routes,
        platform_common::http::openapi(&ctx.service, (spec.openapi)()),
    )
}

/// A service's app on fresh infrastructure ([`service_app`]) and the IdP its tokens come from:
/// the setup of an API test, one per test.
pub struct TestApi {
    pub app: axum::Router,
    pub ctx: platform_common::service::Context,
    pub idp: TestIdp,
    _infra: Vec<infra::Guard>,
}

impl TestApi {
    pub async fn start(
        spec: &platform_common::service::ServiceSpec,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let idp = TestIdp::start().await;
        let (app, ctx, infra) = service_app(spec, &idp, extra_env).await;
        Self {
            app,
            ctx,
            idp,
            _infra: infra,
        }
    }

    /// A valid token for `username` with `roles`.
    pub fn token(&self, username: &str, roles: &[&str]) -> String {
        self.idp.token(username, roles)
    }

    /// One request with a bearer token; status and JSON body (Null when not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (axum::http::StatusCode, Value) {
        call(&self.app, method, path, Some(token), &[], body).await
    }
}

/// Sends one request to an app and returns status and JSON body (Null when not JSON).
pub async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (axum::http::StatusCode, Value) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let mut req = axum::http::Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(axum::body::Body::from(b.to_string())),
        None => req.body(axum::body::Body::empty()),
    }
    .expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}
