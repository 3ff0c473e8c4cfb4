//! Placeholder: replaced by the worker suite's driver (branch worker-suite).
use std::time::Duration;

pub async fn echo(_redis_url: &str, _service: &str, _timeout: Duration) -> Result<String, String> {
    Err("not built yet".into())
}

pub async fn dead_letter(
    _redis_url: &str,
    _service: &str,
    _timeout: Duration,
) -> Result<String, String> {
    Err("not built yet".into())
}
