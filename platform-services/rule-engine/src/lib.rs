//! rule-engine: decides allow, deny or review for a payment from per-role, per-currency
//! limits and a per-user velocity window in Redis. Rules are managed by admin.

mod error;
mod evaluate;
mod rules;

use axum::Router;
use axum::routing::{post, put};
use platform_common::jobs::TaskRegistry;
use platform_common::migrate::Migration;
use platform_common::service::{Context, ServiceSpec};
use utoipa::OpenApi;

pub use error::RuleError;
pub use evaluate::{Decision, Evaluation, PaymentToEvaluate};

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "limits and velocity rules, with defaults",
    sql: "
CREATE TABLE IF NOT EXISTS limits (
    role TEXT NOT NULL,
    currency TEXT NOT NULL,
    max_amount BIGINT NOT NULL CHECK (max_amount > 0),
    review_above BIGINT CHECK (review_above > 0),
    updated_by TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (role, currency)
);
CREATE TABLE IF NOT EXISTS velocity_rules (
    currency TEXT PRIMARY KEY,
    window_seconds BIGINT NOT NULL CHECK (window_seconds > 0),
    max_count BIGINT NOT NULL CHECK (max_count > 0),
    max_total BIGINT NOT NULL CHECK (max_total > 0),
    updated_by TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO limits (role, currency, max_amount, review_above, updated_by) VALUES
    ('user', 'USD', 1000000, 500000, 'migration'),
    ('user', 'EUR', 1000000, 500000, 'migration'),
    ('user', 'GBP', 1000000, 500000, 'migration'),
    ('finance', 'USD', 100000000, 50000000, 'migration'),
    ('finance', 'EUR', 100000000, 50000000, 'migration'),
    ('admin', 'USD', 1000000000, NULL, 'migration'),
    ('admin', 'EUR', 1000000000, NULL, 'migration')
ON CONFLICT (role, currency) DO NOTHING;
INSERT INTO velocity_rules (currency, window_seconds, max_count, max_total, updated_by) VALUES
    ('USD', 3600, 10, 2000000, 'migration'),
    ('EUR', 3600, 10, 2000000, 'migration')
ON CONFLICT (currency) DO NOTHING;
",
}];

#[derive(OpenApi)]
#[openapi(
    paths(
        evaluate::evaluate,
        rules::list,
        rules::put_limit,
        rules::delete_limit,
        rules::put_velocity
    ),
    components(schemas(
        PaymentToEvaluate,
        Evaluation,
        Decision,
        rules::Rules,
        rules::Limit,
        rules::LimitBody,
        rules::Velocity,
        rules::VelocityBody
    ))
)]
struct Api;

#[derive(Clone)]
pub(crate) struct State {
    ctx: Context,
}

/// The service's routes; public so payment's tests can run the real rule-engine in-process.
pub fn routes(ctx: &Context) -> Router {
    Router::new()
        .route("/evaluate", post(evaluate::evaluate))
        .route("/rules", axum::routing::get(rules::list))
        .route(
            "/rules/limits/{role}/{currency}",
            put(rules::put_limit).delete(rules::delete_limit),
        )
        .route("/rules/velocity/{currency}", put(rules::put_velocity))
        .with_state(State { ctx: ctx.clone() })
}

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "rule-engine",
        migrations: MIGRATIONS,
        publishes: &[],
        worker_uses_db: false,
        openapi: Api::openapi,
        routes: |ctx| Ok(routes(ctx)),
        tasks: |_: &mut TaskRegistry, _| {},
    }
}
