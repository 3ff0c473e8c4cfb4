//! payment: `POST /payments` with a required `Idempotency-Key`, checked by rule-engine,
//! recorded, and announced as `payment.initiated` through the outbox; `GET /payments/{id}`;
//! `GET /payments/updates`, a WebSocket of the caller's status changes.
//!
//! The rest of the flow (forex, ledger, wallet reacting to the event, and the worker's
//! confirmation emitting `payment.completed`) is a later issue; the event carries what they
//! need: payment id, owner, amount, currency, payee.

mod error;
mod payments;
mod rules_client;
mod store;
mod updates;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use platform_common::config::ConfigError;
use platform_common::env;
use platform_common::events::OUTBOX_MIGRATION;
use platform_common::jobs::TaskRegistry;
use platform_common::migrate::Migration;
use platform_common::service::{Context, ServiceSpec};
use utoipa::OpenApi;

pub use error::PaymentError;

pub const PAYMENT_INITIATED: &str = "payment.initiated";

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "payments and idempotency keys",
        sql: include_str!("../migrations/0001_payments_and_idempotency_keys.sql"),
    },
    OUTBOX_MIGRATION,
];

#[derive(OpenApi)]
#[openapi(
    paths(payments::create, payments::get_one, updates::updates),
    components(schemas(payments::NewPayment, payments::Payment, updates::PaymentUpdate))
)]
struct Api;

#[derive(Clone)]
pub(crate) struct State {
    ctx: Context,
    rules: rules_client::RuleEngine,
    updates: updates::Updates,
}

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "payment",
        migrations: MIGRATIONS,
        publishes: &[PAYMENT_INITIATED],
        worker_uses_db: false,
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
            Ok(router(State {
                ctx: ctx.clone(),
                rules,
                updates: updates::Updates::new(),
            }))
        },
        tasks: |_: &mut TaskRegistry, _| {},
        consumers: |_| Vec::new(),
    }
}

fn router(state: State) -> Router {
    Router::new()
        .route("/payments", post(payments::create))
        .route("/payments/updates", get(updates::updates))
        .route("/payments/{id}", get(payments::get_one))
        .with_state(state)
}
