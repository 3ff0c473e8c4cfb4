use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;

/// Why a task failed, and whether trying again could help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    pub message: String,
    pub retryable: bool,
}

impl TaskError {
    /// A transient failure: the job is retried with backoff.
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure no retry can fix (bad arguments): the job goes to the dead-letter list.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
}

type Handler = Arc<dyn Fn(Value) -> BoxFuture<'static, Result<Value, TaskError>> + Send + Sync>;

/// Task name -> handler.
#[derive(Clone, Default)]
pub struct TaskRegistry {
    handlers: HashMap<String, Handler>,
}

impl TaskRegistry {
    pub fn register<F, Fut>(&mut self, name: impl Into<String>, f: F) -> &mut Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskError>> + Send + 'static,
    {
        self.handlers
            .insert(name.into(), Arc::new(move |v| Box::pin(f(v))));
        self
    }

    pub(crate) fn get(&self, name: &str) -> Option<Handler> {
        self.handlers.get(name).cloned()
    }

    pub fn names(&self) -> Vec<&str> {
        let mut n: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        n.sort_unstable();
        n
    }
}

/// `<service>.echo`, which every production worker has: it returns its arguments, so a smoke
/// test can prove a worker takes jobs without side effects or cost.
pub const ECHO: &str = "echo";

/// `<service>.fail`, which every production worker has: it always fails retryably, so a smoke
/// test can prove a job failing every attempt is retried and then dead-lettered.
pub const FAIL: &str = "fail";

/// What `fail` says when its arguments carry no `message` string.
pub const FAIL_DEFAULT_MESSAGE: &str = "fail: as asked";

/// Registers the smoke-test tasks every production worker has: `<service>.echo` and
/// `<service>.fail` (see `JOBS.md`, "Tasks every worker has").
pub fn register_smoke_tasks(registry: &mut TaskRegistry, service: &str) {
    registry.register(format!("{service}.{ECHO}"), |args| async move { Ok(args) });
    registry.register(format!("{service}.{FAIL}"), |args| async move {
        Err(fail_error(&args))
    });
}

/// `{"message": "..."}` -> a retryable error with that message; anything else -> the default.
fn fail_error(args: &Value) -> TaskError {
    let message = args
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or(FAIL_DEFAULT_MESSAGE);
    TaskError::retry(message)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fail_is_retryable_and_says_what_it_was_told() {
        assert_eq!(
            fail_error(&json!({"message": "boom"})),
            TaskError::retry("boom")
        );
        assert_eq!(
            fail_error(&json!({"message": 3})),
            TaskError::retry(FAIL_DEFAULT_MESSAGE)
        );
        assert_eq!(
            fail_error(&json!(null)),
            TaskError::retry(FAIL_DEFAULT_MESSAGE)
        );
    }
}
