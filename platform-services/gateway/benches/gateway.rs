//! Authenticated `GET /health` through the gateway (the real binary, its own process, so its
//! RSS is its own) and straight to the backend, in one run: 64 keep-alive connections, a
//! fixed time each, then one table of req/s, p50, p99, the latency the gateway adds, and the
//! gateway's RSS idle and after load.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use platform_testing::{AUDIENCE, TestIdp, free_port};

const CONNECTIONS: usize = 64;
const RUN: Duration = Duration::from_secs(5);
const ADMIN_TOKEN: &str = "bench-admin";

struct Run {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn pct(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }
}

async fn load(addr: SocketAddr, path: &'static str, token: String) -> Run {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).ok();
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .expect("handshake");
            tokio::spawn(conn);
            let mut lat = Vec::new();
            let mut errors = 0;
            while start.elapsed() < RUN {
                let req = hyper::Request::get(path)
                    .header("host", addr.to_string())
                    .header("authorization", format!("Bearer {token}"))
                    .body(Empty::<Bytes>::new())
                    .expect("request");
                let t = Instant::now();
                match send.send_request(req).await {
                    Ok(resp) if resp.status() == 200 => {
                        let _ = resp.into_body().collect().await;
                        lat.push(t.elapsed());
                    }
                    Ok(resp) => {
                        let _ = resp.into_body().collect().await;
                        errors += 1;
                    }
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("load task");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed();
    latencies.sort();
    Run {
        requests: latencies.len(),
        errors,
        elapsed,
        latencies,
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let idp = TestIdp::start().await;
        let backend = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let app = axum::Router::new().route("/health", get(|| async { "{\"status\":\"ok\"}" }));
            tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
            addr
        };
        let dir = tempfile::tempdir().unwrap();
        let (port, admin_port) = (free_port().expect("a free port"), free_port().expect("a free port"));
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
            .env("PORT", port.to_string())
            .env("ADMIN_PORT", admin_port.to_string())
            .env("GATEWAY_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("GATEWAY_ROUTES_FILE", dir.path().join("routes.json"))
            .env("OIDC_ISSUER", idp.issuer())
            .env("OIDC_AUDIENCE", AUDIENCE)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start the gateway binary");
        let http = reqwest::Client::new();
        let mut ready = false;
        for _ in 0..200 {
            if let Ok(r) = http.get(format!("http://127.0.0.1:{port}/readiness")).send().await {
                if r.status() == 200 {
                    ready = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ready, "the gateway did not become ready");
        let api = serde_json::json!({
            "name": "svc", "context": "/api/svc", "version": "1.0.0",
            "backend_url": format!("http://{backend}")
        });
        let put = http
            .put(format!("http://127.0.0.1:{admin_port}/admin/apis/svc:1.0.0"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&api)
            .send()
            .await
            .expect("admin API");
        assert!(put.status().is_success(), "{}", put.status());
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle_rss = rss_kib(child.id());
        let token = idp.token("bench", &["user"]);
        let gw_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let direct = load(backend, "/health", token.clone()).await;
        let through = load(gw_addr, "/api/svc/1.0.0/health", token).await;
        let loaded_rss = rss_kib(child.id());
        let _ = child.kill();
        let _ = child.wait();

        println!("authenticated GET /health, {CONNECTIONS} connections, {} s each", RUN.as_secs());
        println!("{:<10} {:>10} {:>8} {:>10} {:>10}", "target", "req/s", "errors", "p50 ms", "p99 ms");
        for (name, r) in [("direct", &direct), ("gateway", &through)] {
            println!(
                "{:<10} {:>10.0} {:>8} {:>10} {:>10}",
                name,
                r.rps(),
                r.errors,
                ms(r.pct(0.5)),
                ms(r.pct(0.99))
            );
        }
        let added_p50 = through.pct(0.5).saturating_sub(direct.pct(0.5));
        let added_p99 = through.pct(0.99).saturating_sub(direct.pct(0.99));
        println!();
        println!(
            "gateway/direct req/s {:.2} (target >= 0.50); added p50 {} ms (target < 1); added p99 {} ms (target < 10)",
            through.rps() / direct.rps().max(1.0),
            ms(added_p50),
            ms(added_p99)
        );
        println!(
            "gateway RSS idle {:.1} MiB (target < 30), after load {:.1} MiB",
            idle_rss as f64 / 1024.0,
            loaded_rss as f64 / 1024.0
        );
    });
}
