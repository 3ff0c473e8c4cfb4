//! The gateway in-process on free loopback ports, with a real test IdP and real axum
//! backends, configured only through its admin API.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use base64_free::b64;
use gateway::GatewayConfig;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use platform_common::Secret;
use platform_common::config::OidcConfig;
use platform_testing::{AUDIENCE, TestIdp, TestKey, sign};
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "s3cret-admin";

mod base64_free {
    /// URL-safe base64 without padding, enough for a hand-made JWT header.
    pub fn b64(data: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}

struct Harness {
    idp: TestIdp,
    gw: gateway::Running,
    routes_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn config(idp: &TestIdp, routes_file: &std::path::Path) -> GatewayConfig {
    GatewayConfig {
        port: 1,
        admin_port: 1,
        admin_token: Secret::new(ADMIN_TOKEN.into()),
        routes_file: routes_file.to_path_buf(),
        oidc: OidcConfig {
            issuer: idp.issuer().to_string(),
            audiences: vec![AUDIENCE.to_string()],
            discovery_url: idp.discovery_url(),
            jwks_url: None,
        },
        otlp: None,
    }
}

async fn start_gateway(cfg: &GatewayConfig) -> gateway::Running {
    let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = gateway::start(cfg, public, admin).await;
    // Ready once the IdP's keys are in.
    for _ in 0..100 {
        if running.gateway.ready() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running
}

impl Harness {
    async fn start() -> Self {
        let idp = TestIdp::start().await;
        let dir = tempfile::tempdir().unwrap();
        let routes_file = dir.path().join("routes.json");
        let gw = start_gateway(&config(&idp, &routes_file)).await;
        assert!(gw.gateway.ready(), "gateway not ready");
        Self {
            idp,
            gw,
            routes_file,
            _dir: dir,
        }
    }

    async fn put_api(&self, api: Value) {
        let id = format!(
            "{}:{}",
            api["name"].as_str().unwrap(),
            api["version"].as_str().unwrap()
        );
        let (status, _, body) = admin(
            self.gw.admin,
            "PUT",
            &format!("/admin/apis/{id}"),
            Some(ADMIN_TOKEN),
            Some(api),
        )
        .await;
        assert!(
            status == StatusCode::CREATED || status == StatusCode::OK,
            "{status} {body}"
        );
    }

    async fn get(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let mut h: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(t) = token {
            h.push(("authorization".into(), format!("Bearer {t}")));
        }
        send(self.gw.public, "GET", path, &h, Body::empty()).await
    }
}

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Body,
) -> (StatusCode, HeaderMap, String) {
    let client: Client<HttpConnector, Body> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut req = axum::http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = client
        .request(req.body(body).unwrap())
        .await
        .expect("gateway answers");
    let (parts, body) = resp.into_parts();
    let bytes = http_body_util::BodyExt::collect(body)
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).to_string(),
    )
}

async fn admin(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, HeaderMap, String) {
    let mut h = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(t) = token {
        h.push(("authorization".into(), format!("Bearer {t}")));
    }
    let body = body
        .map(|b| Body::from(b.to_string()))
        .unwrap_or_else(Body::empty);
    send(addr, method, path, &h, body).await
}

/// A backend answering every request with what it received.
async fn echo_backend(name: &'static str) -> SocketAddr {
    let app = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/upload",
            axum::routing::post(|req: Request| async move {
                // Counted as it streams in: no extractor limit in the way.
                let bytes = axum::body::to_bytes(req.into_body(), usize::MAX)
                    .await
                    .unwrap();
                bytes.len().to_string()
            }),
        )
        .route(
            "/sse",
            get(|| async {
                let stream = futures_util::stream::unfold(0u32, |i| async move {
                    if i == 3 {
                        return None;
                    }
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                    }
                    Some((
                        Ok::<_, std::io::Error>(format!("data: event {i}\n\n")),
                        i + 1,
                    ))
                });
                (
                    [("content-type", "text/event-stream")],
                    Body::from_stream(stream),
                )
                    .into_response()
            }),
        )
        .fallback(move |req: Request| async move {
            let headers: serde_json::Map<String, Value> = req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
                .collect();
            axum::Json(json!({
                "backend": name,
                "method": req.method().as_str(),
                "path": req.uri().path(),
                "query": req.uri().query(),
                "headers": headers,
            }))
        });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

fn rest_api(name: &str, context: &str, backend: SocketAddr) -> Value {
    json!({
        "name": name, "context": context, "version": "1.0.0",
        "backend_url": format!("http://{backend}"),
        "operations": [
            {"method": "GET", "path": "/health", "access": {"anonymous": true}},
            {"method": "*", "path": "/admin/*", "access": {"roles": ["admin"]}}
        ],
        "timeouts": {"connect_ms": 500, "response_ms": 1000, "idle_ms": 1000}
    })
}

fn json_body(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[tokio::test]
async fn routes_with_query_forwarded_headers_request_id_and_traceparent() {
    let h = Harness::start().await;
    let forex = echo_backend("forex").await;
    let other = echo_backend("other").await;
    h.put_api(rest_api("forex", "/api/forex", forex)).await;
    h.put_api(rest_api("forex-rates", "/api/forex/1.0.0/rates", other))
        .await;
    let token = h.idp.token("alice", &["user"]);
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let (status, headers, body) = h
        .get(
            "/api/forex/1.0.0/quotes/7?from=EUR&to=USD",
            Some(&token),
            &[
                ("traceparent", tp),
                ("x-request-id", "client-id-1"),
                ("x-forwarded-for", "6.6.6.6"),
                ("host", "gw.example"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen = json_body(&body);
    assert_eq!(seen["backend"], "forex");
    assert_eq!(seen["path"], "/quotes/7");
    assert_eq!(seen["query"], "from=EUR&to=USD");
    let sh = &seen["headers"];
    assert_eq!(sh["x-forwarded-for"], "127.0.0.1");
    assert_eq!(sh["x-forwarded-proto"], "http");
    assert_eq!(sh["x-forwarded-host"], "gw.example");
    assert_eq!(sh["x-forwarded-prefix"], "/api/forex/1.0.0");
    assert_eq!(sh["x-request-id"], "client-id-1");
    assert_eq!(sh["traceparent"], tp);
    assert_eq!(sh["authorization"], format!("Bearer {token}"));
    assert_eq!(headers["x-request-id"], "client-id-1");

    // Longest prefix wins.
    let (_, _, body) = h
        .get("/api/forex/1.0.0/rates/1.0.0/x", Some(&token), &[])
        .await;
    assert_eq!(json_body(&body)["backend"], "other");

    // A generated request id when the client's is not sane.
    let (_, headers, body) = h
        .get(
            "/api/forex/1.0.0/x",
            Some(&token),
            &[("x-request-id", "bad id with spaces")],
        )
        .await;
    let generated = headers["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(generated, "bad id with spaces");
    assert_eq!(json_body(&body)["headers"]["x-request-id"], generated);

    // A request body is passed through whole.
    let big = vec![b'x'; 3 << 20];
    let auth = vec![("authorization".to_string(), format!("Bearer {token}"))];
    let (status, _, body) = send(
        h.gw.public,
        "POST",
        "/api/forex/1.0.0/upload",
        &auth,
        Body::from(big),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, (3 << 20).to_string());

    // Unknown route.
    let (status, headers, body) = h.get("/api/nothing/1.0.0/x", Some(&token), &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(json_body(&body)["code"], "no_route");
}

#[tokio::test]
async fn every_bad_token_is_401_with_invalid_token_challenge() {
    let h = Harness::start().await;
    let backend = echo_backend("svc").await;
    h.put_api(rest_api("svc", "/api/svc", backend)).await;
    let now = jsonwebtoken::get_current_timestamp();
    let good = h.idp.claims("bob", &["user"]);
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        sign(&c, TestKey::A)
    };
    let valid = sign(&good, TestKey::A);
    let mut tampered = valid.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let payload = valid.split('.').nth(1).unwrap().to_string();
    let alg_none = format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
    let hs256 = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(TestKey::A.kid().into());
        jsonwebtoken::encode(
            &header,
            &good,
            &jsonwebtoken::EncodingKey::from_secret(TestKey::A.public_pem().as_bytes()),
        )
        .unwrap()
    };
    let cases = [
        ("malformed", "not-a-jwt".to_string()),
        ("tampered", tampered),
        ("expired", with("exp", json!(now - 600))),
        ("wrong issuer", with("iss", json!("http://evil.example"))),
        ("wrong audience", with("aud", json!("someone-else"))),
        ("alg none", alg_none),
        ("hs256 with public key", hs256),
        ("unknown kid", sign(&good, TestKey::B)),
    ];
    for (what, token) in cases {
        let (status, headers, body) = h.get("/api/svc/1.0.0/things", Some(&token), &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert_eq!(
            headers["www-authenticate"], "Bearer error=\"invalid_token\"",
            "{what}"
        );
        assert_eq!(
            headers["content-type"], "application/problem+json",
            "{what}"
        );
    }
    let (status, headers, _) = h.get("/api/svc/1.0.0/things", None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer");
    let (status, _, _) = h.get("/api/svc/1.0.0/things", Some(&valid), &[]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn roles_anonymous_operations_and_identity_headers() {
    let h = Harness::start().await;
    let backend = echo_backend("svc").await;
    h.put_api(rest_api("svc", "/api/svc", backend)).await;
    let user = h.idp.token("u", &["user"]);
    let admin_user = h.idp.token("a", &["admin"]);
    let (status, _, body) = h.get("/api/svc/1.0.0/admin/stats", Some(&user), &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(json_body(&body)["code"], "forbidden");
    let (status, _, _) = h
        .get("/api/svc/1.0.0/admin/stats", Some(&admin_user), &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    // Anonymous operation: no token needed; a client's identity headers never get through.
    let (status, _, body) = h
        .get(
            "/api/svc/1.0.0/health",
            None,
            &[
                ("x-jwt-assertion", "forged"),
                ("x-user-id", "root"),
                ("x-auth-roles", "admin"),
                ("x-forwarded-user", "root"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen = &json_body(&body)["headers"];
    for hname in [
        "x-jwt-assertion",
        "x-user-id",
        "x-auth-roles",
        "x-forwarded-user",
    ] {
        assert!(
            seen.get(hname).is_none(),
            "{hname} reached the backend: {seen}"
        );
    }
    // A token sent to an anonymous operation is still verified.
    let (status, _, _) = h.get("/api/svc/1.0.0/health", Some("garbage"), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn throttling_answers_429_then_lets_through_after_the_period() {
    let h = Harness::start().await;
    let backend = echo_backend("svc").await;
    let mut api = rest_api("svc", "/api/svc", backend);
    api["throttle"] = json!({"policy": "tiny", "requests": 2, "period_seconds": 1});
    h.put_api(api).await;
    let alice = h.idp.token("alice", &[]);
    let bob = h.idp.token("bob", &[]);
    let (s1, h1, _) = h.get("/api/svc/1.0.0/x", Some(&alice), &[]).await;
    assert_eq!(s1, StatusCode::OK);
    assert_eq!(h1["ratelimit-limit"], "2");
    assert_eq!(h1["ratelimit-remaining"], "1");
    let (s2, _, _) = h.get("/api/svc/1.0.0/x", Some(&alice), &[]).await;
    assert_eq!(s2, StatusCode::OK);
    let (s3, h3, body) = h.get("/api/svc/1.0.0/x", Some(&alice), &[]).await;
    assert_eq!(s3, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(json_body(&body)["code"], "rate_limited");
    assert!(h3.contains_key("retry-after"));
    assert_eq!(h3["ratelimit-remaining"], "0");
    assert!(h3.contains_key("ratelimit-reset"));
    // Another subject has its own count.
    let (s, _, _) = h.get("/api/svc/1.0.0/x", Some(&bob), &[]).await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s4, _, _) = h.get("/api/svc/1.0.0/x", Some(&alice), &[]).await;
    assert_eq!(s4, StatusCode::OK);
}

#[tokio::test]
async fn traversal_never_reaches_another_api_or_the_admin_api() {
    let h = Harness::start().await;
    let public = echo_backend("public").await;
    let secret = echo_backend("secret").await;
    let mut open = rest_api("open", "/api/open", public);
    open["access"] = json!({"anonymous": true});
    h.put_api(open).await;
    let mut closed = rest_api("closed", "/api/closed", secret);
    closed["access"] = json!({"roles": ["admin"]});
    h.put_api(closed).await;
    for path in [
        "/api/open/1.0.0/../../closed/1.0.0/x",
        "/api/open/1.0.0/%2e%2e/%2E%2e/closed/1.0.0/x",
        "/api/open/1.0.0/.%2e/.%2E/closed/1.0.0/x",
        "/api/open/1.0.0//admin/apis",
        "/api/open/1.0.0/%2f..%2fadmin/apis",
        "/api/open/1.0.0/..%5c..%5cadmin",
        "/api/open/1.0.0/./x",
    ] {
        let (status, _, body) = h.get(path, None, &[]).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
            "{path}: {status} {body}"
        );
        assert!(
            !body.contains("\"backend\""),
            "{path} reached a backend: {body}"
        );
    }
    // The admin API is not on the public port at all.
    let (status, _, body) = h
        .get(
            "/admin/apis",
            None,
            &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _, _) = h.get("/api/open/1.0.0/x", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn admin_api_needs_its_token_validates_and_persists() {
    let h = Harness::start().await;
    let backend = echo_backend("svc").await;
    let api = rest_api("svc", "/api/svc", backend);
    for token in [None, Some("wrong")] {
        let (status, _, _) = admin(h.gw.admin, "GET", "/admin/apis", token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, _) = admin(
            h.gw.admin,
            "PUT",
            "/admin/apis/svc:1.0.0",
            token,
            Some(api.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, _) = admin(
        h.gw.admin,
        "PUT",
        "/admin/apis/svc:1.0.0",
        Some(ADMIN_TOKEN),
        Some(api.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = admin(
        h.gw.admin,
        "PUT",
        "/admin/apis/svc%3A1.0.0",
        Some(ADMIN_TOKEN),
        Some(api.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, before) = admin(h.gw.admin, "GET", "/admin/apis", Some(ADMIN_TOKEN), None).await;

    // Bad APIs are refused, naming the field, and change nothing.
    let mut bad = api.clone();
    bad["backend_url"] = json!("ftp://nowhere");
    let (status, _, body) = admin(
        h.gw.admin,
        "PUT",
        "/admin/apis/svc:1.0.0",
        Some(ADMIN_TOKEN),
        Some(bad),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json_body(&body)["field"], "backend_url");
    let mut dup = api.clone();
    dup["name"] = json!("copy");
    let (status, _, body) = admin(
        h.gw.admin,
        "PUT",
        "/admin/apis/copy:1.0.0",
        Some(ADMIN_TOKEN),
        Some(dup.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json_body(&body)["field"], "context");
    let (status, _, body) = admin(
        h.gw.admin,
        "PUT",
        "/admin/apis",
        Some(ADMIN_TOKEN),
        Some(json!({"apis": [api.clone(), dup]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json_body(&body)["field"], "apis[1].context");
    let (status, _, _) = admin(
        h.gw.admin,
        "PUT",
        "/admin/apis",
        Some(ADMIN_TOKEN),
        Some(json!({"apis": 7})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, _, after) = admin(h.gw.admin, "GET", "/admin/apis", Some(ADMIN_TOKEN), None).await;
    assert_eq!(json_body(&before), json_body(&after));

    // A second gateway on the same file serves the stored routes.
    let second = start_gateway(&config(&h.idp, &h.routes_file)).await;
    let (status, _, body) = send(
        second.public,
        "GET",
        "/api/svc/1.0.0/health",
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, _, _) = h.get("/api/svc/1.0.0/health", None, &[]).await;
    assert_eq!(status, StatusCode::OK);

    // Delete takes effect at once and is stored.
    let (status, _, _) = admin(
        h.gw.admin,
        "DELETE",
        "/admin/apis/svc:1.0.0",
        Some(ADMIN_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = admin(
        h.gw.admin,
        "DELETE",
        "/admin/apis/svc:1.0.0",
        Some(ADMIN_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = h.get("/api/svc/1.0.0/health", None, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let stored: Value = serde_json::from_slice(&std::fs::read(&h.routes_file).unwrap()).unwrap();
    assert_eq!(stored["apis"], json!([]));

    // Metrics are on the admin listener.
    let (status, _, text) = admin(h.gw.admin, "GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains("gateway_requests_total{api=\"svc:1.0.0\",status=\"200\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn corrupt_routes_file_is_set_aside_and_readiness_reports_it() {
    let idp = TestIdp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.json");
    std::fs::write(&file, b"{\"apis\": [").unwrap();
    let gw = start_gateway(&config(&idp, &file)).await;
    let (status, _, body) = send(gw.public, "GET", "/readiness", &[], Body::empty()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json_body(&body)["checks"]["route_table"]["ok"], false);
    assert_eq!(json_body(&body)["checks"]["jwks"]["ok"], true);
    assert!(dir.path().join("routes.json.corrupt").exists());
    let (status, _, _) = send(gw.public, "GET", "/health", &[], Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = admin(
        gw.admin,
        "PUT",
        "/admin/apis",
        Some(ADMIN_TOKEN),
        Some(json!({"apis": []})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(gw.public, "GET", "/readiness", &[], Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn refused_backend_is_502_within_a_second_and_slow_one_504() {
    let h = Harness::start().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut gone = rest_api("gone", "/api/gone", closed);
    gone["access"] = json!({"anonymous": true});
    h.put_api(gone).await;
    let started = Instant::now();
    let (status, _, body) = h.get("/api/gone/1.0.0/x", None, &[]).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(json_body(&body)["code"], "upstream_unreachable");

    let backend = echo_backend("slow").await;
    let mut slow = rest_api("slow", "/api/slow", backend);
    slow["access"] = json!({"anonymous": true});
    h.put_api(slow).await;
    let (status, _, body) = h.get("/api/slow/1.0.0/slow", None, &[]).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(json_body(&body)["code"], "upstream_timeout");
}

#[tokio::test]
async fn server_sent_events_arrive_as_they_are_sent() {
    let h = Harness::start().await;
    let backend = echo_backend("llm").await;
    let api = json!({
        "name": "llm", "context": "/api/llm", "version": "1.0.0", "kind": "ai",
        "backend_url": format!("http://{backend}"),
        "access": {"anonymous": true},
        "timeouts": {"connect_ms": 500, "response_ms": 5000, "idle_ms": 5000, "total_ms": 30000}
    });
    h.put_api(api).await;
    let client: Client<HttpConnector, Body> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let resp = client
        .request(
            axum::http::Request::get(format!("http://{}/api/llm/1.0.0/sse", h.gw.public))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let first = http_body_util::BodyExt::frame(&mut body)
        .await
        .unwrap()
        .unwrap();
    let first = first.into_data().unwrap();
    assert_eq!(&first[..], b"data: event 0\n\n");
    // The stream is still open: the rest has not been sent yet.
    assert!(!http_body::Body::is_end_stream(&body));
    let rest = http_body_util::BodyExt::collect(body)
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&rest[..], b"data: event 1\n\ndata: event 2\n\n");
}

#[tokio::test]
async fn cors_preflights_are_answered_by_the_gateway() {
    let h = Harness::start().await;
    let backend = echo_backend("svc").await;
    let mut api = rest_api("svc", "/api/svc", backend);
    api["cors"] = json!({
        "origins": ["https://app.example"], "methods": ["GET", "POST"],
        "headers": ["authorization", "content-type"], "credentials": true, "max_age_seconds": 600
    });
    h.put_api(api).await;
    let public = h.gw.public;
    let pre = move |origin: &'static str, method: &'static str| async move {
        let headers = vec![
            ("origin".to_string(), origin.to_string()),
            (
                "access-control-request-method".to_string(),
                method.to_string(),
            ),
        ];
        send(
            public,
            "OPTIONS",
            "/api/svc/1.0.0/things",
            &headers,
            Body::empty(),
        )
        .await
    };
    let (status, headers, _) = pre("https://app.example", "POST").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(headers["access-control-allow-methods"], "GET, POST");
    assert_eq!(
        headers["access-control-allow-headers"],
        "authorization, content-type"
    );
    assert_eq!(headers["access-control-allow-credentials"], "true");
    assert_eq!(headers["access-control-max-age"], "600");
    let (status, _, _) = pre("https://evil.example", "POST").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = pre("https://app.example", "DELETE").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let token = h.idp.token("u", &[]);
    let (status, headers, _) = h
        .get(
            "/api/svc/1.0.0/things",
            Some(&token),
            &[("origin", "https://app.example")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
    assert!(headers.get_all("vary").iter().any(|v| v == "Origin"));
    let (_, headers, _) = h
        .get(
            "/api/svc/1.0.0/things",
            Some(&token),
            &[("origin", "https://evil.example")],
        )
        .await;
    assert!(headers.get("access-control-allow-origin").is_none());
}

/// A WebSocket backend echoing each text message with what its handshake carried.
// The handshake callback's error type is tungstenite's, not ours.
#[allow(clippy::result_large_err)]
async fn ws_backend() -> SocketAddr {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let mut seen = String::new();
                let ws = tokio_tungstenite::accept_hdr_async(
                    stream,
                    |req: &tokio_tungstenite::tungstenite::handshake::server::Request, resp| {
                        let h = |n: &str| {
                            req.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("-")
                                .to_string()
                        };
                        seen = format!(
                            "uri={} auth={} proto={}",
                            req.uri(),
                            h("authorization"),
                            h("sec-websocket-protocol")
                        );
                        Ok(resp)
                    },
                )
                .await;
                let Ok(mut ws) = ws else { return };
                while let Some(Ok(msg)) = ws.next().await {
                    if let Message::Text(t) = msg {
                        let reply = format!("echo:{} {seen}", t.as_str());
                        if ws.send(Message::text(reply)).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn websocket_round_trip_with_token_in_query_and_in_subprotocol() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let h = Harness::start().await;
    let backend = ws_backend().await;
    h.put_api(json!({
        "name": "events", "context": "/ws/events", "version": "1.0.0", "kind": "websocket",
        "backend_url": format!("http://{backend}"),
        "timeouts": {"connect_ms": 500, "response_ms": 2000, "idle_ms": 5000}
    }))
    .await;
    let token = h.idp.token("wsuser", &[]);
    let base = format!("ws://{}/ws/events/1.0.0/stream", h.gw.public);

    // Token in the query: removed from the URL, sent upstream as a bearer.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{base}?room=1&access_token={token}"))
            .await
            .expect("upgrade through the gateway");
    ws.send(Message::text("hi")).await.unwrap();
    let reply = ws
        .next()
        .await
        .unwrap()
        .unwrap()
        .into_text()
        .unwrap()
        .to_string();
    assert!(reply.starts_with("echo:hi uri=/stream?room=1 "), "{reply}");
    assert!(reply.contains(&format!("auth=Bearer {token}")), "{reply}");
    assert!(!reply.contains("access_token"), "{reply}");

    // Token in Sec-WebSocket-Protocol (`bearer, <token>`): stripped, `bearer` answered.
    let mut req = base.clone().into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("bearer, {token}").parse().unwrap(),
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade with subprotocol token");
    assert_eq!(resp.headers()["sec-websocket-protocol"], "bearer");
    ws.send(Message::text("yo")).await.unwrap();
    let reply = ws
        .next()
        .await
        .unwrap()
        .unwrap()
        .into_text()
        .unwrap()
        .to_string();
    assert!(reply.contains(&format!("auth=Bearer {token}")), "{reply}");
    assert!(reply.contains("proto=-"), "{reply}");

    // No token: refused before any upgrade.
    let err = tokio_tungstenite::connect_async(base.clone())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
}

#[tokio::test]
async fn graphql_limits_are_enforced_before_forwarding() {
    let h = Harness::start().await;
    let backend = echo_backend("gql").await;
    h.put_api(json!({
        "name": "ledger-graphql", "context": "/graphql/ledger", "version": "1.0.0", "kind": "graphql",
        "backend_url": format!("http://{backend}/graphql"),
        "access": {"anonymous": true},
        "graphql": {"max_query_bytes": 200, "max_depth": 3, "schema": "type Query { a: A }"}
    }))
    .await;
    let post = |query: String| {
        let public = h.gw.public;
        async move {
            let headers = vec![("content-type".to_string(), "application/json".to_string())];
            let body = Body::from(json!({"query": query, "variables": {}}).to_string());
            send(public, "POST", "/graphql/ledger/1.0.0", &headers, body).await
        }
    };
    let (status, _, body) = post("{ a { b { c } } }".into()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The API's own path is the backend URL itself (no trailing slash added).
    assert_eq!(json_body(&body)["path"], "/graphql");
    let (status, _, body) = post("mutation { a { b { c { d } } } }".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json_body(&body)["code"], "query_too_deep");
    let (status, _, body) = post(format!("{{ a {} }}", " ".repeat(300))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json_body(&body)["code"], "query_too_large");
    let (status, _, body) = post(format!("{{ a(x: \"{}\") }}", "x".repeat(100_000))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, body) = h.get("/graphql/ledger/1.0.0?query=%7B%20a%20%7B%20b%20%7B%20c%20%7B%20d%20%7D%20%7D%20%7D%20%7D", None, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(json_body(&body)["code"], "query_too_deep");
    let (status, _, body) = h
        .get("/graphql/ledger/1.0.0?query=%7B+a+%7D", None, &[])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, headers, body) = h
        .get("/graphql/ledger/1.0.0/schema.graphql", None, &[])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "type Query { a: A }");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/graphql")
    );
}

/// A backend serving only an OpenAPI document, as every platform service does.
async fn documented_backend() -> SocketAddr {
    let doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "svc", "version": "1"},
        "servers": [{"url": "http://svc:8000"}],
        "paths": {
            "/health": {"get": {"responses": {"200": {"description": "ok"}}}},
            "/admin/stats": {"get": {"responses": {"200": {"description": "ok"}}}},
            "/things/{id}": {"get": {
                "security": [{"bearer": []}],
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "ok"}}
            }},
        },
    });
    let app = Router::new().route(
        "/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc) }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn openapi_document_is_served_for_the_gateway_without_a_token() {
    let h = Harness::start().await;
    let mut api = rest_api("svc", "/api/svc", documented_backend().await);
    api["throttle"] = json!({"policy": "protected", "requests": 100, "period_seconds": 60});
    h.put_api(api).await;

    let (status, headers, body) = h.get("/api/svc/1.0.0/openapi.json", None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    let doc = json_body(&body);
    assert_eq!(
        doc["servers"][0]["url"],
        format!("http://{}/api/svc/1.0.0", h.gw.public)
    );
    let codes = |op: &Value, status: &str| -> Vec<String> {
        op["responses"][status]["content"]["application/problem+json"]["schema"]["allOf"][1]
            ["properties"]["code"]["enum"]
            .as_array()
            .map(|a| a.iter().map(|c| c.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    // Anonymous at the gateway: no token asked for, but throttled and proxied.
    let health = &doc["paths"]["/health"]["get"];
    assert!(health.get("security").is_none(), "{health}");
    assert!(codes(health, "401").is_empty());
    assert_eq!(codes(health, "429"), ["rate_limited"]);
    assert_eq!(codes(health, "504"), ["upstream_timeout"]);
    // Open at the backend, admin-only at the gateway.
    let stats = &doc["paths"]["/admin/stats"]["get"];
    assert_eq!(stats["security"], json!([{"bearer": ["admin"]}]));
    assert_eq!(codes(stats, "401"), ["missing_token", "invalid_token"]);
    assert_eq!(codes(stats, "403"), ["forbidden"]);
    // The backend's own requirement is kept.
    let thing = &doc["paths"]["/things/{id}"]["get"];
    assert_eq!(thing["security"], json!([{"bearer": []}]));
    assert_eq!(codes(thing, "400"), ["invalid_path"]);
    assert_eq!(
        codes(thing, "502"),
        ["upstream_unreachable", "upstream_failed"]
    );

    // Through a proxy that says where the client came from.
    let (_, _, body) = h
        .get(
            "/api/svc/1.0.0/openapi.json",
            None,
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "api.example.test"),
            ],
        )
        .await;
    assert_eq!(
        json_body(&body)["servers"][0]["url"],
        "https://api.example.test/api/svc/1.0.0"
    );
}
