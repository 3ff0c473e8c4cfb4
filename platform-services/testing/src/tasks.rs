//! The seeds' sample tasks, for tests of the job runtime: `<service>.add` and `.slow`, with
//! the smoke-test tasks `.echo` and `.fail`. Production workers register only the smoke-test
//! tasks (see `JOBS.md`); `slow` can park a worker for minutes, so it exists here only.

use std::time::Duration;

use serde_json::{Value, json};

use platform_common::jobs::{TaskError, TaskRegistry};

/// `slow` sleeps at most this long, so a typo cannot park a worker for a day.
const SLOW_MAX_SECONDS: u64 = 300;

/// Registers `<service>.add`, `<service>.slow`, `<service>.echo` and `<service>.fail`.
pub fn register(registry: &mut TaskRegistry, service: &str) {
    registry.register(format!("{service}.add"), |args| async move { add(&args) });
    registry.register(format!("{service}.slow"), |args| async move {
        let secs = slow_seconds(&args)?;
        tokio::time::sleep(Duration::from_millis(secs)).await;
        Ok(json!(secs as f64 / 1000.0))
    });
    platform_common::jobs::register_smoke_tasks(registry, service);
}

/// `[a, b]` (or `{"a": .., "b": ..}`) of integers -> `a + b`.
fn add(args: &Value) -> Result<Value, TaskError> {
    let (a, b) = match args {
        Value::Array(v) if v.len() == 2 => (&v[0], &v[1]),
        Value::Object(m) if m.contains_key("a") && m.contains_key("b") => (&m["a"], &m["b"]),
        _ => return Err(TaskError::fatal("add expects [a, b]")),
    };
    let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) else {
        return Err(TaskError::fatal("add expects two integers"));
    };
    a.checked_add(b)
        .map(Value::from)
        .ok_or_else(|| TaskError::fatal("add overflowed a 64-bit integer"))
}

/// `[seconds]` or `seconds` (fractions allowed) -> milliseconds to sleep.
fn slow_seconds(args: &Value) -> Result<u64, TaskError> {
    let v = match args {
        Value::Array(v) if v.len() == 1 => &v[0],
        other => other,
    };
    let secs = v
        .as_f64()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s <= SLOW_MAX_SECONDS as f64)
        .ok_or_else(|| {
            TaskError::fatal(format!(
                "slow expects seconds between 0 and {SLOW_MAX_SECONDS}"
            ))
        })?;
    Ok((secs * 1000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_sums_integers_only() {
        assert_eq!(add(&json!([1, 2])).unwrap(), json!(3));
        assert_eq!(add(&json!({"a": -5, "b": 2})).unwrap(), json!(-3));
        assert!(!add(&json!([1.5, 2])).unwrap_err().retryable);
        assert!(add(&json!([i64::MAX, 1])).is_err());
        assert!(add(&json!("x")).is_err());
    }

    #[test]
    fn slow_bounds() {
        assert_eq!(slow_seconds(&json!([2])).unwrap(), 2000);
        assert_eq!(slow_seconds(&json!(0.25)).unwrap(), 250);
        assert!(slow_seconds(&json!([-1])).is_err());
        assert!(slow_seconds(&json!([100000])).is_err());
    }
}
