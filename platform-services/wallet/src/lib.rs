//! wallet: one wallet per user and currency; balances in minor units; freeze and unfreeze
//! by ops_user or admin; credits and debits (finance, admin) idempotent on a reference.

mod error;
mod store;
mod wallets;

use axum::Router;
use axum::routing::{get, post};
use platform_common::jobs::TaskRegistry;
use platform_common::migrate::Migration;
use platform_common::service::{Context, ServiceSpec};
use utoipa::OpenApi;

pub use error::WalletError;
pub use wallets::{Direction, Entry, NewWallet, StatusChange, Wallet};

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "wallets and entries",
    sql: include_str!("../migrations/0001_wallets_and_entries.sql"),
}];

#[derive(Clone)]
struct State {
    ctx: Context,
}

#[derive(OpenApi)]
#[openapi(
    paths(
        wallets::create,
        wallets::list,
        wallets::get_one,
        wallets::freeze,
        wallets::unfreeze,
        wallets::post_entry
    ),
    components(schemas(Wallet, NewWallet, StatusChange, Entry, Direction))
)]
struct Api;

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "wallet",
        migrations: MIGRATIONS,
        publishes: &[],
        worker_uses_db: false,
        openapi: Api::openapi,
        routes: |ctx| Ok(router(State { ctx: ctx.clone() })),
        tasks: |_: &mut TaskRegistry, _| {},
        consumers: |_| Vec::new(),
    }
}

fn router(state: State) -> Router {
    Router::new()
        .route("/wallets", post(wallets::create).get(wallets::list))
        .route("/wallets/{id}", get(wallets::get_one))
        .route("/wallets/{id}/freeze", post(wallets::freeze))
        .route("/wallets/{id}/unfreeze", post(wallets::unfreeze))
        .route("/wallets/{id}/entries", post(wallets::post_entry))
        .with_state(state)
}
