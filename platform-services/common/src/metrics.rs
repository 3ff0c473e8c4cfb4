//! Prometheus metrics: HTTP traffic by route and status, jobs by task and outcome.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

pub struct Metrics {
    registry: Mutex<Registry>,
    http_requests: Family<Labels, Counter>,
    http_duration: Family<Labels, Histogram, fn() -> Histogram>,
    jobs: Family<Labels, Counter>,
    job_duration: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Metrics {
    pub fn new(service: &str) -> Self {
        let mut registry = Registry::with_prefix_and_labels(
            "finctl",
            [(
                std::borrow::Cow::Borrowed("service"),
                std::borrow::Cow::Owned(service.to_string()),
            )]
            .into_iter(),
        );
        let http_requests = Family::<Labels, Counter>::default();
        let http_duration =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let jobs = Family::<Labels, Counter>::default();
        let job_duration =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "http_requests",
            "HTTP requests served",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            http_duration.clone(),
        );
        registry.register("jobs", "Jobs finished, by task and outcome", jobs.clone());
        registry.register("job_duration_seconds", "Job run time", job_duration.clone());
        Self {
            registry: Mutex::new(registry),
            http_requests,
            http_duration,
            jobs,
            job_duration,
        }
    }

    pub fn observe_http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let labels = vec![
            ("method", method.to_string()),
            ("route", route.to_string()),
            ("status", status.to_string()),
        ];
        self.http_requests.get_or_create(&labels).inc();
        let labels = vec![("method", method.to_string()), ("route", route.to_string())];
        self.http_duration.get_or_create(&labels).observe(seconds);
    }

    pub fn observe_job(&self, task: &str, outcome: &str, seconds: f64) {
        self.jobs
            .get_or_create(&vec![
                ("task", task.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
        self.job_duration
            .get_or_create(&vec![("task", task.to_string())])
            .observe(seconds);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let reg = self.registry.lock().expect("metrics registry lock");
        encode(&mut out, &reg).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Metrics;

    #[test]
    fn renders_http_counters() {
        let m = Metrics::new("svc-test");
        m.observe_http("GET", "/me", 200, 0.002);
        let text = m.render();
        assert!(text.contains("finctl_http_requests_total{"), "{text}");
        assert!(text.contains("route=\"/me\""), "{text}");
        assert!(text.contains("service=\"svc-test\""), "{text}");
    }
}
