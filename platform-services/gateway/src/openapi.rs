//! `GET /<context>/<version>/openapi.json`: a REST API's own OpenAPI document, fetched from its
//! backend (`<backend_url>/openapi.json`) and rewritten to describe the API as the gateway
//! serves it, so clients and publish targets generate code against the gateway:
//!
//! - `servers` is the gateway's URL for the API (`http://<Host><context>/<version>`);
//! - an operation the gateway lets through only with a token gets the bearer requirement (with
//!   the API's roles) and 401 (and 403 with roles), also where the backend itself is open;
//! - every operation can be answered by the gateway itself: 400 `invalid_path`, 502
//!   `upstream_unreachable`/`upstream_failed`, 504 `upstream_timeout`, 429 `rate_limited` when
//!   a throttling policy applies.
//!
//! The document itself is served without a token (it is the API's public contract, as on each
//! service's own `/openapi.json`), and is fetched on each request: it is small, and always
//! the running backend's.

use std::time::Duration;

use axum::http::header::{self, HeaderMap};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use platform_common::http::openapi::{BEARER, add_problem};
use serde_json::{Value, json};

use crate::Gateway;
use crate::proxy::{problem, upstream_uri};
use crate::table::Route;

/// The path below an API that this module answers.
pub const DOCUMENT: &str = "/openapi.json";
const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];
/// Larger documents are refused rather than buffered.
const MAX_BYTES: usize = 4 << 20;

/// The backend's document for `route`, rewritten for the gateway (see the module doc).
pub async fn serve(gw: &Gateway, route: &Route, headers: &HeaderMap) -> Response {
    let mut doc = match fetch(gw, route).await {
        Ok(doc) => doc,
        Err((status, code, detail)) => return problem(status, code, detail),
    };
    rewrite(&mut doc, route, &server_url(headers, &route.prefix));
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string_pretty(&doc).expect("a JSON value serialises"),
    )
        .into_response()
}

async fn fetch(gw: &Gateway, route: &Route) -> Result<Value, (StatusCode, &'static str, String)> {
    let bad_gateway = |code, detail: String| (StatusCode::BAD_GATEWAY, code, detail);
    let uri = upstream_uri(route, DOCUMENT, None).map_err(|e| bad_gateway("upstream_failed", e))?;
    let req = axum::http::Request::get(uri)
        .header(header::ACCEPT, "application/json")
        .body(axum::body::Body::empty())
        .expect("a GET request builds");
    let timeouts = &route.api.timeouts;
    let resp = tokio::time::timeout(
        Duration::from_millis(timeouts.response_ms),
        gw.client(timeouts.connect_ms).request(req),
    )
    .await
    .map_err(|_| {
        (
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            "the backend did not send its OpenAPI document in time".to_string(),
        )
    })?
    .map_err(|e| {
        bad_gateway(
            "upstream_unreachable",
            format!("the backend is unreachable: {e}"),
        )
    })?;
    if !resp.status().is_success() {
        return Err(bad_gateway(
            "upstream_failed",
            format!("the backend answered {} for {DOCUMENT}", resp.status()),
        ));
    }
    let body = http_body_util::Limited::new(resp.into_body(), MAX_BYTES)
        .collect()
        .await
        .map_err(|e| bad_gateway("upstream_failed", format!("reading the document: {e}")))?
        .to_bytes();
    serde_json::from_slice(&body)
        .map_err(|e| bad_gateway("upstream_failed", format!("the document is not JSON: {e}")))
}

/// `http://<host><prefix>`, from the request's `X-Forwarded-Proto`/`X-Forwarded-Host` or
/// `Host`; just the prefix (a URL relative to the document) without either.
pub fn server_url(headers: &HeaderMap, prefix: &str) -> String {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let host = text("x-forwarded-host").or_else(|| text(header::HOST.as_str()));
    let proto = text("x-forwarded-proto").unwrap_or("http");
    match host {
        Some(host) => format!("{proto}://{host}{prefix}"),
        None => prefix.to_string(),
    }
}

/// The document as the gateway serves the API at `server`.
pub fn rewrite(doc: &mut Value, route: &Route, server: &str) {
    doc["servers"] = json!([{"url": server, "description": "the API gateway"}]);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            let Some(op) = item.get_mut(method) else {
                continue;
            };
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
            if path == DOCUMENT {
                // Answered by the gateway itself, without a token.
                continue;
            }
            // `{id}` is one segment, as the operation patterns' `{param}` is.
            let rules = route.rules(&verb, path);
            if !rules.access.anonymous {
                let secured = op
                    .get("security")
                    .and_then(Value::as_array)
                    .is_some_and(|s| s.iter().any(|r| r.get(BEARER).is_some()));
                if !secured {
                    op["security"] = json!([{BEARER: rules.access.roles}]);
                }
                add_problem(op, 401, &["missing_token", "invalid_token"]);
                add_problem(op, 503, &["identity_provider_unavailable"]);
                if !rules.access.roles.is_empty() {
                    add_problem(op, 403, &["forbidden"]);
                }
            }
            if rules.throttle.is_some() {
                add_problem(op, 429, &["rate_limited"]);
            }
            add_problem(op, 400, &["invalid_path"]);
            add_problem(op, 502, &["upstream_unreachable", "upstream_failed"]);
            add_problem(op, 504, &["upstream_timeout"]);
        }
    }
}
