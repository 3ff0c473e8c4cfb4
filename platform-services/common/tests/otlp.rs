//! Trace export end to end: a real request through the shared router, exported to an OTLP
//! receiver running in the test, over gRPC and over HTTP/protobuf.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use platform_common::config::{OtlpConfig, OtlpProtocol};
use platform_common::health::Readiness;
use platform_common::http::{self, Platform};
use platform_common::jobs::{JobClient, TaskRegistry, Worker, WorkerOptions};
use platform_common::metrics::Metrics;
use platform_common::redis_handle::RedisHandle;
use platform_common::telemetry::{self, TraceExport};
use platform_testing::{TestIdp, infra};
use prost::Message;
use tokio::sync::oneshot;
use tower::ServiceExt;
use tracing::instrument::WithSubscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

const SERVICE: &str = "svc-otlp-test";
/// The caller's trace, as another service would send it (sampled).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

/// Everything a receiver was sent.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

impl Received {
    /// Each span received, with its resource's `service.name`.
    fn spans(&self) -> Vec<(Option<String>, Span)> {
        let mut out = Vec::new();
        for request in self.0.lock().unwrap().iter() {
            for rs in &request.resource_spans {
                let service = rs.resource.as_ref().and_then(|r| {
                    r.attributes
                        .iter()
                        .find(|kv| kv.key == "service.name")
                        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                            Value::StringValue(s) => Some(s.clone()),
                            _ => None,
                        })
                });
                for ss in &rs.scope_spans {
                    out.extend(ss.spans.iter().map(|s| (service.clone(), s.clone())));
                }
            }
        }
        out
    }
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// An OTLP/gRPC receiver on 127.0.0.1; returns its endpoint.
async fn grpc_receiver(received: Received) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(received))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    format!("http://{addr}")
}

/// An OTLP/HTTP receiver (`POST /v1/traces`, protobuf) on 127.0.0.1; returns its endpoint.
async fn http_receiver(received: Received) -> String {
    async fn traces(
        State(r): State<Received>,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut reply = HeaderMap::new();
        reply.insert(
            header::CONTENT_TYPE,
            "application/x-protobuf".parse().unwrap(),
        );
        if headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes())
            != Some(b"application/x-protobuf")
        {
            return (StatusCode::UNSUPPORTED_MEDIA_TYPE, reply, Vec::new());
        }
        match ExportTraceServiceRequest::decode(body) {
            Ok(request) => {
                r.0.lock().unwrap().push(request);
                (
                    StatusCode::OK,
                    reply,
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
            Err(_) => (StatusCode::BAD_REQUEST, reply, Vec::new()),
        }
    }
    let app = axum::Router::new()
        .route("/v1/traces", post(traces))
        .with_state(received);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// The shared router plus one service route that answers with the `traceparent` it would
/// send to a service it calls.
fn app(idp: &TestIdp) -> axum::Router {
    let routes = axum::Router::new().route(
        "/downstream",
        get(|| async {
            telemetry::trace_headers()
                .get("traceparent")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        }),
    );
    http::router(
        Platform {
            service: SERVICE.into(),
            verifier: Arc::new(idp.verifier(Duration::from_secs(30))),
            readiness: Arc::new(Readiness::new(SERVICE)),
            metrics: Arc::new(Metrics::new(SERVICE)),
        },
        routes,
        http::openapi(SERVICE, utoipa::openapi::OpenApi::default()),
    )
}

/// Log lines written by the subscriber under test.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Lines {
    fn json(&self) -> Vec<serde_json::Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Self;

    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

/// A pipeline exporting over gRPC to `endpoint`.
fn grpc_export(endpoint: String) -> TraceExport {
    let protocol = OtlpProtocol::Grpc;
    TraceExport::start(SERVICE, &OtlpConfig { endpoint, protocol }).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One request carrying the caller's `traceparent`; the receiver must get its `request` span
/// in the caller's trace, tagged with the service, and the request's log line the trace id.
async fn request_span_is_exported(protocol: OtlpProtocol) {
    let received = Received::default();
    let endpoint = match protocol {
        OtlpProtocol::Grpc => grpc_receiver(received.clone()).await,
        OtlpProtocol::HttpProtobuf => http_receiver(received.clone()).await,
    };
    let export = TraceExport::start(SERVICE, &OtlpConfig { endpoint, protocol }).unwrap();
    let logs = Lines::default();
    // Debug so the access line of a 200 is written too.
    let subscriber = tracing::Dispatch::new(telemetry::subscriber(
        EnvFilter::new("info,platform_common=debug"),
        logs.clone(),
        Some(&export),
    ));
    let idp = TestIdp::start().await;

    let health = app(&idp)
        .oneshot(Request::get("/health").body(Body::empty()).unwrap())
        .with_subscriber(subscriber.clone())
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let response = app(&idp)
        .oneshot(
            Request::get("/downstream")
                .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01"))
                .body(Body::empty())
                .unwrap(),
        )
        .with_subscriber(subscriber)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let outgoing = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    export.flush().await.expect("flush reaches the receiver");

    let spans = received.spans();
    let requests: Vec<_> = spans.iter().filter(|(_, s)| s.name == "request").collect();
    assert_eq!(requests.len(), 1, "{spans:#?}");
    // The health check made before it is logged but not exported.
    assert!(spans.iter().all(|(_, s)| s.name != "probe"), "{spans:#?}");
    let (service, span) = requests[0];
    assert_eq!(service.as_deref(), Some(SERVICE));
    assert_eq!(hex(&span.trace_id), TRACE_ID);
    assert_eq!(hex(&span.parent_span_id), CALLER_SPAN_ID);
    let route = span.attributes.iter().find(|kv| kv.key == "route");
    assert!(
        matches!(route.and_then(|kv| kv.value.as_ref()?.value.as_ref()), Some(Value::StringValue(r)) if r == "/downstream"),
        "{span:#?}"
    );
    // A call made inside the request continues the same trace, as a child of the request span.
    assert_eq!(outgoing, format!("00-{TRACE_ID}-{}-01", hex(&span.span_id)));

    let lines = logs.json();
    let access = lines
        .iter()
        .find(|l| l["message"] == "request" && l["span"]["route"] == "/downstream")
        .unwrap_or_else(|| panic!("no access line in {lines:#?}"));
    assert_eq!(access["span"]["trace_id"], TRACE_ID, "{access}");
    assert_eq!(access["span"]["name"], "request", "{access}");
    let probe = lines
        .iter()
        .find(|l| l["span"]["route"] == "/health")
        .unwrap_or_else(|| panic!("no access line for /health in {lines:#?}"));
    assert_eq!(probe["span"]["name"], "probe", "{probe}");

    export.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_export_continues_the_callers_trace() {
    request_span_is_exported(OtlpProtocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_export_continues_the_callers_trace() {
    request_span_is_exported(OtlpProtocol::HttpProtobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_export_logs_are_unchanged_and_nothing_is_propagated() {
    let logs = Lines::default();
    let subscriber = telemetry::subscriber(
        EnvFilter::new("info,platform_common=debug"),
        logs.clone(),
        None,
    );
    let idp = TestIdp::start().await;
    let response = app(&idp)
        .oneshot(
            Request::get("/downstream")
                .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01"))
                .body(Body::empty())
                .unwrap(),
        )
        .with_subscriber(subscriber)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(body.is_empty(), "{body:?}");
    let lines = logs.json();
    let access = lines
        .iter()
        .find(|l| l["message"] == "request")
        .unwrap_or_else(|| panic!("no access line in {lines:#?}"));
    let span = access["span"].as_object().unwrap();
    let mut fields: Vec<_> = span.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["method", "name", "request_id", "route"],
        "{access}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_collector_neither_fails_nor_slows_requests() {
    // A port nothing listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let export = grpc_export(endpoint);
    let subscriber = telemetry::subscriber(EnvFilter::new("info"), Lines::default(), Some(&export));
    let idp = TestIdp::start().await;
    let app = app(&idp);

    let started = Instant::now();
    let dispatch = tracing::Dispatch::new(subscriber);
    for _ in 0..20 {
        let response = app
            .clone()
            .oneshot(Request::get("/me").body(Body::empty()).unwrap())
            .with_subscriber(dispatch.clone())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "requests took {:?}",
        started.elapsed()
    );

    // The failure is reported to whoever flushes, and shutdown stays bounded.
    assert!(export.flush().await.is_err());
    let started = Instant::now();
    export.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
}

/// A job runs in a span of its own trace, exported with its task and id, and the job's log
/// lines carry that trace id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_spans_are_exported_and_their_log_lines_carry_the_trace_id() {
    let received = Received::default();
    let endpoint = grpc_receiver(received.clone()).await;
    let export = grpc_export(endpoint);
    let logs = Lines::default();
    // Debug so the line of a job that succeeded is written too.
    let subscriber = telemetry::subscriber(
        EnvFilter::new("info,platform_common=debug"),
        logs.clone(),
        Some(&export),
    );
    let (cfg, _guard) = infra::redis().await;
    let svc = infra::unique("otlp");
    let redis = RedisHandle::new(&cfg).unwrap();
    let mut tasks = TaskRegistry::default();
    platform_testing::tasks::register(&mut tasks, &svc);
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = tokio::spawn(
        Worker::new(&svc, redis.clone(), tasks, WorkerOptions::default())
            .run(async move {
                let _ = stopped.await;
            })
            .with_subscriber(subscriber),
    );

    let task = format!("{svc}.add");
    let (id, result) = JobClient::new(&svc, redis)
        .call(&task, serde_json::json!([2, 3]), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        result.expect("the job finished").result,
        Some(serde_json::json!(5))
    );
    stop.send(()).unwrap();
    worker.await.unwrap();
    export.flush().await.expect("flush reaches the receiver");

    let spans = received.spans();
    let jobs: Vec<_> = spans.iter().filter(|(_, s)| s.name == "job").collect();
    assert_eq!(jobs.len(), 1, "{spans:#?}");
    let (service, span) = jobs[0];
    assert_eq!(service.as_deref(), Some(SERVICE));
    assert!(
        span.parent_span_id.is_empty(),
        "a job starts its own trace: {span:#?}"
    );
    let attribute = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => Some(s.clone()),
                _ => None,
            })
    };
    assert_eq!(
        attribute("task").as_deref(),
        Some(task.as_str()),
        "{span:#?}"
    );
    assert_eq!(
        attribute("job_id").as_deref(),
        Some(id.as_str()),
        "{span:#?}"
    );

    let lines = logs.json();
    let done = lines
        .iter()
        .find(|l| l["message"] == "job succeeded")
        .unwrap_or_else(|| panic!("no job line in {lines:#?}"));
    assert_eq!(done["span"]["trace_id"], hex(&span.trace_id), "{done}");
    assert_eq!(done["span"]["job_id"], id.as_str(), "{done}");
}
