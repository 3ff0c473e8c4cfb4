//! JSON logs on stdout, one object per line, with the request id in each request's span.

use tracing_subscriber::EnvFilter;

use crate::env;

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init(service: &str) {
    let filter = EnvFilter::try_from_env(env::RUST_LOG)
        .unwrap_or_else(|_| EnvFilter::new("info,tokio_postgres=warn,rdkafka=warn"));
    let installed = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .with_env_filter(filter)
        .try_init()
        .is_ok();
    if installed {
        tracing::info!(service, version = env!("CARGO_PKG_VERSION"), "starting");
    }
}
