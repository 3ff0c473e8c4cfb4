//! The real `profile worker` process: killed with SIGKILL mid-job, its job runs again on
//! another worker process. Needs Redis.
//!
//! Production workers have only the instant `profile.echo`, so "mid-job" is made by freezing
//! the idle worker (SIGSTOP) while it blocks on `BLMOVE`: Redis still hands it the job, which
//! then sits in its processing list, unfinished, until the worker is killed.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use platform_common::jobs::{JobClient, JobStatus};
use platform_common::redis_handle::RedisHandle;
use platform_testing::infra;
use serde_json::json;

fn spawn_worker(redis_url: &str) -> (Child, u16) {
    let port = platform_testing::free_port().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_profile"))
        .arg("worker")
        .env_clear()
        .env("REDIS_URL", redis_url)
        .env("PORT", port.to_string())
        .env("JOB_LEASE_SECONDS", "1")
        .env("WORKER_CONCURRENCY", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start profile worker");
    (child, port)
}

fn signal(child: &Child, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
    // SAFETY: kill(2) on our own child's pid; no memory is shared.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "signal the worker");
}

fn healthcheck(port: u16) -> bool {
    Command::new(env!("CARGO_BIN_EXE_profile"))
        .arg("healthcheck")
        .env_clear()
        .env("PORT", port.to_string())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[tokio::test]
async fn killed_worker_process_job_is_delivered_again() {
    let (cfg, _g) = infra::redis().await;
    let url = cfg.url.expose().clone();
    let client = JobClient::new("profile", RedisHandle::new(&cfg).unwrap());

    let (mut first, port) = spawn_worker(&url);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !healthcheck(port) {
        assert!(Instant::now() < deadline, "worker never became healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Idle: blocked on BLMOVE. Frozen, it still receives the job but cannot run it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    signal(&first, libc::SIGSTOP);
    let id = client
        .enqueue("profile.echo", json!({"n": 1.5}))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.queued().await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "job never claimed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill().unwrap(); // SIGKILL: no cleanup at all (a stopped process dies too)
    first.wait().unwrap();
    assert!(
        client.result(&id).await.unwrap().is_none(),
        "the killed worker did not finish it"
    );

    let (mut second, _) = spawn_worker(&url);
    let r = client.wait(&id, Duration::from_secs(15)).await.unwrap();
    // The seeds' sample tasks are test code: a production worker does not know them.
    let add = client.enqueue("profile.add", json!([1, 2])).await.unwrap();
    let unknown = client.wait(&add, Duration::from_secs(15)).await.unwrap();
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(
        unknown.map(|r| r.status),
        Some(JobStatus::Dead),
        "profile.add is not a production task"
    );
    let r = r.expect("job delivered again and finished");
    assert_eq!(
        (r.status, r.result),
        (JobStatus::Succeeded, Some(json!({"n": 1.5})))
    );
}
