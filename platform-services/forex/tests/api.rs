//! forex against real Postgres and Redis.

use std::time::Duration;

use axum::http::StatusCode;
use platform_testing::{TestIdp, call, service_app};
use serde_json::json;

#[tokio::test]
async fn quotes_spread_expiry_and_conversion() {
    let idp = TestIdp::start().await;
    let (app, ctx, _g) = service_app(
        &forex::spec(),
        &idp,
        &[("FOREX_SPREAD_BPS", "50"), ("FOREX_QUOTE_TTL_SECONDS", "1")],
    )
    .await;
    let user = idp.token("hank", &["user"]);
    let other = idp.token("ivy", &["user"]);
    let admin = idp.token("admin", &["admin"]);

    // No rates yet: a clear 422; the refresh job loads the bundled file.
    let q = |sell: &str, buy: &str, amount: i64| {
        Some(json!({"sell_currency": sell, "buy_currency": buy, "sell_amount": amount}))
    };
    let (s, b) = call(
        &app,
        "POST",
        "/quotes",
        Some(&user),
        &[],
        q("USD", "EUR", 10_000),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rate_unavailable"))
    );
    assert_eq!(forex::refresh_rates(&ctx.db, None).await.unwrap(), 13);
    let (s, rates) = call(&app, "GET", "/rates", Some(&user), &[], None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        rates
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["currency"] == "EUR" && r["per_usd"] == "0.92340000")
    );

    // 100.00 USD -> EUR at 0.9234 less 50 bps = 0.91878300 -> 91.87 EUR.
    let (s, quote) = call(
        &app,
        "POST",
        "/quotes",
        Some(&user),
        &[],
        q("USD", "EUR", 10_000),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{quote}");
    assert_eq!(
        (
            quote["buy_amount"].as_i64(),
            quote["rate"].as_str(),
            quote["mid_rate"].as_str()
        ),
        (Some(9_187), Some("0.91878300"), Some("0.92340000"))
    );
    // 10000 JPY -> USD (exponent 0 -> 2).
    let (_, b) = call(
        &app,
        "POST",
        "/quotes",
        Some(&user),
        &[],
        q("JPY", "USD", 10_000),
    )
    .await;
    assert_eq!(b["buy_amount"].as_i64(), Some(6_414), "{b}");

    // Only the quote's owner converts, once, before expiry.
    let conv = json!({"quote_id": quote["id"]});
    assert_eq!(
        call(
            &app,
            "POST",
            "/conversions",
            Some(&other),
            &[],
            Some(conv.clone())
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(
            &app,
            "POST",
            "/conversions",
            Some(&user),
            &[],
            Some(conv.clone())
        )
        .await
        .0,
        StatusCode::CREATED
    );
    let (s, b) = call(&app, "POST", "/conversions", Some(&user), &[], Some(conv)).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("quote_already_converted"))
    );
    let (_, late) = call(
        &app,
        "POST",
        "/quotes",
        Some(&user),
        &[],
        q("USD", "GBP", 5_000),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, b) = call(
        &app,
        "POST",
        "/conversions",
        Some(&user),
        &[],
        Some(json!({"quote_id": late["id"]})),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::GONE, Some("quote_expired"))
    );

    // Bad input.
    for (body, field) in [
        (q("USD", "EUR", 0), "sell_amount"),
        (q("USD", "EUR", -10), "sell_amount"),
        (q("USD", "XXX", 10), "buy_currency"),
        (q("USD", "USD", 10), "buy_currency"),
        (
            Some(json!({"sell_currency": "USD", "buy_currency": "EUR", "sell_amount": 10.5})),
            "sell_amount",
        ),
        (q("USD", "JPY", i64::MAX), "sell_amount"),
    ] {
        let (s, b) = call(&app, "POST", "/quotes", Some(&user), &[], body.clone()).await;
        assert_eq!(
            (s, b["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body:?}: {b}"
        );
    }

    // Rates by hand: admin only, decimal strings only.
    let (s, _) = call(
        &app,
        "PUT",
        "/rates/EUR",
        Some(&user),
        &[],
        Some(json!({"per_usd": "0.9"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = call(
        &app,
        "PUT",
        "/rates/EUR",
        Some(&admin),
        &[],
        Some(json!({"per_usd": 0.9})),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("per_usd"))
    );
    let (s, b) = call(
        &app,
        "PUT",
        "/rates/EUR",
        Some(&admin),
        &[],
        Some(json!({"per_usd": "0.9"})),
    )
    .await;
    assert_eq!(
        (s, b["per_usd"].as_str()),
        (StatusCode::OK, Some("0.90000000"))
    );
}
