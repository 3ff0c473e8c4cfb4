//! The built-in API gateway: routes `/<context>/<version>/<rest>` to the APIs of the route
//! table (see `gateway-routes`), checks JWTs at the edge, throttles, and serves an admin API
//! on a separate listener. The table is runtime state, swapped atomically and stored on disk.

pub mod admin;
pub mod body;
pub mod config;
pub mod cors;
pub mod env;
pub mod graphql;
pub mod metrics;
pub mod openapi;
pub use gateway_routes::path;
pub mod proxy;
pub mod store;
pub mod table;
pub mod throttle;
pub mod websocket;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use platform_common::Secret;
use platform_common::auth::{JwksOptions, TokenVerifier};
use tokio::net::TcpListener;

pub use config::GatewayConfig;

pub type Upstream = Client<HttpConnector, axum::body::Body>;

/// Everything a request needs, shared by both listeners.
pub struct Gateway {
    pub table: ArcSwap<table::Compiled>,
    pub store: store::Store,
    pub verifier: TokenVerifier,
    pub throttles: throttle::Throttles,
    pub metrics: metrics::Metrics,
    admin_token: Secret<String>,
    /// False after a corrupt stored table, until an admin change succeeds.
    pub routes_ok: AtomicBool,
    pub routes_problem: Mutex<Option<String>>,
    pub keys_ok: AtomicBool,
    /// One pooled client per connect timeout, kept across table swaps.
    clients: Mutex<HashMap<u64, Upstream>>,
    /// Serialises admin changes: load, validate, persist, swap.
    pub write_lock: tokio::sync::Mutex<()>,
}

impl Gateway {
    pub fn new(cfg: &GatewayConfig) -> Arc<Self> {
        let store = store::Store::new(cfg.routes_file.clone());
        let (table, ok, problem) = match store.load() {
            store::Loaded::Missing => {
                tracing::info!(path = %store.path().display(), "no stored route table; starting empty");
                (Default::default(), true, None)
            }
            store::Loaded::Table(t) => {
                tracing::info!(apis = t.apis.len(), path = %store.path().display(), "route table loaded");
                (t, true, None)
            }
            store::Loaded::Corrupt { reason, set_aside } => {
                let msg = format!(
                    "the stored route table was unreadable ({reason}); set aside as {}; PUT /admin/apis to recover",
                    set_aside.display()
                );
                tracing::error!(path = %store.path().display(), "{msg}");
                (Default::default(), false, Some(msg))
            }
        };
        Arc::new(Self {
            table: ArcSwap::from_pointee(table::Compiled::new(table)),
            store,
            verifier: TokenVerifier::new(&cfg.oidc, JwksOptions::default()),
            throttles: Default::default(),
            metrics: Default::default(),
            admin_token: cfg.admin_token.clone(),
            routes_ok: AtomicBool::new(ok),
            routes_problem: Mutex::new(problem),
            keys_ok: AtomicBool::new(false),
            clients: Mutex::new(HashMap::new()),
            write_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The pooled keep-alive client for backends with this connect timeout.
    pub fn client(&self, connect_ms: u64) -> Upstream {
        let mut map = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(connect_ms)
            .or_insert_with(|| {
                let mut http = HttpConnector::new();
                http.set_connect_timeout(Some(Duration::from_millis(connect_ms)));
                http.set_nodelay(true);
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(60))
                    .build(http)
            })
            .clone()
    }

    pub fn admin_token_matches(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.admin_token.expose().as_bytes().ct_eq(presented))
    }

    pub fn ready(&self) -> bool {
        self.routes_ok.load(Ordering::Acquire) && self.keys_ok.load(Ordering::Acquire)
    }
}

/// A running gateway (tests and `serve`): both listeners bound.
pub struct Running {
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub gateway: Arc<Gateway>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Running {
    /// Serves until both listeners stop (they do not, short of an error).
    pub async fn wait(mut self) {
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }
}

/// Starts serving on the given listeners.
pub async fn start(cfg: &GatewayConfig, public: TcpListener, admin: TcpListener) -> Running {
    let gateway = Gateway::new(cfg);
    let public_addr = public.local_addr().expect("bound listener");
    let admin_addr = admin.local_addr().expect("bound listener");
    let mut tasks = Vec::new();
    let app = proxy::router(gateway.clone());
    tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(
            public,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        {
            tracing::error!(error = %e, "public listener failed");
        }
    }));
    let admin_app = admin::router(gateway.clone());
    tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(admin, admin_app).await {
            tracing::error!(error = %e, "admin listener failed");
        }
    }));
    tasks.push(tokio::spawn(load_keys(gateway.clone())));
    let g = gateway.clone();
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            tick.tick().await;
            g.throttles.forget_idle();
        }
    }));
    tracing::info!(public = %public_addr, admin = %admin_addr, "gateway serving");
    Running {
        public: public_addr,
        admin: admin_addr,
        gateway,
        tasks,
    }
}

/// Fetches the IdP's keys until the first success (readiness waits for it).
async fn load_keys(g: Arc<Gateway>) {
    let mut delay = Duration::from_millis(200);
    loop {
        match g.verifier.load_keys().await {
            Ok(()) => {
                g.keys_ok.store(true, Ordering::Release);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "signing keys not loaded yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}
