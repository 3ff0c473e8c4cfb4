//! CORS per API: preflights answered by the gateway (no token needed), actual responses
//! given `Access-Control-Allow-Origin` for allowed origins.

use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use gateway_routes::Cors;

fn allowed(cors: &Cors, origin: &HeaderValue) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    cors.origins.iter().any(|o| o == "*" || o == origin)
}

/// The `Access-Control-Allow-Origin` value: `*` only for a wildcard without credentials.
fn allow_origin(cors: &Cors, origin: &HeaderValue) -> HeaderValue {
    if !cors.credentials && cors.origins.iter().any(|o| o == "*") {
        HeaderValue::from_static("*")
    } else {
        origin.clone()
    }
}

pub fn preflight(cors: &Cors, origin: &HeaderValue, request: &HeaderMap) -> Response {
    let method = request
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let method_ok =
        cors.methods.is_empty() || cors.methods.iter().any(|m| m.eq_ignore_ascii_case(method));
    if !allowed(cors, origin) || !method_ok {
        let mut r = platform_common::Problem::new(
            StatusCode::FORBIDDEN,
            "cors_denied",
            "this origin or method is not allowed by the API's CORS policy",
        )
        .into_response();
        r.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Origin"));
        return r;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        allow_origin(cors, origin),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    let methods = if cors.methods.is_empty() {
        method.to_string()
    } else {
        cors.methods.join(", ")
    };
    if let Ok(v) = HeaderValue::from_str(&methods) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    let headers = if cors.headers.is_empty() {
        request
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    } else {
        cors.headers.join(", ")
    };
    if !headers.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&headers) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
    }
    if cors.credentials {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    if let Some(age) = cors.max_age_seconds {
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
    }
    r
}

/// Adds the CORS headers to an actual response, for an allowed origin.
pub fn decorate(cors: &Cors, origin: &HeaderValue, h: &mut HeaderMap) {
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if !allowed(cors, origin) {
        return;
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        allow_origin(cors, origin),
    );
    if cors.credentials {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}
