use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio::sync::watch;
use tracing::Instrument;
use tracing::instrument::WithSubscriber;

use super::scripts::{BURY, COMPLETE, PROMOTE, REAP, RETRY};
use super::{JobEnvelope, JobKeys, JobResult, JobStatus, TaskError, TaskRegistry};
use crate::config::JobConfig;
use crate::metrics::Metrics;
use crate::redis_handle::RedisHandle;

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub concurrency: usize,
    /// A worker silent for this long is presumed dead and its jobs are delivered again.
    pub lease: Duration,
    pub result_ttl: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// A job running longer fails (retryably).
    pub task_timeout: Duration,
    /// How long one wait for a job blocks; bounds how fast a stop is noticed.
    pub poll: Duration,
    /// How long in-flight jobs may finish after a stop is asked for.
    pub grace: Duration,
}

impl From<&JobConfig> for WorkerOptions {
    fn from(c: &JobConfig) -> Self {
        Self {
            concurrency: c.concurrency,
            lease: c.lease,
            result_ttl: c.result_ttl,
            backoff_base: c.backoff_base,
            ..Self::default()
        }
    }
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            lease: Duration::from_secs(30),
            result_ttl: Duration::from_secs(86_400),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            task_timeout: Duration::from_secs(600),
            poll: Duration::from_secs(1),
            grace: Duration::from_secs(20),
        }
    }
}

impl WorkerOptions {
    /// Delay before retry number `attempt` (1-based): doubling from the base, capped,
    /// with jitter in the upper half so retries of a burst spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let d = exp.min(self.backoff_cap).as_millis() as u64;
        Duration::from_millis(d / 2 + fastrand::u64(0..=d / 2))
    }
}

struct Shared {
    id: String,
    keys: JobKeys,
    redis: RedisHandle,
    tasks: TaskRegistry,
    opts: WorkerOptions,
    metrics: Option<Arc<Metrics>>,
}

/// Runs jobs from `<service>-tasks`.
pub struct Worker {
    shared: Arc<Shared>,
}

impl Worker {
    pub fn new(
        service: &str,
        redis: RedisHandle,
        tasks: TaskRegistry,
        opts: WorkerOptions,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                id: format!(
                    "{}-{}",
                    hostname(),
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                ),
                keys: JobKeys::new(service),
                redis,
                tasks,
                opts,
                metrics: None,
            }),
        }
    }

    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        Arc::get_mut(&mut self.shared)
            .expect("not running yet")
            .metrics = Some(metrics);
        self
    }

    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Work until `shutdown` resolves; then finish in-flight jobs (within the grace period)
    /// and hand anything left back to the queue.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let s = self.shared;
        let conn = loop {
            match register(&s).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, "redis unavailable; worker waiting to register");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        tracing::info!(worker = %s.id, queue = s.keys.queue(), tasks = ?s.tasks.names(), "worker started");
        let (stop_tx, stop_rx) = watch::channel(false);
        // JoinSets abort their tasks when dropped, so dropping this future (as a crash
        // would) leaves nothing running: the lease then lapses as it would for a dead process.
        // The tasks log to the subscriber the worker runs under, scoped or global.
        let mut background = tokio::task::JoinSet::new();
        background.spawn(heartbeat(s.clone(), conn.clone()).with_current_subscriber());
        background.spawn(upkeep(s.clone(), conn.clone()).with_current_subscriber());
        let mut consumers = tokio::task::JoinSet::new();
        for _ in 0..s.opts.concurrency {
            consumers
                .spawn(consume(s.clone(), conn.clone(), stop_rx.clone()).with_current_subscriber());
        }
        shutdown.await;
        tracing::info!(worker = %s.id, "stopping: finishing in-flight jobs");
        let _ = stop_tx.send(true);
        let drained = async { while consumers.join_next().await.is_some() {} };
        if tokio::time::timeout(s.opts.grace + s.opts.poll, drained)
            .await
            .is_err()
        {
            tracing::warn!("in-flight jobs did not finish in time; handing them back to the queue");
        }
        consumers.abort_all();
        background.abort_all();
        let mut c = conn;
        let released: redis::RedisResult<i64> = REAP
            .key(s.keys.workers())
            .key(s.keys.queue())
            .arg(s.keys.prefix())
            .arg(&s.id)
            .invoke_async(&mut c)
            .await;
        match released {
            Ok(n) => tracing::info!(worker = %s.id, requeued = n, "worker stopped"),
            Err(e) => {
                tracing::warn!(error = %e, "could not release; the lease will expire instead")
            }
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into())
}

async fn register(s: &Shared) -> redis::RedisResult<ConnectionManager> {
    let mut c = s.redis.conn().await?;
    // Lease first, membership second: the reaper never sees a member without a lease.
    let _: () = c
        .pset_ex(s.keys.heartbeat(&s.id), 1, s.opts.lease.as_millis() as u64)
        .await?;
    let _: i64 = c.sadd(s.keys.workers(), &s.id).await?;
    Ok(c)
}

async fn heartbeat(s: Arc<Shared>, mut c: ConnectionManager) {
    let every = s.opts.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let r: redis::RedisResult<()> = async {
            let _: () = c
                .pset_ex(s.keys.heartbeat(&s.id), 1, s.opts.lease.as_millis() as u64)
                .await?;
            let _: i64 = c.sadd(s.keys.workers(), &s.id).await?;
            Ok(())
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "heartbeat failed");
        }
    }
}

/// Promotes due retries and reclaims the jobs of dead workers.
async fn upkeep(s: Arc<Shared>, mut c: ConnectionManager) {
    let promote_every = Duration::from_millis(200);
    let reap_every = (s.opts.lease / 2).max(Duration::from_millis(200));
    let mut last_reap = Instant::now() - reap_every;
    loop {
        let now = Utc::now().timestamp_millis();
        let r: redis::RedisResult<i64> = PROMOTE
            .key(s.keys.scheduled())
            .key(s.keys.queue())
            .arg(now)
            .arg(500)
            .invoke_async(&mut c)
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "promoting retries failed");
        }
        if last_reap.elapsed() >= reap_every {
            last_reap = Instant::now();
            let r: redis::RedisResult<i64> = REAP
                .key(s.keys.workers())
                .key(s.keys.queue())
                .arg(s.keys.prefix())
                .arg("")
                .invoke_async(&mut c)
                .await;
            match r {
                Ok(0) => {}
                Ok(n) => tracing::warn!(requeued = n, "delivered jobs of a dead worker again"),
                Err(e) => tracing::warn!(error = %e, "reaping failed"),
            }
        }
        tokio::time::sleep(promote_every).await;
    }
}

/// A job taken from the queue and now in this worker's processing list.
struct Claimed {
    raw: String,
    /// Times delivered, this one included, when the claim already counted it.
    deliveries: Option<u32>,
}

async fn consume(s: Arc<Shared>, mut c: ConnectionManager, stop: watch::Receiver<bool>) {
    let processing = s.keys.processing(&s.id);
    let mut blocking = None;
    // The job claimed together with the previous job's outcome, if the queue had one.
    let mut next: Option<Claimed> = None;
    while !*stop.borrow() {
        if let Some(job) = next.take() {
            let claim_next = !*stop.borrow();
            next = process(&s, &mut c, job, claim_next).await;
            continue;
        }
        if blocking.is_none() {
            match s.redis.dedicated(s.opts.poll).await {
                Ok(b) => blocking = Some(b),
                Err(e) => {
                    tracing::warn!(error = %e, "redis unavailable; waiting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        let b = blocking.as_mut().expect("set above");
        let claimed: redis::RedisResult<Option<String>> = redis::cmd("BLMOVE")
            .arg(s.keys.queue())
            .arg(&processing)
            .arg("RIGHT")
            .arg("LEFT")
            .arg(s.opts.poll.as_secs_f64())
            .query_async(b)
            .await;
        match claimed {
            Ok(Some(raw)) => {
                let job = Claimed {
                    raw,
                    deliveries: None,
                };
                let claim_next = !*stop.borrow();
                next = process(&s, &mut c, job, claim_next).await;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "waiting for jobs failed; reconnecting");
                blocking = None;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    // A job claimed as the stop came stays in the processing list; `Worker::run` hands it
    // back to the queue.
}

/// Runs one job and records its outcome; when `claim_next`, the same script claims the next
/// job, returned here.
async fn process(
    s: &Shared,
    c: &mut ConnectionManager,
    job: Claimed,
    claim_next: bool,
) -> Option<Claimed> {
    let span = tracing::info_span!(
        "job",
        job_id = tracing::field::Empty,
        task = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    crate::telemetry::record_trace_id(&span);
    run_job(s, c, job, claim_next, span.clone())
        .instrument(span)
        .await
}

async fn run_job(
    s: &Shared,
    c: &mut ConnectionManager,
    claimed: Claimed,
    claim_next: bool,
    span: tracing::Span,
) -> Option<Claimed> {
    let processing = s.keys.processing(&s.id);
    let raw = claimed.raw;
    let job: JobEnvelope = match serde_json::from_str(&raw) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(error = %e, "unreadable job moved to the dead-letter list");
            let r: redis::RedisResult<()> = redis::pipe()
                .atomic()
                .lrem(&processing, 1, &raw)
                .lpush(s.keys.dead(), &raw)
                .query_async(c)
                .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "could not move unreadable job");
            }
            return None;
        }
    };
    span.record("job_id", job.id.as_str());
    span.record("task", job.task.as_str());
    let deliveries = match claimed.deliveries {
        Some(n) => n,
        None => c.hincr(s.keys.deliveries(), &job.id, 1).await.unwrap_or(1),
    };
    let start = Instant::now();
    let outcome = if deliveries > job.max_attempts.max(1) {
        Err(TaskError::fatal(format!(
            "delivered {deliveries} times without finishing; the job may be crashing its worker"
        )))
    } else {
        match s.tasks.get(&job.task) {
            None => Err(TaskError::fatal(format!("unknown task {:?}", job.task))),
            Some(handler) => {
                match tokio::time::timeout(s.opts.task_timeout, handler(job.args.clone())).await {
                    Ok(r) => r,
                    Err(_) => Err(TaskError::retry(format!(
                        "timed out after {:?}",
                        s.opts.task_timeout
                    ))),
                }
            }
        }
    };
    let elapsed = start.elapsed().as_secs_f64();
    let attempts = job.attempts + 1;
    let ttl = s.opts.result_ttl.as_millis() as u64;
    let claim = if claim_next { "1" } else { "0" };
    let result = |status, result, error| JobResult {
        id: job.id.clone(),
        task: job.task.clone(),
        status,
        result,
        error,
        attempts,
        finished_at: Utc::now(),
    };
    let (label, r): (&str, redis::RedisResult<Option<(String, u32)>>) = match outcome {
        Ok(value) => {
            tracing::debug!(ms = elapsed * 1000.0, "job succeeded");
            let res = serde_json::to_string(&result(JobStatus::Succeeded, Some(value), None))
                .expect("serialises");
            let r = COMPLETE
                .key(&processing)
                .key(s.keys.result(&job.id))
                .key(s.keys.done(&job.id))
                .key(s.keys.deliveries())
                .key(s.keys.queue())
                .arg(&raw)
                .arg(res)
                .arg(ttl)
                .arg(&job.id)
                .arg(claim)
                .invoke_async(c)
                .await;
            ("succeeded", r)
        }
        Err(e) if e.retryable && attempts < job.max_attempts => {
            let delay = s.opts.backoff(attempts);
            tracing::warn!(error = %e.message, retry_in_ms = delay.as_millis() as u64, "job failed; will retry");
            let next = JobEnvelope {
                attempts,
                last_error: Some(e.message.clone()),
                ..job.clone()
            };
            let res = serde_json::to_string(&result(JobStatus::Retrying, None, Some(e.message)))
                .expect("serialises");
            let due = Utc::now().timestamp_millis() + delay.as_millis() as i64;
            let r = RETRY
                .key(&processing)
                .key(s.keys.scheduled())
                .key(s.keys.result(&job.id))
                .key(s.keys.deliveries())
                .key(s.keys.queue())
                .arg(&raw)
                .arg(serde_json::to_string(&next).expect("serialises"))
                .arg(due)
                .arg(res)
                .arg(ttl)
                .arg(claim)
                .invoke_async(c)
                .await;
            ("retried", r)
        }
        Err(e) => {
            tracing::error!(error = %e.message, "job failed for good; moved to the dead-letter list");
            let dead = JobEnvelope {
                attempts,
                last_error: Some(e.message.clone()),
                ..job.clone()
            };
            let res = serde_json::to_string(&result(JobStatus::Dead, None, Some(e.message)))
                .expect("serialises");
            let r = BURY
                .key(&processing)
                .key(s.keys.dead())
                .key(s.keys.result(&job.id))
                .key(s.keys.done(&job.id))
                .key(s.keys.deliveries())
                .key(s.keys.queue())
                .arg(&raw)
                .arg(serde_json::to_string(&dead).expect("serialises"))
                .arg(res)
                .arg(ttl)
                .arg(&job.id)
                .arg(claim)
                .invoke_async(c)
                .await;
            ("dead", r)
        }
    };
    if let Some(m) = &s.metrics {
        m.observe_job(&job.task, label, elapsed);
    }
    match r {
        Ok(next) => next.map(|(raw, n)| Claimed {
            raw,
            deliveries: (n > 0).then_some(n),
        }),
        Err(e) => {
            // The job stays in this worker's processing list and is handed back on stop or
            // delivered again when the lease lapses: at-least-once, never lost.
            tracing::error!(error = %e, "could not record the job's outcome");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::WorkerOptions;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_and_caps() {
        let o = WorkerOptions {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_millis(1000),
            ..WorkerOptions::default()
        };
        for (attempt, full) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (30, 1000),
        ] {
            let d = o.backoff(attempt).as_millis() as u64;
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempt}: {d}ms not in [{}, {full}]",
                full / 2
            );
        }
    }
}
