//! Job round trips through the wire format of `platform-services/JOBS.md`, and the Redis
//! `PING` round trip they are compared with. Both are closed loops: `in_flight` clients, each
//! on its own connection (a blocking `BLMOVE` would stall a shared one), until `total` are done.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::latency::{Latencies, Outcome};

/// How long one job may take before the run gives up on it.
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct JobLoad {
    pub redis_url: String,
    /// Short service name: the queue is `<service>-tasks`.
    pub service: String,
    pub total: usize,
    pub in_flight: usize,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Ping,
    Echo,
}

impl JobLoad {
    /// `<service>.echo` jobs: `LPUSH` the envelope and block on its done list, pipelined.
    pub async fn echo_round_trips(&self) -> anyhow::Result<Outcome> {
        self.run(Op::Echo).await
    }

    /// The baseline: one `PING` per operation on the same kind of connections.
    pub async fn ping_round_trips(&self) -> anyhow::Result<Outcome> {
        self.run(Op::Ping).await
    }

    async fn run(&self, op: Op) -> anyhow::Result<Outcome> {
        let client = redis::Client::open(self.redis_url.as_str()).context("redis url")?;
        let mut conns = Vec::with_capacity(self.in_flight);
        for _ in 0..self.in_flight {
            // Each call opens a connection of its own.
            conns.push(
                client
                    .get_multiplexed_async_connection()
                    .await
                    .context("connect to redis")?,
            );
        }
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for conn in conns {
            let (next, total, service) = (next.clone(), self.total, self.service.clone());
            tasks.spawn(async move {
                let mut conn = conn;
                let mut lat = Latencies::default();
                let mut errors = 0;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let sent = Instant::now();
                    let ok = match op {
                        Op::Ping => ping(&mut conn).await?,
                        Op::Echo => echo(&mut conn, &service, i as i64).await?,
                    };
                    lat.record(sent.elapsed());
                    if !ok {
                        errors += 1;
                    }
                }
                anyhow::Ok((lat, errors))
            });
        }
        let mut all = Latencies::default();
        let mut errors = 0;
        while let Some(joined) = tasks.join_next().await {
            let (lat, errs) = joined.context("job client panicked")??;
            all.merge(lat);
            errors += errs;
        }
        Ok(Outcome::from_samples(all, errors, started.elapsed()))
    }
}

async fn ping(conn: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<bool> {
    let pong: String = redis::cmd("PING").query_async(conn).await?;
    Ok(pong == "PONG")
}

/// One `<service>.echo` job, `[i, 1]`, in one round trip: `LPUSH` the envelope and block on
/// the job's done list in one pipeline; the done list's element is the result. True when it
/// says `succeeded` with the arguments echoed back (the production workers' one task).
async fn echo(
    conn: &mut redis::aio::MultiplexedConnection,
    service: &str,
    i: i64,
) -> anyhow::Result<bool> {
    let id = uuid::Uuid::new_v4().to_string();
    let queue = format!("{service}-tasks");
    let done = format!("{queue}:done:{id}");
    let envelope = json!({"id": id, "task": format!("{service}.echo"), "args": [i, 1]});
    let (_, hit): (i64, Option<String>) = redis::pipe()
        .cmd("LPUSH")
        .arg(&queue)
        .arg(envelope.to_string())
        .cmd("BLMOVE")
        .arg(&done)
        .arg(&done)
        .arg("RIGHT")
        .arg("LEFT")
        .arg(JOB_TIMEOUT.as_secs_f64())
        .query_async(conn)
        .await?;
    let raw = hit.with_context(|| {
        format!("job {id} not finished after {JOB_TIMEOUT:?}; is the worker running?")
    })?;
    let result: Value = serde_json::from_str(&raw)
        .with_context(|| format!("job {id}: the done list holds {raw:?}, not a result"))?;
    Ok(result["status"] == "succeeded" && result["result"] == json!([i, 1]))
}
