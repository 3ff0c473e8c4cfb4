//! The offline infrastructure images, each started as a real container on 127.0.0.1 and
//! spoken to in its own protocol: SQL over the Postgres wire, RESP, the Kafka protocol, OIDC.

use std::time::Duration;

use finctl_bootstrap::kafka::find_message;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// `finctl bootstrap database` on a clean PostgreSQL: the declared database, user and grant
/// made, then nothing to do; a grant of one more privilege is an update of that grant only.
#[tokio::test]
async fn bootstrap_database_creates_then_changes_nothing() -> anyhow::Result<()> {
    use finctl_bootstrap::{Action, database};
    let pg = finctl_testkit::postgres().await?;
    let (client, connection) = tokio_postgres::connect(&pg.config(), tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let mut decl = idp::declarations(&[finctl_bootstrap::decl::Part::Database]).database;
    let plan = database::plan(&client, &decl).await?;
    let created: Vec<(&str, &str)> = plan
        .iter()
        .filter(|s| s.change.action == Action::Create)
        .map(|s| (s.change.kind, s.change.name.as_str()))
        .collect();
    assert!(created.contains(&("database", "innover")), "{plan:?}");
    assert!(created.contains(&("user", "reporting")), "{plan:?}");
    assert!(database::apply(&client, &plan).await? >= 2);
    let again = database::plan(&client, &decl).await?;
    assert!(again.iter().all(|s| s.sql.is_none()), "{again:?}");
    assert_eq!(database::apply(&client, &again).await?, 0, "no write call");

    decl.grants[0].privileges.insert("CREATE".into());
    let grant = database::plan(&client, &decl).await?;
    let writes: Vec<_> = grant.iter().filter(|s| s.sql.is_some()).collect();
    assert_eq!(writes.len(), 1, "{grant:?}");
    assert_eq!(
        writes[0].change.action,
        Action::Update(vec!["create".into()])
    );
    database::apply(&client, &grant).await?;
    let can: bool = client
        .query_one(
            "SELECT has_database_privilege('reporting', 'innover', 'CREATE')",
            &[],
        )
        .await?
        .get(0);
    assert!(can);
    Ok(())
}

#[tokio::test]
async fn postgres_answers_sql_as_root_on_defaultdb() -> anyhow::Result<()> {
    let pg = finctl_testkit::postgres().await?;
    let (client, connection) = tokio_postgres::connect(&pg.config(), tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let row = client
        .query_one("SELECT current_user, current_database(), 6 * 7", &[])
        .await?;
    assert_eq!(row.get::<_, String>(0), "root");
    assert_eq!(row.get::<_, String>(1), "defaultdb");
    assert_eq!(row.get::<_, i32>(2), 42);
    // The shared SQL subset the services rely on: transactions, UPSERT-style conflict handling.
    client.batch_execute("CREATE TABLE accounts (id TEXT PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance >= 0))").await?;
    client
        .execute(
            "INSERT INTO accounts VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            &[&"a", &100_i64],
        )
        .await?;
    let violated = client
        .execute(
            "UPDATE accounts SET balance = balance - 101 WHERE id = 'a'",
            &[],
        )
        .await;
    assert!(
        violated.is_err(),
        "CHECK constraint must reject a negative balance"
    );
    Ok(())
}

#[tokio::test]
async fn redis_answers_ping_and_rejects_a_wrong_password() -> anyhow::Result<()> {
    let redis = finctl_testkit::redis("test-password").await?;
    let client = redis::Client::open(redis.url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
    assert_eq!(pong, "PONG");

    let wrong = redis::Client::open(format!("redis://:wrong@127.0.0.1:{}/", redis.port()))?;
    let Err(err) = wrong.get_multiplexed_async_connection().await else {
        panic!("a wrong password must be refused");
    };
    let text = err.to_string().to_lowercase();
    assert!(
        text.contains("wrongpass") || text.contains("invalid") || text.contains("auth"),
        "{text}"
    );

    let anonymous = redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port()))?;
    let mut conn = anonymous.get_multiplexed_async_connection().await?;
    let refused: redis::RedisResult<String> =
        redis::cmd("GET").arg("x").query_async(&mut conn).await;
    assert!(refused.unwrap_err().to_string().contains("NOAUTH"));
    Ok(())
}

/// `finctl bootstrap topics`' admin connection to a broker that advertises a name this
/// machine cannot resolve (as the stack's `redpanda:9092`): with the advertised address
/// rewritten to the published one, CreateTopics reaches the controller; what tansu cannot do
/// (CreatePartitions) comes back as an "unsupported" error, not a hang or a silent success.
#[tokio::test]
async fn kafka_admin_follows_a_rewritten_advertised_address() -> anyhow::Result<()> {
    use finctl_bootstrap::kafka::Admin;
    let kafka = finctl_testkit::kafka_advertising(Some("redpanda.invalid")).await?;
    let rewrite = [("redpanda.invalid:9092".to_owned(), kafka.bootstrap())];
    let admin = std::sync::Arc::new(Admin::connect(&kafka.bootstrap(), &rewrite)?);
    let run = |f: fn(&Admin) -> anyhow::Result<String>| {
        let admin = admin.clone();
        tokio::task::spawn_blocking(move || f(&admin))
    };
    let topic = "rewrite.check";
    let configs = [
        ("retention.ms", "3600000".to_owned()),
        ("cleanup.policy", "delete".to_owned()),
    ];
    let created = {
        let admin = admin.clone();
        tokio::task::spawn_blocking(move || admin.create_topic(topic, 2, 1, &configs)).await?
    };
    assert_eq!(
        created,
        Ok(()),
        "CreateTopics through the rewritten address"
    );
    let listed = run(|a| Ok(format!("{:?}", a.topics()?.get("rewrite.check")))).await??;
    assert_eq!(
        listed, "Some(2)",
        "the topic is listed with its 2 partitions"
    );

    let again = {
        let admin = admin.clone();
        tokio::task::spawn_blocking(move || admin.create_topic(topic, 2, 1, &[])).await?
    };
    let err = again.expect_err("a second CreateTopics for the same name fails");
    assert_eq!(
        err.code,
        rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists,
        "{err}"
    );

    let more = {
        let admin = admin.clone();
        tokio::task::spawn_blocking(move || admin.create_partitions(topic, 4)).await?
    };
    let err = more.expect_err("tansu has no CreatePartitions");
    assert!(err.unsupported(), "an unsupported-request error: {err}");

    // `finctl smoke-test`'s "appears on its topic" through the same rewrite: produced to
    // partition 1 by the admin client, found by the simple consumer from the beginning.
    let empty = {
        let (bootstrap, rewrite) = (kafka.bootstrap(), rewrite.clone());
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let found = find_message(
                &bootstrap,
                &rewrite,
                topic,
                &|_, _| true,
                Duration::from_secs(2),
            );
            (found, started.elapsed())
        })
        .await?
    };
    assert!(matches!(empty.0, Ok(None)), "an empty topic: {:?}", empty.0);
    assert!(
        empty.1 < Duration::from_secs(4),
        "within its deadline: {:?}",
        empty.1
    );
    let offset = {
        let admin = admin.clone();
        tokio::task::spawn_blocking(move || {
            admin.produce(topic, 1, Some(b"payment-r"), b"{\"id\":\"pay-rewritten\"}")
        })
        .await?
    }?;
    let found = {
        let (bootstrap, rewrite) = (kafka.bootstrap(), rewrite.clone());
        tokio::task::spawn_blocking(move || {
            find_message(
                &bootstrap,
                &rewrite,
                topic,
                &contains("pay-rewritten"),
                Duration::from_secs(15),
            )
        })
        .await??
    };
    let found = found.expect("the message produced through the rewrite is found through it");
    assert_eq!((found.partition, found.offset), (1, offset));
    assert_eq!(found.key.as_deref(), Some(&b"payment-r"[..]));
    assert_eq!(found.payload, b"{\"id\":\"pay-rewritten\"}");

    // Without the rewrite the broker the metadata names cannot be resolved: an error (the
    // metadata request's or the first fetch's, whichever meets it), not Ok(None).
    let unrewritten = {
        let bootstrap = kafka.bootstrap();
        tokio::task::spawn_blocking(move || {
            find_message(&bootstrap, &[], topic, &|_, _| true, Duration::from_secs(2))
        })
        .await?
    };
    assert!(unrewritten.is_err(), "{unrewritten:?}");
    Ok(())
}

/// A test of payloads for `find_message`: contains `marker`.
fn contains(marker: &str) -> impl Fn(Option<&[u8]>, &[u8]) -> bool + use<> {
    let marker = marker.as_bytes().to_vec();
    move |_, payload| {
        payload
            .windows(marker.len())
            .any(|w| w == marker.as_slice())
    }
}

/// `finctl smoke-test`'s "`payment.initiated` appears on its topic": `find_message` reads
/// every partition from the beginning, finds a message produced before it started and one
/// produced while it waits, gives Ok(None) at its deadline for one never produced, and an
/// error for a topic the broker does not have.
#[tokio::test]
async fn kafka_find_message_reads_every_partition_until_found_or_deadline() -> anyhow::Result<()> {
    let kafka = finctl_testkit::kafka().await?;
    let bootstrap = kafka.bootstrap();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()?;
    let topic = "payment.initiated";
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, 2, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await?;
    assert!(
        results.iter().all(Result::is_ok),
        "CreateTopics: {results:?}"
    );
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("message.timeout.ms", "10000")
        .create()?;
    let payload = |i: usize| format!("{{\"id\":\"pay-{i}\",\"amount_minor\":{i}00}}");
    let mut delivered = Vec::new();
    for i in 0..6 {
        let key = format!("payment-{i}");
        let delivery = producer
            .send(
                FutureRecord::to(topic)
                    .key(&key)
                    .payload(&payload(i))
                    .partition((i % 2) as i32),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(err, _)| err)?;
        delivered.push((delivery.partition, delivery.offset));
    }

    let find = |marker: &'static str, deadline: Duration| {
        let bootstrap = bootstrap.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let found = find_message(&bootstrap, &[], topic, &contains(marker), deadline);
            (found, started.elapsed())
        })
    };

    let (found, _) = find("\"pay-5\"", Duration::from_secs(15)).await?;
    let found = found?.expect("a message produced before the search is found");
    assert_eq!(
        (found.partition, found.offset),
        delivered[5],
        "{delivered:?}"
    );
    assert_eq!(found.key.as_deref(), Some(&b"payment-5"[..]));
    assert_eq!(found.payload, payload(5).into_bytes());

    let (missing, took) = find("never-produced", Duration::from_secs(3)).await?;
    assert!(matches!(missing, Ok(None)), "{missing:?}");
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(6),
        "Ok(None) at the deadline, not before nor long after: {took:?}"
    );

    // Started before the message exists: reaching the end of both partitions is not the end.
    let search = find("pay-late", Duration::from_secs(15));
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        producer
            .send(
                FutureRecord::to(topic)
                    .key("payment-late")
                    .payload("{\"id\":\"pay-late\"}"),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(err, _)| err)
    });
    let (found, took) = search.await?;
    let delivery = late.await??;
    let found = found?.expect("a message produced while the search waits is found");
    assert_eq!(
        (found.partition, found.offset),
        (delivery.partition, delivery.offset)
    );
    assert!(took >= Duration::from_millis(1500), "{took:?}");

    let unknown = {
        let bootstrap = bootstrap.clone();
        tokio::task::spawn_blocking(move || {
            find_message(
                &bootstrap,
                &[],
                "no.such.topic",
                &|_, _| true,
                Duration::from_secs(5),
            )
        })
        .await?
    };
    assert!(
        unknown.is_err(),
        "an unknown topic is an error: {unknown:?}"
    );
    Ok(())
}

#[tokio::test]
async fn kafka_creates_topics_and_round_trips_through_a_consumer_group() -> anyhow::Result<()> {
    let kafka = finctl_testkit::kafka().await?;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .create()?;
    let topic = "payment.initiated";
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, 3, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await?;
    assert!(
        results.iter().all(Result::is_ok),
        "CreateTopics: {results:?}"
    );

    let metadata = admin
        .inner()
        .fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len());
    assert_eq!(partitions, Some(3), "topic has 3 partitions");

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "10000")
        .create()?;
    for i in 0..9 {
        let key = format!("payment-{i}");
        let payload = format!("{{\"amount_minor\":{i}00,\"currency\":\"EUR\"}}");
        producer
            .send(
                FutureRecord::to(topic).key(&key).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(err, _)| err)?;
    }

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap())
        .set("group.id", "ledger-projector")
        .set("enable.auto.commit", "false")
        // tansu's memory engine gets end offsets wrong, so "latest" is unreliable; see README.
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[topic])?;
    let mut seen = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < 9 {
        let message = tokio::time::timeout_at(deadline, consumer.recv()).await??;
        seen.insert(String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned());
        consumer.commit_message(&message, CommitMode::Sync)?;
    }
    assert_eq!(
        seen.len(),
        9,
        "every produced message consumed once by the group"
    );
    Ok(())
}

mod idp {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use finctl_bootstrap::decl::{self, Declarations, Part, Secret};
    use finctl_bootstrap::identity::{self, Driver as _, canaille::CanailleDriver};
    use serde_json::{Value, json};

    /// The JSON of a JWT's header or claims segment.
    fn segment(token: &str, index: usize) -> Value {
        let part = token
            .split('.')
            .nth(index)
            .expect("a JWT has three segments");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
    }

    /// The repository's declarations with compose/.env's development values.
    pub(crate) fn declarations(parts: &[Part]) -> Declarations {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let compose = std::path::Path::new(root).join("compose");
        let vars = finctl_compose::Variables::layered(&compose, &Default::default())
            .expect("compose/.env");
        decl::load(&compose.join("bootstrap"), parts, &|k| {
            vars.get(k).map(str::to_owned)
        })
        .expect("the repository's declarations are valid")
    }

    /// `finctl bootstrap identity`'s Canaille driver against a clean IdP: the image starts with
    /// its admin client only; the first run makes every declared role, user and client, the
    /// second has nothing to do. Returns the rows of the first run.
    async fn bootstrap(idp: &finctl_testkit::Idp) -> anyhow::Result<Vec<(String, String, String)>> {
        let realm = declarations(&[Part::Identity]).identity;
        let (id, secret) = idp.admin_client();
        let mut driver = CanailleDriver::new(
            reqwest::Url::parse(&idp.base_url())?,
            id.to_owned(),
            Secret::new(secret),
        );
        let rows = |plan: &[(finctl_bootstrap::Change, Option<identity::Step>)]| {
            plan.iter()
                .filter(|(c, _)| c.action.is_write())
                .map(|(c, _)| {
                    (
                        c.kind.to_owned(),
                        c.name.clone(),
                        c.action.label().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let plan = identity::plan(&realm, &driver.observe(&realm).await?);
        for (_, step) in &plan {
            if let Some(step) = step {
                driver.apply(&realm, step).await?;
            }
        }
        let again = identity::plan(&realm, &driver.observe(&realm).await?);
        assert_eq!(rows(&again), [], "a second run has nothing to change");
        Ok(rows(&plan))
    }

    #[tokio::test]
    async fn canaille_serves_discovery_jwks_password_grant_jwts_and_scim() -> anyhow::Result<()> {
        let idp = finctl_testkit::idp().await?;
        let http = reqwest::Client::new();
        let base = idp.base_url();
        let made = bootstrap(&idp).await?;
        for user in ["admin", "ops_user", "finance", "auditor", "user"] {
            for kind in ["role", "user"] {
                assert!(
                    made.contains(&(kind.into(), user.into(), "create".into())),
                    "{kind} {user} made by bootstrap: {made:?}"
                );
            }
        }
        assert!(made.contains(&("client".into(), "finctl".into(), "create".into())));

        let discovery: Value = http
            .get(format!("{base}/.well-known/openid-configuration"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        assert_eq!(discovery["issuer"], idp.issuer());
        let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri");
        let jwks: Value = http
            .get(jwks_uri)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let key = &jwks["keys"][0];
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");

        let basic = format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", idp.client_id(), idp.client_secret()))
        );
        let token_endpoint = discovery["token_endpoint"]
            .as_str()
            .expect("token_endpoint");
        let response: Value = http
            .post(token_endpoint)
            .header("Authorization", &basic)
            .form(&[
                ("grant_type", "password"),
                ("username", "finance"),
                ("password", "finance"),
                ("scope", "openid profile email groups"),
            ])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let jwt = response["access_token"].as_str().expect("access_token");
        let header = segment(jwt, 0);
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], key["kid"], "signed with the published key");
        let claims = segment(jwt, 1);
        assert_eq!(claims["iss"], idp.issuer());
        assert_eq!(claims["groups"], json!(["finance"]));
        assert_eq!(claims["email"], "finance@innover.example");

        let wrong = http
            .post(token_endpoint)
            .header("Authorization", &basic)
            .form(&[
                ("grant_type", "password"),
                ("username", "finance"),
                ("password", "nope"),
            ])
            .send()
            .await?;
        assert!(
            wrong.status().is_client_error(),
            "a wrong password gets no token"
        );

        // SCIM needs a client token (client_credentials: opaque, which is fine here).
        let service: Value = http
            .post(token_endpoint)
            .header("Authorization", &basic)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let bearer = format!(
            "Bearer {}",
            service["access_token"].as_str().expect("access_token")
        );
        let user = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "alice",
            "name": {"formatted": "Alice Doe", "familyName": "Doe", "givenName": "Alice"},
            "emails": [{"value": "alice@innover.example"}],
            "active": true,
            "password": "alice"
        });
        let scim = |body: &Value| {
            http.post(format!("{base}/scim/v2/Users"))
                .header("Authorization", &bearer)
                .header("Content-Type", "application/scim+json")
                .body(body.to_string())
                .send()
        };
        assert_eq!(scim(&user).await?.status(), 201);
        assert_eq!(
            scim(&user).await?.status(),
            409,
            "a second create of the same userName conflicts"
        );
        let fetched: Value = http
            .get(format!("{base}/scim/v2/Users/alice"))
            .header("Authorization", &bearer)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        assert_eq!(fetched["userName"], "alice");
        let anonymous = http
            .post(format!("{base}/scim/v2/Users"))
            .header("Content-Type", "application/scim+json")
            .body(user.to_string())
            .send()
            .await?;
        assert_eq!(anonymous.status(), 401);

        // A new volume starts from the image's template database (migrated and seeded at
        // build time), and the start-up phases are logged.
        let logs = idp.container.logs().await;
        assert!(
            logs.contains("database from template") && logs.contains("ready after"),
            "{logs}"
        );
        Ok(())
    }
}
