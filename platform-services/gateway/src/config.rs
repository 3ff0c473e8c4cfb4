//! The gateway's settings, from the environment (names in [`crate::env`]).

use std::path::PathBuf;

use platform_common::Secret;
use platform_common::config::{ConfigError, EnvSource, OidcConfig, OtlpConfig};

use crate::env;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub port: u16,
    pub admin_port: u16,
    pub admin_token: Secret<String>,
    pub routes_file: PathBuf,
    pub oidc: OidcConfig,
    pub otlp: Option<OtlpConfig>,
}

pub fn port(env: &dyn EnvSource, name: &'static str, default: u16) -> Result<u16, ConfigError> {
    match env.var(name) {
        None => Ok(default),
        Some(raw) => match raw.trim().parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(ConfigError::Invalid {
                name,
                value: raw,
                reason: "port must be between 1 and 65535".into(),
            }),
        },
    }
}

impl GatewayConfig {
    pub fn from_env(e: &dyn EnvSource) -> Result<Self, ConfigError> {
        let admin_token = e
            .var(env::GATEWAY_ADMIN_TOKEN)
            .ok_or(ConfigError::Missing {
                name: env::GATEWAY_ADMIN_TOKEN,
                hint: " (the bearer token of the admin API)".into(),
            })?;
        Ok(Self {
            port: port(e, env::PORT, env::DEFAULT_PORT)?,
            admin_port: port(e, env::ADMIN_PORT, env::DEFAULT_ADMIN_PORT)?,
            admin_token: Secret::new(admin_token),
            routes_file: e
                .var(env::GATEWAY_ROUTES_FILE)
                .unwrap_or_else(|| env::DEFAULT_ROUTES_FILE.into())
                .into(),
            oidc: OidcConfig::from_env(e)?,
            otlp: OtlpConfig::from_env(e)?,
        })
    }
}
