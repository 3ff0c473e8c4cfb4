//! What every finctl platform service shares: configuration, logs, errors, auth, health,
//! metrics, docs, the database pool and migrations, the Redis job runtime, and Kafka events
//! through a transactional outbox.
//!
//! Shipped in every service image: it must not depend on finctl's CLI crates (`cli/`), on
//! anything under `tests/`, or on `platform-testing`; test support lives in that dev-only
//! crate.

pub mod auth;
pub mod config;
pub mod db;
pub mod env;
pub mod events;
pub mod health;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod migrate;
pub mod money;
pub mod problem;
pub mod redis_handle;
pub mod secret;
pub mod service;
pub mod telemetry;

pub use problem::{ApiError, CommonError, Problem};
pub use secret::Secret;
