//! The Redis job runtime: queue `<service>-tasks`, at-least-once delivery, retries with
//! exponential backoff, a dead-letter list, redelivery of a dead worker's jobs, and results
//! by job id. The wire format is documented in `platform-services/JOBS.md`; keep the two
//! in step.

mod client;
mod envelope;
mod keys;
mod scripts;
mod tasks;
mod worker;

pub use client::JobClient;
pub use envelope::{JobEnvelope, JobResult, JobStatus};
pub use keys::JobKeys;
pub use tasks::{ECHO, FAIL, FAIL_DEFAULT_MESSAGE, TaskError, TaskRegistry, register_smoke_tasks};
pub use worker::{StopHandle, Worker, WorkerOptions};
