//! The HTTP surface every service shares: `/health`, `/readiness`, `/metrics`, `/docs`,
//! `/me`, request ids, access logs, metrics and problem+json fallbacks.

pub mod docs;
pub mod extract;
pub mod openapi;

use openapi::BearerAuth;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Serialize;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tracing::Instrument;
use utoipa::openapi::OpenApi;
use utoipa::{OpenApi as _, ToSchema};

use crate::auth::{CurrentUser, TokenVerifier, User};
use crate::health::{Readiness, ReadinessReport};
use crate::metrics::Metrics;
use crate::problem::{CommonError, Problem};

pub use extract::{ApiJson, ApiPath, ApiQuery};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the shared routes need, handed to them as a request extension.
pub struct Platform {
    /// `svc-<name>`, as reported by `/health` and `/me`.
    pub service: String,
    pub verifier: Arc<TokenVerifier>,
    pub readiness: Arc<Readiness>,
    pub metrics: Arc<Metrics>,
}

/// The largest request body a service reads.
const BODY_LIMIT: usize = 1 << 20;

/// The shared routes that Docker's healthcheck and Prometheus call on a timer: answered
/// inside a `probe` span, which trace export leaves out.
const PROBE_ROUTES: [&str; 3] = ["/health", "/readiness", "/metrics"];

/// The full application: shared routes, the service's routes, and the middleware stack.
pub fn router(platform: Platform, service_routes: Router, doc: openapi::Document) -> Router {
    let verifier = platform.verifier.clone();
    let platform = Arc::new(platform);
    Router::new()
        .route("/health", get(health))
        .route("/readiness", get(readiness))
        .route("/metrics", get(metrics))
        .route("/me", get(me))
        .merge(docs::routes(doc))
        .merge(service_routes)
        .route_layer(middleware::from_fn(observe))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(Extension(verifier))
        .layer(Extension(platform))
        .layer(middleware::from_fn(read_body))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// The service's OpenAPI document: the shared routes plus `service_doc`.
pub fn openapi(service: &str, service_doc: OpenApi) -> openapi::Document {
    let mut doc = CommonApi::openapi();
    doc.merge(service_doc);
    doc.info.title = service.to_string();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    openapi::complete(doc)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(health, readiness, metrics, me, docs::openapi_json, docs::docs_page),
    components(schemas(Problem, User, MeResponse, HealthResponse, ReadinessReport)),
    modifiers(&BearerAuth)
)]
struct CommonApi;

#[derive(Serialize, ToSchema)]
pub struct HealthResponse {
    status: &'static str,
    service: String,
}

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    status: &'static str,
    service: String,
    user: User,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "platform", operation_id = "health",
    responses((status = 200, body = HealthResponse, example = json!({"status": "ok", "service": "svc-forex"}))))]
async fn health(Extension(p): Extension<Arc<Platform>>) -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok",
        service: p.service.clone(),
    })
}

/// Readiness: database, Redis and Kafka each checked; 503 when one is down.
#[utoipa::path(get, path = "/readiness", tag = "platform", operation_id = "readiness", responses(
    (status = 200, description = "every dependency is up", body = ReadinessReport),
    (status = 503, description = "at least one dependency is down", body = ReadinessReport)
))]
async fn readiness(Extension(p): Extension<Arc<Platform>>) -> Response {
    let report: ReadinessReport = p.readiness.report().await;
    let status = if report.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report)).into_response()
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "platform", operation_id = "metrics", responses(
    (status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String,
        example = "# TYPE finctl_http_requests_total counter")
))]
async fn metrics(Extension(p): Extension<Arc<Platform>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        p.metrics.render(),
    )
        .into_response()
}

/// The caller, as the service sees them.
#[utoipa::path(get, path = "/me", tag = "platform", operation_id = "me", security(("bearer" = [])), responses(
    (status = 200, body = MeResponse, example = json!({"status": "ok", "service": "svc-forex",
        "user": {"id": "admin", "username": "admin", "email": "admin@innover.local", "roles": ["admin"]}}))
))]
async fn me(
    Extension(p): Extension<Arc<Platform>>,
    CurrentUser(user): CurrentUser,
) -> Json<MeResponse> {
    Json(MeResponse {
        status: "ok",
        service: p.service.clone(),
        user,
    })
}

/// Reads the whole request body before the request is routed. A handler that answers without
/// reading it (a 401 before the body, a 400 on the content type) would leave the body unread,
/// and hyper then closes the connection with those bytes pending: the TCP reset can destroy
/// the answer before a client still sending its body (the gateway streams it) has read it,
/// which the gateway can only report as a 502.
async fn read_body(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => next.run(Request::from_parts(parts, bytes.into())).await,
        Err(e) => {
            let detail = format!("the body could not be read: {e}");
            let inner = e.into_inner();
            let too_large = inner.is::<http_body_util::LengthLimitError>()
                || std::error::Error::source(inner.as_ref())
                    .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the body is larger than {BODY_LIMIT} bytes"),
                )
                .into_response()
            } else {
                CommonError::InvalidBody {
                    field: None,
                    detail,
                }
                .into_response()
            }
        }
    }
}

async fn not_found() -> CommonError {
    CommonError::NotFound("route".into())
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

/// Access log line and metrics for every routed request, inside a span carrying the
/// request id so every log line of the request can be found by it. With trace export on, the
/// span continues the caller's `traceparent` and carries the trace id too.
async fn observe(Extension(p): Extension<Arc<Platform>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // A span's name is fixed where it is written, so the two names need two call sites.
    macro_rules! request_span {
        ($name:expr) => {
            tracing::info_span!(
                $name,
                request_id = %request_id,
                method = %method,
                route = %route,
                trace_id = tracing::field::Empty,
            )
        };
    }
    // Health checks and scrapes arrive every few seconds from Docker and Prometheus: they keep
    // their log lines but are named `probe`, which trace export leaves out.
    let span = if PROBE_ROUTES.contains(&route.as_str()) {
        request_span!(crate::telemetry::PROBE_SPAN)
    } else {
        request_span!("request")
    };
    crate::telemetry::continue_trace(&span, req.headers());
    let resp = next.run(req).instrument(span.clone()).await;
    let elapsed = start.elapsed();
    let status = resp.status().as_u16();
    p.metrics
        .observe_http(&method, &route, status, elapsed.as_secs_f64());
    let ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(status, ms, "request failed");
        } else if status >= 400 || elapsed > Duration::from_secs(1) {
            tracing::info!(status, ms, "request");
        } else {
            tracing::debug!(status, ms, "request");
        }
    });
    resp
}
