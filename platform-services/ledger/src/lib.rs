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
pub mod book;
mod error;
pub mod saga;
mod transfers;

use axum::Router;
use axum::routing::{get, post};
use platform_common::events::{OUTBOX_MIGRATION, Subscription};
use platform_common::jobs::TaskRegistry;
use platform_common::migrate::Migration;
use platform_common::service::{Context, ServiceSpec};
use utoipa::OpenApi;

pub use error::LedgerError;

pub const TRANSFER_POSTED: &str = "ledger.transfer_posted";

/// Every topic the ledger writes to its outbox.
pub const PUBLISHES: &[&str] = &[
    TRANSFER_POSTED,
    saga::HOLD_PLACED,
    saga::HOLD_FAILED,
    saga::POSTED,
    saga::POST_FAILED,
    saga::VOIDED,
];

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "accounts and transfers",
        sql: include_str!("../migrations/0001_accounts_and_transfers.sql"),
    },
    Migration {
        version: 2,
        name: "account kinds and two-phase transfers",
        sql: include_str!("../migrations/0002_two_phase_and_kinds.sql"),
    },
    OUTBOX_MIGRATION,
];

#[derive(OpenApi)]
#[openapi(
    paths(
        accounts::create,
        accounts::get_one,
        transfers::create,
        transfers::create_linked,
        transfers::get_one
    ),
    components(schemas(
        accounts::NewAccount,
        book::Account,
        book::AccountKind,
        book::NewTransfer,
        book::Transfer,
        book::TransferKind,
        transfers::LinkedTransfers
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
        publishes: PUBLISHES,
        worker_uses_db: true,
        openapi: Api::openapi,
        routes: |ctx| Ok(router(State { ctx: ctx.clone() })),
        tasks: |_: &mut TaskRegistry, ctx| {
            // Holds past their timeout are voided, and their payments told, within a second.
            let (pool, service) = (ctx.db.clone(), ctx.service.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    let expired = platform_common::db::serializable(&pool, |tx| {
                        let service = service.clone();
                        Box::pin(async move { saga::expire_holds(tx, &service, 100).await })
                    })
                    .await;
                    match expired {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(expired = n, "expired holds voided"),
                        Err(e) => tracing::warn!(error = %e, "voiding expired holds"),
                    }
                }
            });
        },
        consumers: |ctx| {
            vec![Subscription::new(
                "ledger.payment-commands",
                saga::COMMANDS,
                saga::PaymentCommands {
                    service: ctx.service.clone(),
                },
            )]
        },
    }
}

fn router(state: State) -> Router {
    Router::new()
        .route("/accounts", post(accounts::create))
        .route("/accounts/{id}", get(accounts::get_one))
        .route("/transfers", post(transfers::create))
        .route("/transfers/linked", post(transfers::create_linked))
        .route("/transfers/{id}", get(transfers::get_one))
        .with_state(state)
}
