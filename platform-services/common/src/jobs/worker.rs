use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use tokio::sync::watch;
use tracing::Instrument;
use tracing::instrument::WithSubscriber;

use super::scripts::{BURY, CLAIM, COMPLETE, PROMOTE, REAP, RENEW, RETRY};
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
    /// Numbers this worker's deliveries: their fencing tokens are `<id>:<n>`.
    tokens: AtomicU64,
}

impl Shared {
    /// A fencing token no other delivery has (see `scripts.rs`).
    fn token(&self) -> String {
        format!(
            "{}:{}",
            self.id,
            self.tokens.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// Runs jobs from `<service>-tasks`.
pub struct Worker {
    shared: Arc<Shared>,
    stop: Arc<watch::Sender<bool>>,
}

/// Asks a running (or not yet running) worker to stop, as its shutdown future resolving does:
/// from then on it claims nothing, finishes what it holds and hands back the rest.
#[derive(Clone)]
pub struct StopHandle(Arc<watch::Sender<bool>>);

impl StopHandle {
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
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
                tokens: AtomicU64::new(1),
            }),
            stop: Arc::new(watch::channel(false).0),
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

    /// A handle that stops this worker, as an alternative to its shutdown future.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }

    /// Work until `shutdown` resolves; then finish in-flight jobs (within the grace period)
    /// and hand anything left back to the queue.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let s = self.shared;
        let stop_tx = self.stop;
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
        let stop_rx = stop_tx.subscribe();
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
        let mut asked = stop_tx.subscribe();
        tokio::select! {
            () = shutdown => {}
            _ = asked.wait_for(|stop| *stop) => {}
        }
        // From here on no consumer claims a job; one claimed by an outcome script racing this
        // is still run (within the grace period) or handed back below.
        stop_tx.send_replace(true);
        tracing::info!(worker = %s.id, "stopping: finishing in-flight jobs");
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
            .key(s.keys.leases())
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
        let r: redis::RedisResult<i64> = RENEW
            .key(s.keys.heartbeat(&s.id))
            .key(s.keys.workers())
            .arg(&s.id)
            .arg(s.opts.lease.as_millis() as u64)
            .invoke_async(&mut c)
            .await;
        match r {
            Ok(0) => tracing::warn!(
                worker = %s.id,
                "this worker's lease had lapsed and its jobs were delivered again; the outcomes \
                 of jobs it was running will be dropped"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
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
                .key(s.keys.leases())
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
    /// Times delivered, this one included; 0 when the scripts could not read the envelope's
    /// id (it is then dead-lettered unrun).
    deliveries: u32,
    /// This delivery's fencing token: its outcome is recorded only while the job's token in
    /// `<prefix>:leases` is still this one.
    token: String,
}

async fn consume(s: Arc<Shared>, mut c: ConnectionManager, stop: watch::Receiver<bool>) {
    let processing = s.keys.processing(&s.id);
    let mut blocking = None;
    // The job claimed together with the previous job's outcome, if the queue had one.
    let mut next: Option<Claimed> = None;
    loop {
        // A claimed (and counted) job is always run. Claims themselves stop with the stop:
        // an outcome script claims only when no stop was asked for as it was sent.
        let job = match next.take() {
            Some(job) => job,
            None => {
                if *stop.borrow() {
                    break;
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
                let moved: redis::RedisResult<Option<String>> = redis::cmd("BLMOVE")
                    .arg(s.keys.queue())
                    .arg(&processing)
                    .arg("RIGHT")
                    .arg("LEFT")
                    .arg(s.opts.poll.as_secs_f64())
                    .query_async(b)
                    .await;
                match moved {
                    Ok(Some(raw)) => match claim(&s, &mut c, raw, &stop).await {
                        Some(job) => job,
                        None => continue,
                    },
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "waiting for jobs failed; reconnecting");
                        blocking = None;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                }
            }
        };
        next = process(&s, &mut c, job, &stop).await;
    }
}

/// A job `BLMOVE` just moved to this worker's processing list: counts its delivery and gives
/// it a fencing token, or, when a stop was asked for meanwhile (or the worker lost its lease),
/// hands it straight back to the queue uncounted. `None` when it is not to be run here.
async fn claim(
    s: &Shared,
    c: &mut ConnectionManager,
    raw: String,
    stop: &watch::Receiver<bool>,
) -> Option<Claimed> {
    loop {
        let token = s.token();
        let keep = !*stop.borrow();
        let r: redis::RedisResult<i64> = CLAIM
            .key(s.keys.processing(&s.id))
            .key(s.keys.deliveries())
            .key(s.keys.leases())
            .key(s.keys.heartbeat(&s.id))
            .key(s.keys.queue())
            .arg(&raw)
            .arg(&token)
            .arg(if keep { "1" } else { "0" })
            .invoke_async(c)
            .await;
        match r {
            Ok(n) if n < 0 => {
                tracing::debug!(stopping = !keep, "job handed back unclaimed");
                return None;
            }
            Ok(n) => {
                return Some(Claimed {
                    raw,
                    deliveries: n as u32,
                    token,
                });
            }
            Err(e) if *stop.borrow() => {
                // Still in the processing list, uncounted: `Worker::run` hands it back.
                tracing::warn!(error = %e, "could not claim a job while stopping");
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not claim a job; trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Runs one job and records its outcome; unless a stop has been asked for by then, the same
/// script claims the next job, returned here.
async fn process(
    s: &Shared,
    c: &mut ConnectionManager,
    job: Claimed,
    stop: &watch::Receiver<bool>,
) -> Option<Claimed> {
    let span = tracing::info_span!(
        "job",
        job_id = tracing::field::Empty,
        task = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    crate::telemetry::record_trace_id(&span);
    run_job(s, c, job, stop, span.clone())
        .instrument(span)
        .await
}

async fn run_job(
    s: &Shared,
    c: &mut ConnectionManager,
    claimed: Claimed,
    stop: &watch::Receiver<bool>,
    span: tracing::Span,
) -> Option<Claimed> {
    let processing = s.keys.processing(&s.id);
    let raw = claimed.raw;
    let token = claimed.token;
    let parsed = serde_json::from_str::<JobEnvelope>(&raw)
        .map_err(|e| e.to_string())
        .and_then(|j| match claimed.deliveries {
            0 => Err("the job scripts could not read its id".to_string()),
            _ => Ok(j),
        });
    let job = match parsed {
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
    let deliveries = claimed.deliveries;
    let start = Instant::now();
    let outcome = if deliveries > job.max_attempts.max(1) {
        Err(TaskError::fatal(format!(
            "delivered {deliveries} times without finishing; the job may be crashing its worker"
        )))
    } else {
        match s.tasks.get(&job.task) {
            // Perhaps a newer worker has it (a rolling deploy): retried like any transient
            // failure, and dead-lettered only once its attempts run out.
            None => Err(TaskError::retry(format!(
                "unknown task {:?}: this worker has no handler for it",
                job.task
            ))),
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
    // Decided now, not when the job started: a stop asked for while it ran claims nothing.
    let claim = if *stop.borrow() { "0" } else { "1" };
    let next_token = s.token();
    let heartbeat = s.keys.heartbeat(&s.id);
    let result = |status, result, error| JobResult {
        id: job.id.clone(),
        task: job.task.clone(),
        status,
        result,
        error,
        attempts,
        finished_at: Utc::now(),
    };
    type Recorded = (i64, Option<String>, Option<u32>);
    let (label, r): (&str, redis::RedisResult<Recorded>) = match outcome {
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
                .key(s.keys.leases())
                .key(&heartbeat)
                .arg(&raw)
                .arg(res)
                .arg(ttl)
                .arg(&job.id)
                .arg(claim)
                .arg(&token)
                .arg(&next_token)
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
                .key(s.keys.leases())
                .key(&heartbeat)
                .arg(&raw)
                .arg(serde_json::to_string(&next).expect("serialises"))
                .arg(due)
                .arg(res)
                .arg(ttl)
                .arg(claim)
                .arg(&job.id)
                .arg(&token)
                .arg(&next_token)
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
                .key(s.keys.leases())
                .key(&heartbeat)
                .arg(&raw)
                .arg(serde_json::to_string(&dead).expect("serialises"))
                .arg(res)
                .arg(ttl)
                .arg(&job.id)
                .arg(claim)
                .arg(&token)
                .arg(&next_token)
                .invoke_async(c)
                .await;
            ("dead", r)
        }
    };
    let (label, next) = match r {
        Ok((0, _, _)) => {
            // The lease lapsed and the job was reaped (and perhaps already run again
            // elsewhere): this delivery's outcome must not overwrite that one.
            tracing::warn!(
                outcome = label,
                "lease lost: the job was delivered again after this worker's lease lapsed; \
                 dropping this attempt's outcome"
            );
            ("stale", None)
        }
        Ok((_, raw, n)) => (
            label,
            raw.map(|raw| Claimed {
                raw,
                deliveries: n.unwrap_or(0),
                token: next_token,
            }),
        ),
        Err(e) => {
            // The job stays in this worker's processing list and is handed back on stop or
            // delivered again when the lease lapses: at-least-once, never lost.
            tracing::error!(error = %e, "could not record the job's outcome");
            (label, None)
        }
    };
    if let Some(m) = &s.metrics {
        m.observe_job(&job.task, label, elapsed);
    }
    next
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
