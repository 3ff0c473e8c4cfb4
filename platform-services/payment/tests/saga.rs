//! The payment saga end to end in process: the payment API on real Postgres, the ledger's
//! consumer (`ledger::saga::PaymentCommands`) and the payment's (`payment::saga::Saga`) fed by
//! an in-process pump over the outbox with forex's (`forex::PaymentConversions`, on its built-in
//! rates), and a rule engine stand-in that counts calls.

mod harness;

use axum::http::StatusCode;
use futures_util::StreamExt;
use harness::{KYC_THRESHOLD, Payments};
use serde_json::{Value, json};
use uuid::Uuid;

fn statuses(p: &Value) -> Vec<&str> {
    p["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect()
}

fn body(amount: i64, currency: &str, payee: Uuid) -> Value {
    json!({"amount": amount, "currency": currency, "payee_wallet_id": payee, "description": "rent"})
}

#[tokio::test]
async fn a_same_currency_payment_is_screened_held_posted_and_completed() {
    let t = Payments::start().await;
    let (alice, alice_token) = t.user("alice", &["user"]);
    let (bob, _) = t.user("bob", &["user"]);
    let payer = t.wallet(&alice, "USD", 10_000).await;
    let payee = t.wallet(&bob, "USD", 0).await;

    let (s, p) = t.pay(&alice_token, "k1", body(2_500, "USD", payee)).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    assert_eq!(p["status"], "screened");
    assert_eq!(
        (
            &p["owner"],
            &p["payer_name"],
            &p["payer_wallet_id"],
            &p["payee_wallet_id"],
            &p["payee_currency"]
        ),
        (
            &json!(alice),
            &json!("alice"),
            &json!(payer),
            &json!(payee),
            &json!("USD")
        )
    );
    let calls = t.rules.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["payment_id"], p["id"]);
    assert_eq!(
        calls[0]["user"],
        json!(alice),
        "the rule engine gets the subject"
    );

    let delivered = t.pump.drain().await;
    assert_eq!(
        delivered,
        [
            "payment.initiated",
            "payment.screened",
            "payment.hold_requested",
            "ledger.hold_placed",
            "payment.post_requested",
            "ledger.posted",
            "payment.completed"
        ]
    );
    let done = t.get(&alice_token, &p["id"]).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        statuses(&done),
        ["initiated", "screened", "held", "completed"]
    );
    assert_eq!(done["failure_reason"], Value::Null);
    assert_eq!(done["hold_ids"].as_array().unwrap().len(), 1);
    assert_eq!(t.balance(payer).await, (7_500, 7_500));
    assert_eq!(t.balance(payee).await, (2_500, 2_500));

    let completed = t.events(&p["id"], "payment.completed").await;
    assert_eq!(completed.len(), 1);
    assert_eq!(
        (
            &completed[0]["payment_id"],
            &completed[0]["status"],
            &completed[0]["amount"]
        ),
        (&p["id"], &json!("completed"), &json!(2_500))
    );
    assert!(t.events(&p["id"], "payment.failed").await.is_empty());

    // Everything delivered again is skipped by every inbox: nothing moves twice.
    t.pump.redeliver_all().await;
    assert_eq!(t.balance(payee).await, (2_500, 2_500));
    // The retried request answers the payment as it is now.
    let (s, again) = t.pay(&alice_token, "k1", body(2_500, "USD", payee)).await;
    assert_eq!(
        (s, &again["id"], &again["status"]),
        (StatusCode::CREATED, &p["id"], &json!("completed"))
    );
    assert_eq!(t.rules.calls().len(), 1);
    t.assert_conserved().await;
}

#[tokio::test]
async fn a_cross_currency_payment_is_converted_then_completes() {
    let t = Payments::start().await;
    let (alice, alice_token) = t.user("alice", &["user"]);
    let (bob, _) = t.user("bob", &["user"]);
    let payer = t.wallet(&alice, "USD", 10_000).await;
    let payee = t.wallet(&bob, "EUR", 0).await;

    let (s, p) = t.pay(&alice_token, "x1", body(5_000, "USD", payee)).await;
    assert_eq!(
        (s, &p["payee_currency"]),
        (StatusCode::CREATED, &json!("EUR")),
        "{p}"
    );
    t.pump.drain().await;
    let done = t.get(&alice_token, &p["id"]).await;
    assert_eq!(
        statuses(&done),
        ["initiated", "screened", "converted", "held", "completed"],
        "{done}"
    );
    let conversion = t.events(&p["id"], "forex.converted").await;
    assert_eq!(conversion.len(), 1);
    assert_eq!(
        (
            &conversion[0]["sell_amount"],
            &conversion[0]["buy_currency"]
        ),
        (&json!(5_000), &json!("EUR"))
    );
    let converted = conversion[0]["buy_amount"].as_i64().unwrap();
    assert!(converted > 0);
    assert_eq!(
        (&done["payee_amount"], &done["rate_e8"], &done["quote_id"]),
        (
            &json!(converted),
            &conversion[0]["rate_e8"],
            &conversion[0]["quote_id"]
        )
    );
    assert_eq!(done["hold_ids"].as_array().unwrap().len(), 2, "both legs");
    assert_eq!(t.balance(payer).await, (5_000, 5_000));
    assert_eq!(t.balance(payee).await, (converted, converted));
    t.assert_conserved().await;
}

#[tokio::test]
async fn insufficient_funds_fail_the_payment_and_hold_nothing() {
    let t = Payments::start().await;
    let (alice, alice_token) = t.user("alice", &["user"]);
    let (bob, _) = t.user("bob", &["user"]);
    let payer = t.wallet(&alice, "USD", 1_000).await;
    let payee = t.wallet(&bob, "USD", 0).await;

    let (_, p) = t.pay(&alice_token, "poor", body(2_500, "USD", payee)).await;
    t.pump.drain().await;
    let done = t.get(&alice_token, &p["id"]).await;
    assert_eq!(
        (&done["status"], &done["failure_reason"]),
        (&json!("failed"), &json!("insufficient_funds")),
        "{done}"
    );
    assert_eq!(statuses(&done), ["initiated", "screened", "failed"]);
    let last = done["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["reason"], "insufficient_funds");
    assert_eq!(t.balance(payer).await, (1_000, 1_000), "nothing held");
    assert_eq!(t.balance(payee).await, (0, 0));
    let failed = t.events(&p["id"], "payment.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (&failed[0]["status"], &failed[0]["failure_reason"]),
        (&json!("failed"), &json!("insufficient_funds"))
    );
    assert!(t.events(&p["id"], "payment.completed").await.is_empty());
    t.assert_conserved().await;
}

#[tokio::test]
async fn a_frozen_payee_fails_the_payment_and_an_expired_hold_is_released() {
    let t = Payments::start().await;
    let (alice, alice_token) = t.user("alice", &["user"]);
    let (bob, _) = t.user("bob", &["user"]);
    let payer = t.wallet(&alice, "USD", 10_000).await;
    let payee = t.wallet(&bob, "USD", 0).await;
    let frozen = t.wallet(&bob, "USD", 0).await;
    t.freeze(frozen).await;

    let (_, p) = t.pay(&alice_token, "f1", body(1_000, "USD", frozen)).await;
    t.pump.drain().await;
    let done = t.get(&alice_token, &p["id"]).await;
    assert_eq!(done["failure_reason"], "wallet_frozen", "{done}");

    // Held, then the payee's wallet is frozen before the post: the post is refused, the hold
    // voided first, and only then does the payment fail.
    let (_, p) = t.pay(&alice_token, "f2", body(1_000, "USD", payee)).await;
    t.pump
        .drain_until(|topic| topic == "payment.post_requested")
        .await;
    t.freeze(payee).await;
    let delivered = t.pump.drain().await;
    assert_eq!(
        delivered,
        [
            "payment.post_requested",
            "ledger.post_failed",
            "payment.void_requested",
            "ledger.voided",
            "payment.failed"
        ]
    );
    let done = t.get(&alice_token, &p["id"]).await;
    assert_eq!(
        statuses(&done),
        ["initiated", "screened", "held", "voiding", "failed"],
        "{done}"
    );
    assert_eq!(done["failure_reason"], "wallet_frozen");
    assert_eq!(
        t.balance(payer).await,
        (10_000, 10_000),
        "the hold was released"
    );
    let payee = t.wallet(&bob, "USD", 0).await;

    // Held, then the hold times out before the post is delivered: the payment fails
    // `hold_expired` and the payer gets everything back.
    let (_, p) = t.pay(&alice_token, "e1", body(1_000, "USD", payee)).await;
    let delivered = t
        .pump
        .drain_until(|topic| topic == "payment.post_requested")
        .await;
    assert_eq!(
        delivered.last().map(String::as_str),
        Some("ledger.hold_placed")
    );
    assert_eq!(t.get(&alice_token, &p["id"]).await["status"], "held");
    assert_eq!(t.balance(payer).await, (10_000, 9_000));
    t.ctx
        .db
        .get()
        .await
        .unwrap()
        .execute(
            "UPDATE transfers SET timeout_at = now() - INTERVAL '1 second' WHERE state = 'pending'",
            &[],
        )
        .await
        .unwrap();
    let expired = platform_common::db::serializable(&t.ctx.db, |tx| {
        Box::pin(async move { ledger::saga::expire_holds(tx, "svc-ledger", 100).await })
    })
    .await
    .unwrap();
    assert_eq!(expired, 1);
    t.pump.drain().await;
    let done = t.get(&alice_token, &p["id"]).await;
    assert_eq!(
        (&done["status"], &done["failure_reason"]),
        (&json!("failed"), &json!("hold_expired")),
        "{done}"
    );
    assert_eq!(t.balance(payer).await, (10_000, 10_000));
    assert_eq!(t.balance(payee).await, (0, 0));
    assert_eq!(t.events(&p["id"], "payment.failed").await.len(), 1);
    t.assert_conserved().await;
}

#[tokio::test]
async fn a_payment_held_for_review_completes_when_approved_and_ends_when_rejected() {
    let t = Payments::start().await;
    let (olga, olga_token) = t.user("olga", &["user", "ops_user"]);
    let (_, oscar_token) = t.user("oscar", &["ops_user"]);
    let (_, user_token) = t.user("ursula", &["user"]);
    let (bob, _) = t.user("bob", &["user"]);
    let payer = t.wallet(&olga, "USD", 200_000).await;
    let payee = t.wallet(&bob, "USD", 0).await;
    let amount = harness::REVIEW_ABOVE + 1;
    assert!(amount <= KYC_THRESHOLD);

    let (s, p) = t.pay(&olga_token, "r1", body(amount, "USD", payee)).await;
    assert_eq!(
        (s, &p["status"]),
        (StatusCode::CREATED, &json!("pending_review")),
        "{p}"
    );
    assert!(p["reasons"][0].as_str().unwrap().contains("review"));
    assert_eq!(
        t.pump.drain().await,
        ["payment.initiated"],
        "nothing moves while it waits"
    );
    assert_eq!(t.balance(payer).await, (200_000, 200_000));

    // Not the payer, even an ops_user; not a plain user.
    let (s, b) = t.review(&olga_token, &p["id"], "approve").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("self_approval_forbidden"))
    );
    let (s, b) = t.review(&user_token, &p["id"], "approve").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    assert_eq!(
        t.get(&olga_token, &p["id"]).await["status"],
        "pending_review"
    );

    let (s, b) = t.review(&oscar_token, &p["id"], "approve").await;
    assert_eq!(
        (s, &b["status"]),
        (StatusCode::OK, &json!("screened")),
        "{b}"
    );
    let (s, b) = t.review(&oscar_token, &p["id"], "reject").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_pending_review"))
    );
    t.pump.drain().await;
    let done = t.get(&olga_token, &p["id"]).await;
    assert_eq!(
        statuses(&done),
        [
            "initiated",
            "pending_review",
            "screened",
            "held",
            "completed"
        ],
        "{done}"
    );
    assert_eq!(t.balance(payee).await, (amount, amount));

    // Rejected: final, with its reason, and announced.
    let (_, p) = t.pay(&olga_token, "r2", body(amount, "USD", payee)).await;
    let (s, b) = t.review(&oscar_token, &p["id"], "reject").await;
    assert_eq!(
        (s, &b["status"], &b["failure_reason"]),
        (
            StatusCode::OK,
            &json!("rejected"),
            &json!("review_rejected")
        ),
        "{b}"
    );
    t.pump.drain().await;
    assert_eq!(t.get(&olga_token, &p["id"]).await["status"], "rejected");
    let failed = t.events(&p["id"], "payment.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["failure_reason"], "review_rejected");
    assert_eq!(t.balance(payer).await, (200_000 - amount, 200_000 - amount));
    t.assert_conserved().await;
}

#[tokio::test]
async fn above_the_kyc_threshold_an_unverified_payer_is_rejected_without_screening() {
    let t = Payments::start().await;
    let (alice, alice_token) = t.user("alice", &["user"]);
    let (bob, _) = t.user("bob", &["user"]);
    t.wallet(&alice, "USD", 500_000).await;
    let payee = t.wallet(&bob, "USD", 0).await;
    let above = KYC_THRESHOLD + 1;

    let (s, p) = t.pay(&alice_token, "big", body(above, "USD", payee)).await;
    assert_eq!(
        (s, &p["status"], &p["failure_reason"]),
        (
            StatusCode::CREATED,
            &json!("rejected"),
            &json!("kyc_required")
        ),
        "{p}"
    );
    assert!(
        t.rules.calls().is_empty(),
        "no rule-engine call, so no velocity count"
    );
    assert_eq!(t.events(&p["id"], "payment.failed").await.len(), 1);

    // At the threshold, or once verified, the rule engine decides.
    let (_, p) = t
        .pay(&alice_token, "at", body(KYC_THRESHOLD, "USD", payee))
        .await;
    assert_ne!(p["failure_reason"], "kyc_required", "{p}");
    assert_eq!(t.rules.calls().len(), 1);
    t.set_kyc(&alice, "pending").await;
    let (_, p) = t
        .pay(&alice_token, "big-2", body(above, "USD", payee))
        .await;
    assert_eq!(p["failure_reason"], "kyc_required", "{p}");
    t.set_kyc(&alice, "verified").await;
    let (_, p) = t
        .pay(&alice_token, "big-3", body(above, "USD", payee))
        .await;
    assert_eq!(p["status"], "pending_review", "{p}");
    assert_eq!(t.rules.calls().len(), 2);
}

#[tokio::test]
async fn one_key_sent_twenty_times_at_once_makes_one_payment_screened_once() {
    let t = Payments::start().await;
    let (alice, alice_token) = t.user("alice", &["user"]);
    let (bob, _) = t.user("bob", &["user"]);
    let payer = t.wallet(&alice, "USD", 10_000).await;
    let payee = t.wallet(&bob, "USD", 0).await;

    let answers: Vec<(StatusCode, Value)> = futures_util::stream::iter(0..20)
        .map(|_| t.pay(&alice_token, "same", body(1_000, "USD", payee)))
        .buffer_unordered(20)
        .collect()
        .await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(s, b)| {
            assert_eq!(*s, StatusCode::CREATED, "{b}");
            b["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one payment: {ids:?}");
    let c = t.ctx.db.get().await.unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM payments", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let calls = t.rules.calls();
    assert_eq!(calls.len(), 1, "one rule-engine call: {calls:?}");
    assert_eq!(
        calls[0]["payment_id"].as_str(),
        ids.first().map(String::as_str)
    );
    assert_eq!(
        t.rules.unreserved_calls(),
        0,
        "the key was reserved before screening"
    );

    t.pump.drain().await;
    assert_eq!(t.balance(payer).await, (9_000, 9_000), "paid once");
    assert_eq!(t.balance(payee).await, (1_000, 1_000));
    t.assert_conserved().await;
}
