//! The worker suite's cases: a job through a service's worker and back, over Redis.
//!
//! This speaks the wire format of `platform-services/JOBS.md` directly, as any producer
//! would, rather than through `platform-common`'s client: the suite then checks the
//! documented contract, not the library's reading of it.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, AsyncConnectionConfig, Client, ErrorKind, RedisError};
use serde::Deserialize;
use serde_json::{Value, json};

/// The task every worker has that returns its arguments.
const ECHO: &str = "echo";
/// The task every worker has that fails retryably every time.
const FAIL: &str = "fail";
/// Attempts the dead-letter case asks for: one retry, then the dead list.
const DEAD_LETTER_ATTEMPTS: u32 = 2;
/// How far into the dead list (newest first) the dead-letter case looks for its envelope.
const DEAD_LIST_SCAN: isize = 200;
/// The longest time kept back from the blocking wait to explain a timeout.
const EXPLAIN_RESERVE: Duration = Duration::from_millis(500);

/// What a worker case found: Ok(one-line detail, e.g. "echo came back in 12 ms") or Err(one-line reason).
///
/// Enqueues `<service>.echo` with a random payload and waits for the worker to send it back.
pub async fn echo(redis_url: &str, service: &str, timeout: Duration) -> Result<String, String> {
    let target = Target::new(redis_url, service)?;
    target
        .bounded(timeout, async {
            let started = Instant::now();
            let payload = random_payload();
            let job = Job::new(service, ECHO, payload.clone(), None);
            let mut queue = target.connect(started + timeout).await?;
            let outcome = queue.call(&job, started, timeout).await?;
            match (outcome.status.as_str(), &outcome.result) {
                ("succeeded", Some(result)) if *result == payload => Ok(format!(
                    "echo came back in {} ms",
                    started.elapsed().as_millis()
                )),
                ("succeeded", result) => Err(format!(
                    "`{}` succeeded but sent back {} instead of {payload}",
                    job.task,
                    result.as_ref().unwrap_or(&Value::Null)
                )),
                (status, _) => Err(format!(
                    "`{}` ended `{status}` after {} attempt(s): {}",
                    job.task,
                    outcome.attempts,
                    outcome.error_or_none()
                )),
            }
        })
        .await
}

/// Enqueues `<service>.fail` with `max_attempts: 2` and checks it is retried once and then
/// dead-lettered; the envelope is then removed from the dead list, so runs leave none behind.
pub async fn dead_letter(
    redis_url: &str,
    service: &str,
    timeout: Duration,
) -> Result<String, String> {
    let target = Target::new(redis_url, service)?;
    target
        .bounded(timeout, async {
            let started = Instant::now();
            let job = Job::new(
                service,
                FAIL,
                json!({"message": "finctl smoke-test: dead-letter check"}),
                Some(DEAD_LETTER_ATTEMPTS),
            );
            let mut queue = target.connect(started + timeout).await?;
            let outcome = queue.call(&job, started, timeout).await?;
            match (outcome.status.as_str(), outcome.attempts) {
                // Unknown tasks are retried like failures now: the error says which it was.
                ("dead", _) if outcome.error_or_none().contains("unknown task") => {
                    return Err(format!(
                        "the worker has no `{}` task (is `{service}-worker` an older build?)",
                        job.task
                    ));
                }
                ("dead", DEAD_LETTER_ATTEMPTS) => {}
                (status, attempts) => {
                    return Err(format!(
                        "`{}` ended `{status}` after {attempts} attempt(s), expected `dead` after \
                         {DEAD_LETTER_ATTEMPTS}: {}",
                        job.task,
                        outcome.error_or_none()
                    ));
                }
            }
            let dead = queue.dead_key();
            if !queue.remove_dead_letter(&job.id).await? {
                return Err(format!(
                    "`{}` ended `dead` after {DEAD_LETTER_ATTEMPTS} attempts, but its envelope \
                     is not among the newest {DEAD_LIST_SCAN} in `{dead}`",
                    job.task
                ));
            }
            Ok(format!(
                "dead-lettered after {DEAD_LETTER_ATTEMPTS} attempts in {} ms; its envelope was in \
                 `{dead}` and is removed",
                started.elapsed().as_millis()
            ))
        })
        .await
}

/// A job about to be enqueued: its id and the envelope JSON.
struct Job {
    id: String,
    task: String,
    envelope: String,
}

impl Job {
    fn new(service: &str, name: &str, args: Value, max_attempts: Option<u32>) -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        let task = format!("{service}.{name}");
        let mut envelope = json!({"id": id, "task": task, "args": args});
        if let Some(n) = max_attempts {
            envelope["max_attempts"] = json!(n);
        }
        Self {
            id,
            task,
            envelope: envelope.to_string(),
        }
    }
}

/// The parts of a result JSON (JOBS.md, "Results") the cases look at.
#[derive(Debug, Deserialize)]
struct Outcome {
    status: String,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    attempts: u32,
}

impl Outcome {
    fn error_or_none(&self) -> &str {
        self.error.as_deref().unwrap_or("no error given")
    }
}

/// Where the cases talk to: the Redis client (the URL, password included, stays inside it)
/// and the address and service for messages.
struct Target {
    client: Client,
    address: String,
    service: String,
}

impl Target {
    fn new(redis_url: &str, service: &str) -> Result<Self, String> {
        // The URL carries the password: neither it nor the parse error (which may quote it)
        // goes into the message.
        let client = Client::open(redis_url)
            .map_err(|_| "the Redis URL is not a valid redis:// URL".to_string())?;
        Ok(Self {
            address: client.get_connection_info().addr.to_string(),
            client,
            service: service.to_string(),
        })
    }

    /// Runs `case`, giving up once `timeout` has passed, whatever it was waiting for.
    async fn bounded(
        &self,
        timeout: Duration,
        case: impl Future<Output = Result<String, String>>,
    ) -> Result<String, String> {
        tokio::time::timeout(timeout, case)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "Redis at {} did not answer within {} (hint: is the stack up? `finctl up`)",
                    self.address,
                    seconds(timeout)
                ))
            })
    }

    /// A connection of the case's own: its `BLMOVE` blocks it.
    async fn connect(&self, deadline: Instant) -> Result<Queue<'_>, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(left)
            .set_response_timeout(left);
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| self.redis_failed(&e))?;
        Ok(Queue {
            target: self,
            conn,
            prefix: format!("{}-tasks", self.service),
        })
    }

    fn redis_failed(&self, e: &RedisError) -> String {
        let address = &self.address;
        if e.kind() == ErrorKind::AuthenticationFailed
            || e.code().is_some_and(|c| c == "WRONGPASS" || c == "NOAUTH")
        {
            format!("Redis at {address} refused the password in its URL: {e}")
        } else if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() {
            format!("Redis at {address} is unreachable: {e} (hint: is the stack up? `finctl up`)")
        } else {
            format!("Redis at {address} failed: {e}")
        }
    }
}

/// One service's queue, over one connection.
struct Queue<'a> {
    target: &'a Target,
    conn: MultiplexedConnection,
    prefix: String,
}

impl Queue<'_> {
    fn dead_key(&self) -> String {
        format!("{}:dead", self.prefix)
    }

    /// Enqueue `job` and wait for its final outcome in one round trip (JOBS.md, "Enqueue and
    /// wait in one round trip"), keeping a little of the time to explain a timeout. The case
    /// began at `started` and has `timeout` in all.
    async fn call(
        &mut self,
        job: &Job,
        started: Instant,
        timeout: Duration,
    ) -> Result<Outcome, String> {
        let deadline = started + timeout;
        let left = deadline.saturating_duration_since(Instant::now());
        let reserve = EXPLAIN_RESERVE.min(left / 4);
        // BLMOVE with a timeout of 0 would block for ever.
        let block = left.saturating_sub(reserve).max(Duration::from_millis(10));
        let done = format!("{}:done:{}", self.prefix, job.id);
        let (_, hit): (i64, Option<String>) = redis::pipe()
            .lpush(&self.prefix, &job.envelope)
            .cmd("BLMOVE")
            .arg(&done)
            .arg(&done)
            .arg("RIGHT")
            .arg("LEFT")
            .arg(block.as_secs_f64())
            .query_async(&mut self.conn)
            .await
            .map_err(|e| self.target.redis_failed(&e))?;
        match hit {
            // Workers before 2026-11-22 pushed a bare marker: the result is in its own key.
            Some(raw) => match serde_json::from_str(&raw) {
                Ok(outcome) => Ok(outcome),
                Err(_) => match self.result(&job.id).await? {
                    Some(outcome) => Ok(outcome),
                    None => Err(format!(
                        "`{}` finished but left no result at `{}:result:{}`",
                        job.task, self.prefix, job.id
                    )),
                },
            },
            None => Err(self.not_finished(job, timeout).await),
        }
    }

    /// Why `job` had no outcome in time. A job no worker took is taken back off the queue, so
    /// a worker started later does not run a check nobody waits for.
    async fn not_finished(&mut self, job: &Job, timeout: Duration) -> String {
        let waited = seconds(timeout);
        let service = &self.target.service;
        let removed: Result<i64, _> = self.conn.lrem(&self.prefix, 1, &job.envelope).await;
        match removed {
            Ok(1) => {
                return format!(
                    "no worker took the job within {waited} (is `{service}-worker` running? \
                     `finctl ps`)"
                );
            }
            Ok(_) => {}
            Err(e) => return self.target.redis_failed(&e),
        }
        match self.result(&job.id).await {
            Ok(Some(o)) if o.status == "retrying" => format!(
                "`{}` was still being retried after {waited}: attempt {} failed with: {}",
                job.task,
                o.attempts,
                o.error_or_none()
            ),
            Ok(_) => format!(
                "a worker took `{}` but did not finish it within {waited}",
                job.task
            ),
            Err(e) => e,
        }
    }

    async fn result(&mut self, id: &str) -> Result<Option<Outcome>, String> {
        let raw: Option<String> = self
            .conn
            .get(format!("{}:result:{id}", self.prefix))
            .await
            .map_err(|e| self.target.redis_failed(&e))?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// Removes the envelope of job `id` from the dead list; false if it is not there.
    async fn remove_dead_letter(&mut self, id: &str) -> Result<bool, String> {
        let dead = self.dead_key();
        let raw: Vec<String> = self
            .conn
            .lrange(&dead, 0, DEAD_LIST_SCAN - 1)
            .await
            .map_err(|e| self.target.redis_failed(&e))?;
        let Some(ours) = raw.iter().find(|r| {
            serde_json::from_str::<Value>(r)
                .is_ok_and(|v| v.get("id").and_then(Value::as_str) == Some(id))
        }) else {
            return Ok(false);
        };
        let _: i64 = self
            .conn
            .lrem(&dead, 1, ours)
            .await
            .map_err(|e| self.target.redis_failed(&e))?;
        Ok(true)
    }
}

/// A payload the worker cannot have made up: fresh for every run, nested, not only ASCII.
fn random_payload() -> Value {
    let nonce = uuid::Uuid::new_v4();
    let n = nonce.as_u128() as u32;
    json!({
        "smoke": "worker echo",
        "nonce": nonce.to_string(),
        "n": n,
        "nested": [n % 1000, {"flag": n % 2 == 0, "none": null}, "zürich €"],
    })
}

/// `10s`, `1.5s`.
fn seconds(d: Duration) -> String {
    let tenths = (d.as_millis() + 50) / 100;
    if tenths % 10 == 0 {
        format!("{}s", tenths / 10)
    } else {
        format!("{}.{}s", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_reads_well() {
        assert_eq!(seconds(Duration::from_secs(10)), "10s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5s");
        assert_eq!(seconds(Duration::from_millis(9_980)), "10s");
    }

    #[test]
    fn envelope_follows_the_wire_format() {
        let job = Job::new("profile", FAIL, json!({"a": 1}), Some(2));
        let v: Value = serde_json::from_str(&job.envelope).unwrap();
        assert_eq!(
            v,
            json!({"id": job.id, "task": "profile.fail", "args": {"a": 1}, "max_attempts": 2})
        );
        assert!(uuid::Uuid::parse_str(&job.id).is_ok());
        let echo: Value =
            serde_json::from_str(&Job::new("x", ECHO, json!(1), None).envelope).unwrap();
        assert!(echo.get("max_attempts").is_none());
    }

    #[test]
    fn a_bad_url_is_reported_without_quoting_it() {
        let err = Target::new("http://:hunter2@x/", "profile").err().unwrap();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
