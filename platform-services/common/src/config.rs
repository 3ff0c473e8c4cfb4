//! Configuration from the environment, one section per dependency, validated at start.
//!
//! Each subcommand loads only the sections it needs (`migrate` needs no IdP), and every
//! error names the variable so a compose file can be fixed without reading code.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use crate::env;
use crate::secret::Secret;

/// Where configuration values come from: the process environment, or a map in tests.
pub trait EnvSource {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment. Empty values count as unset.
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned().filter(|v| !v.trim().is_empty())
    }
}

impl<const N: usize> EnvSource for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
            .filter(|v| !v.trim().is_empty())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{name} is not set{hint}")]
    Missing { name: &'static str, hint: String },
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

fn required(env: &dyn EnvSource, name: &'static str, hint: &str) -> Result<String, ConfigError> {
    env.var(name).ok_or_else(|| ConfigError::Missing {
        name,
        hint: if hint.is_empty() {
            String::new()
        } else {
            format!(" ({hint})")
        },
    })
}

fn parsed<T: FromStr>(env: &dyn EnvSource, name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match env.var(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                name,
                value: raw.clone(),
                reason: e.to_string(),
            }),
    }
}

fn port(env: &dyn EnvSource, name: &'static str, default: u16) -> Result<u16, ConfigError> {
    let p: u16 = parsed(env, name, default)?;
    if p == 0 {
        return Err(ConfigError::Invalid {
            name,
            value: "0".into(),
            reason: "port must be between 1 and 65535".into(),
        });
    }
    Ok(p)
}

fn http_url(name: &'static str, raw: String) -> Result<String, ConfigError> {
    match reqwest::Url::parse(&raw) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {
            Ok(raw.trim_end_matches('/').to_string())
        }
        Ok(_) => Err(ConfigError::Invalid {
            name,
            value: raw,
            reason: "expected an http:// or https:// URL".into(),
        }),
        Err(e) => Err(ConfigError::Invalid {
            name,
            value: raw,
            reason: e.to_string(),
        }),
    }
}

/// A boolean flag: true/false/1/0/yes/no.
pub fn flag(env: &dyn EnvSource, name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match env.var(name) {
        None => Ok(default),
        Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::Invalid {
                name,
                value: raw,
                reason: "expected true or false".into(),
            }),
        },
    }
}

/// A positive integer setting with a default.
pub fn positive<T>(env: &dyn EnvSource, name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + Default + Copy,
    T::Err: std::fmt::Display,
{
    let v = parsed(env, name, default)?;
    if v <= T::default() {
        return Err(ConfigError::Invalid {
            name,
            value: env.var(name).unwrap_or_default(),
            reason: "must be greater than zero".into(),
        });
    }
    Ok(v)
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub port: u16,
}

impl HttpConfig {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            port: port(env, env::PORT, 8000)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct DbConfig {
    pub host: String,
    pub port: u16,
    pub name: String,
    pub user: String,
    pub password: Option<Secret<String>>,
}

impl DbConfig {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            host: required(env, env::DB_HOST, "the CockroachDB/PostgreSQL host")?,
            port: port(env, env::DB_PORT, 26257)?,
            name: env.var(env::DB_NAME).unwrap_or_else(|| "defaultdb".into()),
            user: env.var(env::DB_USER).unwrap_or_else(|| "root".into()),
            password: env.var(env::DB_PASSWORD).map(Secret::new),
        })
    }
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Carries the password, hence a secret.
    pub url: Secret<String>,
    /// `host:port` for logs and readiness output.
    pub address: String,
}

impl RedisConfig {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        if let Some(url) = env.var(env::REDIS_URL) {
            let parsed = reqwest::Url::parse(&url).map_err(|e| ConfigError::Invalid {
                name: env::REDIS_URL,
                value: "[redacted]".into(),
                reason: e.to_string(),
            })?;
            if parsed.scheme() != "redis" && parsed.scheme() != "rediss" {
                return Err(ConfigError::Invalid {
                    name: env::REDIS_URL,
                    value: "[redacted]".into(),
                    reason: "expected a redis:// URL".into(),
                });
            }
            let address = format!(
                "{}:{}",
                parsed.host_str().unwrap_or("?"),
                parsed.port().unwrap_or(6379)
            );
            return Ok(Self {
                url: Secret::new(url),
                address,
            });
        }
        let host = required(env, env::REDIS_HOST, "or set REDIS_URL")?;
        let port = port(env, env::REDIS_PORT, 6379)?;
        let url = match env.var(env::REDIS_PASSWORD) {
            Some(pw) => format!("redis://:{}@{host}:{port}/", percent_encode(&pw)),
            None => format!("redis://{host}:{port}/"),
        };
        Ok(Self {
            url: Secret::new(url),
            address: format!("{host}:{port}"),
        })
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Debug, Clone)]
pub struct KafkaConfig {
    pub brokers: String,
}

impl KafkaConfig {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let brokers = required(env, env::KAFKA_BROKERS, "comma-separated host:port list")?;
        for b in brokers.split(',') {
            let b = b.trim();
            let ok = b
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(ConfigError::Invalid {
                    name: env::KAFKA_BROKERS,
                    value: brokers.clone(),
                    reason: format!("{b:?} is not host:port"),
                });
            }
        }
        Ok(Self { brokers })
    }
}

#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub discovery_url: String,
    pub jwks_url: Option<String>,
}

impl OidcConfig {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let issuer_raw = required(env, env::OIDC_ISSUER, "the `iss` of access tokens")?;
        // Validate as a URL but keep the exact string: `iss` is compared verbatim.
        http_url(env::OIDC_ISSUER, issuer_raw.clone())?;
        let issuer = issuer_raw.trim().to_string();
        let audiences: Vec<String> =
            required(env, env::OIDC_AUDIENCE, "the `aud` of access tokens")?
                .split(',')
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty())
                .collect();
        let discovery_url = match env.var(env::OIDC_DISCOVERY_URL) {
            Some(u) => http_url(env::OIDC_DISCOVERY_URL, u)?,
            None => format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            ),
        };
        let jwks_url = env
            .var(env::OIDC_JWKS_URL)
            .map(|u| http_url(env::OIDC_JWKS_URL, u))
            .transpose()?;
        Ok(Self {
            issuer,
            audiences,
            discovery_url,
            jwks_url,
        })
    }
}

#[derive(Debug, Clone)]
pub struct JobConfig {
    pub concurrency: usize,
    pub lease: Duration,
    pub result_ttl: Duration,
    pub backoff_base: Duration,
}

impl JobConfig {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            concurrency: positive(env, env::WORKER_CONCURRENCY, 4usize)?,
            lease: Duration::from_secs(positive(env, env::JOB_LEASE_SECONDS, 30u64)?),
            result_ttl: Duration::from_secs(positive(env, env::JOB_RESULT_TTL_SECONDS, 86_400u64)?),
            backoff_base: Duration::from_millis(positive(env, env::JOB_BACKOFF_BASE_MS, 1000u64)?),
        })
    }
}

/// The worker's event runtime: consumers and the outbox relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    /// Attempts at one event before it goes to `<topic>.dlq` (`EVENT_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// The relay's pause when the outbox had nothing to send (`OUTBOX_POLL_MS`).
    pub outbox_poll: Duration,
    /// How long a relay's claim on outbox rows lasts (`OUTBOX_LEASE_MS`).
    pub outbox_lease: Duration,
    /// This replica's static member id in every consumer group (`KAFKA_GROUP_INSTANCE_ID`):
    /// a restarted replica takes back its partitions without a rebalance.
    pub group_instance_id: Option<String>,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            outbox_poll: Duration::from_millis(50),
            outbox_lease: Duration::from_secs(30),
            group_instance_id: None,
        }
    }
}

impl EventsConfig {
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let d = Self::default();
        Ok(Self {
            max_attempts: positive(env, env::EVENT_MAX_ATTEMPTS, d.max_attempts)?,
            outbox_poll: Duration::from_millis(positive(
                env,
                env::OUTBOX_POLL_MS,
                d.outbox_poll.as_millis() as u64,
            )?),
            outbox_lease: Duration::from_millis(positive(
                env,
                env::OUTBOX_LEASE_MS,
                d.outbox_lease.as_millis() as u64,
            )?),
            group_instance_id: env
                .var(env::KAFKA_GROUP_INSTANCE_ID)
                .map(|v| v.trim().to_owned()),
        })
    }
}

/// How spans reach the collector (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtlpProtocol {
    /// OTLP/gRPC, the default: the seeds point every service at `otel-collector:4317`.
    #[default]
    Grpc,
    /// OTLP/HTTP with protobuf bodies, `POST <endpoint>/v1/traces`.
    HttpProtobuf,
}

impl OtlpProtocol {
    /// The value as `OTEL_EXPORTER_OTLP_PROTOCOL` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        }
    }
}

impl std::fmt::Display for OtlpProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Trace export; `None` when `OTEL_EXPORTER_OTLP_ENDPOINT` is unset (nothing is exported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The collector's base URL, without a trailing `/`.
    pub endpoint: String,
    pub protocol: OtlpProtocol,
}

impl OtlpConfig {
    /// Both variables are validated even when only one is set, so a typo shows at start.
    pub fn from_env(env: &dyn EnvSource) -> Result<Option<Self>, ConfigError> {
        let name = env::OTEL_EXPORTER_OTLP_PROTOCOL;
        let protocol = match env.var(name) {
            None => OtlpProtocol::default(),
            Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
                "grpc" => OtlpProtocol::Grpc,
                "http/protobuf" => OtlpProtocol::HttpProtobuf,
                _ => {
                    return Err(ConfigError::Invalid {
                        name,
                        value: raw,
                        reason: "expected grpc or http/protobuf (http/json is not supported)"
                            .into(),
                    });
                }
            },
        };
        let name = env::OTEL_EXPORTER_OTLP_ENDPOINT;
        let Some(endpoint) = env.var(name).map(|u| http_url(name, u)).transpose()? else {
            return Ok(None);
        };
        if protocol == OtlpProtocol::Grpc && endpoint.starts_with("https:") {
            return Err(ConfigError::Invalid {
                name,
                value: endpoint,
                reason: "gRPC export is built without TLS: use an http:// collector, or \
                         OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf for https"
                    .into(),
            });
        }
        Ok(Some(Self { endpoint, protocol }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_db_host_names_the_variable() {
        let env: &[(&str, &str); 0] = &[];
        let err = DbConfig::from_env(env).unwrap_err();
        assert!(err.to_string().starts_with("DB_HOST is not set"), "{err}");
    }

    #[test]
    fn bad_port_names_variable_and_value() {
        let env = &[("DB_HOST", "db"), ("DB_PORT", "abc")];
        let err = DbConfig::from_env(env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "DB_PORT=\"abc\" is not valid: invalid digit found in string"
        );
    }

    #[test]
    fn db_defaults_follow_cockroach() {
        let env = &[("DB_HOST", "cockroach1"), ("DB_PASSWORD", "pw")];
        let cfg = DbConfig::from_env(env).unwrap();
        assert_eq!(cfg.port, 26257);
        assert_eq!(cfg.user, "root");
        assert_eq!(cfg.name, "defaultdb");
        assert!(
            !format!("{cfg:?}").contains("pw\""),
            "password leaked: {cfg:?}"
        );
    }

    #[test]
    fn redis_url_built_from_parts_and_never_printed() {
        let env = &[("REDIS_HOST", "redis"), ("REDIS_PASSWORD", "s3cr@t")];
        let cfg = RedisConfig::from_env(env).unwrap();
        assert_eq!(cfg.url.expose(), "redis://:s3cr%40t@redis:6379/");
        assert_eq!(cfg.address, "redis:6379");
        assert!(!format!("{cfg:?}").contains("s3cr"));
    }

    #[test]
    fn redis_requires_host_or_url() {
        let env: &[(&str, &str); 0] = &[];
        let err = RedisConfig::from_env(env).unwrap_err();
        assert_eq!(err.to_string(), "REDIS_HOST is not set (or set REDIS_URL)");
    }

    #[test]
    fn kafka_brokers_must_be_host_port() {
        let env = &[("KAFKA_BROKERS", "redpanda:9092,broken")];
        let err = KafkaConfig::from_env(env).unwrap_err();
        assert!(
            err.to_string().contains("\"broken\" is not host:port"),
            "{err}"
        );
    }

    #[test]
    fn oidc_discovery_defaults_to_issuer_well_known() {
        let env = &[
            ("OIDC_ISSUER", "http://idp:8080/realms/x/"),
            ("OIDC_AUDIENCE", "a, b"),
        ];
        let cfg = OidcConfig::from_env(env).unwrap();
        assert_eq!(
            cfg.discovery_url,
            "http://idp:8080/realms/x/.well-known/openid-configuration"
        );
        assert_eq!(cfg.audiences, vec!["a", "b"]);
        assert_eq!(cfg.issuer, "http://idp:8080/realms/x/");
    }

    #[test]
    fn oidc_audience_is_required() {
        let env = &[("OIDC_ISSUER", "http://idp")];
        let err = OidcConfig::from_env(env).unwrap_err();
        assert!(err.to_string().starts_with("OIDC_AUDIENCE is not set"));
    }

    #[test]
    fn otlp_is_off_without_an_endpoint() {
        let env = &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")];
        assert_eq!(OtlpConfig::from_env(env).unwrap(), None);
    }

    #[test]
    fn otlp_protocol_defaults_to_grpc() {
        let env = &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector:4317/")];
        let cfg = OtlpConfig::from_env(env).unwrap().unwrap();
        assert_eq!(cfg.endpoint, "http://otel-collector:4317");
        assert_eq!(cfg.protocol, OtlpProtocol::Grpc);
    }

    #[test]
    fn otlp_protocol_accepts_the_standard_spellings() {
        for (raw, expected) in [
            ("grpc", OtlpProtocol::Grpc),
            (" GRPC ", OtlpProtocol::Grpc),
            ("http/protobuf", OtlpProtocol::HttpProtobuf),
        ] {
            let env = &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", raw),
            ];
            let cfg = OtlpConfig::from_env(env).unwrap().unwrap();
            assert_eq!(cfg.protocol, expected, "{raw}");
        }
        let env = &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://collector.example:4318",
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ];
        assert!(OtlpConfig::from_env(env).unwrap().is_some());
    }

    #[test]
    fn unknown_otlp_protocol_names_the_variable() {
        for raw in ["http/json", "http", "tcp"] {
            let env = &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", raw),
            ];
            let err = OtlpConfig::from_env(env).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "OTEL_EXPORTER_OTLP_PROTOCOL={raw:?} is not valid: \
                     expected grpc or http/protobuf (http/json is not supported)"
                )
            );
        }
    }

    #[test]
    fn otlp_endpoint_must_be_an_http_url() {
        let env = &[("OTEL_EXPORTER_OTLP_ENDPOINT", "otel-collector:4317")];
        let err = OtlpConfig::from_env(env).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("OTEL_EXPORTER_OTLP_ENDPOINT=\"otel-collector:4317\" is not valid"),
            "{err}"
        );
    }

    #[test]
    fn grpc_over_https_is_refused_with_a_hint() {
        let env = &[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://collector.example:4317",
        )];
        let err = OtlpConfig::from_env(env).unwrap_err();
        let ConfigError::Invalid { name, reason, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*name, "OTEL_EXPORTER_OTLP_ENDPOINT");
        assert!(
            reason.contains("OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"),
            "{err}"
        );
    }

    #[test]
    fn events_defaults_and_overrides() {
        let none: &[(&str, &str); 0] = &[];
        assert_eq!(
            EventsConfig::from_env(none).unwrap(),
            EventsConfig::default()
        );
        let env = &[
            ("EVENT_MAX_ATTEMPTS", "3"),
            ("OUTBOX_POLL_MS", "10"),
            ("OUTBOX_LEASE_MS", "5000"),
            ("KAFKA_GROUP_INSTANCE_ID", " ledger-worker-1 "),
        ];
        let cfg = EventsConfig::from_env(env).unwrap();
        assert_eq!(cfg.max_attempts, 3);
        assert_eq!(cfg.outbox_poll, Duration::from_millis(10));
        assert_eq!(cfg.outbox_lease, Duration::from_secs(5));
        assert_eq!(cfg.group_instance_id.as_deref(), Some("ledger-worker-1"));
        let err = EventsConfig::from_env(&[("EVENT_MAX_ATTEMPTS", "0")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "EVENT_MAX_ATTEMPTS=\"0\" is not valid: must be greater than zero"
        );
    }

    #[test]
    fn zero_concurrency_rejected() {
        let env = &[("WORKER_CONCURRENCY", "0")];
        let err = JobConfig::from_env(env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WORKER_CONCURRENCY=\"0\" is not valid: must be greater than zero"
        );
    }
}
