//! The job runtime against a real Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use platform_common::jobs::{
    JobClient, JobEnvelope, JobStatus, TaskError, TaskRegistry, Worker, WorkerOptions, sample,
};
use platform_common::redis_handle::RedisHandle;
use platform_common::testing::infra;
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
    sample::register(&mut tasks, &svc);
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
async fn fatal_errors_and_unknown_tasks_are_not_retried() {
    let (svc, redis, client, _g) = setup().await;
    let mut tasks = TaskRegistry::default();
    sample::register(&mut tasks, &svc);
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
    sample::register(&mut tasks, &svc);
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
