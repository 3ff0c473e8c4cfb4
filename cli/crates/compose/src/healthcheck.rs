//! A service's `healthcheck:`, in the form the Docker Engine API takes.

use std::time::Duration;

/// `None` fields keep the image's `HEALTHCHECK` values (Docker's defaults: interval 30s,
/// timeout 30s, retries 3, no start period).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Healthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]`, `["NONE"]` (disabled); `None`: the image's test.
    pub test: Option<Vec<String>>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub retries: Option<u32>,
}

impl Healthcheck {
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_RETRIES: u32 = 3;

    pub fn disabled() -> Self {
        Self {
            test: Some(vec!["NONE".to_owned()]),
            ..Self::default()
        }
    }

    pub fn is_disabled(&self) -> bool {
        self.test
            .as_ref()
            .is_some_and(|t| t.first().is_some_and(|f| f == "NONE"))
    }

    /// The command to run on demand (`docker exec`) to probe health now: the argv of a `CMD`
    /// test, or `/bin/sh -c ...` for `CMD-SHELL`. `None` when disabled or left to the image.
    pub fn exec_command(&self) -> Option<Vec<String>> {
        let test = self.test.as_ref()?;
        match test.first().map(String::as_str) {
            Some("CMD") => Some(test[1..].to_vec()),
            Some("CMD-SHELL") => Some(vec![
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                test[1..].join(" "),
            ]),
            _ => None,
        }
    }

    pub fn interval_or_default(&self) -> Duration {
        self.interval.unwrap_or(Self::DEFAULT_INTERVAL)
    }

    pub fn timeout_or_default(&self) -> Duration {
        self.timeout.unwrap_or(Self::DEFAULT_TIMEOUT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_command_of_each_form() {
        let cmd = Healthcheck {
            test: Some(vec!["CMD".into(), "pg_isready".into(), "-q".into()]),
            ..Healthcheck::default()
        };
        assert_eq!(cmd.exec_command().unwrap(), ["pg_isready", "-q"]);
        let shell = Healthcheck {
            test: Some(vec![
                "CMD-SHELL".into(),
                "redis-cli ping | grep PONG".into(),
            ]),
            ..Healthcheck::default()
        };
        assert_eq!(
            shell.exec_command().unwrap(),
            ["/bin/sh", "-c", "redis-cli ping | grep PONG"]
        );
        assert!(Healthcheck::disabled().is_disabled());
        assert_eq!(Healthcheck::disabled().exec_command(), None);
        assert_eq!(
            Healthcheck::default().interval_or_default(),
            Duration::from_secs(30)
        );
    }
}
