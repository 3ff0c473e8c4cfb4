//! The ledger's part of the payment saga (`ledger::saga`) applied through the idempotent
//! consumer on a real PostgreSQL: holds (same and cross currency), refusals, posts, voids,
//! expiry, and redelivery.

use deadpool_postgres::Pool;
use ledger::LedgerError;
use ledger::book::{self, Account};
use ledger::saga::{self, PaymentCommands};
use platform_common::db;
use platform_common::events::{ConsumeOutcome, EventEnvelope, IdempotentConsumer};
use platform_testing::infra::{self, Guard};
use serde_json::{Value, json};
use uuid::Uuid;

struct Ledger {
    pool: Pool,
    consumer: IdempotentConsumer<PaymentCommands>,
    _guard: Guard,
}

impl Ledger {
    async fn start() -> Self {
        let (cfg, guard) = infra::postgres().await;
        let pool = db::pool(&cfg, 8);
        platform_common::migrate::run(&pool, "ledger", ledger::spec().migrations)
            .await
            .expect("ledger migrations apply");
        let consumer = IdempotentConsumer::new(
            "ledger-payments",
            pool.clone(),
            PaymentCommands {
                service: "svc-ledger".into(),
            },
        );
        Self {
            pool,
            consumer,
            _guard: guard,
        }
    }

    async fn wallet(&self, owner: &str, currency: &str, funds: i64) -> Uuid {
        let id = Uuid::new_v4();
        let (owner, currency) = (owner.to_owned(), currency.to_owned());
        db::serializable(&self.pool, |tx| {
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
        .unwrap();
        id
    }

    async fn account(&self, id: Uuid) -> Account {
        let c = self.pool.get().await.unwrap();
        book::account(&c, id)
            .await
            .unwrap()
            .expect("account exists")
    }

    /// (balance, available)
    async fn balance(&self, id: Uuid) -> (i64, i64) {
        let a = self.account(id).await;
        (a.balance, a.available)
    }

    async fn apply(&self, event: &EventEnvelope) -> ConsumeOutcome {
        self.consumer
            .apply(event)
            .await
            .expect("the command applies")
    }

    /// The replies the ledger wrote for `payment`, oldest first: (topic, payload).
    async fn replies(&self, payment: Uuid) -> Vec<(String, Value)> {
        let c = self.pool.get().await.unwrap();
        let rows = c
            .query(
                "SELECT topic, envelope FROM outbox WHERE message_key = $1
                 ORDER BY created_at, id",
                &[&payment.to_string()],
            )
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                let envelope: Value = r.get(1);
                assert_eq!(envelope["source"], "svc-ledger");
                assert_eq!(envelope["type"], r.get::<_, String>(0));
                (r.get(0), envelope["payload"].clone())
            })
            .collect()
    }

    async fn transfers_of(&self, payment: Uuid) -> i64 {
        let c = self.pool.get().await.unwrap();
        c.query_one(
            "SELECT count(*) FROM transfers WHERE reference = $1",
            &[&saga::reference(payment)],
        )
        .await
        .unwrap()
        .get(0)
    }

    async fn time_out(&self, ids: &[Uuid]) {
        let c = self.pool.get().await.unwrap();
        let n = c
            .execute(
                "UPDATE transfers SET timeout_at = now() - INTERVAL '1 second' WHERE id = ANY($1)",
                &[&ids],
            )
            .await
            .unwrap();
        assert_eq!(n as usize, ids.len());
    }

    async fn expire(&self) -> usize {
        db::serializable(&self.pool, |tx| {
            Box::pin(async move { saga::expire_holds(tx, "svc-ledger", 100).await })
        })
        .await
        .unwrap()
    }

    /// Per currency, all posted balances and all pending amounts sum to zero.
    async fn assert_conserved(&self) {
        let c = self.pool.get().await.unwrap();
        let rows = c
            .query(
                "SELECT currency, sum(credits_posted - debits_posted)::BIGINT,
                        sum(credits_pending - debits_pending)::BIGINT
                 FROM accounts GROUP BY currency",
                &[],
            )
            .await
            .unwrap();
        for r in rows {
            let (cur, posted, pending): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
            assert_eq!((posted, pending), (0, 0), "{cur}");
        }
    }
}

fn hold(
    payment: Uuid,
    payer: Uuid,
    payee: Uuid,
    amount: (i64, &str),
    to: (i64, &str),
) -> EventEnvelope {
    EventEnvelope::new(
        saga::HOLD_REQUESTED,
        "svc-payment",
        json!({"payment_id": payment, "payer": "alice", "payer_account_id": payer,
            "payee_account_id": payee, "amount": amount.0, "currency": amount.1,
            "payee_amount": to.0, "payee_currency": to.1, "timeout_seconds": 60}),
    )
}

fn resolve(kind: &str, payment: Uuid, transfer_ids: &Value, reason: Option<&str>) -> EventEnvelope {
    let mut payload = json!({"payment_id": payment, "transfer_ids": transfer_ids});
    if let Some(r) = reason {
        payload["reason"] = json!(r);
    }
    EventEnvelope::new(kind, "svc-payment", payload)
}

/// The only reply for `payment` so far, checked to be `topic`; its payload.
async fn only_reply(l: &Ledger, payment: Uuid, topic: &str) -> Value {
    let replies = l.replies(payment).await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].0, topic, "{replies:?}");
    replies[0].1.clone()
}

#[tokio::test]
async fn a_same_currency_hold_is_placed_once_then_posted() {
    let l = Ledger::start().await;
    let alice = l.wallet("alice", "USD", 1000).await;
    let bob = l.wallet("bob", "USD", 0).await;
    let payment = Uuid::new_v4();
    let cmd = hold(payment, alice, bob, (400, "USD"), (400, "USD"));

    assert_eq!(l.apply(&cmd).await, ConsumeOutcome::Processed);
    let placed = only_reply(&l, payment, saga::HOLD_PLACED).await;
    let hold_id = book::derived_id(payment, "hold");
    assert_eq!(
        placed,
        json!({"payment_id": payment, "transfer_ids": [hold_id]})
    );
    assert_eq!(l.balance(alice).await, (1000, 600));
    assert_eq!(l.account(bob).await.credits_pending, 400);
    let t = {
        let c = l.pool.get().await.unwrap();
        book::transfer(&c, hold_id).await.unwrap().unwrap()
    };
    assert_eq!(
        (
            t.debit_account_id,
            t.credit_account_id,
            t.amount,
            t.state.as_deref()
        ),
        (alice, bob, 400, Some("pending"))
    );
    assert_eq!(t.reference, Some(saga::reference(payment)));

    // The same envelope again (a Kafka redelivery): skipped, nothing held twice, no reply.
    assert_eq!(l.apply(&cmd).await, ConsumeOutcome::Duplicate);
    assert_eq!(l.replies(payment).await.len(), 1);
    // The same command in a new envelope (the payment asked again): the same hold, answered
    // again with the same transfer ids.
    let again = hold(payment, alice, bob, (400, "USD"), (400, "USD"));
    assert_eq!(l.apply(&again).await, ConsumeOutcome::Processed);
    let replies = l.replies(payment).await;
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[1], (saga::HOLD_PLACED.to_owned(), placed.clone()));
    assert_eq!(l.balance(alice).await, (1000, 600));

    let post = resolve(saga::POST_REQUESTED, payment, &placed["transfer_ids"], None);
    assert_eq!(l.apply(&post).await, ConsumeOutcome::Processed);
    assert_eq!(l.apply(&post).await, ConsumeOutcome::Duplicate);
    let replies = l.replies(payment).await;
    assert_eq!(replies.len(), 3, "{replies:?}");
    assert_eq!(
        replies[2],
        (
            saga::POSTED.to_owned(),
            json!({"payment_id": payment, "transfer_ids": [book::derived_id(hold_id, "post")]})
        )
    );
    assert_eq!(l.balance(alice).await, (600, 600));
    assert_eq!(l.balance(bob).await, (400, 400));
    // pending, its post
    assert_eq!(l.transfers_of(payment).await, 2);
    l.assert_conserved().await;
}

#[tokio::test]
async fn a_cross_currency_hold_goes_through_both_liquidity_accounts() {
    let l = Ledger::start().await;
    let alice = l.wallet("alice", "USD", 1000).await;
    let bob = l.wallet("bob", "EUR", 0).await;
    let payment = Uuid::new_v4();

    l.apply(&hold(payment, alice, bob, (500, "USD"), (460, "EUR")))
        .await;
    let placed = only_reply(&l, payment, saga::HOLD_PLACED).await;
    let ids = vec![
        book::derived_id(payment, "hold-debit"),
        book::derived_id(payment, "hold-credit"),
    ];
    assert_eq!(placed["transfer_ids"], json!(ids));
    let (usd_pool, eur_pool) = (
        book::liquidity_account_id("USD"),
        book::liquidity_account_id("EUR"),
    );
    assert_eq!(l.balance(alice).await, (1000, 500));
    assert_eq!(l.account(usd_pool).await.credits_pending, 500);
    assert_eq!(l.account(eur_pool).await.debits_pending, 460);
    assert_eq!(l.account(bob).await.credits_pending, 460);

    l.apply(&resolve(
        saga::POST_REQUESTED,
        payment,
        &placed["transfer_ids"],
        None,
    ))
    .await;
    assert_eq!(l.replies(payment).await[1].0, saga::POSTED);
    assert_eq!(l.balance(alice).await, (500, 500));
    assert_eq!(l.balance(bob).await, (460, 460));
    assert_eq!(l.balance(usd_pool).await.0, 500);
    assert_eq!(l.balance(eur_pool).await.0, -460);
    l.assert_conserved().await;

    // Linked: a frozen payee refuses the second hold, so the payer's is not placed either.
    let payment = Uuid::new_v4();
    db::serializable(&l.pool, |tx| {
        Box::pin(async move { book::set_frozen(tx, bob, true).await })
    })
    .await
    .unwrap();
    l.apply(&hold(payment, alice, bob, (100, "USD"), (92, "EUR")))
        .await;
    let failed = only_reply(&l, payment, saga::HOLD_FAILED).await;
    assert_eq!(
        failed,
        json!({"payment_id": payment, "reason": "wallet_frozen"})
    );
    assert_eq!(l.balance(alice).await, (500, 500));
    assert_eq!(l.transfers_of(payment).await, 0);
    l.assert_conserved().await;
}

#[tokio::test]
async fn refused_holds_reply_hold_failed_with_a_reason_and_hold_nothing() {
    let l = Ledger::start().await;
    let alice = l.wallet("alice", "USD", 1000).await;
    let bob = l.wallet("bob", "USD", 0).await;
    let eur = l.wallet("bob", "EUR", 0).await;

    let cases = [
        (hold_args(alice, bob, 1001, "USD"), "insufficient_funds"),
        (
            hold_args(alice, Uuid::new_v4(), 10, "USD"),
            "wallet_not_found",
        ),
        (hold_args(alice, alice, 10, "USD"), "same_wallet"),
        (hold_args(alice, eur, 10, "EUR"), "currency_mismatch"),
    ];
    for ((payer, payee, amount, currency), reason) in cases {
        let payment = Uuid::new_v4();
        let cmd = hold(
            payment,
            payer,
            payee,
            (amount, currency),
            (amount, currency),
        );
        assert_eq!(l.apply(&cmd).await, ConsumeOutcome::Processed);
        assert_eq!(
            only_reply(&l, payment, saga::HOLD_FAILED).await,
            json!({"payment_id": payment, "reason": reason})
        );
        assert_eq!(l.transfers_of(payment).await, 0, "{reason}");
    }
    assert_eq!(l.balance(alice).await, (1000, 1000));
    assert_eq!(l.account(bob).await.credits_pending, 0);
    l.assert_conserved().await;
}

fn hold_args(payer: Uuid, payee: Uuid, amount: i64, currency: &str) -> (Uuid, Uuid, i64, &str) {
    (payer, payee, amount, currency)
}

#[tokio::test]
async fn a_void_releases_the_hold_and_keeps_the_reason() {
    let l = Ledger::start().await;
    let alice = l.wallet("alice", "USD", 1000).await;
    let bob = l.wallet("bob", "EUR", 0).await;
    let payment = Uuid::new_v4();
    l.apply(&hold(payment, alice, bob, (300, "USD"), (270, "EUR")))
        .await;
    let placed = only_reply(&l, payment, saga::HOLD_PLACED).await;
    assert_eq!(l.balance(alice).await, (1000, 700));

    let void = resolve(
        saga::VOID_REQUESTED,
        payment,
        &placed["transfer_ids"],
        Some("wallet_frozen"),
    );
    l.apply(&void).await;
    let replies = l.replies(payment).await;
    assert_eq!(
        replies[1],
        (
            saga::VOIDED.to_owned(),
            json!({"payment_id": payment, "reason": "wallet_frozen"})
        )
    );
    assert_eq!(l.balance(alice).await, (1000, 1000));
    assert_eq!(l.account(bob).await.credits_pending, 0);

    // Voiding again (a new envelope) finds nothing to release and says voided again.
    l.apply(&resolve(
        saga::VOID_REQUESTED,
        payment,
        &placed["transfer_ids"],
        Some("wallet_frozen"),
    ))
    .await;
    assert_eq!(l.replies(payment).await[2].0, saga::VOIDED);
    // A post after the void is refused: the payment is told, nothing moves.
    l.apply(&resolve(
        saga::POST_REQUESTED,
        payment,
        &placed["transfer_ids"],
        None,
    ))
    .await;
    assert_eq!(
        l.replies(payment).await[3],
        (
            saga::POST_FAILED.to_owned(),
            json!({"payment_id": payment, "reason": "hold_resolved"})
        )
    );
    assert_eq!(l.balance(alice).await, (1000, 1000));
    assert_eq!(l.balance(bob).await, (0, 0));
    l.assert_conserved().await;
}

#[tokio::test]
async fn expired_holds_are_voided_and_their_payments_told() {
    let l = Ledger::start().await;
    let alice = l.wallet("alice", "USD", 1000).await;
    let bob = l.wallet("bob", "EUR", 0).await;
    let carol = l.wallet("carol", "USD", 0).await;
    let (cross, same, live) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    l.apply(&hold(cross, alice, bob, (300, "USD"), (270, "EUR")))
        .await;
    l.apply(&hold(same, alice, carol, (200, "USD"), (200, "USD")))
        .await;
    l.apply(&hold(live, alice, carol, (100, "USD"), (100, "USD")))
        .await;
    assert_eq!(l.balance(alice).await, (1000, 400));
    let cross_ids = l.replies(cross).await[0].1["transfer_ids"].clone();
    let same_ids = l.replies(same).await[0].1["transfer_ids"].clone();
    let ids: Vec<Uuid> =
        serde_json::from_value(json!([cross_ids[0], cross_ids[1], same_ids[0]])).unwrap();
    l.time_out(&ids).await;

    assert_eq!(
        l.expire().await,
        3,
        "both legs of the cross-currency hold, and the other"
    );
    for payment in [cross, same] {
        let replies = l.replies(payment).await;
        assert_eq!(replies.len(), 2, "one voided per payment: {replies:?}");
        assert_eq!(
            replies[1],
            (
                saga::VOIDED.to_owned(),
                json!({"payment_id": payment, "reason": "hold_expired"})
            )
        );
    }
    assert_eq!(l.replies(live).await.len(), 1, "the live hold stays");
    assert_eq!(l.balance(alice).await, (1000, 900));
    assert_eq!(l.account(bob).await.credits_pending, 0);
    assert_eq!(l.expire().await, 0);

    // A post that comes too late is refused with the reason.
    l.apply(&resolve(saga::POST_REQUESTED, same, &same_ids, None))
        .await;
    assert_eq!(
        l.replies(same).await[2],
        (
            saga::POST_FAILED.to_owned(),
            json!({"payment_id": same, "reason": "hold_expired"})
        )
    );
    // Timed out but not swept yet: the post is refused too, and the void that follows releases.
    let live_ids = l.replies(live).await[0].1["transfer_ids"].clone();
    let live_id: Vec<Uuid> = serde_json::from_value(live_ids.clone()).unwrap();
    l.time_out(&live_id).await;
    l.apply(&resolve(saga::POST_REQUESTED, live, &live_ids, None))
        .await;
    assert_eq!(l.replies(live).await[1].1["reason"], json!("hold_expired"));
    l.apply(&resolve(
        saga::VOID_REQUESTED,
        live,
        &live_ids,
        Some("hold_expired"),
    ))
    .await;
    assert_eq!(l.replies(live).await[2].0, saga::VOIDED);
    assert_eq!(l.balance(alice).await, (1000, 1000));
    assert_eq!(l.balance(carol).await, (0, 0));
    l.assert_conserved().await;
}

#[tokio::test]
async fn a_command_that_is_not_the_ledgers_is_consumed_without_effect() {
    let l = Ledger::start().await;
    let payment = Uuid::new_v4();
    let other = EventEnvelope::new(
        "payment.screened",
        "svc-payment",
        json!({"payment_id": payment}),
    );
    assert_eq!(l.apply(&other).await, ConsumeOutcome::Processed);
    assert!(l.replies(payment).await.is_empty());
}
