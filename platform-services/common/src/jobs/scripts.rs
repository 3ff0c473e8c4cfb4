//! Lua scripts: each state change of a job is one atomic step in Redis.

use std::sync::LazyLock;

use redis::Script;

/// KEYS: processing, result, done, deliveries. ARGV: raw envelope, result JSON, ttl ms, id.
pub static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[3])
redis.call('RPUSH', KEYS[3], '1')
redis.call('PEXPIRE', KEYS[3], ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[4])
return 1
",
    )
});

/// KEYS: processing, scheduled, result. ARGV: raw envelope, next envelope, due ms, result JSON, ttl ms.
pub static RETRY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5])
return 1
",
    )
});

/// KEYS: processing, dead, result, done, deliveries. ARGV: raw, dead envelope, result JSON, ttl ms, id.
pub static BURY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
redis.call('DEL', KEYS[4])
redis.call('RPUSH', KEYS[4], '1')
redis.call('PEXPIRE', KEYS[4], ARGV[4])
redis.call('HDEL', KEYS[5], ARGV[5])
return 1
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
