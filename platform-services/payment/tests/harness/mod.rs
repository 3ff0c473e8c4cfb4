//! What payment's integration tests share: the payment app on real Postgres and Redis with the
//! ledger's tables beside it (one database, as in the fleet), wallets as ledger accounts, a
//! rule engine stand-in that counts its calls, and an in-process pump that delivers the outbox
//! to the saga's consumers (ledger, payment, forex) as the relay and Kafka would.
#![allow(dead_code)] // each test file uses part of it

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Json;
use axum::http::StatusCode;
use axum::routing::post;
use deadpool_postgres::Pool;
use ledger::LedgerError;
use ledger::book;
use platform_common::db;
use platform_common::events::{ConsumeOutcome, EventEnvelope, IdempotentConsumer};
use platform_testing::{TestIdp, TestKey, call, infra, service_app, sign};
use serde_json::{Value, json};
use uuid::Uuid;

/// The stand-in rule engine's thresholds: above `DENY_ABOVE` deny, above `REVIEW_ABOVE` review.
pub const REVIEW_ABOVE: i64 = 50_000;
pub const DENY_ABOVE: i64 = 1_000_000;
/// PAYMENT_KYC_THRESHOLD in these tests.
pub const KYC_THRESHOLD: i64 = 100_000;

/// `POST /evaluate` on 127.0.0.1: decides by amount, counts calls, and notes each call made
/// for a payment whose Idempotency-Key was not reserved yet (the reservation must come first).
pub struct FakeRuleEngine {
    pub url: String,
    calls: Arc<Mutex<Vec<Value>>>,
    unreserved: Arc<AtomicUsize>,
    db: Arc<OnceLock<Pool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeRuleEngine {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeRuleEngine {
    async fn start() -> Self {
        let calls: Arc<Mutex<Vec<Value>>> = Arc::default();
        let unreserved = Arc::new(AtomicUsize::new(0));
        let db: Arc<OnceLock<Pool>> = Arc::default();
        let (c, u, d) = (calls.clone(), unreserved.clone(), db.clone());
        let app = axum::Router::new().route(
            "/evaluate",
            post(move |Json(body): Json<Value>| {
                let (calls, unreserved, db) = (c.clone(), u.clone(), d.clone());
                async move {
                    let payment: Option<Uuid> =
                        body["payment_id"].as_str().and_then(|s| s.parse().ok());
                    let reserved = match (db.get(), payment) {
                        (Some(pool), Some(id)) => {
                            let n: i64 = pool
                                .get()
                                .await
                                .unwrap()
                                .query_one(
                                    "SELECT count(*) FROM idempotency_keys WHERE payment_id = $1",
                                    &[&id],
                                )
                                .await
                                .unwrap()
                                .get(0);
                            n == 1
                        }
                        _ => false,
                    };
                    if !reserved {
                        unreserved.fetch_add(1, Ordering::SeqCst);
                    }
                    let amount = body["amount"].as_i64().unwrap_or_default();
                    calls.lock().unwrap().push(body);
                    let (decision, reasons) = if amount > DENY_ABOVE {
                        ("deny", vec![format!("amount {amount} exceeds the limit")])
                    } else if amount > REVIEW_ABOVE {
                        ("review", vec![format!("amount {amount} needs a review")])
                    } else {
                        ("allow", vec![])
                    };
                    Json(json!({"decision": decision, "reasons": reasons}))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            calls,
            unreserved,
            db,
            task,
        }
    }

    /// The request bodies received so far.
    pub fn calls(&self) -> Vec<Value> {
        self.calls.lock().unwrap().clone()
    }

    /// Calls made for a payment whose key was not reserved (with its id) at the time.
    pub fn unreserved_calls(&self) -> usize {
        self.unreserved.load(Ordering::SeqCst)
    }
}

/// The payment app and everything around it.
pub struct Payments {
    pub app: axum::Router,
    pub ctx: platform_common::service::Context,
    pub idp: TestIdp,
    pub rules: FakeRuleEngine,
    pub pump: Pump,
    _infra: Vec<infra::Guard>,
}

impl Payments {
    pub async fn start() -> Self {
        let idp = TestIdp::start().await;
        let rules = FakeRuleEngine::start().await;
        let threshold = KYC_THRESHOLD.to_string();
        let (app, ctx, infra) = service_app(
            &payment::spec(),
            &idp,
            &[
                ("RULE_ENGINE_URL", &rules.url),
                ("PAYMENT_KYC_THRESHOLD", &threshold),
                ("PAYMENT_HOLD_TIMEOUT_SECONDS", "30"),
            ],
        )
        .await;
        with_neighbours(&ctx.db).await;
        rules.db.set(ctx.db.clone()).ok();
        let pump = Pump::new(&ctx.db);
        Self {
            app,
            ctx,
            idp,
            rules,
            pump,
            _infra: infra,
        }
    }

    /// A user whose subject (`sub-<name>`) differs from the username, so that data keyed by
    /// the wrong one shows; (subject, token).
    pub fn user(&self, name: &str, roles: &[&str]) -> (String, String) {
        let sub = format!("sub-{name}");
        let mut claims = self.idp.claims(name, roles);
        claims["sub"] = json!(sub);
        (sub, sign(&claims, TestKey::A))
    }

    /// A wallet of `owner` (a subject) in `currency`: a ledger account, with `funds` deposited.
    pub async fn wallet(&self, owner: &str, currency: &str, funds: i64) -> Uuid {
        wallet(&self.ctx.db, owner, currency, funds).await
    }

    pub async fn freeze(&self, wallet: Uuid) {
        db::serializable(&self.ctx.db, |tx| {
            Box::pin(async move { book::set_frozen(tx, wallet, true).await })
        })
        .await
        .unwrap()
        .expect("the wallet exists");
    }

    /// (balance, available) of a ledger account.
    pub async fn balance(&self, account: Uuid) -> (i64, i64) {
        let c = self.ctx.db.get().await.unwrap();
        let a = book::account(&c, account).await.unwrap().expect("account");
        (a.balance, a.available)
    }

    /// The KYC status the gate reads for `subject` (the profile service's table).
    pub async fn set_kyc(&self, subject: &str, status: &str) {
        self.ctx
            .db
            .get()
            .await
            .unwrap()
            .execute(
                "INSERT INTO user_profiles (user_id, username, full_name, kyc_status)
                 VALUES ($1, $1, $1, $2)
                 ON CONFLICT (user_id) DO UPDATE SET kyc_status = excluded.kyc_status",
                &[&subject, &status],
            )
            .await
            .unwrap();
    }

    pub async fn pay(&self, token: &str, key: &str, body: Value) -> (StatusCode, Value) {
        call(
            &self.app,
            "POST",
            "/payments",
            Some(token),
            &[("idempotency-key", key)],
            Some(body),
        )
        .await
    }

    pub async fn get(&self, token: &str, id: &Value) -> Value {
        let (s, b) = call(
            &self.app,
            "GET",
            &format!("/payments/{}", id.as_str().unwrap()),
            Some(token),
            &[],
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b
    }

    pub async fn review(&self, token: &str, id: &Value, decision: &str) -> (StatusCode, Value) {
        call(
            &self.app,
            "POST",
            &format!("/payments/{}/review", id.as_str().unwrap()),
            Some(token),
            &[],
            Some(json!({"decision": decision, "note": "checked"})),
        )
        .await
    }

    /// The payloads of `topic` recorded for `payment`.
    pub async fn events(&self, payment: &Value, topic: &str) -> Vec<Value> {
        let c = self.ctx.db.get().await.unwrap();
        c.query(
            "SELECT envelope FROM outbox WHERE message_key = $1 AND topic = $2 ORDER BY created_at, id",
            &[&payment.as_str().unwrap(), &topic],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, Value>(0)["payload"].clone())
        .collect()
    }

    /// Per currency, the ledger's posted balances and pending amounts sum to zero.
    pub async fn assert_conserved(&self) {
        let c = self.ctx.db.get().await.unwrap();
        for r in c
            .query(
                "SELECT currency, sum(credits_posted - debits_posted)::BIGINT,
                        sum(credits_pending - debits_pending)::BIGINT
                 FROM accounts GROUP BY currency",
                &[],
            )
            .await
            .unwrap()
        {
            let (cur, posted, pending): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
            assert_eq!((posted, pending), (0, 0), "{cur}");
        }
    }
}

/// The fleet shares one database: the ledger's tables and the profiles' are there too.
pub async fn with_neighbours(pool: &Pool) {
    platform_common::migrate::run(pool, "ledger", ledger::spec().migrations)
        .await
        .expect("ledger migrations apply");
    platform_common::migrate::run(pool, "profile", profile::spec().migrations)
        .await
        .expect("profile migrations apply");
    platform_common::migrate::run(pool, "forex", forex::spec().migrations)
        .await
        .expect("forex migrations apply");
    forex::refresh_rates(pool, None, forex::ManualRates::Keep)
        .await
        .expect("forex's built-in rates load");
}

/// A wallet of `owner` (a subject) in `currency`: a ledger account, with `funds` deposited.
pub async fn wallet(pool: &Pool, owner: &str, currency: &str, funds: i64) -> Uuid {
    let id = Uuid::new_v4();
    let (owner, currency) = (owner.to_owned(), currency.to_owned());
    db::serializable(pool, |tx| {
        let (owner, currency) = (owner.clone(), currency.clone());
        Box::pin(async move {
            book::open_wallet_account(tx, id, &owner, &currency, "test").await?;
            if funds > 0 {
                book::deposit(tx, Uuid::new_v4(), id, funds, &currency, None, "test").await?;
            }
            Ok::<_, LedgerError>(())
        })
    })
    .await
    .expect("wallet opened and funded");
    id
}

/// Delivers unpublished outbox rows, oldest first, to the consumers subscribed to their topic
/// (each through its own idempotent inbox), marking each row published: the relay and Kafka,
/// in process and in order.
pub struct Pump {
    pool: Pool,
    ledger: IdempotentConsumer<ledger::saga::PaymentCommands>,
    saga: IdempotentConsumer<payment::saga::Saga>,
    forex: IdempotentConsumer<forex::PaymentConversions>,
}

impl Pump {
    fn new(pool: &Pool) -> Self {
        Self {
            pool: pool.clone(),
            ledger: IdempotentConsumer::new(
                "ledger-payments",
                pool.clone(),
                ledger::saga::PaymentCommands {
                    service: "svc-ledger".into(),
                },
            ),
            saga: IdempotentConsumer::new(
                "payment-saga",
                pool.clone(),
                payment::saga::Saga {
                    service: "svc-payment".into(),
                    hold_timeout_seconds: 30,
                },
            ),
            forex: IdempotentConsumer::new(
                forex::CONVERSIONS_CONSUMER,
                pool.clone(),
                forex::PaymentConversions::new(50, std::time::Duration::from_secs(3600)),
            ),
        }
    }

    /// Delivers until the outbox is empty; the topics delivered, in order.
    pub async fn drain(&self) -> Vec<String> {
        self.drain_until(|_| false).await
    }

    /// Delivers until the outbox is empty or the next row's topic makes `stop` true (that row
    /// stays unpublished); the topics delivered, in order.
    pub async fn drain_until(&self, stop: impl Fn(&str) -> bool) -> Vec<String> {
        let mut delivered = Vec::new();
        for _ in 0..1000 {
            let c = self.pool.get().await.unwrap();
            let Some(row) = c
                .query_opt(
                    "SELECT id, topic, envelope FROM outbox WHERE published_at IS NULL
                     ORDER BY created_at, id LIMIT 1",
                    &[],
                )
                .await
                .unwrap()
            else {
                return delivered;
            };
            let (id, topic): (Uuid, String) = (row.get(0), row.get(1));
            if stop(&topic) {
                return delivered;
            }
            let event: EventEnvelope = serde_json::from_value(row.get(2)).unwrap();
            self.deliver(&topic, &event).await;
            c.execute(
                "UPDATE outbox SET published_at = now() WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap();
            delivered.push(topic);
        }
        panic!("the outbox never emptied: {delivered:?}");
    }

    /// Applies `event` to the consumers subscribed to `topic`; their outcomes.
    async fn deliver(&self, topic: &str, event: &EventEnvelope) -> Vec<ConsumeOutcome> {
        let mut outcomes = Vec::new();
        if ledger::saga::COMMANDS.contains(&topic) {
            outcomes.push(self.ledger.apply(event).await.unwrap());
        }
        if payment::saga::REPLIES.contains(&topic) {
            outcomes.push(self.saga.apply(event).await.unwrap());
        }
        if topic == payment::saga::SCREENED {
            outcomes.push(self.forex.apply(event).await.unwrap());
        }
        outcomes
    }

    /// Delivers every published event once more (as Kafka may after a consumer restart):
    /// each inbox must skip them all.
    pub async fn redeliver_all(&self) {
        let c = self.pool.get().await.unwrap();
        for row in c
            .query(
                "SELECT envelope, topic FROM outbox WHERE published_at IS NOT NULL
                 ORDER BY created_at, id",
                &[],
            )
            .await
            .unwrap()
        {
            let event: EventEnvelope = serde_json::from_value(row.get(0)).unwrap();
            let topic: String = row.get(1);
            for outcome in self.deliver(&topic, &event).await {
                assert_eq!(outcome, ConsumeOutcome::Duplicate, "{topic}");
            }
        }
    }
}
