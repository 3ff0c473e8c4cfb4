//! Connecting to the engine. Connecting negotiates the API version: bollard speaks a newer API than older engines
//! (Debian's 20.10 stops at 1.41), so without negotiation every call would be refused.

use std::io;

use bollard::Docker;

use finctl_env as env;
use finctl_error::UserError;

/// A connected engine and the API version both sides agreed on.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    server_version: String,
    api_version: String,
}

impl Engine {
    /// Connects to `$DOCKER_HOST` or the local socket and settles the API version.
    pub async fn connect() -> Result<Self, UserError> {
        let docker = Docker::connect_with_defaults().map_err(|err| unreachable_engine(&err))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|err| unreachable_engine(&err))?;
        let version = docker
            .version()
            .await
            .map_err(|err| unreachable_engine(&err))?;
        let client = docker.client_version();
        Ok(Self {
            docker,
            server_version: version.version.unwrap_or_else(|| "unknown".into()),
            api_version: format!("{}.{}", client.major_version, client.minor_version),
        })
    }

    pub fn api(&self) -> &Docker {
        &self.docker
    }

    /// The engine's own version, e.g. `20.10.24`.
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// The API version in use after negotiation, e.g. `1.41`.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }
}

/// Turns a connection failure into one line of cause and a hint.
fn unreachable_engine(err: &bollard::errors::Error) -> UserError {
    let target =
        std::env::var(env::DOCKER_HOST).unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    if let bollard::errors::Error::SocketNotFoundError(path) = err {
        return UserError::failure(
            format!("the Docker engine is not running: no socket at {path}"),
            "start Docker (`sudo systemctl start docker`, or `sudo dockerd &`), or point DOCKER_HOST at a running engine",
        );
    }
    let (message, hint) = match io_error_kind(err) {
        Some(io::ErrorKind::NotFound) => (
            format!("the Docker engine is not running: no socket at {target}"),
            "start Docker (`sudo systemctl start docker`, or `sudo dockerd &`), or point DOCKER_HOST at a running engine",
        ),
        Some(io::ErrorKind::PermissionDenied) => (
            format!("permission denied on the Docker socket ({target})"),
            "add yourself to the docker group (`sudo usermod -aG docker $USER`, then log in again) or run as root",
        ),
        Some(io::ErrorKind::ConnectionRefused) => (
            format!("the Docker engine refused the connection at {target}"),
            "start Docker (`sudo systemctl start docker`) or check DOCKER_HOST",
        ),
        _ => (
            format!("cannot talk to the Docker engine at {target}: {err}"),
            "check that Docker runs (`docker version`) and that DOCKER_HOST, if set, is right",
        ),
    };
    UserError::failure(message, hint)
}

fn io_error_kind(err: &bollard::errors::Error) -> Option<io::ErrorKind> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = cause {
        if let Some(io_err) = current.downcast_ref::<io::Error>() {
            return Some(io_err.kind());
        }
        cause = current.source();
    }
    None
}
