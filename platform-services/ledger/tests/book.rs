//! `ledger::book` against a real PostgreSQL: posted and two-phase transfers, timeouts, linked
//! batches, freezes, limits, replays, and conservation after each test.

use deadpool_postgres::Pool;
use futures_util::StreamExt;
use ledger::LedgerError;
use ledger::book::{self, Account, NewTransfer, Transfer};
use platform_common::ApiError;
use platform_common::db::{self, DbError};
use platform_testing::infra::{self, Guard};
use serde_json::json;
use uuid::Uuid;

/// A fresh database with the ledger's tables.
async fn ledger_db() -> (Pool, Guard) {
    let (cfg, guard) = infra::postgres().await;
    let pool = db::pool(&cfg, 8);
    platform_common::migrate::run(&pool, "ledger", ledger::spec().migrations)
        .await
        .expect("ledger migrations apply");
    (pool, guard)
}

/// A wallet of `owner` in `currency` with `funds` deposited (none when 0).
async fn wallet(pool: &Pool, owner: &str, currency: &str, funds: i64) -> Uuid {
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

/// Applies a linked batch in one SERIALIZABLE transaction.
async fn apply(pool: &Pool, batch: &[NewTransfer]) -> Result<Vec<Transfer>, LedgerError> {
    db::serializable(pool, |tx| {
        let batch = batch.to_vec();
        Box::pin(async move { book::create_transfers(tx, &batch, "test").await })
    })
    .await
}

async fn one(pool: &Pool, t: NewTransfer) -> Result<Transfer, LedgerError> {
    apply(pool, &[t]).await.map(|mut v| v.remove(0))
}

/// The refusal's problem code.
fn code(r: Result<impl std::fmt::Debug, LedgerError>) -> &'static str {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(e) => e.code(),
    }
}

async fn account(pool: &Pool, id: Uuid) -> Account {
    let c = pool.get().await.unwrap();
    book::account(&c, id)
        .await
        .unwrap()
        .expect("account exists")
}

/// (balance, available, debits_pending, credits_pending)
async fn balances(pool: &Pool, id: Uuid) -> (i64, i64, i64, i64) {
    let a = account(pool, id).await;
    assert_eq!(a.balance, a.balance());
    assert_eq!(a.available, a.available());
    (a.balance, a.available, a.debits_pending, a.credits_pending)
}

async fn transfer(pool: &Pool, id: Uuid) -> Option<Transfer> {
    let c = pool.get().await.unwrap();
    book::transfer(&c, id).await.unwrap()
}

fn pending(debit: Uuid, credit: Uuid, amount: i64) -> NewTransfer {
    NewTransfer::pending(Uuid::new_v4(), debit, credit, amount, "USD", None, 60)
}

fn posted(debit: Uuid, credit: Uuid, amount: i64) -> NewTransfer {
    NewTransfer::posted(Uuid::new_v4(), debit, credit, amount, "USD", None)
}

/// Moves a pending transfer's timeout into the past (no waiting on the clock).
async fn time_out(pool: &Pool, id: Uuid) {
    let c = pool.get().await.unwrap();
    let n = c
        .execute(
            "UPDATE transfers SET timeout_at = now() - INTERVAL '1 second' WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
}

/// The ledger's invariants, checked against the whole database:
/// - per currency, the posted balances and the pending amounts of all accounts sum to zero,
///   and wallets plus liquidity hold exactly what settlement lost (deposits - withdrawals);
/// - every account's four columns equal what its transfers add up to;
/// - no wallet is below zero counting its pending debits.
pub async fn assert_conserved(pool: &Pool) {
    let c = pool.get().await.unwrap();
    let rows = c
        .query(
            "SELECT currency,
                    sum(credits_posted - debits_posted)::BIGINT,
                    sum(credits_pending - debits_pending)::BIGINT,
                    coalesce(sum(credits_posted - debits_posted) FILTER (WHERE kind IN ('wallet', 'liquidity')), 0)::BIGINT,
                    coalesce(sum(credits_posted - debits_posted) FILTER (WHERE kind = 'settlement'), 0)::BIGINT
             FROM accounts GROUP BY currency",
            &[],
        )
        .await
        .unwrap();
    for r in &rows {
        let (cur, posted, pending, held, settlement): (String, i64, i64, i64, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        assert_eq!((posted, pending), (0, 0), "{cur}: balances sum to zero");
        assert_eq!(
            held, -settlement,
            "{cur}: wallets and liquidity = deposits - withdrawals"
        );
    }
    let mismatched: Vec<String> = c
        .query(
            "WITH moved AS (
                 SELECT debit_account_id AS id, amount AS dp, 0::BIGINT AS cp, 0::BIGINT AS dq, 0::BIGINT AS cq
                   FROM transfers WHERE kind IN ('posted', 'post_pending')
                 UNION ALL SELECT credit_account_id, 0, amount, 0, 0
                   FROM transfers WHERE kind IN ('posted', 'post_pending')
                 UNION ALL SELECT debit_account_id, 0, 0, amount, 0
                   FROM transfers WHERE kind = 'pending' AND state = 'pending'
                 UNION ALL SELECT credit_account_id, 0, 0, 0, amount
                   FROM transfers WHERE kind = 'pending' AND state = 'pending'),
             sums AS (SELECT id, sum(dp)::BIGINT AS dp, sum(cp)::BIGINT AS cp, sum(dq)::BIGINT AS dq,
                             sum(cq)::BIGINT AS cq FROM moved GROUP BY id)
             SELECT a.id, a.debits_posted, coalesce(s.dp, 0), a.credits_posted, coalesce(s.cp, 0),
                    a.debits_pending, coalesce(s.dq, 0), a.credits_pending, coalesce(s.cq, 0)
             FROM accounts a LEFT JOIN sums s ON s.id = a.id
             WHERE a.debits_posted <> coalesce(s.dp, 0) OR a.credits_posted <> coalesce(s.cp, 0)
                OR a.debits_pending <> coalesce(s.dq, 0) OR a.credits_pending <> coalesce(s.cq, 0)",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let n = |i: usize| r.get::<_, i64>(i);
            format!(
                "{}: debits_posted {} vs {}, credits_posted {} vs {}, debits_pending {} vs {}, credits_pending {} vs {}",
                r.get::<_, Uuid>(0),
                n(1),
                n(2),
                n(3),
                n(4),
                n(5),
                n(6),
                n(7),
                n(8)
            )
        })
        .collect();
    assert!(
        mismatched.is_empty(),
        "accounts disagree with their transfers: {mismatched:?}"
    );
    let overdrawn: i64 = c
        .query_one(
            "SELECT count(*) FROM accounts WHERE debits_must_not_exceed_credits
               AND debits_posted + debits_pending > credits_posted",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(overdrawn, 0, "no wallet below zero");
}

#[tokio::test]
async fn posted_transfers_move_balances_and_deposits_come_from_settlement() {
    let (pool, _g) = ledger_db().await;
    let alice = wallet(&pool, "alice", "USD", 1000).await;
    let bob = wallet(&pool, "bob", "USD", 0).await;
    let settlement = book::settlement_account_id("USD");

    assert_eq!(balances(&pool, alice).await, (1000, 1000, 0, 0));
    assert_eq!(account(&pool, settlement).await.balance, -1000);
    let a = account(&pool, alice).await;
    assert_eq!(
        (a.kind, a.owner.as_deref(), a.frozen),
        (book::AccountKind::Wallet, Some("alice"), false)
    );

    let t = one(&pool, posted(alice, bob, 300)).await.unwrap();
    assert_eq!(
        (t.kind, t.state.as_deref(), t.timeout_at),
        (book::TransferKind::Posted, None, None)
    );
    assert_eq!(balances(&pool, alice).await, (700, 700, 0, 0));
    assert_eq!(balances(&pool, bob).await, (300, 300, 0, 0));

    // Withdrawal: back to settlement.
    db::serializable(&pool, |tx| {
        Box::pin(async move {
            book::withdraw(tx, Uuid::new_v4(), bob, 100, "USD", None, "test")
                .await
                .map(|_| ())
        })
    })
    .await
    .unwrap();
    assert_eq!(balances(&pool, bob).await, (200, 200, 0, 0));
    assert_eq!(account(&pool, settlement).await.balance, -900);

    // Refusals name their cause and change nothing.
    assert_eq!(
        code(one(&pool, posted(alice, alice, 1)).await),
        "accounts_must_be_different"
    );
    assert_eq!(
        code(one(&pool, posted(alice, Uuid::new_v4(), 1)).await),
        "account_not_found"
    );
    assert_eq!(
        code(one(&pool, posted(alice, bob, 0)).await),
        "validation_failed"
    );
    let eur = wallet(&pool, "bob", "EUR", 0).await;
    assert_eq!(
        code(one(&pool, posted(alice, eur, 1)).await),
        "currency_mismatch"
    );
    assert_eq!(balances(&pool, alice).await, (700, 700, 0, 0));
    assert_conserved(&pool).await;
}

#[tokio::test]
async fn pending_reserves_available_and_post_or_void_resolves_it() {
    let (pool, _g) = ledger_db().await;
    let alice = wallet(&pool, "alice", "USD", 1000).await;
    let bob = wallet(&pool, "bob", "USD", 0).await;

    // Pending: the balance stays, what can be spent shrinks; the payee sees it pending only.
    let hold = one(&pool, pending(alice, bob, 400)).await.unwrap();
    assert_eq!(
        (hold.kind, hold.state.as_deref()),
        (book::TransferKind::Pending, Some("pending"))
    );
    assert!(hold.timeout_at.is_some());
    assert_eq!(balances(&pool, alice).await, (1000, 600, 400, 0));
    assert_eq!(balances(&pool, bob).await, (0, 0, 0, 400));
    assert_conserved(&pool).await;

    // Post: the reservation becomes the movement.
    let post = one(
        &pool,
        NewTransfer::resolve(Uuid::new_v4(), hold.id, true, None),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            post.kind,
            post.pending_id,
            post.amount,
            post.debit_account_id,
            post.credit_account_id
        ),
        (
            book::TransferKind::PostPending,
            Some(hold.id),
            400,
            alice,
            bob
        )
    );
    assert_eq!(
        transfer(&pool, hold.id).await.unwrap().state.as_deref(),
        Some("posted")
    );
    assert_eq!(balances(&pool, alice).await, (600, 600, 0, 0));
    assert_eq!(balances(&pool, bob).await, (400, 400, 0, 0));

    // Void: the reservation is released, nothing moves.
    let hold = one(&pool, pending(alice, bob, 250)).await.unwrap();
    assert_eq!(balances(&pool, alice).await, (600, 350, 250, 0));
    one(
        &pool,
        NewTransfer::resolve(Uuid::new_v4(), hold.id, false, None),
    )
    .await
    .unwrap();
    assert_eq!(
        transfer(&pool, hold.id).await.unwrap().state.as_deref(),
        Some("voided")
    );
    assert_eq!(balances(&pool, alice).await, (600, 600, 0, 0));
    assert_eq!(balances(&pool, bob).await, (400, 400, 0, 0));

    // Only pending transfers can be resolved.
    let plain = one(&pool, posted(alice, bob, 1)).await.unwrap();
    assert_eq!(
        code(
            one(
                &pool,
                NewTransfer::resolve(Uuid::new_v4(), plain.id, true, None)
            )
            .await
        ),
        "pending_transfer_not_found"
    );
    assert_eq!(
        code(
            one(
                &pool,
                NewTransfer::resolve(Uuid::new_v4(), Uuid::new_v4(), false, None)
            )
            .await
        ),
        "pending_transfer_not_found"
    );
    assert_conserved(&pool).await;
}

#[tokio::test]
async fn resolving_checks_what_the_caller_gave_against_the_pending_transfer() {
    let (pool, _g) = ledger_db().await;
    let alice = wallet(&pool, "alice", "USD", 1000).await;
    let bob = wallet(&pool, "bob", "USD", 0).await;
    let carol = wallet(&pool, "carol", "USD", 0).await;
    let hold = one(&pool, pending(alice, bob, 400)).await.unwrap();

    // Given fields that are not nil/0/empty must be the pending transfer's: a post of
    // another amount or to another account is refused, not silently posted in full.
    let mut other_amount = NewTransfer::resolve(Uuid::new_v4(), hold.id, true, None);
    other_amount.amount = 100;
    assert_eq!(code(one(&pool, other_amount).await), "validation_failed");
    let mut other_payee = NewTransfer::resolve(Uuid::new_v4(), hold.id, true, None);
    other_payee.credit_account_id = carol;
    assert_eq!(code(one(&pool, other_payee).await), "validation_failed");
    let mut other_currency = NewTransfer::resolve(Uuid::new_v4(), hold.id, true, None);
    other_currency.currency = "EUR".into();
    assert_eq!(code(one(&pool, other_currency).await), "validation_failed");
    assert_eq!(balances(&pool, alice).await, (1000, 600, 400, 0));

    // The same fields, spelled out, are fine.
    let mut same = NewTransfer::resolve(Uuid::new_v4(), hold.id, true, None);
    (
        same.debit_account_id,
        same.credit_account_id,
        same.amount,
        same.currency,
    ) = (alice, bob, 400, "USD".into());
    one(&pool, same).await.unwrap();
    assert_eq!(balances(&pool, bob).await, (400, 400, 0, 0));
    assert_conserved(&pool).await;
}

#[tokio::test]
async fn a_timed_out_pending_transfer_cannot_be_posted_and_expiry_releases_it() {
    let (pool, _g) = ledger_db().await;
    let alice = wallet(&pool, "alice", "USD", 1000).await;
    let bob = wallet(&pool, "bob", "USD", 0).await;
    let hold = one(&pool, pending(alice, bob, 400)).await.unwrap();
    let live = one(&pool, pending(alice, bob, 100)).await.unwrap();
    time_out(&pool, hold.id).await;

    assert_eq!(
        code(
            one(
                &pool,
                NewTransfer::resolve(Uuid::new_v4(), hold.id, true, None)
            )
            .await
        ),
        "pending_transfer_expired"
    );
    assert_eq!(balances(&pool, bob).await, (0, 0, 0, 500), "nothing posted");

    let expired = db::serializable(&pool, |tx| {
        Box::pin(async move { book::expire_pending(tx, 100).await })
    })
    .await
    .unwrap();
    let ids: Vec<(Uuid, Option<String>)> =
        expired.iter().map(|t| (t.id, t.state.clone())).collect();
    assert_eq!(
        ids,
        vec![(hold.id, Some("expired".to_owned()))],
        "only the timed-out one"
    );
    assert_eq!(balances(&pool, alice).await, (1000, 900, 100, 0));
    assert_eq!(balances(&pool, bob).await, (0, 0, 0, 100));

    // Expired is final: neither post nor void, and a second sweep finds nothing.
    for post in [true, false] {
        assert_eq!(
            code(
                one(
                    &pool,
                    NewTransfer::resolve(Uuid::new_v4(), hold.id, post, None)
                )
                .await
            ),
            "pending_transfer_expired"
        );
    }
    let again = db::serializable(&pool, |tx| {
        Box::pin(async move { book::expire_pending(tx, 100).await })
    })
    .await
    .unwrap();
    assert!(again.is_empty());

    // A void after the timeout (before the sweep) still releases it.
    time_out(&pool, live.id).await;
    one(
        &pool,
        NewTransfer::resolve(Uuid::new_v4(), live.id, false, None),
    )
    .await
    .unwrap();
    assert_eq!(balances(&pool, alice).await, (1000, 1000, 0, 0));
    assert_conserved(&pool).await;
}

#[tokio::test]
async fn a_pending_transfer_resolves_once() {
    let (pool, _g) = ledger_db().await;
    let alice = wallet(&pool, "alice", "USD", 1000).await;
    let bob = wallet(&pool, "bob", "USD", 0).await;
    let hold = one(&pool, pending(alice, bob, 400)).await.unwrap();
    let post = NewTransfer::resolve(Uuid::new_v4(), hold.id, true, Some("p"));
    let first = one(&pool, post.clone()).await.unwrap();

    // The same post again is a replay: the original, nothing moves twice.
    let again = one(&pool, post.clone()).await.unwrap();
    assert_eq!(json!(again), json!(first));
    // Another post or a void under a new id: refused.
    for post in [true, false] {
        assert_eq!(
            code(
                one(
                    &pool,
                    NewTransfer::resolve(Uuid::new_v4(), hold.id, post, None)
                )
                .await
            ),
            "pending_transfer_resolved"
        );
    }
    assert_eq!(balances(&pool, alice).await, (600, 600, 0, 0));
    assert_eq!(balances(&pool, bob).await, (400, 400, 0, 0));

    // Concurrently: of 8 posts and voids under fresh ids, exactly one wins.
    let hold = one(&pool, pending(alice, bob, 100)).await.unwrap();
    let results: Vec<Result<Transfer, LedgerError>> = futures_util::stream::iter(0..8)
        .map(|i| {
            let pool = pool.clone();
            async move {
                one(
                    &pool,
                    NewTransfer::resolve(Uuid::new_v4(), hold.id, i % 2 == 0, None),
                )
                .await
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| e.code() == "pending_transfer_resolved"),
        "{results:?}"
    );
    assert_eq!(balances(&pool, alice).await.2, 0);
    assert_conserved(&pool).await;
}

#[tokio::test]
async fn a_linked_batch_applies_entirely_or_not_at_all() {
    let (pool, _g) = ledger_db().await;
    let alice = wallet(&pool, "alice", "USD", 1000).await;
    let bob = wallet(&pool, "bob", "USD", 100).await;
    let carol = wallet(&pool, "carol", "USD", 0).await;

    // The second transfer overdraws bob: the first (alice -> bob) is not applied either.
    let first = posted(alice, bob, 500);
    let second = posted(bob, carol, 700);
    assert_eq!(
        code(apply(&pool, &[first.clone(), second.clone()]).await),
        "exceeds_credits"
    );
    assert!(transfer(&pool, first.id).await.is_none());
    assert!(transfer(&pool, second.id).await.is_none());
    assert_eq!(balances(&pool, alice).await, (1000, 1000, 0, 0));
    assert_eq!(balances(&pool, bob).await, (100, 100, 0, 0));

    // In this order bob has the money when he pays: both apply.
    let first = posted(alice, bob, 600);
    let second = posted(bob, carol, 700);
    let done = apply(&pool, &[first.clone(), second.clone()])
        .await
        .unwrap();
    assert_eq!(
        done.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![first.id, second.id]
    );
    assert_eq!(balances(&pool, bob).await, (0, 0, 0, 0));
    assert_eq!(balances(&pool, carol).await, (700, 700, 0, 0));

    // Linked pendings: a refused second leaves no hold from the first.
    let hold = pending(alice, carol, 100);
    let refused = pending(bob, carol, 1);
    assert_eq!(
        code(apply(&pool, &[hold.clone(), refused]).await),
        "exceeds_credits"
    );
    assert!(transfer(&pool, hold.id).await.is_none());
    assert_eq!(balances(&pool, alice).await, (400, 400, 0, 0));
    assert_conserved(&pool).await;
}

#[tokio::test]
async fn a_frozen_account_takes_part_in_no_new_transfer_but_its_holds_can_be_voided() {
    let (pool, _g) = ledger_db().await;
    let alice = wallet(&pool, "alice", "USD", 1000).await;
    let bob = wallet(&pool, "bob", "USD", 0).await;
    let to_post = one(&pool, pending(alice, bob, 100)).await.unwrap();
    let to_void = one(&pool, pending(alice, bob, 200)).await.unwrap();

    let freeze = |frozen: bool| {
        let pool = pool.clone();
        async move {
            db::serializable(&pool, |tx| {
                Box::pin(async move { book::set_frozen(tx, alice, frozen).await })
            })
            .await
            .map_err(|e: DbError| e.to_string())
            .unwrap()
            .expect("the account exists")
        }
    };
    assert!(freeze(true).await.frozen);
    assert_eq!(
        code(one(&pool, posted(alice, bob, 1)).await),
        "account_frozen"
    );
    assert_eq!(
        code(one(&pool, posted(bob, alice, 1)).await),
        "account_frozen"
    );
    assert_eq!(
        code(one(&pool, pending(alice, bob, 1)).await),
        "account_frozen"
    );
    assert_eq!(
        code(
            one(
                &pool,
                NewTransfer::resolve(Uuid::new_v4(), to_post.id, true, None)
            )
            .await
        ),
        "account_frozen"
    );
    one(
        &pool,
        NewTransfer::resolve(Uuid::new_v4(), to_void.id, false, None),
    )
    .await
    .expect("a void releases a frozen account's hold");
    assert_eq!(balances(&pool, alice).await, (1000, 900, 100, 0));

    assert!(!freeze(false).await.frozen);
    one(
        &pool,
        NewTransfer::resolve(Uuid::new_v4(), to_post.id, true, None),
    )
    .await
    .unwrap();
    assert_eq!(balances(&pool, alice).await, (900, 900, 0, 0));
    assert_conserved(&pool).await;
}

#[tokio::test]
async fn a_wallet_cannot_go_below_zero_counting_pending_debits() {
    let (pool, _g) = ledger_db().await;
    let alice = wallet(&pool, "alice", "USD", 1000).await;
    let bob = wallet(&pool, "bob", "USD", 0).await;
    one(&pool, pending(alice, bob, 700)).await.unwrap();
    assert_eq!(
        code(one(&pool, posted(alice, bob, 301)).await),
        "exceeds_credits"
    );
    assert_eq!(
        code(one(&pool, pending(alice, bob, 301)).await),
        "exceeds_credits"
    );
    // Money pending in is not spendable either.
    assert_eq!(
        code(one(&pool, posted(bob, alice, 1)).await),
        "exceeds_credits"
    );
    one(&pool, posted(alice, bob, 300)).await.unwrap();
    assert_eq!(balances(&pool, alice).await, (700, 0, 700, 0));

    // Concurrent holds on one wallet never reserve more than it has: 10 of 16 fit.
    let carol = wallet(&pool, "carol", "USD", 1000).await;
    let results: Vec<Result<Transfer, LedgerError>> = futures_util::stream::iter(0..16)
        .map(|_| {
            let pool = pool.clone();
            async move { one(&pool, pending(carol, bob, 100)).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let held = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(held, 10, "{results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| e.code() == "exceeds_credits"),
        "{results:?}"
    );
    assert_eq!(balances(&pool, carol).await, (1000, 0, 1000, 0));
    assert_conserved(&pool).await;
}

#[tokio::test]
async fn the_same_id_replays_the_original_and_other_fields_conflict() {
    let (pool, _g) = ledger_db().await;
    let alice = wallet(&pool, "alice", "USD", 1000).await;
    let bob = wallet(&pool, "bob", "USD", 0).await;

    let t = NewTransfer::posted(Uuid::new_v4(), alice, bob, 300, "USD", Some("invoice 1"));
    let first = one(&pool, t.clone()).await.unwrap();
    let again = one(&pool, t.clone()).await.unwrap();
    assert_eq!(json!(again), json!(first));
    assert_eq!(balances(&pool, bob).await, (300, 300, 0, 0), "moved once");

    let mut changes: Vec<NewTransfer> = Vec::new();
    for f in 0..5 {
        let mut c = t.clone();
        match f {
            0 => c.amount = 301,
            1 => c.credit_account_id = alice,
            2 => c.reference = Some("invoice 2".into()),
            3 => c.kind = book::TransferKind::Pending,
            _ => c.debit_account_id = bob,
        }
        changes.push(c);
    }
    for c in changes {
        assert_eq!(
            code(one(&pool, c.clone()).await),
            "exists_with_different_fields",
            "{c:?}"
        );
    }

    // A pending transfer and its resolution replay the same way.
    let p = pending(alice, bob, 100);
    let held = one(&pool, p.clone()).await.unwrap();
    assert_eq!(json!(one(&pool, p.clone()).await.unwrap()), json!(held));
    assert_eq!(
        balances(&pool, alice).await,
        (700, 600, 100, 0),
        "held once"
    );
    let void = NewTransfer::resolve(Uuid::new_v4(), p.id, false, None);
    one(&pool, void.clone()).await.unwrap();
    let mut as_post = void.clone();
    as_post.kind = book::TransferKind::PostPending;
    assert_eq!(
        code(one(&pool, as_post).await),
        "exists_with_different_fields"
    );
    assert_eq!(balances(&pool, alice).await, (700, 700, 0, 0));

    // Accounts too: the same account again is fine, other fields conflict.
    let e = db::serializable(&pool, |tx| {
        Box::pin(async move {
            book::open_wallet_account(tx, alice, "alice", "USD", "test").await?;
            book::open_wallet_account(tx, alice, "mallory", "USD", "test").await
        })
    })
    .await;
    assert_eq!(code(e), "exists_with_different_fields");
    assert_conserved(&pool).await;
}
