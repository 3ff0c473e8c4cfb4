use std::time::Duration;

use redis::AsyncCommands;
use serde_json::Value;

use super::{JobEnvelope, JobKeys, JobResult};
use crate::redis_handle::RedisHandle;

/// Enqueue jobs and read their results: what `finctl` and other services do.
#[derive(Clone)]
pub struct JobClient {
    keys: JobKeys,
    redis: RedisHandle,
}

impl JobClient {
    pub fn new(service: &str, redis: RedisHandle) -> Self {
        Self {
            keys: JobKeys::new(service),
            redis,
        }
    }

    pub fn keys(&self) -> &JobKeys {
        &self.keys
    }

    /// Queue `task` with `args`; returns the job id.
    pub async fn enqueue(&self, task: &str, args: Value) -> redis::RedisResult<String> {
        self.enqueue_envelope(&JobEnvelope::new(task, args)).await
    }

    pub async fn enqueue_envelope(&self, job: &JobEnvelope) -> redis::RedisResult<String> {
        let mut c = self.redis.conn().await?;
        let raw = serde_json::to_string(job).expect("envelope serialises");
        let _: i64 = c.lpush(self.keys.queue(), raw).await?;
        Ok(job.id.clone())
    }

    /// The latest result of job `id`, if any (and not expired).
    pub async fn result(&self, id: &str) -> redis::RedisResult<Option<JobResult>> {
        let mut c = self.redis.conn().await?;
        let raw: Option<String> = c.get(self.keys.result(id)).await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// Block until job `id` is finished (succeeded or dead), up to `timeout`.
    pub async fn wait(&self, id: &str, timeout: Duration) -> redis::RedisResult<Option<JobResult>> {
        let mut c = self.redis.dedicated(timeout).await?;
        let hit: Option<String> = self.wait_cmd(id, timeout).query_async(&mut c).await?;
        self.finished(id, hit).await
    }

    /// Enqueue `task` and wait for its outcome in one round trip (the enqueue and the wait
    /// are pipelined on a connection of their own); `None` when not finished within `timeout`.
    pub async fn call(
        &self,
        task: &str,
        args: Value,
        timeout: Duration,
    ) -> redis::RedisResult<(String, Option<JobResult>)> {
        let job = JobEnvelope::new(task, args);
        let raw = serde_json::to_string(&job).expect("envelope serialises");
        let mut c = self.redis.dedicated(timeout).await?;
        let (_, hit): (i64, Option<String>) = redis::pipe()
            .cmd("LPUSH")
            .arg(self.keys.queue())
            .arg(raw)
            .add_command(self.wait_cmd(&job.id, timeout))
            .query_async(&mut c)
            .await?;
        let result = self.finished(&job.id, hit).await?;
        Ok((job.id, result))
    }

    /// BLMOVE from the done list to itself waits without consuming, so many may wait on one
    /// job; the element is the result JSON.
    fn wait_cmd(&self, id: &str, timeout: Duration) -> redis::Cmd {
        let done = self.keys.done(id);
        let mut cmd = redis::cmd("BLMOVE");
        cmd.arg(&done)
            .arg(&done)
            .arg("RIGHT")
            .arg("LEFT")
            .arg(timeout.as_secs_f64());
        cmd
    }

    /// The result carried by a done-list element; a bare marker (as written before results
    /// rode on the done list) is resolved with `GET`.
    async fn finished(
        &self,
        id: &str,
        hit: Option<String>,
    ) -> redis::RedisResult<Option<JobResult>> {
        match hit {
            None => Ok(None),
            Some(raw) => match serde_json::from_str(&raw) {
                Ok(r) => Ok(Some(r)),
                Err(_) => self.result(id).await,
            },
        }
    }

    /// Envelopes in the dead-letter list, newest first.
    pub async fn dead_letters(&self, limit: isize) -> redis::RedisResult<Vec<JobEnvelope>> {
        let mut c = self.redis.conn().await?;
        let raw: Vec<String> = c.lrange(self.keys.dead(), 0, limit - 1).await?;
        Ok(raw
            .iter()
            .filter_map(|r| serde_json::from_str(r).ok())
            .collect())
    }

    /// Jobs waiting in the queue.
    pub async fn queued(&self) -> redis::RedisResult<usize> {
        let mut c = self.redis.conn().await?;
        c.llen(self.keys.queue()).await
    }
}
