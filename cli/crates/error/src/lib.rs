//! How a command's outcome becomes an exit code and a message the user can act on.
//!
//! Failures a user can fix are [`UserError`]s: a one-line cause, an optional `hint:` telling
//! what to do next, and the exit status. Anything else is unexpected and exits 1 with its
//! cause chain.
//!
//! Every finctl library returns these; this crate depends on nothing of finctl's.

use std::fmt;
use std::process::ExitCode;

/// The exit codes finctl documents in `--help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: the command did what was asked.
    Success,
    /// 1: the command ran and something failed (an unhealthy service, a failed build, ...).
    Failure,
    /// 2: bad arguments or bad configuration; nothing was changed.
    Usage,
    /// Another program's own exit code, passed through unchanged (`finctl exec`).
    External(u8),
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failure => 1,
            Self::Usage => 2,
            Self::External(code) => code,
        }
    }

    /// A child's exit code as the shell would report it: 0-255 as is, anything else
    /// (a negative or out-of-range code from the engine) as a failure.
    pub fn from_child(code: i64) -> Self {
        u8::try_from(code).map_or(Self::Failure, Self::External)
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}

/// A failure the user can act on.
#[derive(Debug)]
pub struct UserError {
    pub message: String,
    pub hint: Option<String>,
    pub status: ExitStatus,
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl UserError {
    /// Something failed while running (exit 1).
    pub fn failure(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: Some(hint.into()),
            status: ExitStatus::Failure,
            source: None,
        }
    }

    /// Bad input or configuration (exit 2); nothing was changed.
    pub fn config(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: Some(hint.into()),
            status: ExitStatus::Usage,
            source: None,
        }
    }

    /// Keeps `source` as the cause printed under the message.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|err| err as &(dyn std::error::Error + 'static))
    }
}

/// The exit status an error maps to: a [`UserError`] anywhere in the chain decides, else 1.
pub fn status_of(err: &anyhow::Error) -> ExitStatus {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<UserError>())
        .map_or(ExitStatus::Failure, |user| user.status)
}

/// The hint of the first [`UserError`] in the chain.
pub fn hint_of(err: &anyhow::Error) -> Option<&str> {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<UserError>())
        .and_then(|user| user.hint.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_code_passes_through_and_odd_ones_fail() {
        assert_eq!(ExitStatus::from_child(0).code(), 0);
        assert_eq!(ExitStatus::from_child(42).code(), 42);
        assert_eq!(ExitStatus::from_child(255).code(), 255);
        assert_eq!(ExitStatus::from_child(-1), ExitStatus::Failure);
        assert_eq!(ExitStatus::from_child(300), ExitStatus::Failure);
    }

    #[test]
    fn the_first_user_error_in_the_chain_decides_status_and_hint() {
        let err = anyhow::Error::new(UserError::config("bad", "fix it")).context("loading");
        assert_eq!(status_of(&err), ExitStatus::Usage);
        assert_eq!(hint_of(&err), Some("fix it"));
        let plain = anyhow::anyhow!("boom");
        assert_eq!(status_of(&plain), ExitStatus::Failure);
        assert_eq!(hint_of(&plain), None);
    }
}
