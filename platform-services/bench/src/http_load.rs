//! An HTTP/1.1 load generator: `connections` keep-alive connections, for a warm-up and then a
//! measured window. Closed loop by default (each connection sends its next request when the
//! previous answer is read: the saturation throughput); with a `rate`, open loop (requests
//! are due on a fixed schedule spread over the connections, and each latency counts from when
//! its request was due, so a stalled server is not hidden by sending less: no coordinated
//! omission).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::header::{AUTHORIZATION, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::latency::{Latencies, Outcome};

#[derive(Debug, Clone)]
pub struct HttpLoad {
    pub addr: SocketAddr,
    pub path: String,
    /// Sent as `Authorization: Bearer <token>` when set.
    pub bearer: Option<String>,
    pub connections: usize,
    pub warmup: Duration,
    pub measure: Duration,
    /// Requests per second over all connections; `None` for a closed loop.
    pub rate: Option<f64>,
}

impl HttpLoad {
    pub async fn run(&self) -> anyhow::Result<Outcome> {
        let auth = self
            .bearer
            .as_ref()
            .map(|t| HeaderValue::from_str(&format!("Bearer {t}")))
            .transpose()
            .context("token is not a valid header value")?;
        let start = Instant::now();
        let measured_from = start + self.warmup;
        let until = measured_from + self.measure;
        let mut tasks = tokio::task::JoinSet::new();
        // Open loop: connection i's requests are due at start + (i + k * connections) / rate.
        let interval = self
            .rate
            .map(|r| Duration::from_secs_f64(self.connections as f64 / r.max(1.0)));
        for i in 0..self.connections {
            let (addr, path, auth) = (self.addr, self.path.clone(), auth.clone());
            let schedule = interval.map(|every| Schedule {
                next: start + every.mul_f64(i as f64 / self.connections as f64),
                every,
            });
            tasks.spawn(connection(addr, path, auth, schedule, measured_from, until));
        }
        let mut all = Latencies::default();
        let mut errors = 0;
        while let Some(joined) = tasks.join_next().await {
            let (lat, errs) = joined.context("load task panicked")??;
            all.merge(lat);
            errors += errs;
        }
        Ok(Outcome::from_samples(all, errors, self.measure))
    }
}

/// When an open-loop connection's requests are due.
struct Schedule {
    next: Instant,
    every: Duration,
}

/// One keep-alive connection's loop; returns the latencies of requests started (or, open
/// loop, due) in the window.
async fn connection(
    addr: SocketAddr,
    path: String,
    auth: Option<HeaderValue>,
    mut schedule: Option<Schedule>,
    measured_from: Instant,
    until: Instant,
) -> anyhow::Result<(Latencies, usize)> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(conn);
    let host = HeaderValue::from_str(&addr.to_string())?;
    let mut lat = Latencies::default();
    let mut errors = 0;
    loop {
        let sent = match &mut schedule {
            None => Instant::now(),
            Some(s) => {
                let due = s.next;
                s.next += s.every;
                tokio::time::sleep_until(due.into()).await;
                due
            }
        };
        if sent >= until {
            break;
        }
        let mut req = Request::get(path.as_str()).header(HOST, host.clone());
        if let Some(a) = &auth {
            req = req.header(AUTHORIZATION, a.clone());
        }
        let req = req.body(Empty::<Bytes>::new())?;
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let ok = resp.status().is_success();
        resp.into_body().collect().await?;
        // Requests still running when the window closes are dropped, not counted.
        let done = Instant::now();
        if sent >= measured_from && done <= until {
            lat.record(done - sent);
            if !ok {
                errors += 1;
            }
        }
    }
    drop(sender);
    driver.abort();
    Ok((lat, errors))
}
