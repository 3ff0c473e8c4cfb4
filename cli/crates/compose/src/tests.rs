//! Loading whole stacks from fixture files, including every bad-input case, and the real
//! `compose/` files of this repository.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use super::*;
use finctl_env::{COMPOSE_PROFILES, COMPOSE_PROJECT_NAME};
use finctl_error::{ExitStatus, UserError};

/// A project folder with `compose/<name>` files.
struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("compose")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join("compose").join(name), text).unwrap();
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join("compose").join(name)
    }

    fn options(&self, names: &[&str]) -> LoadOptions {
        LoadOptions {
            files: names.iter().map(|n| self.path(n)).collect(),
            profiles: Vec::new(),
            project_name: None,
            working_dir: None,
            environment: BTreeMap::from([("HOME".to_owned(), "/home/tester".to_owned())]),
        }
    }

    fn load(&self, names: &[&str]) -> Result<Stack, UserError> {
        load(&self.options(names))
    }

    fn load_one(text: &str) -> Result<Stack, UserError> {
        Self::new(&[("docker-compose.yml", text)]).load(&["docker-compose.yml"])
    }
}

/// The error of `result`, checked to be a configuration error (exit 2).
fn config_error<T: std::fmt::Debug>(result: Result<T, UserError>) -> UserError {
    let err = result.expect_err("the stack should have been rejected");
    assert_eq!(err.status, ExitStatus::Usage, "{}", err.message);
    err
}

fn assert_mentions(err: &UserError, parts: &[&str]) {
    for part in parts {
        assert!(
            err.message.contains(part) || err.hint.as_deref().unwrap_or_default().contains(part),
            "{part:?} missing from: {} (hint: {:?})",
            err.message,
            err.hint
        );
    }
}

const BASE: &str = r#"
x-limits: &limits
  resources:
    limits:
      cpus: "0.5"
      memory: 256M

x-env: &env
  DB_HOST: db
  PASSWORD: ${PASSWORD:?PASSWORD must be set}
  TAG: ${TAG:-latest}
  LITERAL: "$$HOME"

services:
  db:
    image: postgres:${PG_VERSION-15}
    ports:
      - "127.0.0.1:5432:5432"
    volumes:
      - db-data:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD", "pg_isready"]
      interval: 2s
      timeout: 1s
      retries: 10
      start_period: 1m30s
    deploy: *limits
  migrate:
    image: app:${TAG:-latest}
    command: migrate --all "two words"
    restart: "no"
    depends_on:
      db:
        condition: service_healthy
  api:
    image: app:${TAG:-latest}
    command: ["serve"]
    environment:
      <<: *env
      ROLE: api
    ports:
      - "8000:8000"
    depends_on:
      migrate:
        condition: service_completed_successfully
      db:
        condition: service_healthy
    restart: unless-stopped
    deploy: *limits
  worker:
    image: app:${TAG:-latest}
    command: ["worker"]
    environment:
      - ROLE=worker
      - PASSWORD
    depends_on: [db]
    profiles: [workers]
    user: "10001"
    mem_limit: 1g
    cpus: 2

volumes:
  db-data:
"#;

#[test]
fn loads_anchors_interpolation_and_defaults() {
    let fixture = Fixture::new(&[
        ("docker-compose.yml", BASE),
        (".env", "PASSWORD=from-dotenv\nTAG=v1\n"),
    ]);
    let stack = fixture.load(&["docker-compose.yml"]).unwrap();

    let api = &stack.services["api"];
    assert_eq!(api.image.as_deref(), Some("app:v1"));
    assert_eq!(api.environment["PASSWORD"], "from-dotenv");
    assert_eq!(api.environment["LITERAL"], "$HOME");
    assert_eq!(api.environment["ROLE"], "api");
    assert_eq!(api.environment["DB_HOST"], "db");
    assert_eq!(api.resources.cpus, Some(0.5));
    assert_eq!(api.resources.memory_bytes, Some(256 << 20));
    assert_eq!(api.resources.nano_cpus(), Some(500_000_000));
    assert_eq!(api.restart, RestartPolicy::UnlessStopped);
    assert_eq!(api.depends_on["migrate"], Condition::CompletedSuccessfully);
    assert_eq!(api.depends_on["db"], Condition::Healthy);
    assert_eq!(api.networks.keys().collect::<Vec<_>>(), ["default"]);

    let migrate = &stack.services["migrate"];
    assert_eq!(
        migrate.command.as_ref().unwrap(),
        &["migrate", "--all", "two words"]
    );
    assert_eq!(migrate.restart, RestartPolicy::No);

    let db = &stack.services["db"];
    assert_eq!(db.image.as_deref(), Some("postgres:15"));
    let health = db.healthcheck.as_ref().unwrap();
    assert_eq!(health.test.as_ref().unwrap(), &["CMD", "pg_isready"]);
    assert_eq!(health.interval, Some(Duration::from_secs(2)));
    assert_eq!(health.timeout, Some(Duration::from_secs(1)));
    assert_eq!(health.start_period, Some(Duration::from_secs(90)));
    assert_eq!(health.retries, Some(10));
    assert_eq!(db.ports[0].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        (db.ports[0].published, db.ports[0].target),
        (Some(5432), 5432)
    );
    assert_eq!(db.volumes[0].source, MountSource::Volume("db-data".into()));

    let worker = &stack.services["worker"];
    assert_eq!(worker.depends_on["db"], Condition::Started);
    assert_eq!(worker.environment["PASSWORD"], "from-dotenv");
    assert_eq!(worker.user.as_deref(), Some("10001"));
    assert_eq!(worker.resources.memory_bytes, Some(1 << 30));
    assert_eq!(worker.resources.cpus, Some(2.0));

    // Project: no COMPOSE_PROJECT_NAME, no name: -> the compose folder's name.
    assert_eq!(stack.project_name, "compose");
    assert_eq!(stack.volumes["db-data"].docker_name, "compose_db-data");
    assert_eq!(stack.networks["default"].docker_name, "compose_default");
    assert_eq!(stack.container_name(api, 1), "compose_api_1");
    assert!(stack.warnings.is_empty(), "{:?}", stack.warnings);
}

#[test]
fn environment_wins_over_dotenv_and_unset_variables_are_reported() {
    let fixture = Fixture::new(&[
        (
            "docker-compose.yml",
            "services:\n  a:\n    image: x:${TAG}\n    user: ${WHO}\n",
        ),
        (".env", "TAG=file\n"),
    ]);
    let mut options = fixture.options(&["docker-compose.yml"]);
    options.environment.insert("TAG".into(), "env".into());
    let stack = load(&options).unwrap();
    assert_eq!(stack.services["a"].image.as_deref(), Some("x:env"));
    assert_eq!(stack.services["a"].user.as_deref(), Some(""));
    assert_eq!(stack.warnings.len(), 1);
    assert!(stack.warnings[0].contains("WHO"));
}

#[test]
fn override_files_follow_compose_merge_rules() {
    let fixture = Fixture::new(&[
        ("docker-compose.yml", BASE),
        (".env", "PASSWORD=p\n"),
        (
            "override.yml",
            r#"
services:
  db:
    image: local/postgres:offline
    ports:
      - "127.0.0.1:15432:5432"
    volumes:
      - pg-data:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -q"]
  api:
    command: []
    environment:
      ROLE: overridden
      EXTRA: "1"
    depends_on: [cache]
  cache:
    image: redis
volumes:
  pg-data:
"#,
        ),
    ]);
    let stack = fixture
        .load(&["docker-compose.yml", "override.yml"])
        .unwrap();
    let db = &stack.services["db"];
    assert_eq!(db.image.as_deref(), Some("local/postgres:offline"));
    // Ports are a union; volumes are replaced by container path.
    assert_eq!(db.ports.len(), 2);
    assert_eq!(db.volumes.len(), 1);
    assert_eq!(db.volumes[0].source, MountSource::Volume("pg-data".into()));
    // healthcheck: test replaced, the other keys kept.
    let health = db.healthcheck.as_ref().unwrap();
    assert_eq!(
        health.test.as_ref().unwrap(),
        &["CMD-SHELL", "pg_isready -q"]
    );
    assert_eq!(health.interval, Some(Duration::from_secs(2)));

    let api = &stack.services["api"];
    assert_eq!(api.command, Some(Vec::new()));
    assert_eq!(api.environment["ROLE"], "overridden");
    assert_eq!(api.environment["EXTRA"], "1");
    assert_eq!(api.environment["DB_HOST"], "db");
    // depends_on: the list form merged into the map form.
    assert_eq!(api.depends_on.len(), 3);
    assert_eq!(api.depends_on["cache"], Condition::Started);
    assert_eq!(api.depends_on["db"], Condition::Healthy);
}

#[test]
fn config_hash_is_stable_and_tracks_changes() {
    let text = "services:\n  a:\n    image: x\n    environment: {A: '1', B: '2'}\n  b:\n    image: x\n    environment: {B: '2', A: '1'}\n    depends_on: [a]\n";
    let stack = Fixture::load_one(text).unwrap();
    let (a, b) = (&stack.services["a"], &stack.services["b"]);
    // Same container config, written in another order, with a dependency: same hash.
    assert_eq!(a.config_hash(None), b.config_hash(None));
    assert_eq!(
        a.config_hash(Some("sha256:1")),
        Stack::clone(&stack).services["a"].config_hash(Some("sha256:1"))
    );
    assert_ne!(a.config_hash(None), a.config_hash(Some("sha256:1")));
    let changed = Fixture::load_one(&text.replace("A: '1', B", "A: '9', B")).unwrap();
    assert_ne!(changed.services["a"].config_hash(None), a.config_hash(None));
    assert_eq!(a.config_hash(None).len(), 64);
}

#[test]
fn profiles_from_flags_or_compose_profiles() {
    let fixture = Fixture::new(&[("docker-compose.yml", BASE), (".env", "PASSWORD=p\n")]);
    let stack = fixture.load(&["docker-compose.yml"]).unwrap();
    let enabled: Vec<&str> = stack.enabled_services().map(|s| s.name.as_str()).collect();
    assert_eq!(enabled, ["api", "db", "migrate"]);

    let stack = load(
        &fixture
            .options(&["docker-compose.yml"])
            .with_profiles(vec!["workers".into()]),
    )
    .unwrap();
    assert_eq!(stack.enabled_services().count(), 4);

    let mut options = fixture.options(&["docker-compose.yml"]);
    options
        .environment
        .insert(COMPOSE_PROFILES.into(), "other, workers".into());
    let stack = load(&options).unwrap();
    assert_eq!(stack.active_profiles, ["other", "workers"]);
    assert!(stack.services["worker"].is_enabled(&stack.active_profiles));

    // Naming a service starts it even when its profile is off, with its dependencies.
    let stack = fixture.load(&["docker-compose.yml"]).unwrap();
    assert_eq!(stack.select(&["worker".into()]).unwrap(), ["db", "worker"]);
}

#[test]
fn project_name_precedence() {
    let fixture = Fixture::new(&[(
        "docker-compose.yml",
        "name: From-File\nservices:\n  a:\n    image: x\n",
    )]);
    assert_eq!(
        fixture.load(&["docker-compose.yml"]).unwrap().project_name,
        "from-file"
    );

    std::fs::write(fixture.path(".env"), "COMPOSE_PROJECT_NAME=Dot.Env\n").unwrap();
    assert_eq!(
        fixture.load(&["docker-compose.yml"]).unwrap().project_name,
        "dotenv"
    );

    let mut options = fixture.options(&["docker-compose.yml"]);
    options
        .environment
        .insert(COMPOSE_PROJECT_NAME.into(), "from_env".into());
    assert_eq!(load(&options).unwrap().project_name, "from_env");

    options.project_name = Some("explicit".into());
    assert_eq!(load(&options).unwrap().project_name, "explicit");
}

#[test]
fn plan_orders_waves_and_finds_the_critical_path() {
    let fixture = Fixture::new(&[("docker-compose.yml", BASE), (".env", "PASSWORD=p\n")]);
    let stack = load(
        &fixture
            .options(&["docker-compose.yml"])
            .with_profiles(vec!["workers".into()]),
    )
    .unwrap();
    let plan = stack.plan(&[]).unwrap();
    assert_eq!(
        plan.waves,
        vec![vec!["db"], vec!["migrate", "worker"], vec!["api"]]
    );
    assert_eq!(plan.order, ["db", "migrate", "worker", "api"]);
    assert_eq!(plan.critical_path(), ["db", "migrate", "api"]);
    assert_eq!(plan.dependents("db"), ["api", "migrate", "worker"]);

    // Weighted: a slow worker is the critical chain on its own: it waits for db only to be
    // started (short-form depends_on), so db's cost is not on its path.
    let cost = |name: &str| Duration::from_secs(if name == "worker" { 10 } else { 1 });
    let (chain, total) = plan.critical_path_weighted(cost);
    assert_eq!(chain, ["worker"]);
    assert_eq!(total, Duration::from_secs(10));
    // A slow db (api waits for it to be healthy, and for migrate to complete) leads the
    // chain db -> migrate -> api.
    let cost = |name: &str| Duration::from_secs(if name == "db" { 20 } else { 1 });
    let (chain, total) = plan.critical_path_weighted(cost);
    assert_eq!(chain, ["db", "migrate", "api"]);
    assert_eq!(total, Duration::from_secs(22));

    // A named service brings its dependencies only.
    let plan = stack.plan(&["migrate".into()]).unwrap();
    assert_eq!(plan.waves, vec![vec!["db"], vec!["migrate"]]);
}

// --- Bad input: each fails naming file, line and value -----------------------------------

#[test]
fn yaml_syntax_error_names_file_and_line() {
    let err = config_error(Fixture::load_one(
        "services:\n  a:\n    image: x\n   bad: [\n",
    ));
    assert_mentions(&err, &["docker-compose.yml:", "invalid YAML"]);
    let line: usize = err
        .message
        .split("docker-compose.yml:")
        .nth(1)
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3..=5).contains(&line), "{}", err.message);
}

#[test]
fn unknown_dependency_suggests_the_closest_service() {
    let err = config_error(Fixture::load_one(
        "services:\n  redis:\n    image: r\n  api:\n    image: a\n    depends_on:\n      - rediss\n",
    ));
    assert_mentions(
        &err,
        &[
            "docker-compose.yml:7",
            "unknown service `rediss`",
            "did you mean `redis`?",
        ],
    );
}

#[test]
fn dependency_cycle_is_named() {
    let err = config_error(Fixture::load_one(
        "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on:\n      c:\n        condition: service_healthy\n  c:\n    image: x\n    depends_on: [a]\n",
    ));
    assert_mentions(
        &err,
        &["dependency cycle: a -> b -> c -> a", "docker-compose.yml:4"],
    );
}

#[test]
fn self_dependency_is_a_cycle() {
    let err = config_error(Fixture::load_one(
        "services:\n  a:\n    image: x\n    depends_on: [a]\n",
    ));
    assert_mentions(&err, &["dependency cycle: a -> a"]);
}

#[test]
fn duplicate_host_port_is_rejected() {
    let err = config_error(Fixture::load_one(
        "services:\n  a:\n    image: x\n    ports: [\"127.0.0.1:8080:80\"]\n  b:\n    image: y\n    ports:\n      - \"8080:8000\"\n",
    ));
    assert_mentions(
        &err,
        &["docker-compose.yml:8", "host port 8080/tcp", "service `a`"],
    );
}

#[test]
fn duplicate_host_port_across_files_names_the_override() {
    let fixture = Fixture::new(&[
        (
            "docker-compose.yml",
            "services:\n  a:\n    image: x\n    ports: [\"9092:9092\"]\n  b:\n    image: y\n",
        ),
        (
            "extra.yml",
            "services:\n  b:\n    ports:\n      - \"9092:19092\"\n",
        ),
    ]);
    let err = config_error(fixture.load(&["docker-compose.yml", "extra.yml"]));
    assert_mentions(&err, &["extra.yml:4", "9092"]);
}

#[test]
fn ports_in_different_profiles_may_overlap_until_both_are_selected() {
    let text = "services:\n  a:\n    image: x\n    ports: [\"8080:80\"]\n  b:\n    image: y\n    profiles: [alt]\n    ports: [\"8080:80\"]\n";
    let stack = Fixture::load_one(text).unwrap();
    let err = config_error(stack.plan(&["a".into(), "b".into()]));
    assert_mentions(&err, &["`a`", "`b`", "same host port"]);
}

#[test]
fn bad_duration_names_the_value_and_line() {
    let err = config_error(Fixture::load_one(
        "services:\n  a:\n    image: x\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 5x\n",
    ));
    assert_mentions(
        &err,
        &[
            "docker-compose.yml:6",
            "healthcheck.interval",
            "invalid duration `5x`",
        ],
    );
}

#[test]
fn bad_duration_inherited_through_an_anchor_points_at_the_service() {
    let err = config_error(Fixture::load_one(
        "x-h: &h\n  test: [\"CMD\", \"true\"]\n  timeout: soon\nservices:\n  a:\n    image: x\n    healthcheck: *h\n",
    ));
    assert_mentions(&err, &["docker-compose.yml:7", "invalid duration `soon`"]);
}

#[test]
fn bad_memory_size_names_the_value_and_line() {
    let err = config_error(Fixture::load_one(
        "services:\n  a:\n    image: x\n    deploy:\n      resources:\n        limits:\n          memory: 12Q\n",
    ));
    assert_mentions(&err, &["docker-compose.yml:7", "invalid memory size `12Q`"]);
    let err = config_error(Fixture::load_one(
        "services:\n  a:\n    image: x\n    mem_limit: lots\n",
    ));
    assert_mentions(&err, &["docker-compose.yml:4", "`lots`"]);
}

#[test]
fn bad_cpus_are_rejected() {
    let err = config_error(Fixture::load_one(
        "services:\n  a:\n    image: x\n    cpus: -1\n",
    ));
    assert_mentions(&err, &["docker-compose.yml:4", "invalid CPU count `-1`"]);
}

#[test]
fn undefined_required_variable_names_variable_line_and_message() {
    let err = config_error(Fixture::load_one(
        "services:\n  a:\n    image: x\n    environment:\n      TOKEN: ${TOKEN:?set TOKEN to your API token}\n",
    ));
    assert_mentions(
        &err,
        &[
            "docker-compose.yml:5",
            "required variable TOKEN is not set",
            "set TOKEN to your API token",
            "compose/.env",
        ],
    );
}

#[test]
fn invalid_interpolation_is_rejected() {
    let err = config_error(Fixture::load_one(
        "services:\n  a:\n    image: x\n    command: echo ${oops\n",
    ));
    assert_mentions(&err, &["docker-compose.yml:4", "invalid interpolation"]);
}

#[test]
fn unknown_service_argument_suggests_the_closest_name() {
    let stack =
        Fixture::load_one("services:\n  payment:\n    image: x\n  profile:\n    image: y\n")
            .unwrap();
    let err = config_error(stack.plan(&["paymnet".into()]));
    assert_mentions(&err, &["no service `paymnet`", "did you mean `payment`?"]);
    let err = config_error(stack.service("zzz"));
    assert_mentions(&err, &["the services are: payment, profile"]);
}

#[test]
fn unknown_key_suggests_the_closest_key() {
    let err = config_error(Fixture::load_one(
        "services:\n  a:\n    image: x\n    healtcheck:\n      test: [\"CMD\", \"true\"]\n",
    ));
    assert_mentions(
        &err,
        &[
            "docker-compose.yml:4",
            "unknown key `healtcheck`",
            "did you mean `healthcheck`?",
        ],
    );
    let err = config_error(Fixture::load_one("service:\n  a:\n    image: x\n"));
    assert_mentions(
        &err,
        &["docker-compose.yml:1", "unknown top-level key `service`"],
    );
}

#[test]
fn undeclared_named_volume_is_rejected() {
    let err = config_error(Fixture::load_one(
        "services:\n  a:\n    image: x\n    volumes:\n      - ./conf:/conf:ro\n      - data:/data\n",
    ));
    assert_mentions(
        &err,
        &[
            "docker-compose.yml:6",
            "named volume `data` is not declared",
        ],
    );
}

#[test]
fn dependency_on_a_disabled_profile_is_rejected() {
    let err = config_error(Fixture::load_one(
        "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: y\n    profiles: [extra]\n",
    ));
    assert_mentions(
        &err,
        &[
            "docker-compose.yml:4",
            "`b` is not enabled",
            "--profile extra",
        ],
    );
}

#[test]
fn bad_ports_restart_and_conditions_are_rejected() {
    let err = config_error(Fixture::load_one(
        "services:\n  a:\n    image: x\n    ports:\n      - \"80:80\"\n      - \"99999:80\"\n",
    ));
    assert_mentions(&err, &["docker-compose.yml:6", "invalid port `99999:80`"]);
    let err = config_error(Fixture::load_one(
        "services:\n  a:\n    image: x\n    restart: sometimes\n",
    ));
    assert_mentions(
        &err,
        &["docker-compose.yml:4", "unknown policy `sometimes`"],
    );
    let err = config_error(Fixture::load_one(
        "services:\n  a:\n    image: x\n  b:\n    image: x\n    depends_on:\n      a:\n        condition: service_ready\n",
    ));
    assert_mentions(
        &err,
        &["docker-compose.yml:8", "unknown condition `service_ready`"],
    );
    let err = config_error(Fixture::load_one(
        "services:\n  a:\n    image: x\n    healthcheck:\n      test: [\"curl\", \"x\"]\n",
    ));
    assert_mentions(&err, &["docker-compose.yml:5", "CMD, CMD-SHELL or NONE"]);
}

#[test]
fn missing_file_and_empty_file_are_config_errors() {
    let fixture = Fixture::new(&[("empty.yml", "")]);
    assert_mentions(
        &config_error(fixture.load(&["absent.yml"])),
        &["cannot read", "absent.yml"],
    );
    assert_mentions(
        &config_error(fixture.load(&["empty.yml"])),
        &["empty.yml", "empty"],
    );
}

// --- The repository's own stack ----------------------------------------------------------

fn repository_compose_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../compose")
}

fn real_stack(offline: bool, profiles: &[&str]) -> Stack {
    let dir = repository_compose_dir();
    let mut files = vec![dir.join("docker-compose.yml")];
    if offline {
        files.push(dir.join("offline.yml"));
    }
    load(&LoadOptions {
        files,
        profiles: profiles.iter().map(|p| (*p).to_owned()).collect(),
        project_name: None,
        working_dir: None,
        environment: BTreeMap::from([("HOME".to_owned(), "/home/tester".to_owned())]),
    })
    .unwrap_or_else(|err| panic!("{}: {:?}", err.message, err.hint))
}

#[test]
fn repository_stack_upstream() {
    let stack = real_stack(false, &[]);
    assert_eq!(stack.project_name, "finctl");
    assert!(stack.warnings.is_empty(), "{:?}", stack.warnings);
    let enabled: Vec<&str> = stack.enabled_services().map(|s| s.name.as_str()).collect();
    // The infrastructure, the gateway, and the six services with their workers; the cluster
    // nodes sit behind a profile.
    assert_eq!(
        enabled,
        [
            "cockroach",
            "forex",
            "forex-worker",
            "gateway",
            "keycloak",
            "ledger",
            "ledger-worker",
            "payment",
            "payment-worker",
            "profile",
            "profile-worker",
            "redis",
            "redpanda",
            "rule-engine",
            "rule-engine-worker",
            "wallet",
            "wallet-worker"
        ]
    );

    let cockroach = &stack.services["cockroach"];
    assert!(
        cockroach
            .image
            .as_deref()
            .unwrap()
            .starts_with("cockroachdb/cockroach:v24.2.")
    );
    let published: Vec<(Option<u16>, u16)> = cockroach
        .ports
        .iter()
        .map(|p| (p.published, p.target))
        .collect();
    assert_eq!(published, [(Some(26257), 26257), (Some(8082), 8080)]);
    assert!(
        cockroach
            .ports
            .iter()
            .all(|p| p.host_ip.as_deref() == Some("127.0.0.1"))
    );
    assert_eq!(cockroach.resources.memory_bytes, Some(1536 << 20));

    let redis = &stack.services["redis"];
    assert!(
        redis
            .command
            .as_ref()
            .unwrap()
            .contains(&"redis-secret".to_owned())
    );
    assert_eq!(
        redis.healthcheck.as_ref().unwrap().test.as_ref().unwrap()[0],
        "CMD-SHELL"
    );

    let plan = stack.plan(&[]).unwrap();
    assert_eq!(
        plan.waves[0],
        ["cockroach", "keycloak", "redis", "redpanda"]
    );
    // Every service waits for the infrastructure only (bootstrap runs in between, from `up`).
    assert!(plan.waves[1].contains(&"gateway".to_owned()));
    assert!(plan.waves[1].contains(&"payment-worker".to_owned()));
    assert_eq!(plan.waves.len(), 2);
}

#[test]
fn repository_stack_offline_with_services() {
    let stack = real_stack(true, &["services"]);
    assert_eq!(stack.enabled_services().count(), 4 + 1 + 12);

    let cockroach = &stack.services["cockroach"];
    assert_eq!(cockroach.image.as_deref(), Some("finctl/postgres:offline"));
    assert_eq!(
        cockroach.entrypoint.as_deref(),
        Some(&["/usr/local/bin/postgres-entrypoint".to_owned()][..])
    );
    assert_eq!(cockroach.command, Some(Vec::new()));
    let test = cockroach
        .healthcheck
        .as_ref()
        .unwrap()
        .test
        .clone()
        .unwrap();
    assert_eq!(test[..2], ["CMD", "pg_isready"]);
    assert!(test.contains(&"26257".to_owned()));
    assert!(
        cockroach
            .volumes
            .iter()
            .any(|m| m.target == "/var/lib/postgresql/data"
                && m.source == MountSource::Volume("postgres-data".into()))
    );

    let redpanda = &stack.services["redpanda"];
    assert_eq!(redpanda.image.as_deref(), Some("finctl/kafka:offline"));
    assert_eq!(
        redpanda.environment["ADVERTISED_LISTENER_URL"],
        "tcp://redpanda:9092"
    );
    assert!(
        redpanda
            .ports
            .iter()
            .any(|p| p.published == Some(9092) && p.target == 9092)
    );

    let keycloak = &stack.services["keycloak"];
    assert_eq!(keycloak.image.as_deref(), Some("finctl/idp:offline"));
    assert_eq!(
        keycloak.environment["IDP_ISSUER"],
        "http://keycloak:8080/realms/innover"
    );
    assert_eq!(
        keycloak
            .healthcheck
            .as_ref()
            .unwrap()
            .test
            .as_ref()
            .unwrap(),
        &["CMD", "/usr/local/bin/idp-healthcheck"]
    );

    let forex = &stack.services["forex"];
    assert_eq!(forex.image.as_deref(), Some("finctl/forex:latest"));
    assert_eq!(forex.command.as_deref(), Some(&["serve".to_owned()][..]));
    assert_eq!(
        (forex.ports[0].published, forex.ports[0].target),
        (Some(8006), 8000)
    );
    assert_eq!(forex.depends_on["cockroach"], Condition::Healthy);
    assert_eq!(forex.depends_on["redis"], Condition::Healthy);
    assert_eq!(forex.depends_on["redpanda"], Condition::Healthy);
    assert_eq!(forex.environment["SERVICE_NAME"], "svc-forex");
    assert_eq!(forex.environment["KAFKA_BROKERS"], "redpanda:9092");
    assert_eq!(forex.environment["REDIS_PASSWORD"], "redis-secret");
    assert_eq!(
        forex.healthcheck.as_ref().unwrap().exec_command().unwrap(),
        ["/usr/local/bin/service", "healthcheck"]
    );
    let worker = &stack.services["forex-worker"];
    assert_eq!(worker.command.as_deref(), Some(&["worker".to_owned()][..]));
    assert_eq!(
        worker
            .healthcheck
            .as_ref()
            .unwrap()
            .test
            .as_ref()
            .unwrap()
            .last()
            .unwrap(),
        "healthcheck",
        "the worker serves /health on $PORT too"
    );
    assert!(worker.ports.is_empty());
    assert_eq!(worker.resources.cpus, Some(0.5));

    let plan = stack.plan(&[]).unwrap();
    assert_eq!(plan.waves.len(), 2);
    assert_eq!(plan.critical_path(), ["cockroach", "forex"]);
    // Naming one service pulls in only what it needs.
    let plan = stack.plan(&["payment".into()]).unwrap();
    assert_eq!(plan.order.len(), 5);

    // Offline and upstream differ where the image does, not where they agree.
    let upstream = real_stack(false, &["services"]);
    assert_ne!(
        upstream.services["cockroach"].config_hash(None),
        stack.services["cockroach"].config_hash(None)
    );
    assert_eq!(
        upstream.services["forex"].config_hash(None),
        forex.config_hash(None)
    );
}

#[test]
fn repository_stack_cluster_profile_offline_is_neutralised() {
    let stack = real_stack(true, &["cluster"]);
    let plan = stack.plan(&[]).unwrap();
    assert!(plan.order.contains(&"cockroach-init".to_owned()));
    assert_eq!(
        stack.services["cockroach-2"].image.as_deref(),
        Some("finctl/postgres:offline")
    );
    assert_eq!(stack.services["cockroach-init"].command, Some(Vec::new()));
}
