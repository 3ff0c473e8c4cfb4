//! Compose stacks of the offline images that the CLI tests run.

/// The offline PostgreSQL service's common keys (published on `${DB_PORT}`, ready when
/// `pg_isready` says so), as a string literal for `concat!`.
macro_rules! postgres {
    () => {
        r#"    image: finctl/postgres:offline
    entrypoint: ["/usr/local/bin/postgres-entrypoint"]
    ports:
      - "127.0.0.1:${DB_PORT}:26257"
    healthcheck:
      test: ["CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-p", "26257", "-U", "root", "-d", "defaultdb"]
      interval: 30s
      timeout: 3s
      retries: 15
      start_period: 30s
"#
    };
}

/// PostgreSQL (with limits and a volume), a one-shot that needs it healthy, and Redis after the
/// one-shot, published on `${DB_PORT}` and `${CACHE_PORT}`; behind profiles, a service whose
/// healthcheck always fails (`broken`) and one that exits at once (`crash`).
pub const DB_BOOTSTRAP_CACHE: &str = concat!(
    r#"
services:
  db:
"#,
    postgres!(),
    r#"    volumes:
      - db-data:/var/lib/postgresql/data
    deploy:
      resources:
        limits:
          cpus: "1.0"
          memory: 512M

  bootstrap:
    image: finctl/postgres:offline
    entrypoint: ["/bin/sh", "-c"]
    command: ["psql -v ON_ERROR_STOP=1 -h db -p 26257 -U root -d defaultdb -tAc 'SELECT 1'"]
    restart: "no"
    depends_on:
      db:
        condition: service_healthy

  cache:
    image: finctl/redis:offline
    command: ["redis-server", "--port", "6379"]
    ports:
      - "127.0.0.1:${CACHE_PORT}:6379"
    restart: unless-stopped
    environment:
      GREETING: ${GREETING:-hello}
    healthcheck:
      test: ["CMD-SHELL", "redis-cli -p 6379 ping | grep -q PONG"]
      interval: 30s
      timeout: 3s
      retries: 5
    depends_on:
      bootstrap:
        condition: service_completed_successfully

  broken:
    image: finctl/redis:offline
    profiles: ["broken"]
    command: ["sh", "-c", "echo broken service starting; echo it will never be healthy; exec redis-server --port 6380"]
    healthcheck:
      test: ["CMD-SHELL", "echo probe says no; exit 1"]
      interval: 1s
      timeout: 2s
      retries: 2

  crashing:
    image: finctl/redis:offline
    profiles: ["crash"]
    command: ["sh", "-c", "echo cannot start; exit 3"]
    restart: unless-stopped

volumes:
  db-data:
"#
);

/// The offline PostgreSQL, Redis and Kafka stand-ins under the platform's service names
/// (`cockroach`, `redis` with `${REDIS_PASSWORD}`, `redpanda`), for `sql`, `redis`, `topics`.
pub const PLATFORM_STAND_INS: &str = concat!(
    r#"
services:
  cockroach:
"#,
    postgres!(),
    r#"    deploy:
      resources:
        limits:
          memory: 512M

  redis:
    image: finctl/redis:offline
    command: ["redis-server", "--port", "6379", "--requirepass", "${REDIS_PASSWORD}"]
    environment:
      REDISCLI_AUTH: ${REDIS_PASSWORD}
    ports:
      - "127.0.0.1:${CACHE_PORT}:6379"
    healthcheck:
      test: ["CMD-SHELL", "redis-cli -p 6379 ping | grep -q PONG"]
      interval: 30s
      timeout: 3s
      retries: 5

  redpanda:
    image: finctl/kafka:offline
    entrypoint: ["/usr/local/bin/tansu"]
    command: ["broker"]
    environment:
      CLUSTER_ID: finctl-test
      LISTENER_URL: tcp://0.0.0.0:9092
      ADVERTISED_LISTENER_URL: tcp://redpanda:9092
      STORAGE_ENGINE: memory://tansu/
    # finctl reaches the broker from the host (bootstrap, `finctl topics`), rewriting the
    # advertised redpanda:9092 to this published port.
    ports:
      - "127.0.0.1:${KAFKA_PORT}:9092"
    healthcheck:
      test: ["CMD", "/usr/local/bin/tansu", "topic", "list", "--broker", "tcp://127.0.0.1:9092"]
      interval: 30s
      timeout: 3s
      retries: 15
      start_period: 5s
"#
);
