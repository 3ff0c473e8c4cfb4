//! WebSocket APIs: the upgrade is proxied (hyper upgrades on both sides) and bytes are
//! copied both ways until either side closes or the API's idle timeout passes.
//!
//! Browsers cannot set headers on a WebSocket, so the token may also come as an
//! `access_token` query parameter or as the subprotocol pair `Sec-WebSocket-Protocol:
//! bearer, <token>`. Both are removed before forwarding; the token goes upstream as
//! `Authorization: Bearer`. When the client offered `bearer` and the backend selects no
//! subprotocol, the gateway answers `bearer` so browsers accept the handshake.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::Gateway;
use crate::proxy::{Outcome, prepare_upstream_headers, problem, strip_hop_by_hop, upstream_uri};
use crate::table::Route;

/// The client offered the `bearer` subprotocol marker.
#[derive(Clone, Copy)]
struct OfferedBearer;

pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Takes the token out of the query (`access_token`) or the subprotocols (`bearer, <token>`).
pub fn take_token(req: &mut Request) -> Option<String> {
    let mut token = None;
    if let Some(query) = req.uri().query() {
        let mut kept = Vec::new();
        for pair in query.split('&') {
            match pair.strip_prefix("access_token=") {
                Some(v) if token.is_none() => {
                    token = Some(percent_decode_str(v).decode_utf8_lossy().to_string());
                }
                Some(_) => {}
                None => kept.push(pair),
            }
        }
        let path = req.uri().path().to_string();
        let pq = if kept.is_empty() {
            path
        } else {
            format!("{path}?{}", kept.join("&"))
        };
        if let Ok(uri) = pq.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    let protocols: Vec<String> = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(i) = protocols
        .iter()
        .position(|p| p.eq_ignore_ascii_case("bearer"))
    {
        let mut rest = protocols.clone();
        let found = (i + 1 < rest.len()).then(|| rest.remove(i + 1));
        rest.remove(i);
        req.headers_mut().remove(header::SEC_WEBSOCKET_PROTOCOL);
        if !rest.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&rest.join(", ")) {
                req.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, v);
            }
        }
        req.extensions_mut().insert(OfferedBearer);
        if token.is_none() {
            token = found;
        }
    }
    token
}

pub(crate) async fn forward(
    gw: &Gateway,
    route: &Route,
    rest: &str,
    client: SocketAddr,
    mut req: Request,
    request_id: &str,
    outcome: &mut Outcome,
) -> Response {
    let offered_bearer = req.extensions().get::<OfferedBearer>().is_some();
    let client_upgrade = hyper::upgrade::on(&mut req);
    let (parts, _) = req.into_parts();
    let rest = crate::proxy::backend_rest(route, parts.uri.path(), rest);
    let uri = match upstream_uri(route, rest, parts.uri.query()) {
        Ok(u) => u,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "invalid_path", e),
    };
    let mut headers = parts.headers;
    prepare_upstream_headers(&mut headers, client, &route.prefix, request_id);
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    let mut up = axum::http::Request::new(Body::empty());
    *up.method_mut() = Method::GET;
    *up.uri_mut() = uri;
    *up.headers_mut() = headers;

    let t = &route.api.timeouts;
    let sent = std::time::Instant::now();
    let result = tokio::time::timeout(
        Duration::from_millis(t.response_ms),
        gw.client(t.connect_ms).request(up),
    )
    .await;
    outcome.upstream_ms = Some(sent.elapsed().as_secs_f64() * 1000.0);
    let mut resp = match result {
        Err(_) => {
            gw.metrics.upstream_error(&route.id, "timeout");
            return problem(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                "the backend did not answer the upgrade in time",
            );
        }
        Ok(Err(e)) => {
            gw.metrics.upstream_error(&route.id, "connect");
            tracing::warn!(error = %e, backend = %route.origin, "backend unreachable");
            return problem(
                StatusCode::BAD_GATEWAY,
                "upstream_unreachable",
                "the backend could not be reached",
            );
        }
        Ok(Ok(r)) => r,
    };
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (mut p, b) = resp.into_parts();
        strip_hop_by_hop(&mut p.headers);
        return Response::from_parts(p, Body::new(b));
    }
    let upstream_upgrade = hyper::upgrade::on(&mut resp);
    let mut out = Response::new(Body::empty());
    *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *out.headers_mut() = resp.headers().clone();
    if offered_bearer && !resp.headers().contains_key(header::SEC_WEBSOCKET_PROTOCOL) {
        out.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("bearer"),
        );
    }
    let idle = Duration::from_millis(t.idle_ms);
    let api = route.id.clone();
    tokio::spawn(async move {
        match (client_upgrade.await, upstream_upgrade.await) {
            (Ok(c), Ok(u)) => {
                let why = pump(TokioIo::new(c), TokioIo::new(u), idle).await;
                tracing::debug!(api, why, "websocket closed");
            }
            (c, u) => {
                tracing::warn!(
                    api,
                    client = c.is_ok(),
                    upstream = u.is_ok(),
                    "websocket upgrade failed"
                );
            }
        }
    });
    out
}

/// Copies both ways until one side closes, an error, or `idle` passes with no bytes.
async fn pump<A, B>(a: A, b: B, idle: Duration) -> &'static str
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let mut abuf = vec![0u8; 16 * 1024];
    let mut bbuf = vec![0u8; 16 * 1024];
    loop {
        let step = tokio::time::timeout(idle, async {
            tokio::select! {
                n = ar.read(&mut abuf) => (true, n),
                n = br.read(&mut bbuf) => (false, n),
            }
        })
        .await;
        let (from_client, n) = match step {
            Err(_) => return "idle timeout",
            Ok(v) => v,
        };
        let written = match (from_client, n) {
            (_, Err(_)) => return "read error",
            (true, Ok(0)) => {
                let _ = bw.shutdown().await;
                return "client closed";
            }
            (false, Ok(0)) => {
                let _ = aw.shutdown().await;
                return "backend closed";
            }
            (true, Ok(n)) => bw.write_all(&abuf[..n]).await,
            (false, Ok(n)) => aw.write_all(&bbuf[..n]).await,
        };
        if written.is_err() {
            return "write error";
        }
    }
}
