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

/// The one task every production worker has, `<service>.echo`: it returns its arguments, so a
/// smoke test can prove a worker takes jobs without side effects or cost.
pub const ECHO: &str = "echo";

/// Registers `<service>.echo`.
pub fn register_echo(registry: &mut TaskRegistry, service: &str) {
    registry.register(format!("{service}.{ECHO}"), |args| async move { Ok(args) });
}
