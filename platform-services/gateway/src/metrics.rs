//! The gateway's Prometheus metrics, served on the admin listener at `/metrics`.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

fn latency() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    denied: Family<Labels, Counter>,
    upstream_errors: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("gateway");
        let requests = Family::<Labels, Counter>::default();
        let duration =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        let denied = Family::<Labels, Counter>::default();
        let upstream_errors = Family::<Labels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by API and status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to the response head, by API",
            duration.clone(),
        );
        registry.register(
            "denied",
            "Requests refused at the edge (401, 403, 429), by API and status",
            denied.clone(),
        );
        registry.register(
            "upstream_errors",
            "Backend failures (connect, timeout, protocol), by API and kind",
            upstream_errors.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            requests,
            duration,
            denied,
            upstream_errors,
        }
    }
}

impl Metrics {
    pub fn observe(&self, api: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&vec![
                ("api", api.to_string()),
                ("status", status.to_string()),
            ])
            .inc();
        self.duration
            .get_or_create(&vec![("api", api.to_string())])
            .observe(seconds);
        if matches!(status, 401 | 403 | 429) {
            self.denied
                .get_or_create(&vec![
                    ("api", api.to_string()),
                    ("status", status.to_string()),
                ])
                .inc();
        }
    }

    pub fn upstream_error(&self, api: &str, kind: &'static str) {
        self.upstream_errors
            .get_or_create(&vec![("api", api.to_string()), ("kind", kind.to_string())])
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        encode(&mut out, &reg).expect("writing to a String cannot fail");
        out
    }
}
