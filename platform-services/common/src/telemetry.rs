//! JSON logs on stdout, one object per line, with the request id in each request's span; and,
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the same spans exported as OTLP traces.
//!
//! Export is one more layer on the subscriber: the JSON lines stay as they are (request spans
//! gain a `trace_id` field). When the endpoint is unset nothing OpenTelemetry is built.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::{self, HeaderMap};
use bytes::Bytes;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_http::{HeaderExtractor, HeaderInjector, HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{ConfigError, OtlpConfig, OtlpProtocol};
use crate::env;

const DEFAULT_FILTER: &str = "info,tokio_postgres=warn,rdkafka=warn";

/// W3C trace context header.
const TRACEPARENT: &str = "traceparent";

/// How long shutdown waits for the last batch; a missing collector must not hold up a stop.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// OTLP/HTTP request timeout, the OTLP default.
const HTTP_EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Installs the global subscriber: JSON logs, plus trace export when `otlp` is set. Call it
/// inside the tokio runtime. Safe to call more than once (later calls do nothing).
pub fn init(service: &str, otlp: Option<&OtlpConfig>) -> Result<Telemetry, ConfigError> {
    if tracing::dispatcher::has_been_set() {
        return Ok(Telemetry { export: None });
    }
    let export = otlp
        .map(|cfg| TraceExport::start(service, cfg))
        .transpose()?;
    if subscriber(log_filter(), std::io::stdout, export.as_ref())
        .try_init()
        .is_err()
    {
        return Ok(Telemetry { export: None });
    }
    tracing::info!(service, version = env!("CARGO_PKG_VERSION"), "starting");
    if let Some(cfg) = otlp {
        tracing::info!(endpoint = %cfg.endpoint, protocol = %cfg.protocol, "exporting traces over OTLP");
    }
    Ok(Telemetry { export })
}

/// `RUST_LOG`, or `info` with the database and Kafka clients' chatter cut to warnings.
pub fn log_filter() -> EnvFilter {
    EnvFilter::try_from_env(env::RUST_LOG).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

/// The subscriber [`init`] installs, built without installing it (tests scope it with
/// `tracing::subscriber::set_default`). `filter` applies to the log lines and to the spans
/// exported alike.
pub fn subscriber<W>(
    filter: EnvFilter,
    writer: W,
    export: Option<&TraceExport>,
) -> impl Subscriber + Send + Sync + use<W>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .with_writer(writer);
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(export.map(TraceExport::layer))
}

/// What [`init`] started; [`Telemetry::shutdown`] exports the spans still queued.
#[must_use = "call shutdown() before exiting, or the last spans are lost"]
pub struct Telemetry {
    export: Option<TraceExport>,
}

impl Telemetry {
    pub async fn shutdown(self) {
        if let Some(export) = self.export {
            export.shutdown().await;
        }
    }
}

/// An OTLP trace pipeline: a batch processor on its own thread feeding the exporter, every
/// span tagged with `service.name`. Export failures never reach the service: a batch that
/// cannot be sent is dropped, with one warning per outage.
pub struct TraceExport {
    provider: SdkTracerProvider,
}

impl TraceExport {
    /// Builds the pipeline; nothing connects yet. Call it inside the tokio runtime: the gRPC
    /// channel and the HTTP client run their I/O on it.
    pub fn start(service: &str, cfg: &OtlpConfig) -> Result<Self, ConfigError> {
        let built = match cfg.protocol {
            OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(cfg.endpoint.clone())
                .build(),
            OtlpProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                // The generic variable names the collector; the traces path is ours to add.
                .with_endpoint(format!("{}/v1/traces", cfg.endpoint))
                .with_http_client(RuntimeHttpClient::new()?)
                .build(),
        };
        let exporter = built.map_err(|e| ConfigError::Invalid {
            name: env::OTEL_EXPORTER_OTLP_ENDPOINT,
            value: cfg.endpoint.clone(),
            reason: e.to_string(),
        })?;
        let provider = SdkTracerProvider::builder()
            .with_resource(
                Resource::builder()
                    .with_service_name(service.to_string())
                    .build(),
            )
            .with_batch_exporter(Reported::new(exporter, cfg.endpoint.clone()))
            .build();
        Ok(Self { provider })
    }

    /// The layer turning `tracing` spans into spans of this pipeline.
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("platform-common"))
            .with_filter(without_exporter_stack().and(filter_fn(|meta| {
                !(meta.is_span() && meta.name() == PROBE_SPAN)
            })))
    }

    /// Exports every span that has ended, now (the batch processor otherwise waits up to 5 s).
    pub async fn flush(&self) -> OTelSdkResult {
        let provider = self.provider.clone();
        tokio::task::spawn_blocking(move || provider.force_flush())
            .await
            .unwrap_or_else(|e| Err(OTelSdkError::InternalFailure(e.to_string())))
    }

    /// Exports what is still queued (for at most 3 s) and stops the pipeline.
    pub async fn shutdown(self) {
        let provider = self.provider;
        // Blocking: it waits for the exporter thread, whose I/O needs the runtime's workers.
        let done =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT))
                .await
                .unwrap_or_else(|e| Err(OTelSdkError::InternalFailure(e.to_string())));
        if let Err(e) = done {
            tracing::warn!(error = %e, "trace export stopped; spans still queued are lost");
        }
    }
}

/// The span name of health checks and metric scrapes: logged like any request, never exported.
pub const PROBE_SPAN: &str = "probe";

/// The exporter's own stack (HTTP/2, gRPC, the HTTP client) is not traced: its spans would be
/// exported by the next batch, which would make more.
fn without_exporter_stack() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(
            ["h2", "hyper", "tonic", "tower", "reqwest", "opentelemetry"]
                .map(|target| (target, LevelFilter::OFF)),
        )
}

/// Makes `span` continue the caller's trace (W3C `traceparent` in `headers`) and records the
/// trace id in its `trace_id` field, so its log lines can be found from the trace. Does
/// nothing when export is off.
pub fn continue_trace(span: &tracing::Span, headers: &HeaderMap) {
    if headers.contains_key(TRACEPARENT) {
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        // Fails only when export is off or the span is filtered out: nothing to continue.
        let _ = span.set_parent(parent);
    }
    record_trace_id(span);
}

/// Records the trace `span` belongs to in its `trace_id` field (which it must declare), so its
/// log lines can be found from the trace. Does nothing when export is off or the span is not
/// exported.
pub fn record_trace_id(span: &tracing::Span) {
    let cx = span.context();
    let trace_id = cx.span().span_context().trace_id();
    if trace_id != opentelemetry::trace::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// Headers that carry the current span's trace to a service called from inside it
/// (`traceparent`). Empty when export is off.
pub fn trace_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    let cx = tracing::Span::current().context();
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(&mut headers));
    }
    headers
}

/// Passes batches through, and turns failures into one warning per outage (and a line when
/// it ends) instead of an error per batch.
#[derive(Debug)]
struct Reported<E> {
    inner: E,
    endpoint: String,
    failing: AtomicBool,
}

impl<E> Reported<E> {
    fn new(inner: E, endpoint: String) -> Self {
        Self {
            inner,
            endpoint,
            failing: AtomicBool::new(false),
        }
    }
}

impl<E: SpanExporter> SpanExporter for Reported<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!(endpoint = %self.endpoint, "trace export recovered");
            }
            Err(e) if !self.failing.swap(true, Ordering::Relaxed) => {
                tracing::warn!(
                    endpoint = %self.endpoint, error = %e, spans,
                    "trace export failed; spans are dropped until the collector answers"
                );
            }
            _ => {}
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// OTLP/HTTP through the services' reqwest client (rustls). The batch processor exports from
/// its own thread, outside the runtime, so each request runs as a task on the runtime the
/// exporter was built in.
#[derive(Debug)]
struct RuntimeHttpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl RuntimeHttpClient {
    fn new() -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            .timeout(HTTP_EXPORT_TIMEOUT)
            .build()
            .map_err(|e| ConfigError::Invalid {
                name: env::OTEL_EXPORTER_OTLP_PROTOCOL,
                value: OtlpProtocol::HttpProtobuf.to_string(),
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self {
            client,
            runtime: tokio::runtime::Handle::current(),
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for RuntimeHttpClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let (status, headers, body) = self
            .runtime
            .spawn(async move {
                let response = client.execute(request).await?;
                let status = response.status();
                let headers = response.headers().clone();
                Ok::<_, reqwest::Error>((status, headers, response.bytes().await?))
            })
            .await??;
        let mut response = http::Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// An exporter answering each batch with the next scripted result.
    #[derive(Debug)]
    struct Scripted(Mutex<VecDeque<OTelSdkResult>>);

    impl SpanExporter for Scripted {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            self.0
                .lock()
                .unwrap()
                .pop_front()
                .expect("a scripted result")
        }
    }

    #[tokio::test]
    async fn export_failures_warn_once_per_outage() {
        let failed = || Err(OTelSdkError::InternalFailure("connection refused".into()));
        let exporter = Reported::new(
            Scripted(Mutex::new(
                [failed(), failed(), Ok(()), Ok(()), failed()].into(),
            )),
            "http://collector:4317".into(),
        );
        let out = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let out = out.clone();
            move || Captured(out.clone())
        };
        let _guard =
            tracing::subscriber::set_default(subscriber(EnvFilter::new("info"), writer, None));
        for _ in 0..5 {
            let _ = exporter.export(Vec::new()).await;
        }
        let out = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let summary: Vec<_> = lines
            .iter()
            .map(|l| (l["level"].as_str().unwrap(), l["message"].as_str().unwrap()))
            .collect();
        let failed = "trace export failed; spans are dropped until the collector answers";
        assert_eq!(
            summary,
            [
                ("WARN", failed),
                ("INFO", "trace export recovered"),
                ("WARN", failed),
            ]
        );
        assert_eq!(lines[0]["endpoint"], "http://collector:4317");
        assert_eq!(lines[0]["error"], "Operation failed: connection refused");
    }

    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
