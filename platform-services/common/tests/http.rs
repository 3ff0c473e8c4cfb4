//! The shared router: auth on both headers, problem+json bodies, probes, docs.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use platform_common::health::{Readiness, StaticProbe};
use platform_common::http::{ApiJson, Platform, openapi, router};
use platform_common::metrics::Metrics;
use platform_testing::TestIdp;

fn app(idp: &TestIdp, readiness: Readiness) -> Router {
    #[derive(serde::Deserialize, serde::Serialize)]
    struct Body {
        amount: i64,
    }
    let routes = Router::new().route(
        "/echo",
        post(|ApiJson(b): ApiJson<Body>| async move { Json(b) }),
    );
    router(
        Platform {
            service: "svc-test".into(),
            verifier: Arc::new(idp.verifier(Duration::from_secs(30))),
            readiness: Arc::new(readiness),
            metrics: Arc::new(Metrics::new("svc-test")),
        },
        routes,
        openapi("svc-test", utoipa::openapi::OpenApi::default()),
    )
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, String, Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, ct, body)
}

fn get(path: &str) -> axum::http::request::Builder {
    Request::builder().uri(path)
}

#[tokio::test]
async fn me_requires_a_token() {
    let idp = TestIdp::start().await;
    let app = app(&idp, Readiness::new("svc-test"));
    let (status, ct, body) = call(&app, get("/me").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(ct, "application/problem+json");
    assert_eq!(body["code"], "missing_token");
}

#[tokio::test]
async fn me_returns_the_caller_from_bearer_or_assertion() {
    let idp = TestIdp::start().await;
    let app = app(&idp, Readiness::new("svc-test"));
    let token = idp.token("admin", &["admin"]);
    let expected = json!({
        "status": "ok", "service": "svc-test",
        "user": {"id": "admin", "username": "admin", "email": "admin@innover.local", "roles": ["admin"]}
    });
    let (s, _, body) = call(
        &app,
        get("/me")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, expected);
    let (s, _, body) = call(
        &app,
        get("/me")
            .header("x-jwt-assertion", &token)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, expected);
}

#[tokio::test]
async fn assertion_header_is_verified_not_trusted() {
    let idp = TestIdp::start().await;
    let app = app(&idp, Readiness::new("svc-test"));
    let good = idp.token("user", &["user"]);
    let (s, _, _) = call(
        &app,
        get("/me")
            .header("x-jwt-assertion", "e30.e30.")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // A valid bearer does not excuse a bad assertion next to it.
    let (s, _, _) = call(
        &app,
        get("/me")
            .header("authorization", format!("Bearer {good}"))
            .header("x-jwt-assertion", "garbage")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Two valid tokens for different users are refused.
    let other = idp.token("admin", &["admin"]);
    let (s, _, body) = call(
        &app,
        get("/me")
            .header("authorization", format!("Bearer {good}"))
            .header("x-jwt-assertion", other)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn readiness_is_503_when_a_dependency_is_down() {
    let idp = TestIdp::start().await;
    let up = app(
        &idp,
        Readiness::new("svc-test").with(StaticProbe("redis", Ok(()))),
    );
    let (s, _, body) = call(&up, get("/readiness").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["checks"]["redis"]["status"], "up");

    let down = app(
        &idp,
        Readiness::new("svc-test")
            .with(StaticProbe("redis", Ok(())))
            .with(StaticProbe("kafka", Err("connection refused".into()))),
    );
    let (s, _, body) = call(&down, get("/readiness").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["kafka"]["error"], "connection refused");
    assert_eq!(body["checks"]["redis"]["status"], "up");
}

#[tokio::test]
async fn health_metrics_docs_and_request_id() {
    let idp = TestIdp::start().await;
    let app = app(&idp, Readiness::new("svc-test"));
    let resp = app
        .clone()
        .oneshot(
            get("/health")
                .header("x-request-id", "abc-123")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
    let resp = app
        .clone()
        .oneshot(get("/health").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["x-request-id"].len(),
        36,
        "a uuid is assigned"
    );

    let resp = app
        .clone()
        .oneshot(get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(text.contains("route=\"/health\""), "{text}");

    let (s, _, doc) = call(&app, get("/openapi.json").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["paths"]["/me"]["get"].is_object(), "{doc}");
    let resp = app
        .clone()
        .oneshot(get("/docs").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_bodies_and_unknown_routes_are_problems() {
    let idp = TestIdp::start().await;
    let app = app(&idp, Readiness::new("svc-test"));
    let post = |body: &'static str| {
        Request::post("/echo")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let (s, ct, b) = call(&app, post("{")).await;
    assert_eq!(
        (s, ct.as_str(), b["code"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            "application/problem+json",
            Some("invalid_body")
        )
    );
    let (s, _, b) = call(&app, post(r#"{"amount": "x"}"#)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b["field"], "amount");
    let (s, _, b) = call(&app, get("/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, _, b) = call(
        &app,
        Request::delete("/health").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
}

/// The body is read before the handler answers, even when the answer does not need it: a
/// client still sending its body (the gateway streams bodies) must get the answer, not a
/// reset connection, and the connection stays usable.
#[tokio::test]
async fn an_unread_body_is_still_read_and_the_connection_kept() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let idp = TestIdp::start().await;
    let app = app(&idp, Readiness::new("svc-test"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = r#"{"amount": 1}"#;
    // Not JSON: a 400 that needs no body. The head first, the body later.
    conn.write_all(
        format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = [0u8; 4096];
    let early = tokio::time::timeout(Duration::from_millis(300), conn.read(&mut buf)).await;
    assert!(early.is_err(), "answered before the body was sent");
    conn.write_all(body.as_bytes()).await.unwrap();
    let n = conn.read(&mut buf).await.unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        !answer.to_lowercase().contains("connection: close"),
        "{answer}"
    );

    // The same connection answers the next request.
    conn.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let n = conn.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_problem_json() {
    let idp = TestIdp::start().await;
    let app = app(&idp, Readiness::new("svc-test"));
    // Streamed (no Content-Length), so only reading it finds the size.
    let chunks =
        futures_util::stream::iter((0..3).map(|_| Ok::<_, std::io::Error>(vec![b' '; 512 * 1024])));
    let req = Request::post("/echo")
        .header("content-type", "application/json")
        .body(Body::from_stream(chunks))
        .unwrap();
    let (status, ct, body) = call(&app, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(ct, "application/problem+json");
    assert_eq!(body["code"], "payload_too_large");
}
