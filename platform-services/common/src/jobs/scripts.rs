//! Lua scripts: each state change of a job is one atomic step in Redis.
//!
//! A busy worker needs one round trip per job: the script that records a job's outcome also
//! claims the next job ([`claim_next`], the tail of `COMPLETE`, `RETRY` and `BURY`), so a
//! worker only blocks on `BLMOVE` when the queue was empty.
//!
//! **Fencing.** Every delivery gets a token, `<worker>:<n>`, unique to it: claiming a job
//! stores it in the hash `<prefix>:leases` under the job id. `COMPLETE`, `RETRY` and `BURY`
//! first check that the token they are given is still the job's ([`fence`]); when it is not
//! (the worker's lease lapsed and `REAP` gave the job to someone else), they change nothing
//! and return `{0}`. `REAP` deletes the tokens of the jobs it moves back to the queue.

use std::sync::LazyLock;

use redis::Script;

/// The head of the outcome scripts: refuse (`{0, false, false}`) unless `token` is still the
/// job's fencing token; otherwise release it.
fn fence(leases: &str, id: &str, token: &str) -> String {
    format!(
        r"
if redis.call('HGET', {leases}, {id}) ~= {token} then return {{0, false, false}} end
redis.call('HDEL', {leases}, {id})
"
    )
}

/// The tail of the outcome scripts: when `claim` (an `ARGV` slot) is `1` and this worker
/// still holds its lease (`heartbeat` exists), move the oldest queued job to this worker's
/// processing list, count its delivery and give it the fencing token `token`. Returns
/// `{1, envelope, deliveries}`, or `{1, false, false}` when nothing was claimed. An envelope
/// that is not JSON with a string `id` is still claimed, with 0 deliveries and no token: the
/// worker dead-letters it.
fn claim_next(
    queue: &str,
    processing: &str,
    deliveries: &str,
    leases: &str,
    heartbeat: &str,
    claim: &str,
    token: &str,
) -> String {
    format!(
        r"
if {claim} ~= '1' or redis.call('EXISTS', {heartbeat}) == 0 then return {{1, false, false}} end
local m = redis.call('LMOVE', {queue}, {processing}, 'RIGHT', 'LEFT')
if not m then return {{1, false, false}} end
local ok, job = pcall(cjson.decode, m)
local n = 0
if ok and type(job) == 'table' and type(job.id) == 'string' then
  n = redis.call('HINCRBY', {deliveries}, job.id, 1)
  redis.call('HSET', {leases}, job.id, {token})
end
return {{1, m, n}}
"
    )
}

/// Records success, signals waiters with the result, claims the next job.
/// KEYS: processing, result, done, deliveries, queue, leases, heartbeat.
/// ARGV: raw envelope, result JSON, ttl ms, id, claim next ('1' or '0'), token, next token.
pub static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{}
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[3])
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[4])
{}",
        fence("KEYS[6]", "ARGV[4]", "ARGV[6]"),
        claim_next(
            "KEYS[5]", "KEYS[1]", "KEYS[4]", "KEYS[6]", "KEYS[7]", "ARGV[5]", "ARGV[7]"
        )
    ))
});

/// Schedules a retry, claims the next job.
/// KEYS: processing, scheduled, result, deliveries, queue, leases, heartbeat.
/// ARGV: raw envelope, next envelope, due ms, result JSON, ttl ms, claim next ('1' or '0'),
/// id, token, next token.
pub static RETRY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{}
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5])
{}",
        fence("KEYS[6]", "ARGV[7]", "ARGV[8]"),
        claim_next(
            "KEYS[5]", "KEYS[1]", "KEYS[4]", "KEYS[6]", "KEYS[7]", "ARGV[6]", "ARGV[9]"
        )
    ))
});

/// Dead-letters a job, signals waiters with the result, claims the next job.
/// KEYS: processing, dead, result, done, deliveries, queue, leases, heartbeat.
/// ARGV: raw, dead envelope, result JSON, ttl ms, id, claim next ('1' or '0'), token,
/// next token.
pub static BURY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{}
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
redis.call('DEL', KEYS[4])
redis.call('RPUSH', KEYS[4], ARGV[3])
redis.call('PEXPIRE', KEYS[4], ARGV[4])
redis.call('HDEL', KEYS[5], ARGV[5])
{}",
        fence("KEYS[7]", "ARGV[5]", "ARGV[7]"),
        claim_next(
            "KEYS[6]", "KEYS[1]", "KEYS[5]", "KEYS[7]", "KEYS[8]", "ARGV[6]", "ARGV[8]"
        )
    ))
});

/// After a blocking `BLMOVE` put `raw` in this worker's processing list: claim it (count its
/// delivery, store its fencing token) or, when the worker is stopping or no longer holds its
/// lease, hand it straight back to the queue (served next) uncounted.
/// KEYS: processing, deliveries, leases, heartbeat, queue.
/// ARGV: raw, token, claim ('1', or '0' to hand back).
/// Returns the delivery count; 0 for an envelope without a string `id` (claimed, to be
/// dead-lettered); -1 when the job is not this worker's to run (handed back, or already
/// reaped).
pub static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if not redis.call('LPOS', KEYS[1], ARGV[1]) then return -1 end
if ARGV[3] ~= '1' or redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('LREM', KEYS[1], 1, ARGV[1])
  redis.call('RPUSH', KEYS[5], ARGV[1])
  return -1
end
local ok, job = pcall(cjson.decode, ARGV[1])
if not (ok and type(job) == 'table' and type(job.id) == 'string') then return 0 end
local n = redis.call('HINCRBY', KEYS[2], job.id, 1)
redis.call('HSET', KEYS[3], job.id, ARGV[2])
return n
",
    )
});

/// Renews a worker's lease. KEYS: heartbeat, workers. ARGV: worker id, lease ms.
/// Returns 1, or 0 when the worker had been reaped (its jobs were given to others and their
/// fencing tokens deleted): it is then registered afresh, holding nothing.
pub static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local member = redis.call('SISMEMBER', KEYS[2], ARGV[1])
redis.call('SET', KEYS[1], 1, 'PX', ARGV[2])
if member == 0 then redis.call('SADD', KEYS[2], ARGV[1]) end
return member
",
    )
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
/// oldest first, and deletes those deliveries' fencing tokens so the old worker cannot record
/// an outcome. KEYS: workers, queue, leases. ARGV: key prefix, worker id to release now ('' for
/// none).
pub static REAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local moved = 0
for _, w in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if w == ARGV[2] or redis.call('EXISTS', ARGV[1] .. ':heartbeat:' .. w) == 0 then
    local p = ARGV[1] .. ':processing:' .. w
    local mine = w .. ':'
    while true do
      local m = redis.call('LMOVE', p, KEYS[2], 'LEFT', 'RIGHT')
      if not m then break end
      moved = moved + 1
      local ok, job = pcall(cjson.decode, m)
      if ok and type(job) == 'table' and type(job.id) == 'string' then
        local t = redis.call('HGET', KEYS[3], job.id)
        if t and string.sub(t, 1, #mine) == mine then
          redis.call('HDEL', KEYS[3], job.id)
        end
      end
    end
    redis.call('SREM', KEYS[1], w)
    redis.call('DEL', ARGV[1] .. ':heartbeat:' .. w)
  end
end
return moved
",
    )
});
