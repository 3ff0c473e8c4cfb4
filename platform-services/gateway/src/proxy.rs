//! The public listener: the gateway's own `/health` and `/readiness`, and every other path
//! routed through the table: path check, match, access, throttle, forward.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::FutureExt;
use gateway_routes::{Access, ApiKind};
use platform_common::Problem;
use platform_common::auth::{AuthError, User};
use serde_json::json;
use tracing::Instrument;

use crate::Gateway;
use crate::body::TimedBody;
use crate::table::Route;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/readiness", get(readiness))
        .fallback(handle)
        .with_state(gw)
}

async fn health() -> Response {
    axum::Json(json!({"status": "ok", "service": "gateway"})).into_response()
}

async fn readiness(State(gw): State<Arc<Gateway>>) -> Response {
    let routes = gw.routes_ok.load(Ordering::Acquire);
    let keys = gw.keys_ok.load(Ordering::Acquire);
    let routes_detail = gw
        .routes_problem
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let body = json!({
        "status": if routes && keys { "ready" } else { "not_ready" },
        "checks": {
            "route_table": {"ok": routes, "detail": routes_detail},
            "jwks": {"ok": keys, "detail": if keys { None } else { Some("the IdP's signing keys have not been loaded yet") }},
        }
    });
    let status = if routes && keys {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// What the access log reports about one request.
#[derive(Default)]
pub(crate) struct Outcome {
    pub api: Option<String>,
    pub subject: Option<String>,
    pub upstream_ms: Option<f64>,
}

async fn handle(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let start = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane_request_id(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        path = %path,
        api = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    platform_common::telemetry::continue_trace(&span, req.headers());
    let mut outcome = Outcome::default();
    // A panic answers 500 for this request; the gateway keeps serving.
    let routed = std::panic::AssertUnwindSafe(
        route(&gw, client, req, &request_id, &mut outcome).instrument(span.clone()),
    )
    .catch_unwind()
    .await;
    let mut resp = routed.unwrap_or_else(|_| {
        tracing::error!(parent: &span, "request handler panicked");
        problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the gateway failed on this request",
        )
    });
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    let status = resp.status().as_u16();
    let api = outcome.api.as_deref().unwrap_or("-");
    gw.metrics
        .observe(api, status, start.elapsed().as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            target: "gateway::access",
            api,
            status,
            upstream_ms = outcome.upstream_ms,
            subject = outcome.subject.as_deref(),
            ms = start.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    });
    resp
}

fn sane_request_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

pub fn problem(status: StatusCode, code: &str, detail: impl Into<String>) -> Response {
    Problem::new(status, code, detail).into_response()
}

fn unauthorized(detail: &str, invalid_token: bool) -> Response {
    let mut r = problem(
        StatusCode::UNAUTHORIZED,
        if invalid_token {
            "invalid_token"
        } else {
            "missing_token"
        },
        detail,
    );
    let challenge = if invalid_token {
        HeaderValue::from_static("Bearer error=\"invalid_token\"")
    } else {
        HeaderValue::from_static("Bearer")
    };
    r.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
    r
}

async fn route(
    gw: &Gateway,
    client: SocketAddr,
    req: Request,
    request_id: &str,
    outcome: &mut Outcome,
) -> Response {
    let path = req.uri().path().to_string();
    if let Err(e) = crate::path::check(&path) {
        return problem(StatusCode::BAD_REQUEST, "invalid_path", e.to_string());
    }
    let table = gw.table.load_full();
    let Some((route, rest)) = table.find(&path) else {
        return problem(
            StatusCode::NOT_FOUND,
            "no_route",
            format!("no API serves {path}"),
        );
    };
    outcome.api = Some(route.id.clone());
    tracing::Span::current().record("api", route.id.as_str());
    let rest = rest.to_string();
    let origin = req.headers().get(header::ORIGIN).cloned();
    if let (Some(cors), Some(origin)) = (&route.api.cors, &origin) {
        if req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return crate::cors::preflight(cors, origin, req.headers());
        }
    }
    let mut resp = if route.api.kind == ApiKind::Rest
        && rest == crate::openapi::DOCUMENT
        && req.method() == Method::GET
    {
        crate::openapi::serve(gw, route, req.headers()).await
    } else {
        serve_api(gw, client, req, route, &rest, request_id, outcome).await
    };
    if let (Some(cors), Some(origin)) = (&route.api.cors, &origin) {
        crate::cors::decorate(cors, origin, resp.headers_mut());
    }
    resp
}

async fn serve_api(
    gw: &Gateway,
    client: SocketAddr,
    req: Request,
    route: &Route,
    rest: &str,
    request_id: &str,
    outcome: &mut Outcome,
) -> Response {
    let mut req = req;
    let rules = route.rules(req.method(), rest);
    let upgrade =
        route.api.kind == ApiKind::Websocket && crate::websocket::is_upgrade(req.headers());
    let ws_token = if upgrade {
        crate::websocket::take_token(&mut req)
    } else {
        None
    };

    // Who is calling.
    let token = match bearer(req.headers()) {
        Ok(None) => Ok(ws_token),
        other => other,
    };
    let user = match token {
        Err(()) => return unauthorized("the Authorization header is not `Bearer <token>`", true),
        Ok(None) => None,
        // Until the IdP's keys are first loaded, fail fast rather than queue behind the
        // fetch that is retrying in the background.
        Ok(Some(_)) if !gw.keys_ok.load(Ordering::Acquire) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "identity_provider_unavailable",
                "the identity provider's keys have not been loaded yet",
            );
        }
        Ok(Some(token)) => match gw.verifier.user(&token).await {
            Ok(u) => {
                // The verified token goes upstream as a bearer, wherever the client put it.
                if let Ok(v) = HeaderValue::from_str(&format!("Bearer {token}")) {
                    req.headers_mut().insert(header::AUTHORIZATION, v);
                }
                Some(u)
            }
            Err(AuthError::KeysUnavailable(_)) => {
                return problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "identity_provider_unavailable",
                    "the identity provider's keys could not be fetched",
                );
            }
            Err(e) => return unauthorized(&e.to_string(), true),
        },
    };
    if let Some(u) = &user {
        outcome.subject = Some(u.username.clone());
    }
    if let Err(r) = authorize(rules.access, user.as_ref()) {
        return *r;
    }

    // Throttling, per subject (per client address when anonymous).
    let mut rate_headers = None;
    if let Some(policy) = rules.throttle {
        let subject = user
            .as_ref()
            .map(|u| format!("sub:{}", u.username))
            .unwrap_or_else(|| format!("ip:{}", client.ip()));
        let d = gw.throttles.check(&route.id, policy, &subject);
        let headers = [
            ("ratelimit-limit", d.limit.to_string()),
            ("ratelimit-remaining", d.remaining.to_string()),
            ("ratelimit-reset", d.reset_seconds.to_string()),
        ];
        if !d.allowed {
            let mut r = problem(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "policy {} allows {} requests per {} s",
                    policy.policy, policy.requests, policy.period_seconds
                ),
            );
            set_headers(r.headers_mut(), &headers);
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(d.reset_seconds));
            return r;
        }
        rate_headers = Some(headers);
    }

    if let Some(settings) = &route.api.graphql {
        if let Some(r) = crate::graphql::schema(settings, req.method(), rest) {
            return r;
        }
        req = match crate::graphql::check(settings, req).await {
            Ok(r) => r,
            Err(r) => return *r,
        };
    }
    let mut resp = if upgrade {
        crate::websocket::forward(gw, route, rest, client, req, request_id, outcome).await
    } else {
        forward(gw, route, rest, client, req, request_id, outcome).await
    };
    if let Some(h) = rate_headers {
        set_headers(resp.headers_mut(), &h);
    }
    resp
}

fn set_headers(map: &mut HeaderMap, headers: &[(&'static str, String)]) {
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            map.insert(HeaderName::from_static(k), v);
        }
    }
}

/// The bearer token, if the request carries one; `Err` when `Authorization` is not a bearer.
fn bearer(headers: &HeaderMap) -> Result<Option<String>, ()> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v.to_str().map_err(|_| ())?;
    let (scheme, token) = v.split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(());
    }
    Ok(Some(token.trim().to_string()))
}

fn authorize(access: &Access, user: Option<&User>) -> Result<(), Box<Response>> {
    let Some(user) = user else {
        if access.anonymous {
            return Ok(());
        }
        return Err(Box::new(unauthorized(
            "this API needs a bearer token",
            false,
        )));
    };
    if access.roles.is_empty() || access.roles.iter().any(|r| user.has_role(r)) {
        return Ok(());
    }
    Err(Box::new(problem(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "this operation requires one of the roles: {}",
            access.roles.join(", ")
        ),
    )))
}

/// Request headers a client must never be able to set: identity is the verified token's.
pub(crate) fn is_identity_header(name: &str) -> bool {
    name == "x-jwt-assertion"
        || name == "x-forwarded-user"
        || name.starts_with("x-user")
        || name.starts_with("x-auth-")
        || name.starts_with("x-forwarded-")
        || name == "forwarded"
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Drops hop-by-hop headers, and those the `Connection` header names.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    let hop: Vec<HeaderName> = headers
        .keys()
        .filter(|k| is_hop_by_hop(k.as_str()))
        .cloned()
        .collect();
    for n in hop {
        headers.remove(n);
    }
}

async fn forward(
    gw: &Gateway,
    route: &Route,
    rest: &str,
    client: SocketAddr,
    req: Request,
    request_id: &str,
    outcome: &mut Outcome,
) -> Response {
    let api = &route.api;
    let (mut parts, body) = req.into_parts();
    let rest = backend_rest(route, parts.uri.path(), rest);
    let uri = match upstream_uri(route, rest, parts.uri.query()) {
        Ok(u) => u,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "invalid_path", e),
    };
    let mut headers = std::mem::take(&mut parts.headers);
    prepare_upstream_headers(&mut headers, client, &route.prefix, request_id);
    // With trace export on, the backend continues this request's span; otherwise the
    // client's traceparent passes through untouched.
    for (k, v) in platform_common::telemetry::trace_headers().iter() {
        if k == TRACEPARENT || k.as_str() == "tracestate" {
            headers.insert(k.clone(), v.clone());
        }
    }
    let t = &api.timeouts;
    let deadline = t
        .total_ms
        .map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
    // A client that stops sending its body mid-way is cut after the idle timeout too.
    let body = axum::body::Body::new(TimedBody::new(
        body,
        Duration::from_millis(t.idle_ms),
        deadline,
    ));
    let mut up = axum::http::Request::new(body);
    *up.method_mut() = parts.method.clone();
    *up.uri_mut() = uri;
    *up.headers_mut() = headers;

    let head_wait = Duration::from_millis(
        t.total_ms
            .map_or(t.response_ms, |tot| tot.min(t.response_ms)),
    );
    let sent = Instant::now();
    let result = tokio::time::timeout(head_wait, gw.client(t.connect_ms).request(up)).await;
    outcome.upstream_ms = Some(sent.elapsed().as_secs_f64() * 1000.0);
    let resp = match result {
        Err(_) => {
            gw.metrics.upstream_error(&route.id, "timeout");
            return problem(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                format!(
                    "{} did not answer within {} ms",
                    api.name,
                    head_wait.as_millis()
                ),
            );
        }
        Ok(Err(e)) if e.is_connect() => {
            gw.metrics.upstream_error(&route.id, "connect");
            tracing::warn!(error = %e, backend = %route.origin, "backend unreachable");
            return problem(
                StatusCode::BAD_GATEWAY,
                "upstream_unreachable",
                format!("{} could not be reached", api.name),
            );
        }
        Ok(Err(e)) => {
            gw.metrics.upstream_error(&route.id, "protocol");
            tracing::warn!(error = %e, backend = %route.origin, "backend failed");
            return problem(
                StatusCode::BAD_GATEWAY,
                "upstream_failed",
                format!("{} failed to answer", api.name),
            );
        }
        Ok(Ok(r)) => r,
    };
    let (mut rparts, rbody) = resp.into_parts();
    strip_hop_by_hop(&mut rparts.headers);
    let idle = Duration::from_millis(t.idle_ms);
    let body = axum::body::Body::new(TimedBody::new(rbody, idle, deadline));
    if api.kind == ApiKind::Ai {
        // Streamed replies must not be held back by anything between here and the client.
        rparts
            .headers
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
    }
    Response::from_parts(rparts, body)
}

/// What every upstream request's headers go through, HTTP and WebSocket alike: hop-by-hop
/// and client-sent identity headers dropped, `Host` replaced by `X-Forwarded-Host`, and the
/// `X-Forwarded-*` and request id set.
pub(crate) fn prepare_upstream_headers(
    headers: &mut HeaderMap,
    client: SocketAddr,
    prefix: &str,
    request_id: &str,
) {
    let host = headers.remove(header::HOST);
    strip_hop_by_hop(headers);
    let identity: Vec<HeaderName> = headers
        .keys()
        .filter(|k| is_identity_header(k.as_str()))
        .cloned()
        .collect();
    for n in identity {
        headers.remove(n);
    }
    set_forwarded(headers, client, host, prefix, request_id);
}

/// The API's own path (`/api/graph/1.0.0`, no trailing slash) is the backend URL itself
/// (`http://profile:8000/graphql`), as WSO2 maps a context root; below it, `rest` is appended.
pub(crate) fn backend_rest<'a>(route: &Route, path: &str, rest: &'a str) -> &'a str {
    if path == route.prefix && !route.base_path.is_empty() {
        ""
    } else {
        rest
    }
}

pub(crate) fn upstream_uri(route: &Route, rest: &str, query: Option<&str>) -> Result<Uri, String> {
    let mut s = String::with_capacity(route.origin.len() + route.base_path.len() + rest.len() + 1);
    s.push_str(&route.origin);
    s.push_str(&route.base_path);
    s.push_str(rest);
    if route.base_path.is_empty() && rest.is_empty() {
        s.push('/');
    }
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    s.parse()
        .map_err(|e| format!("cannot build the backend URL: {e}"))
}

pub(crate) fn set_forwarded(
    headers: &mut HeaderMap,
    client: SocketAddr,
    host: Option<HeaderValue>,
    prefix: &str,
    request_id: &str,
) {
    // The gateway is the edge: what a client claims in X-Forwarded-* was dropped above.
    if let Ok(v) = HeaderValue::from_str(&client.ip().to_string()) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Some(h) = host {
        headers.insert("x-forwarded-host", h);
    }
    if let Ok(v) = HeaderValue::from_str(prefix) {
        headers.insert("x-forwarded-prefix", v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_path_itself_is_the_backend_url_and_below_it_the_rest_is_appended() {
        let table = crate::table::Compiled::new(gateway_routes::RouteTable {
            apis: vec![
                serde_json::from_value(serde_json::json!({"name": "g", "context": "/api/graph",
                    "version": "1", "backend_url": "http://profile:8000/graphql"}))
                .unwrap(),
                serde_json::from_value(serde_json::json!({"name": "r", "context": "/api/r",
                    "version": "1", "backend_url": "http://r:8000"}))
                .unwrap(),
            ],
        });
        let uri = |path: &str, query: Option<&str>| {
            let (route, rest) = table.find(path).unwrap();
            upstream_uri(route, backend_rest(route, path, rest), query)
                .unwrap()
                .to_string()
        };
        assert_eq!(
            uri("/api/graph/1", Some("query=x")),
            "http://profile:8000/graphql?query=x"
        );
        assert_eq!(uri("/api/graph/1/", None), "http://profile:8000/graphql/");
        assert_eq!(
            uri("/api/graph/1/schema", None),
            "http://profile:8000/graphql/schema"
        );
        assert_eq!(uri("/api/r/1", None), "http://r:8000/");
        assert_eq!(uri("/api/r/1/x", Some("y=1")), "http://r:8000/x?y=1");
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn identity_headers() {
        for n in [
            "x-jwt-assertion",
            "x-forwarded-user",
            "x-user-id",
            "x-auth-roles",
        ] {
            assert!(is_identity_header(n), "{n}");
        }
        assert!(!is_identity_header("x-request-id"));
    }

    #[test]
    fn request_ids() {
        assert!(sane_request_id("abc-123"));
        assert!(!sane_request_id("a b"));
        assert!(!sane_request_id(&"a".repeat(200)));
    }
}
