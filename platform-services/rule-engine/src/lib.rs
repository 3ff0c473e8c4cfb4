//! rule-engine: decides allow, deny or review for a payment from per-role, per-currency
//! limits and a per-payer velocity window of the payments evaluated before, each once (by
//! payment id) and keyed by the payer's subject. Rules are managed by admin.

mod error;
mod evaluate;
mod rules;
mod store;

use axum::Router;
use axum::routing::{post, put};
use platform_common::jobs::TaskRegistry;
use platform_common::migrate::Migration;
use platform_common::service::{Context, ServiceSpec};
use utoipa::OpenApi;

pub use error::RuleError;
pub use evaluate::{Decision, Evaluation, PaymentToEvaluate};

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "limits and velocity rules, with defaults",
        sql: include_str!("../migrations/0001_limits_and_velocity_rules.sql"),
    },
    Migration {
        version: 2,
        name: "evaluations",
        sql: include_str!("../migrations/0002_evaluations.sql"),
    },
];

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
        consumers: |_| Vec::new(),
    }
}
