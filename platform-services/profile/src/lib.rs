//! profile: user profiles and KYC status (pending, submitted, verified, rejected), keyed by
//! the user's subject (`sub`); submission by the owner, approval or rejection by ops_user or
//! admin (never of their own); a GraphQL read model of the same at `/graphql`; and
//! [`kyc_verified`], the KYC gate other services read from the shared database.

mod error;
mod graphql;
mod kyc;
mod profiles;
mod store;

use axum::Router;
use axum::routing::{get, post, put};
use platform_common::jobs::TaskRegistry;
use platform_common::migrate::Migration;
use platform_common::service::{Context, ServiceSpec};
use utoipa::OpenApi;

pub use error::ProfileError;
pub use graphql::sdl as graphql_sdl;
pub use kyc::{Actor, KycStatus, kyc_verified};
pub use profiles::{KycDecision, Profile, ProfileBody};

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "profiles",
        sql: include_str!("../migrations/0001_profiles.sql"),
    },
    Migration {
        version: 2,
        name: "profiles keyed by subject",
        sql: include_str!("../migrations/0002_profiles_by_subject.sql"),
    },
    Migration {
        version: 3,
        name: "drop profiles keyed by username",
        sql: include_str!("../migrations/0003_drop_profiles_by_username.sql"),
    },
];

#[derive(Clone)]
struct State {
    ctx: Context,
    graphql: graphql::ProfileSchema,
}

#[derive(OpenApi)]
#[openapi(
    paths(
        profiles::get_me,
        profiles::put_me,
        profiles::get_profile,
        profiles::submit_kyc,
        profiles::decide_kyc,
        graphql::get,
        graphql::post
    ),
    components(schemas(Profile, ProfileBody, KycDecision, KycStatus))
)]
struct Api;

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "profile",
        migrations: MIGRATIONS,
        publishes: &[],
        worker_uses_db: false,
        openapi: Api::openapi,
        routes: |ctx| {
            Ok(router(State {
                ctx: ctx.clone(),
                graphql: graphql::schema(Some(ctx.clone())),
            }))
        },
        tasks: |_: &mut TaskRegistry, _| {},
        consumers: |_| Vec::new(),
    }
}

fn router(state: State) -> Router {
    Router::new()
        .route("/profiles/me", get(profiles::get_me).put(profiles::put_me))
        .route("/profiles/me/kyc", post(profiles::submit_kyc))
        .route("/profiles/{user_id}", get(profiles::get_profile))
        .route(
            "/profiles/{user_id}/kyc/decision",
            put(profiles::decide_kyc),
        )
        .route("/graphql", get(graphql::get).post(graphql::post))
        .with_state(state)
}
