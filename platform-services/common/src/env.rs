//! Every environment variable the services read, in one place.
//!
//! Names follow the seeds' `.env` so existing compose files keep working.

/// Name reported in logs and by `GET /me` (default `svc-<service>`).
pub const SERVICE_NAME: &str = "SERVICE_NAME";
/// HTTP port of `serve` and the port `healthcheck` probes (default 8000).
pub const PORT: &str = "PORT";

pub const DB_HOST: &str = "DB_HOST";
pub const DB_PORT: &str = "DB_PORT";
pub const DB_NAME: &str = "DB_NAME";
pub const DB_USER: &str = "DB_USER";
pub const DB_PASSWORD: &str = "DB_PASSWORD";

/// Full Redis URL; when set it wins over `REDIS_HOST`/`REDIS_PORT`/`REDIS_PASSWORD`.
pub const REDIS_URL: &str = "REDIS_URL";
pub const REDIS_HOST: &str = "REDIS_HOST";
pub const REDIS_PORT: &str = "REDIS_PORT";
pub const REDIS_PASSWORD: &str = "REDIS_PASSWORD";

/// Comma-separated `host:port` list.
pub const KAFKA_BROKERS: &str = "KAFKA_BROKERS";

/// Expected `iss` of access tokens.
pub const OIDC_ISSUER: &str = "OIDC_ISSUER";
/// Expected `aud` of access tokens (comma-separated: any of them is accepted).
pub const OIDC_AUDIENCE: &str = "OIDC_AUDIENCE";
/// Where to fetch the discovery document when the issuer URL is not reachable from
/// the container (default `<OIDC_ISSUER>/.well-known/openid-configuration`).
pub const OIDC_DISCOVERY_URL: &str = "OIDC_DISCOVERY_URL";
/// JWKS URL; when set, discovery is skipped.
pub const OIDC_JWKS_URL: &str = "OIDC_JWKS_URL";

/// OTLP collector base URL (e.g. `http://otel-collector:4317`). When set, `serve` and `worker`
/// export their spans to it as traces; when unset, nothing OpenTelemetry is built.
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// `grpc` (default, as the seeds' collector on 4317) or `http/protobuf` (POST to
/// `<endpoint>/v1/traces`, usually port 4318).
pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";

/// Log filter (tracing `EnvFilter` syntax, default `info`).
pub const RUST_LOG: &str = "RUST_LOG";

/// `serve` applies pending migrations in the background at start unless this is `false`.
pub const MIGRATE_ON_START: &str = "MIGRATE_ON_START";

/// Jobs a worker runs at once (default 4).
pub const WORKER_CONCURRENCY: &str = "WORKER_CONCURRENCY";
/// Seconds a worker's lease lives without a heartbeat before its jobs are delivered again (default 30).
pub const JOB_LEASE_SECONDS: &str = "JOB_LEASE_SECONDS";
/// Seconds a job result stays readable (default 86400).
pub const JOB_RESULT_TTL_SECONDS: &str = "JOB_RESULT_TTL_SECONDS";

/// Attempts an event consumer makes at one event before it dead-letters it to `<topic>.dlq`
/// (default 5).
pub const EVENT_MAX_ATTEMPTS: &str = "EVENT_MAX_ATTEMPTS";
/// Milliseconds the outbox relay waits when it found nothing to send (default 50).
pub const OUTBOX_POLL_MS: &str = "OUTBOX_POLL_MS";
/// Milliseconds a relay's claim on outbox rows keeps other relays off them (default 30000):
/// how long a relay that dies mid-batch delays those rows' keys.
pub const OUTBOX_LEASE_MS: &str = "OUTBOX_LEASE_MS";
/// This worker's stable identity in its consumer groups (Kafka static membership,
/// `group.instance.id`): unique per replica, the same across its restarts. Unset (the
/// default): dynamic membership, every start joins as a new member.
pub const KAFKA_GROUP_INSTANCE_ID: &str = "KAFKA_GROUP_INSTANCE_ID";

/// payment: base URL of rule-engine (default `http://rule-engine:8000`).
pub const RULE_ENGINE_URL: &str = "RULE_ENGINE_URL";
/// payment: payments above this amount (minor units of the payment's currency) need a
/// verified KYC (default 100000).
pub const PAYMENT_KYC_THRESHOLD: &str = "PAYMENT_KYC_THRESHOLD";
/// payment: seconds the payer's funds are held before the ledger voids the hold (default 30).
pub const PAYMENT_HOLD_TIMEOUT_SECONDS: &str = "PAYMENT_HOLD_TIMEOUT_SECONDS";
/// payment: seconds a payment may stay `initiated` (its screening interrupted and never
/// retried) before the worker fails it as `screening_incomplete` (default 120).
pub const PAYMENT_SCREENING_TIMEOUT_SECONDS: &str = "PAYMENT_SCREENING_TIMEOUT_SECONDS";
/// forex: spread applied to mid rates, in basis points (default 50).
pub const FOREX_SPREAD_BPS: &str = "FOREX_SPREAD_BPS";
/// forex: seconds a quote stays valid (default 30).
pub const FOREX_QUOTE_TTL_SECONDS: &str = "FOREX_QUOTE_TTL_SECONDS";
/// forex: rates file the `forex.refresh_rates` job loads (default: the bundled file).
pub const FOREX_RATES_FILE: &str = "FOREX_RATES_FILE";
/// forex: seconds a rate may be quoted after forex loaded or set it (default 86400).
pub const FOREX_MAX_RATE_AGE_SECONDS: &str = "FOREX_MAX_RATE_AGE_SECONDS";
/// First retry delay in milliseconds; doubles per attempt, capped at 5 minutes (default 1000).
pub const JOB_BACKOFF_BASE_MS: &str = "JOB_BACKOFF_BASE_MS";
