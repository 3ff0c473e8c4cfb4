//! The worker suite's cases against a real Redis and a real `platform-common` worker.

use std::time::{Duration, Instant};

use finctl_smoke::worker;
use platform_common::Secret;
use platform_common::config::RedisConfig;
use platform_common::jobs::{TaskRegistry, Worker, WorkerOptions, register_smoke_tasks};
use platform_common::redis_handle::RedisHandle;
use redis::AsyncCommands;
use tokio::sync::oneshot;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Retries a few milliseconds apart, so the dead-letter case takes well under a second.
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
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// A production worker's task set for `service`: only the smoke-test tasks.
fn start_worker(url: &str, service: &str, tasks: TaskRegistry) -> Running {
    let redis = RedisHandle::new(&RedisConfig {
        url: Secret::new(url.to_string()),
        address: "127.0.0.1".into(),
    })
    .unwrap();
    let (stop, rx) = oneshot::channel();
    let task = tokio::spawn(Worker::new(service, redis, tasks, fast()).run(async move {
        let _ = rx.await;
    }));
    Running { stop, task }
}

fn smoke_tasks(service: &str) -> TaskRegistry {
    let mut tasks = TaskRegistry::default();
    register_smoke_tasks(&mut tasks, service);
    tasks
}

fn service() -> String {
    format!("smoke-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn echo_comes_back_from_a_worker() {
    let r = finctl_testkit::redis("smoke-secret").await.unwrap();
    let svc = service();
    let w = start_worker(&r.url(), &svc, smoke_tasks(&svc));
    let found = worker::echo(&r.url(), &svc, TIMEOUT).await;
    w.stop().await;
    let detail = found.expect("echo passes");
    assert!(detail.starts_with("echo came back in "), "{detail}");
}

#[tokio::test]
async fn dead_letter_is_retried_dead_lettered_and_cleaned_up() {
    let r = finctl_testkit::redis("smoke-secret").await.unwrap();
    let svc = service();
    let w = start_worker(&r.url(), &svc, smoke_tasks(&svc));
    let found = worker::dead_letter(&r.url(), &svc, TIMEOUT).await;
    w.stop().await;
    let detail = found.expect("dead_letter passes");
    assert!(detail.contains("after 2 attempts"), "{detail}");
    // The case removed its envelope: runs do not pile up dead letters.
    let mut c = redis_conn(&r.url()).await;
    let dead: usize = c.llen(format!("{svc}-tasks:dead")).await.unwrap();
    assert_eq!(dead, 0);
}

#[tokio::test]
async fn dead_letter_names_a_worker_without_the_fail_task() {
    let r = finctl_testkit::redis("smoke-secret").await.unwrap();
    let svc = service();
    let mut tasks = TaskRegistry::default();
    tasks.register(format!("{svc}.echo"), |args| async move { Ok(args) });
    let w = start_worker(&r.url(), &svc, tasks);
    let found = worker::dead_letter(&r.url(), &svc, TIMEOUT).await;
    w.stop().await;
    let reason = found.expect_err("an old worker fails the case");
    assert!(
        reason.contains(&format!("the worker has no `{svc}.fail` task")),
        "{reason}"
    );
}

#[tokio::test]
async fn echo_without_a_worker_says_so_within_the_timeout() {
    let r = finctl_testkit::redis("smoke-secret").await.unwrap();
    let svc = service();
    let timeout = Duration::from_secs(2);
    let asked = Instant::now();
    let found = worker::echo(&r.url(), &svc, timeout).await;
    let took = asked.elapsed();
    assert_eq!(
        found,
        Err(format!(
            "no worker took the job within 2s (is `{svc}-worker` running? `finctl ps`)"
        ))
    );
    assert!(
        took <= timeout + Duration::from_millis(100),
        "took {took:?}"
    );
    // The job nobody took is not left for a worker started later.
    let mut c = redis_conn(&r.url()).await;
    let queued: usize = c.llen(format!("{svc}-tasks")).await.unwrap();
    assert_eq!(queued, 0);
}

#[tokio::test]
async fn unreachable_redis_says_so_with_a_hint() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://:secret@127.0.0.1:{port}/");
    let reason = worker::echo(&url, "profile", TIMEOUT)
        .await
        .expect_err("nothing to talk to");
    assert!(
        reason.starts_with(&format!("Redis at 127.0.0.1:{port} is unreachable: ")),
        "{reason}"
    );
    assert!(reason.contains("`finctl up`"), "{reason}");
    assert!(!reason.contains("secret"), "{reason}");
}

#[tokio::test]
async fn a_wrong_password_is_named() {
    let r = finctl_testkit::redis("smoke-secret").await.unwrap();
    let url = r.url().replace("smoke-secret", "not-it");
    let reason = worker::echo(&url, &service(), TIMEOUT)
        .await
        .expect_err("refused");
    assert!(reason.contains("refused the password"), "{reason}");
    assert!(!reason.contains("not-it"), "{reason}");
}
