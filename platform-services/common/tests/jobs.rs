//! The job runtime against a real Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use platform_common::jobs::{
    FAIL, FAIL_DEFAULT_MESSAGE, JobClient, JobEnvelope, JobStatus, TaskError, TaskRegistry, Worker,
    WorkerOptions, register_smoke_tasks,
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
async fn fatal_errors_and_unknown_tasks_are_not_retried() {
    let (svc, redis, client, _g) = setup().await;
    let mut tasks = TaskRegistry::default();
    platform_testing::tasks::register(&mut tasks, &svc);
    let w = start(&svc, &redis, tasks, fast());
    let bad = client
        .enqueue(&format!("{svc}.add"), json!(["a", 1]))
        .await
        .unwrap();
    let unknown = client.enqueue("no.such.task", json!(1)).await.unwrap();
    let r = client
        .wait(&bad, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.status, r.attempts), (JobStatus::Dead, 1));
    let r = client
        .wait(&unknown, Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, JobStatus::Dead);
    assert!(r.error.unwrap().contains("unknown task"));
    w.stop().await;
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
