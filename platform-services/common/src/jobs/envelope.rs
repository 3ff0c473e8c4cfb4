use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn default_max_attempts() -> u32 {
    5
}

/// One job on the wire. Producers may send only `id`, `task` and `args`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEnvelope {
    pub id: String,
    /// `<service>.<name>`, e.g. `profile.echo`.
    pub task: String,
    #[serde(default)]
    pub args: Value,
    /// Failed attempts so far.
    #[serde(default)]
    pub attempts: u32,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enqueued_at: Option<DateTime<Utc>>,
    /// Error of the last failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl JobEnvelope {
    pub fn new(task: impl Into<String>, args: Value) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            task: task.into(),
            args,
            attempts: 0,
            max_attempts: default_max_attempts(),
            enqueued_at: Some(Utc::now()),
            last_error: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Succeeded,
    /// Failed; another attempt is scheduled.
    Retrying,
    /// Failed for good; the envelope is in the dead-letter list.
    Dead,
}

/// What `<service>-tasks:result:<id>` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub id: String,
    pub task: String,
    pub status: JobStatus,
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<String>,
    /// Attempts made, this one included.
    pub attempts: u32,
    pub finished_at: DateTime<Utc>,
}
