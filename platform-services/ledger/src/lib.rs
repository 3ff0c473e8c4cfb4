//! ledger: double-entry accounts and transfers after TigerBeetle's model.
//!
//! - Accounts and transfers have client-chosen ids; creating one again with the same fields
//!   returns the original, with different fields it is a 409.
//! - Transfers are immutable. Each moves `amount` from the debit account to the credit
//!   account in one transaction, so total debits always equal total credits.
//! - Account flags forbid going negative: `debits_must_not_exceed_credits` (an asset the
//!   customer holds) and `credits_must_not_exceed_debits`.
//! - finance and admin post; auditor reads.

mod accounts;
mod error;
mod store;
mod transfers;

use axum::Router;
use axum::routing::{get, post};
use platform_common::events::OUTBOX_MIGRATION;
use platform_common::jobs::TaskRegistry;
use platform_common::migrate::Migration;
use platform_common::service::{Context, ServiceSpec};
use utoipa::OpenApi;

pub use error::LedgerError;

pub const TRANSFER_POSTED: &str = "ledger.transfer_posted";

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "accounts and transfers",
        sql: include_str!("../migrations/0001_accounts_and_transfers.sql"),
    },
    OUTBOX_MIGRATION,
];

#[derive(OpenApi)]
#[openapi(
    paths(
        accounts::create,
        accounts::get_one,
        transfers::create,
        transfers::get_one
    ),
    components(schemas(
        accounts::NewAccount,
        accounts::Account,
        transfers::NewTransfer,
        transfers::Transfer
    ))
)]
struct Api;

#[derive(Clone)]
pub(crate) struct State {
    ctx: Context,
}

pub fn spec() -> ServiceSpec {
    ServiceSpec {
        name: "ledger",
        migrations: MIGRATIONS,
        publishes: &[TRANSFER_POSTED],
        worker_uses_db: false,
        openapi: Api::openapi,
        routes: |ctx| Ok(router(State { ctx: ctx.clone() })),
        tasks: |_: &mut TaskRegistry, _| {},
        consumers: |_| Vec::new(),
    }
}

fn router(state: State) -> Router {
    Router::new()
        .route("/accounts", post(accounts::create))
        .route("/accounts/{id}", get(accounts::get_one))
        .route("/transfers", post(transfers::create))
        .route("/transfers/{id}", get(transfers::get_one))
        .with_state(state)
}
