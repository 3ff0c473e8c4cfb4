//! wallet: one wallet per user (subject) and currency, each a ledger account with the same
//! id: its balance, available amount and frozen flag are the account's, and money moves only
//! as ledger transfers. Freeze and unfreeze by ops_user or admin (never one's own wallet);
//! manual credits requested by finance or admin and approved by another of them (never the
//! requester, never the wallet's owner); withdrawals by the owner. Every write runs in
//! `db::serializable`.

mod book;
mod credits;
mod error;
mod store;
mod wallets;

use axum::Router;
use axum::routing::{get, post};
use platform_common::jobs::TaskRegistry;
use platform_common::migrate::Migration;
use platform_common::service::{Context, ServiceSpec};
use utoipa::OpenApi;

pub use credits::CreditRequest;
pub use error::WalletError;
pub use wallets::{MoneyRequest, NewWallet, StatusChange, Wallet, Withdrawal};

/// The wallet's own migrations before the ledger's (they need no ledger table).
const OWN_BEFORE_LEDGER: &[Migration] = &[
    Migration {
        version: 1,
        name: "wallets and entries",
        sql: include_str!("../migrations/0001_wallets_and_entries.sql"),
    },
    Migration {
        version: 2,
        name: "credit requests and withdrawals",
        sql: include_str!("../migrations/0002_credit_requests_and_withdrawals.sql"),
    },
];

/// The wallet's migrations that need the ledger's tables, numbered after the ledger's.
const OWN_AFTER_LEDGER: &[Migration] = &[Migration {
    version: 1001,
    name: "a ledger account for every wallet; old balances as credit requests",
    sql: include_str!("../migrations/1001_wallet_accounts.sql"),
}];

/// Own migrations, then the ledger's (`ledger::book`, versions 100 and up, idempotent: the
/// ledger service runs the same ones), then own ones that need the ledger's tables.
const MIGRATIONS: &[Migration] = concat_migrations();

const N: usize = OWN_BEFORE_LEDGER.len() + book::MIGRATIONS.len() + OWN_AFTER_LEDGER.len();

const fn concat_migrations() -> &'static [Migration] {
    const ALL: [Migration; N] = {
        let mut out = [OWN_BEFORE_LEDGER[0]; N];
        let mut i = 0;
        let parts: [&[Migration]; 3] = [OWN_BEFORE_LEDGER, book::MIGRATIONS, OWN_AFTER_LEDGER];
        let mut p = 0;
        while p < parts.len() {
            let mut j = 0;
            while j < parts[p].len() {
                out[i] = parts[p][j];
                i += 1;
                j += 1;
            }
            p += 1;
        }
        out
    };
    &ALL
}

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
        wallets::withdraw,
        credits::create,
        credits::list,
        credits::get_one,
        credits::approve,
        credits::reject
    ),
    components(schemas(
        Wallet,
        NewWallet,
        StatusChange,
        MoneyRequest,
        Withdrawal,
        CreditRequest
    ))
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
        .route("/wallets/{id}/withdrawals", post(wallets::withdraw))
        .route("/wallets/{id}/credit-requests", post(credits::create))
        .route("/credit-requests", get(credits::list))
        .route("/credit-requests/{id}", get(credits::get_one))
        .route("/credit-requests/{id}/approve", post(credits::approve))
        .route("/credit-requests/{id}/reject", post(credits::reject))
        .with_state(state)
}
