//! The job runtime against a real Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use platform_common::jobs::{
    FAIL, FAIL_DEFAULT_MESSAGE, JobClient, JobEnvelope, JobResult, JobStatus, StopHandle,
    TaskError, TaskRegistry, Worker, WorkerOptions, register_smoke_tasks,
};
use platform_common::redis_handle::RedisHandle;
use platform_testing::infra;
use redis::AsyncCommands;
use serde_json::json;
use tokio::sync::oneshot;

fn fast() -> WorkerOptions {
    WorkerOptions {
        concurrency: 2,
        lease: Duration::from_secs(1),
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(100),
        poll: Duration::from_millis(200),
        grace: Duration::from_millis(200),
        ..WorkerOptions::default()
    }
}

struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }
}

fn start(service: &str, redis: &RedisHandle, tasks: TaskRegistry, opts: WorkerOptions) -> Running {
    let (tx, rx) = oneshot::channel();
    let w = Worker::new(service, redis.clone(), tasks, opts);
    let task = tokio::spawn(w.run(async move {
        let _ = rx.await;
    }));
    Running {
        stop: Some(tx),
        task,
    }
}

async fn setup() -> (String, RedisHandle, JobClient, infra::Guard) {
    let (cfg, guard) = infra::redis().await;
    let svc = infra::unique("t");
    let redis = RedisHandle::new(&cfg).unwrap();
    let client = JobClient::new(&svc, redis.clone());
    (svc, redis, client, guard)
}

#[tokio::test]
async fn sample_tasks_round_trip() {
    let (svc, redis, client, _g) = setup().await;
    let mut tasks = TaskRegistry::default();
    platform_testing::tasks::register(&mut tasks, &svc);
    let w = start(&svc, &redis, tasks, fast());
    let add = client
        .enqueue(&format!("{svc}.add"), json!([1, 2]))
        .await
        .unwrap();
    let echo = client
        .enqueue(&format!("{svc}.echo"), json!({"x": [1, "y"]}))
        .await
        .unwrap();
    let r = client
        .wait(&add, Duration::from_secs(5))
        .await
        .unwrap()
        .expect("add finished");
    assert_eq!(
        (r.status, r.result, r.attempts),
        (JobStatus::Succeeded, Some(json!(3)), 1)
    );
    let r = client
        .wait(&echo, Duration::from_secs(5))
        .await
        .unwrap()
        .expect("echo finished");
    assert_eq!(r.result, Some(json!({"x": [1, "y"]})));
    // Waiting does not consume: a second waiter sees it too.
    assert!(
        client
            .wait(&add, Duration::from_secs(1))
            .await
            .unwrap()
            .is_some()
    );
    w.stop().await;
}

#[tokio::test]
async fn failing_job_is_retried_with_backoff_then_succeeds() {
    let (svc, redis, client, _g) = setup().await;
    let calls = Arc::new(AtomicU32::new(0));
    let mut tasks = TaskRegistry::default();
    let c = calls.clone();
    tasks.register("flaky", move |_| {
        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            if n < 3 {
                Err(TaskError::retry(format!("boom {n}")))
            } else {
                Ok(json!(n))
            }
        }
    });
    let w = start(&svc, &redis, tasks, fast());
    let id = client.enqueue("flaky", json!(null)).await.unwrap();
    let r = client
        .wait(&id, Duration::from_secs(10))
        .await
        .unwrap()
        .expect("finished");
    assert_eq!(
        (r.status, r.attempts, r.result),
        (JobStatus::Succeeded, 3, Some(json!(3)))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    w.stop().await;
}

#[tokio::test]
async fn job_is_dead_lettered_after_max_attempts() {
    let (svc, redis, client, _g) = setup().await;
    let mut tasks = TaskRegistry::default();
    tasks.register("always-fails", |_| async {
        Err::<serde_json::Value, _>(TaskError::retry("nope"))
    });
    let w = start(&svc, &redis, tasks, fast());
    let job = JobEnvelope {
        max_attempts: 3,
        ..JobEnvelope::new("always-fails", json!([]))
    };
    let id = client.enqueue_envelope(&job).await.unwrap();
    let r = client
        .wait(&id, Duration::from_secs(10))
        .await
        .unwrap()
        .expect("finished");
    assert_eq!(
        (r.status, r.attempts, r.error.as_deref()),
        (JobStatus::Dead, 3, Some("nope"))
    );
    let dead = client.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id.as_str(), dead[0].attempts), (id.as_str(), 3));
    // The envelope survives intact, arguments included, for a later replay.
    assert_eq!(dead[0].args, json!([]));
    w.stop().await;
}

#[tokio::test]
async fn smoke_fail_task_is_retried_then_dead_lettered() {
    let (svc, redis, client, _g) = setup().await;
    let mut tasks = TaskRegistry::default();
    register_smoke_tasks(&mut tasks, &svc);
    let w = start(&svc, &redis, tasks, fast());
    let job = JobEnvelope {
        max_attempts: 2,
        ..JobEnvelope::new(format!("{svc}.{FAIL}"), json!({"message": "smoke says no"}))
    };
    let id = client.enqueue_envelope(&job).await.unwrap();
    let defaulted = client
        .enqueue_envelope(&JobEnvelope {
            max_attempts: 1,
            ..JobEnvelope::new(format!("{svc}.{FAIL}"), json!(null))
        })
        .await
        .unwrap();
    let r = client
        .wait(&id, Duration::from_secs(10))
        .await
        .unwrap()
        .expect("finished");
    assert_eq!(
        (r.status, r.attempts, r.error.as_deref()),
        (JobStatus::Dead, 2, Some("smoke says no"))
    );
    let r = client
        .wait(&defaulted, Duration::from_secs(10))
        .await
        .unwrap()
        .expect("finished");
    assert_eq!(
        (r.status, r.attempts, r.error.as_deref()),
        (JobStatus::Dead, 1, Some(FAIL_DEFAULT_MESSAGE))
    );
    let mut c = redis.conn().await.unwrap();
    let dead: Vec<String> = c.lrange(client.keys().dead(), 0, -1).await.unwrap();
    let dead: Vec<JobEnvelope> = dead
        .iter()
        .map(|raw| serde_json::from_str(raw).unwrap())
        .collect();
    let ours = dead.iter().find(|e| e.id == id).expect("in the dead list");
    assert_eq!(
        (ours.attempts, ours.last_error.as_deref()),
        (2, Some("smoke says no"))
    );
    w.stop().await;
}

#[tokio::test]
async fn fatal_errors_are_not_retried() {
    let (svc, redis, client, _g) = setup().await;
    let mut tasks = TaskRegistry::default();
    platform_testing::tasks::register(&mut tasks, &svc);
    let w = start(&svc, &redis, tasks, fast());
    let bad = client
        .enqueue(&format!("{svc}.add"), json!(["a", 1]))
        .await
        .unwrap();
    let r = client
        .wait(&bad, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.status, r.attempts), (JobStatus::Dead, 1));
    w.stop().await;
}

#[tokio::test]
async fn an_unknown_task_is_retried_with_backoff_then_dead_lettered() {
    let (svc, redis, client, _g) = setup().await;
    let mut tasks = TaskRegistry::default();
    platform_testing::tasks::register(&mut tasks, &svc);
    let w = start(&svc, &redis, tasks, fast());
    let job = JobEnvelope {
        max_attempts: 3,
        ..JobEnvelope::new("no.such.task", json!(1))
    };
    let id = client.enqueue_envelope(&job).await.unwrap();
    let r = client
        .wait(&id, Duration::from_secs(10))
        .await
        .unwrap()
        .expect("finished");
    assert_eq!((r.status, r.attempts), (JobStatus::Dead, 3), "{r:?}");
    assert!(r.error.unwrap().contains("unknown task"));
    let dead = client.dead_letters(10).await.unwrap();
    assert_eq!((dead.len(), dead[0].attempts), (1, 3));
    w.stop().await;
}

/// A rolling deploy: an old worker takes a job for a task only the new build has. The job
/// waits out a retry and runs once a new worker is there.
#[tokio::test]
async fn an_unknown_task_runs_once_a_worker_that_has_it_arrives() {
    let (svc, redis, client, _g) = setup().await;
    let old = start(
        &svc,
        &redis,
        TaskRegistry::default(),
        WorkerOptions {
            // Long enough that the old worker does not use up the attempts on its own.
            backoff_base: Duration::from_secs(2),
            backoff_cap: Duration::from_secs(2),
            ..fast()
        },
    );
    let id = client.enqueue("new.task", json!(41)).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let first = loop {
        if let Some(r) = client.result(&id).await.unwrap() {
            break r;
        }
        assert!(tokio::time::Instant::now() < deadline, "never tried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        (first.status, first.attempts),
        (JobStatus::Retrying, 1),
        "{first:?}"
    );
    assert!(first.error.unwrap().contains("unknown task"));
    old.stop().await;
    let mut tasks = TaskRegistry::default();
    tasks.register("new.task", |n| async move {
        Ok(json!(n.as_i64().unwrap_or(0) + 1))
    });
    let new = start(&svc, &redis, tasks, fast());
    let r = client
        .wait(&id, Duration::from_secs(15))
        .await
        .unwrap()
        .expect("finished");
    assert_eq!(
        (r.status, r.attempts, r.result),
        (JobStatus::Succeeded, 2, Some(json!(42)))
    );
    assert!(client.dead_letters(10).await.unwrap().is_empty());
    new.stop().await;
}

#[tokio::test]
async fn jobs_of_a_worker_that_vanished_are_delivered_again() {
    let (svc, redis, client, _g) = setup().await;
    let started = Arc::new(tokio::sync::Notify::new());
    let runs = Arc::new(AtomicU32::new(0));
    let mut tasks = TaskRegistry::default();
    let (s, r) = (started.clone(), runs.clone());
    tasks.register("long", move |_| {
        let (s, r) = (s.clone(), r.clone());
        async move {
            let n = r.fetch_add(1, Ordering::SeqCst) + 1;
            s.notify_one();
            if n == 1 {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Ok(json!(n))
        }
    });
    // The first worker dies mid-job: its task is aborted, nothing is cleaned up.
    let first = start(&svc, &redis, tasks.clone(), fast());
    let id = client.enqueue("long", json!(null)).await.unwrap();
    started.notified().await;
    first.task.abort();
    assert!(client.result(&id).await.unwrap().is_none());
    // A second worker reclaims the job once the first one's lease (1 s) lapses.
    let second = start(&svc, &redis, tasks, fast());
    let r = client
        .wait(&id, Duration::from_secs(10))
        .await
        .unwrap()
        .expect("redelivered");
    assert_eq!((r.status, r.result), (JobStatus::Succeeded, Some(json!(2))));
    second.stop().await;
}

#[tokio::test]
async fn stopping_hands_unfinished_jobs_back() {
    let (svc, redis, client, _g) = setup().await;
    let mut tasks = TaskRegistry::default();
    platform_testing::tasks::register(&mut tasks, &svc);
    let w = start(&svc, &redis, tasks, fast());
    let id = client
        .enqueue(&format!("{svc}.slow"), json!([30]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(client.queued().await.unwrap(), 0, "claimed");
    w.stop().await;
    assert_eq!(client.queued().await.unwrap(), 1, "handed back on stop");
    let mut c = redis.conn().await.unwrap();
    let workers: Vec<String> = c.smembers(client.keys().workers()).await.unwrap();
    assert!(workers.is_empty(), "deregistered: {workers:?}");
    let _ = id;
}

/// A numeric field of one `INFO` section.
async fn info_field(redis: &RedisHandle, section: &str, field: &str) -> u64 {
    let mut c = redis.conn().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(&mut c)
        .await
        .unwrap();
    let prefix = format!("{field}:");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Calls of one Redis command so far, from `INFO commandstats`.
async fn command_calls(redis: &RedisHandle, command: &str) -> u64 {
    let mut c = redis.conn().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut c)
        .await
        .unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn a_busy_worker_claims_the_next_job_as_it_records_the_last() {
    let (svc, redis, client, _g) = setup().await;
    let mut tasks = TaskRegistry::default();
    platform_testing::tasks::register(&mut tasks, &svc);
    let mut ids = vec![];
    for i in 0..100 {
        ids.push(
            client
                .enqueue(&format!("{svc}.add"), json!([i, 1]))
                .await
                .unwrap(),
        );
    }
    let blocking_claims_before = command_calls(&redis, "blmove").await;
    let w = start(
        &svc,
        &redis,
        tasks,
        WorkerOptions {
            concurrency: 1,
            ..fast()
        },
    );
    // Jobs run in order, so the last one finishing means all did; polled with GET, as a
    // blocking wait would itself count as a BLMOVE.
    let last = ids.last().unwrap().clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while client.result(&last).await.unwrap().is_none() {
        assert!(tokio::time::Instant::now() < deadline, "100 jobs not done");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let blocking_claims = command_calls(&redis, "blmove").await - blocking_claims_before;
    w.stop().await;
    for (i, id) in ids.iter().enumerate() {
        let r = client.result(id).await.unwrap().expect("result stored");
        assert_eq!(
            (r.status, r.result),
            (JobStatus::Succeeded, Some(json!(i + 1)))
        );
    }
    let mut c = redis.conn().await.unwrap();
    let counted: usize = c.hlen(client.keys().deliveries()).await.unwrap();
    assert_eq!(counted, 0, "delivery counts are cleared with each outcome");
    // Another test may share a Redis named by FINCTL_TEST_REDIS_URL; count only on our own.
    if std::env::var(platform_testing::env::TEST_REDIS_URL).is_err() {
        assert!(
            blocking_claims < 10,
            "{blocking_claims} blocking claims for 100 queued jobs: each outcome script should \
             have claimed the next job"
        );
    }
}

#[tokio::test]
async fn call_enqueues_and_waits_in_one_round_trip_and_the_done_list_carries_the_result() {
    let (svc, redis, client, _g) = setup().await;
    let mut tasks = TaskRegistry::default();
    platform_testing::tasks::register(&mut tasks, &svc);
    let w = start(&svc, &redis, tasks, fast());
    let (id, r) = client
        .call(
            &format!("{svc}.add"),
            json!([40, 2]),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let r = r.expect("finished within the timeout");
    assert_eq!(
        (r.id.as_str(), r.status, r.result.clone()),
        (id.as_str(), JobStatus::Succeeded, Some(json!(42)))
    );
    // The wire format: the done list's one element is the same JSON as the result key.
    let mut c = redis.conn().await.unwrap();
    let done: Vec<String> = c.lrange(client.keys().done(&id), 0, -1).await.unwrap();
    let stored: String = c.get(client.keys().result(&id)).await.unwrap();
    assert_eq!(done, vec![stored.clone()]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stored).unwrap()["result"],
        42
    );
    // Nobody works on an unknown queue: the call times out with no result.
    let (_, none) = JobClient::new(&infra::unique("idle"), redis.clone())
        .call("idle.add", json!([1, 1]), Duration::from_millis(300))
        .await
        .unwrap();
    assert!(none.is_none());
    w.stop().await;
}

#[tokio::test]
async fn a_job_that_keeps_killing_its_workers_is_dead_lettered() {
    let (svc, redis, client, _g) = setup().await;
    let started = Arc::new(tokio::sync::Notify::new());
    let runs = Arc::new(AtomicU32::new(0));
    let mut tasks = TaskRegistry::default();
    platform_testing::tasks::register(&mut tasks, &svc);
    let (s, r) = (started.clone(), runs.clone());
    tasks.register("crashes", move |_| {
        let (s, r) = (s.clone(), r.clone());
        async move {
            r.fetch_add(1, Ordering::SeqCst);
            s.notify_one();
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(json!(null))
        }
    });
    let one = WorkerOptions {
        concurrency: 1,
        ..fast()
    };
    // A quick job first, so the first delivery of the crashing one is claimed by the
    // script that records the quick job's outcome; later ones by a blocking claim.
    let quick = client
        .enqueue(&format!("{svc}.add"), json!([1, 1]))
        .await
        .unwrap();
    let crash = JobEnvelope {
        max_attempts: 2,
        ..JobEnvelope::new("crashes", json!(null))
    };
    let id = client.enqueue_envelope(&crash).await.unwrap();
    for delivery in 1..=2 {
        let w = start(&svc, &redis, tasks.clone(), one.clone());
        started.notified().await;
        assert_eq!(runs.load(Ordering::SeqCst), delivery);
        w.task.abort();
    }
    let last = start(&svc, &redis, tasks, one);
    let r = client
        .wait(&id, Duration::from_secs(15))
        .await
        .unwrap()
        .expect("buried once the leases lapsed");
    assert_eq!(r.status, JobStatus::Dead);
    assert!(
        r.error
            .as_deref()
            .unwrap_or("")
            .contains("delivered 3 times"),
        "{r:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2, "not run a third time");
    let dead = client.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, id);
    let q = client.result(&quick).await.unwrap().expect("quick job ran");
    assert_eq!(q.result, Some(json!(2)));
    last.stop().await;
}

/// A worker started with a stop handle, so a test can ask for the stop at a known point.
struct Stoppable {
    id: String,
    stop: StopHandle,
    task: tokio::task::JoinHandle<()>,
}

fn start_stoppable(
    service: &str,
    redis: &RedisHandle,
    tasks: TaskRegistry,
    opts: WorkerOptions,
) -> Stoppable {
    let w = Worker::new(service, redis.clone(), tasks, opts);
    let (id, stop) = (w.id().to_string(), w.stop_handle());
    let task = tokio::spawn(w.run(std::future::pending()));
    Stoppable { id, stop, task }
}

/// How a job stands in Redis, for the tests about claims and leases.
#[derive(Debug, PartialEq)]
struct Standing {
    queued: usize,
    deliveries: Option<u32>,
    lease: Option<String>,
}

async fn standing(redis: &RedisHandle, client: &JobClient, id: &str) -> Standing {
    let mut c = redis.conn().await.unwrap();
    let queue: Vec<String> = c.lrange(client.keys().queue(), 0, -1).await.unwrap();
    let queued = queue
        .iter()
        .filter(|raw| serde_json::from_str::<JobEnvelope>(raw).unwrap().id == id)
        .count();
    Standing {
        queued,
        deliveries: c.hget(client.keys().deliveries(), id).await.unwrap(),
        lease: c.hget(client.keys().leases(), id).await.unwrap(),
    }
}

/// A task that blocks its first run until `gate` is opened, then returns `first`; later runs
/// return their run number.
fn gated(
    tasks: &mut TaskRegistry,
    name: &str,
    first: Result<serde_json::Value, TaskError>,
) -> (
    Arc<tokio::sync::Notify>,
    Arc<tokio::sync::Notify>,
    Arc<AtomicU32>,
) {
    let started = Arc::new(tokio::sync::Notify::new());
    let gate = Arc::new(tokio::sync::Notify::new());
    let runs = Arc::new(AtomicU32::new(0));
    let (s, g, r) = (started.clone(), gate.clone(), runs.clone());
    tasks.register(name, move |_| {
        let (s, g, r, first) = (s.clone(), g.clone(), r.clone(), first.clone());
        async move {
            let n = r.fetch_add(1, Ordering::SeqCst) + 1;
            if n > 1 {
                return Ok(json!(n));
            }
            s.notify_one();
            g.notified().await;
            first
        }
    });
    (started, gate, runs)
}

/// A worker's lease lapses while it runs a job (a stalled process, a partition): another
/// worker reaps the job and runs it. When the first run ends, its outcome must be refused,
/// whatever it is, and the second run's result stands.
async fn a_reaped_delivery_cannot_record(first: Result<serde_json::Value, TaskError>) {
    let (svc, redis, client, _g) = setup().await;
    let mut tasks = TaskRegistry::default();
    let (started, gate, runs) = gated(&mut tasks, "fenced", first);
    // A long lease: only the test makes it lapse.
    let stale = start_stoppable(
        &svc,
        &redis,
        tasks.clone(),
        WorkerOptions {
            concurrency: 1,
            lease: Duration::from_secs(60),
            grace: Duration::from_secs(30),
            ..fast()
        },
    );
    let id = client.enqueue("fenced", json!(null)).await.unwrap();
    started.notified().await;
    let mut c = redis.conn().await.unwrap();
    let _: i64 = c.del(client.keys().heartbeat(&stale.id)).await.unwrap();
    let other = start(&svc, &redis, tasks, fast());
    let second = client
        .wait(&id, Duration::from_secs(10))
        .await
        .unwrap()
        .expect("reaped and run again");
    assert_eq!(
        (second.status, second.attempts, second.result.clone()),
        (JobStatus::Succeeded, 1, Some(json!(2)))
    );
    // The first run ends now; stopping waits for its outcome to be recorded or refused.
    gate.notify_one();
    stale.stop.stop();
    stale.task.await.unwrap();
    let after = client.result(&id).await.unwrap().expect("result kept");
    assert_eq!(after, second, "the stale delivery overwrote the result");
    let done: Vec<String> = c.lrange(client.keys().done(&id), 0, -1).await.unwrap();
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(serde_json::from_str::<JobResult>(&done[0]).unwrap(), second);
    let scheduled: usize = c.zcard(client.keys().scheduled()).await.unwrap();
    assert_eq!(scheduled, 0, "the stale delivery scheduled a retry");
    assert!(client.dead_letters(10).await.unwrap().is_empty());
    assert_eq!(
        standing(&redis, &client, &id).await,
        Standing {
            queued: 0,
            deliveries: None,
            lease: None
        }
    );
    other.stop().await;
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_reaped_delivery_cannot_complete() {
    a_reaped_delivery_cannot_record(Ok(json!(1))).await;
}

#[tokio::test]
async fn a_reaped_delivery_cannot_retry() {
    a_reaped_delivery_cannot_record(Err(TaskError::retry("first run failed"))).await;
}

#[tokio::test]
async fn a_reaped_delivery_cannot_bury() {
    a_reaped_delivery_cannot_record(Err(TaskError::fatal("first run failed for good"))).await;
}

/// The stop comes while a job runs: recording its outcome must not claim (and count) the next
/// queued job, which the stopping worker would never run.
#[tokio::test]
async fn a_stopping_worker_does_not_claim_the_next_job_with_an_outcome() {
    let (svc, redis, client, _g) = setup().await;
    let mut tasks = TaskRegistry::default();
    let (started, gate, _) = gated(&mut tasks, "gated", Ok(json!("done")));
    let later_runs = Arc::new(AtomicU32::new(0));
    let l = later_runs.clone();
    tasks.register("later", move |_| {
        l.fetch_add(1, Ordering::SeqCst);
        async { Ok(json!(null)) }
    });
    let running = client.enqueue("gated", json!(null)).await.unwrap();
    let queued = client.enqueue("later", json!(null)).await.unwrap();
    let w = start_stoppable(
        &svc,
        &redis,
        tasks,
        WorkerOptions {
            concurrency: 1,
            grace: Duration::from_secs(30),
            ..fast()
        },
    );
    started.notified().await;
    w.stop.stop();
    gate.notify_one();
    w.task.await.unwrap();
    let r = client.result(&running).await.unwrap().expect("finished");
    assert_eq!(
        (r.status, r.result),
        (JobStatus::Succeeded, Some(json!("done")))
    );
    assert_eq!(later_runs.load(Ordering::SeqCst), 0);
    assert!(client.result(&queued).await.unwrap().is_none());
    assert_eq!(
        standing(&redis, &client, &queued).await,
        Standing {
            queued: 1,
            deliveries: None,
            lease: None
        },
        "the next job must stay queued and uncounted"
    );
}

/// The stop comes while a worker waits for a job: a job arriving then is handed back
/// uncounted, not run.
#[tokio::test]
async fn a_stopping_worker_hands_back_a_job_it_was_waiting_for() {
    let (svc, redis, client, _g) = setup().await;
    let runs = Arc::new(AtomicU32::new(0));
    let mut tasks = TaskRegistry::default();
    platform_testing::tasks::register(&mut tasks, &svc);
    let r = runs.clone();
    tasks.register("late", move |_| {
        r.fetch_add(1, Ordering::SeqCst);
        async { Ok(json!(null)) }
    });
    let w = start_stoppable(
        &svc,
        &redis,
        tasks,
        WorkerOptions {
            concurrency: 1,
            // The wait the stop interrupts: long, so the late job arrives during it.
            poll: Duration::from_secs(3),
            ..fast()
        },
    );
    // One job through first, so the worker is surely waiting on the queue.
    let (_, warm) = client
        .call(&format!("{svc}.echo"), json!(1), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(warm.expect("warm-up job").status, JobStatus::Succeeded);
    // Its blocking wait has begun once Redis counts a blocked client (ours is the only one
    // on a container of its own).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while info_field(&redis, "clients", "blocked_clients").await < 1 {
        assert!(tokio::time::Instant::now() < deadline, "worker not waiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.stop.stop();
    let late = client.enqueue("late", json!(null)).await.unwrap();
    w.task.await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 0, "run after the stop");
    assert!(client.result(&late).await.unwrap().is_none());
    assert_eq!(
        standing(&redis, &client, &late).await,
        Standing {
            queued: 1,
            deliveries: None,
            lease: None
        }
    );
}
