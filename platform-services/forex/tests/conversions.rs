//! The payment saga's forex step (`PaymentConversions` on `payment.screened`) against real
//! Postgres, applied through the idempotent consumer as the worker will.

use std::time::Duration;

use forex::{
    CONVERSIONS_CONSUMER, FOREX_CONVERSION_FAILED, FOREX_CONVERTED, ManualRates,
    PaymentConversions, conversion_quote_id,
};
use platform_common::db::{self, Pool};
use platform_common::events::{ConsumeOutcome, EventEnvelope, IdempotentConsumer};
use platform_common::migrate;
use platform_testing::infra;
use serde_json::{Value, json};
use uuid::Uuid;

/// A database with forex's tables, and the consumer (50 bps, rates quoted for an hour).
async fn setup() -> (Pool, IdempotentConsumer<PaymentConversions>, infra::Guard) {
    let (cfg, guard) = infra::postgres().await;
    let pool = db::pool(&cfg, 4);
    migrate::run(&pool, "forex", forex::spec().migrations)
        .await
        .unwrap();
    let handler = PaymentConversions::new(50, Duration::from_secs(3600));
    let consumer = IdempotentConsumer::new(CONVERSIONS_CONSUMER, pool.clone(), handler);
    (pool, consumer, guard)
}

async fn load_rates(pool: &Pool) {
    let r = forex::refresh_rates(pool, None, ManualRates::Keep)
        .await
        .unwrap();
    assert_eq!(r.loaded, 13);
}

fn screened(payment_id: Uuid, amount: i64, currency: &str, payee_currency: &str) -> EventEnvelope {
    EventEnvelope::new(
        "payment.screened",
        "svc-payment",
        json!({
            "payment_id": payment_id,
            "payer": "sub-alice",
            "payer_account_id": Uuid::new_v4(),
            "payee_account_id": Uuid::new_v4(),
            "amount": amount,
            "currency": currency,
            "payee_currency": payee_currency,
        }),
    )
}

/// Every outbox row: topic, message key, envelope.
async fn outbox(pool: &Pool) -> Vec<(String, String, EventEnvelope)> {
    let c = pool.get().await.unwrap();
    c.query(
        "SELECT topic, message_key, envelope FROM outbox ORDER BY created_at",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get(0),
            r.get(1),
            serde_json::from_value(r.get::<_, Value>(2)).unwrap(),
        )
    })
    .collect()
}

async fn count(pool: &Pool, sql: &str) -> i64 {
    pool.get()
        .await
        .unwrap()
        .query_one(sql, &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_cross_currency_payment_is_converted_once() {
    let (pool, consumer, _g) = setup().await;
    load_rates(&pool).await;
    let payment_id = Uuid::new_v4();
    let event = screened(payment_id, 10_000, "USD", "EUR");

    assert_eq!(
        consumer.apply(&event).await.unwrap(),
        ConsumeOutcome::Processed
    );
    let sent = outbox(&pool).await;
    assert_eq!(sent.len(), 1);
    let (topic, key, envelope) = &sent[0];
    let quote_id = conversion_quote_id(payment_id);
    assert_eq!(
        (topic.as_str(), key.as_str(), envelope.kind.as_str()),
        (
            FOREX_CONVERTED,
            payment_id.to_string().as_str(),
            FOREX_CONVERTED
        )
    );
    assert_eq!(envelope.source, "svc-forex");
    // 100.00 USD -> EUR at 0.9234 less 50 bps = 0.91878300 -> 91.87 EUR.
    assert_eq!(
        envelope.payload,
        json!({
            "payment_id": payment_id.to_string(),
            "quote_id": quote_id.to_string(),
            "sell_currency": "USD",
            "sell_amount": 10_000,
            "buy_currency": "EUR",
            "buy_amount": 9_187,
            "rate_e8": 91_878_300,
        })
    );
    // The quote is the payer's, converted, and names the payment.
    let c = pool.get().await.unwrap();
    let row = c
        .query_one(
            "SELECT owner_id, payment_id, converted_at IS NOT NULL, buy_amount FROM quotes WHERE id = $1",
            &[&quote_id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "sub-alice");
    assert_eq!(row.get::<_, Uuid>(1), payment_id);
    assert!(row.get::<_, bool>(2));
    assert_eq!(row.get::<_, i64>(3), 9_187);

    // The same event again: skipped by the inbox.
    assert_eq!(
        consumer.apply(&event).await.unwrap(),
        ConsumeOutcome::Duplicate
    );
    // The same payment announced again under a new event id: not converted twice.
    let again = screened(payment_id, 10_000, "USD", "EUR");
    assert_eq!(
        consumer.apply(&again).await.unwrap(),
        ConsumeOutcome::Processed
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM quotes").await, 1);
    assert_eq!(outbox(&pool).await.len(), 1);
}

#[tokio::test]
async fn a_same_currency_payment_is_left_alone() {
    let (pool, consumer, _g) = setup().await;
    load_rates(&pool).await;
    let event = screened(Uuid::new_v4(), 10_000, "EUR", "EUR");
    assert_eq!(
        consumer.apply(&event).await.unwrap(),
        ConsumeOutcome::Processed
    );
    assert!(outbox(&pool).await.is_empty());
    assert_eq!(count(&pool, "SELECT count(*) FROM quotes").await, 0);
}

/// The one event sent: a `forex.conversion_failed` for `payment_id`; its reason and detail.
async fn failure(pool: &Pool, payment_id: Uuid) -> (String, String) {
    let sent = outbox(pool).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (topic, key, envelope) = &sent[0];
    assert_eq!(
        (topic.as_str(), key.as_str()),
        (FOREX_CONVERSION_FAILED, payment_id.to_string().as_str())
    );
    let p = &envelope.payload;
    assert_eq!(p["payment_id"], json!(payment_id.to_string()));
    assert_eq!(count(pool, "SELECT count(*) FROM quotes").await, 0);
    (
        p["reason"].as_str().unwrap().to_string(),
        p["detail"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn no_rate_fails_the_conversion_as_rate_unavailable() {
    let (pool, consumer, _g) = setup().await;
    let payment_id = Uuid::new_v4();
    consumer
        .apply(&screened(payment_id, 10_000, "USD", "EUR"))
        .await
        .unwrap();
    let (reason, detail) = failure(&pool, payment_id).await;
    assert_eq!(reason, "rate_unavailable");
    assert!(detail.contains("USD"), "{detail}");
}

#[tokio::test]
async fn a_stale_rate_fails_the_conversion_as_rate_stale() {
    let (pool, consumer, _g) = setup().await;
    load_rates(&pool).await;
    // Loaded two hours ago; the maximum age is an hour.
    pool.get()
        .await
        .unwrap()
        .execute(
            "UPDATE rates SET updated_at = now() - interval '2 hours' WHERE currency = 'EUR'",
            &[],
        )
        .await
        .unwrap();
    let payment_id = Uuid::new_v4();
    consumer
        .apply(&screened(payment_id, 10_000, "USD", "EUR"))
        .await
        .unwrap();
    let (reason, detail) = failure(&pool, payment_id).await;
    assert_eq!(reason, "rate_stale");
    assert!(detail.contains("EUR"), "{detail}");
}

#[test]
fn the_quote_id_is_derived_from_the_payment_id() {
    let p = Uuid::new_v4();
    assert_eq!(conversion_quote_id(p), conversion_quote_id(p));
    assert_ne!(conversion_quote_id(p), conversion_quote_id(Uuid::new_v4()));
    assert_ne!(conversion_quote_id(p), p);
}
