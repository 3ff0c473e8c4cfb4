//! Lua scripts: each state change of a job is one atomic step in Redis.
//!
//! A busy worker needs one round trip per job: the script that records a job's outcome also
//! claims the next job ([`claim_next`], the tail of `COMPLETE`, `RETRY` and `BURY`), so a
//! worker only blocks on `BLMOVE` when the queue was empty.

use std::sync::LazyLock;

use redis::Script;

/// The tail of the outcome scripts: when `claim` (an `ARGV` slot) is `1`, move the oldest
/// queued job to this worker's processing list and count its delivery. Returns
/// `{envelope, deliveries}`, or nil when there is nothing to claim. An envelope that is not
/// JSON with a string `id` is still claimed, with 0 deliveries: the worker dead-letters it.
fn claim_next(queue: &str, processing: &str, deliveries: &str, claim: &str) -> String {
    format!(
        r"
if {claim} ~= '1' then return false end
local m = redis.call('LMOVE', {queue}, {processing}, 'RIGHT', 'LEFT')
if not m then return false end
local ok, job = pcall(cjson.decode, m)
local n = 0
if ok and type(job) == 'table' and type(job.id) == 'string' then
  n = redis.call('HINCRBY', {deliveries}, job.id, 1)
end
return {{m, n}}
"
    )
}

/// Records success, signals waiters with the result, claims the next job.
/// KEYS: processing, result, done, deliveries, queue.
/// ARGV: raw envelope, result JSON, ttl ms, id, claim next ('1' or '0').
pub static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[3])
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[4])
{}",
        claim_next("KEYS[5]", "KEYS[1]", "KEYS[4]", "ARGV[5]")
    ))
});

/// Schedules a retry, claims the next job.
/// KEYS: processing, scheduled, result, deliveries, queue.
/// ARGV: raw envelope, next envelope, due ms, result JSON, ttl ms, claim next ('1' or '0').
pub static RETRY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5])
{}",
        claim_next("KEYS[5]", "KEYS[1]", "KEYS[4]", "ARGV[6]")
    ))
});

/// Dead-letters a job, signals waiters with the result, claims the next job.
/// KEYS: processing, dead, result, done, deliveries, queue.
/// ARGV: raw, dead envelope, result JSON, ttl ms, id, claim next ('1' or '0').
pub static BURY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
redis.call('DEL', KEYS[4])
redis.call('RPUSH', KEYS[4], ARGV[3])
redis.call('PEXPIRE', KEYS[4], ARGV[4])
redis.call('HDEL', KEYS[5], ARGV[5])
{}",
        claim_next("KEYS[6]", "KEYS[1]", "KEYS[5]", "ARGV[6]")
    ))
});

/// Moves due retries back to the queue. KEYS: scheduled, queue. ARGV: now ms, batch size.
pub static PROMOTE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('LPUSH', KEYS[2], m)
end
return #due
",
    )
});

/// Gives the jobs of workers whose lease expired back to the queue, at the end served next,
/// oldest first. KEYS: workers, queue. ARGV: key prefix, worker id to release now ('' for none).
pub static REAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local moved = 0
for _, w in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if w == ARGV[2] or redis.call('EXISTS', ARGV[1] .. ':heartbeat:' .. w) == 0 then
    local p = ARGV[1] .. ':processing:' .. w
    while redis.call('LMOVE', p, KEYS[2], 'LEFT', 'RIGHT') do
      moved = moved + 1
    end
    redis.call('SREM', KEYS[1], w)
    redis.call('DEL', ARGV[1] .. ':heartbeat:' .. w)
  end
end
return moved
",
    )
});
