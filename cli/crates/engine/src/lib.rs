//! The Docker engine layer: connecting (and negotiating the API version), containers as
//! Compose labels them, exec, probes and logs. Everything talks to Docker through the Engine
//! API (bollard); nothing shells out to the `docker` CLI.
//!
//! This crate knows Docker and Compose's label names, nothing about a stack's model: it must
//! not depend on the Compose loader, orchestration, images or the CLI.

mod connect;
mod container;
mod error;
mod exec;
pub mod labels;
mod logs;
mod probe;

pub use connect::Engine;
pub use container::{ContainerInfo, inspect, project_containers, tail_logs};
pub use error::EngineError;
pub use exec::{Attached, ExecHandle, ExecOptions, exec_attached};
pub use logs::{LogLine, LogOptions, follow_logs};
pub use probe::run_probe;
