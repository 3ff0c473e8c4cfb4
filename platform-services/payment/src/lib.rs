//! payment: `POST /payments` with a required `Idempotency-Key` (reserved with the payment's
//! id before anything else), KYC-gated and screened by rule-engine; then the saga in the
//! worker: forex converts when currencies differ, the ledger holds the payer's funds and
//! posts them to the payee, and the payment ends `completed` or `failed` with a reason
//! (see [`saga`]). `GET /payments/{id}` shows the status and its history;
//! `POST /payments/{id}/review` decides a payment held for review; `GET /payments/updates`
//! is a WebSocket of the caller's status changes.

mod error;
mod kyc;
mod payments;
mod rules_client;
pub mod saga;
mod store;
mod updates;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use platform_common::config::{ConfigError, positive};
use platform_common::env;
use platform_common::events::{OUTBOX_MIGRATION, Subscription};
use platform_common::jobs::TaskRegistry;
use platform_common::migrate::Migration;
use platform_common::service::{Context, ServiceSpec};
use utoipa::OpenApi;

pub use error::PaymentError;

pub use saga::INITIATED as PAYMENT_INITIATED;

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "payments and idempotency keys",
        sql: include_str!("../migrations/0001_payments_and_idempotency_keys.sql"),
    },
    Migration {
        version: 2,
        name: "the payment saga",
        sql: include_str!("../migrations/0002_saga.sql"),
    },
    Migration {
        version: 3,
        name: "the updates feed reads recent changes",
        sql: include_str!("../migrations/0003_updates_feed.sql"),
    },
    OUTBOX_MIGRATION,
];

#[derive(OpenApi)]
#[openapi(
    paths(
        payments::create,
        payments::get_one,
        payments::review,
        updates::updates
    ),
    components(schemas(
        payments::NewPayment,
        payments::Payment,
        payments::HistoryEntry,
        payments::Review,
        payments::ReviewDecision,
        updates::PaymentUpdate
    ))
)]
struct Api;

#[derive(Clone)]
pub(crate) struct State {
    ctx: Context,
    rules: rules_client::RuleEngine,
    updates: updates::Updates,
    saga: saga::Saga,
    /// Payments above this amount need the payer's KYC verified.
    kyc_threshold: i64,
}

fn saga_of(ctx: &Context) -> Result<saga::Saga, ConfigError> {
    let hold_timeout_seconds =
        positive(ctx.env.as_ref(), env::PAYMENT_HOLD_TIMEOUT_SECONDS, 30u32)?;
    Ok(saga::Saga {
        service: ctx.service.clone(),
        hold_timeout_seconds,
    })
}

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "payment",
        migrations: MIGRATIONS,
        publishes: saga::PUBLISHES,
        worker_uses_db: true,
        openapi: Api::openapi,
        routes: |ctx| {
            let base = ctx
                .env
                .var(env::RULE_ENGINE_URL)
                .unwrap_or_else(|| "http://rule-engine:8000".into());
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                return Err(ConfigError::Invalid {
                    name: env::RULE_ENGINE_URL,
                    value: base,
                    reason: "expected an http:// or https:// URL".into(),
                });
            }
            let rules = rules_client::RuleEngine::new(base, Duration::from_secs(5));
            let kyc_threshold = positive(ctx.env.as_ref(), env::PAYMENT_KYC_THRESHOLD, 100_000i64)?;
            Ok(router(State {
                ctx: ctx.clone(),
                rules,
                updates: updates::Updates::watching(ctx.db.clone()),
                saga: saga_of(ctx)?,
                kyc_threshold,
            }))
        },
        tasks: |_: &mut TaskRegistry, ctx| {
            // Payments whose screening was interrupted and never retried end `failed`.
            let (pool, env) = (ctx.db.clone(), ctx.env.clone());
            let saga = match saga_of(ctx) {
                Ok(s) => s,
                Err(e) => return tracing::error!(error = %e, "payment saga settings"),
            };
            tokio::spawn(async move {
                let after: i64 =
                    positive(env.as_ref(), env::PAYMENT_SCREENING_TIMEOUT_SECONDS, 120i64)
                        .unwrap_or(120);
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    let saga = saga.clone();
                    let swept = platform_common::db::serializable(&pool, |tx| {
                        let saga = saga.clone();
                        Box::pin(async move { saga.fail_stuck(tx, after).await })
                    })
                    .await;
                    match swept {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(failed = n, "interrupted screenings failed"),
                        Err(e) => tracing::warn!(error = %e, "sweeping interrupted screenings"),
                    }
                }
            });
        },
        consumers: |ctx| match saga_of(ctx) {
            Ok(saga) => vec![Subscription::new("payment.saga", saga::REPLIES, saga)],
            Err(e) => {
                tracing::error!(error = %e, "payment saga settings: the saga does not run");
                Vec::new()
            }
        },
    }
}

fn router(state: State) -> Router {
    Router::new()
        .route("/payments", post(payments::create))
        .route("/payments/updates", get(updates::updates))
        .route("/payments/{id}", get(payments::get_one))
        .route("/payments/{id}/review", post(payments::review))
        .with_state(state)
}
