//! wallet against real Postgres and Redis.

use axum::http::StatusCode;
use platform_testing::{TestIdp, call, service_app};
use serde_json::json;

#[tokio::test]
async fn wallets_balances_and_freeze() {
    let idp = TestIdp::start().await;
    let (app, _ctx, _g) = service_app(&wallet::spec(), &idp, &[]).await;
    let frank = idp.token("frank", &["user"]);
    let grace = idp.token("grace", &["user"]);
    let ops = idp.token("ops", &["ops_user"]);
    let fin = idp.token("fin", &["finance"]);

    let (s, w) = call(
        &app,
        "POST",
        "/wallets",
        Some(&frank),
        &[],
        Some(json!({"currency": "EUR"})),
    )
    .await;
    assert_eq!(
        (s, w["balance"].as_i64(), w["status"].as_str()),
        (StatusCode::CREATED, Some(0), Some("active"))
    );
    let id = w["id"].as_str().unwrap().to_string();
    let (s, b) = call(
        &app,
        "POST",
        "/wallets",
        Some(&frank),
        &[],
        Some(json!({"currency": "EUR"})),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("wallet_exists"))
    );
    let (s, b) = call(
        &app,
        "POST",
        "/wallets",
        Some(&frank),
        &[],
        Some(json!({"currency": "EURO"})),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("currency"))
    );

    let entry = |dir: &str, amount: i64, r: &str| {
        Some(json!({"direction": dir, "amount": amount, "reference": r}))
    };
    let path = format!("/wallets/{id}/entries");
    assert_eq!(
        call(
            &app,
            "POST",
            &path,
            Some(&frank),
            &[],
            entry("credit", 500, "r1")
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let (s, b) = call(
        &app,
        "POST",
        &path,
        Some(&fin),
        &[],
        entry("credit", 500, "r1"),
    )
    .await;
    assert_eq!((s, b["balance"].as_i64()), (StatusCode::OK, Some(500)));
    let (_, b) = call(
        &app,
        "POST",
        &path,
        Some(&fin),
        &[],
        entry("credit", 500, "r1"),
    )
    .await;
    assert_eq!(
        b["balance"].as_i64(),
        Some(500),
        "same reference is a no-op"
    );
    let (s, b) = call(
        &app,
        "POST",
        &path,
        Some(&fin),
        &[],
        entry("credit", 501, "r1"),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("reference_reused"))
    );
    let (s, b) = call(
        &app,
        "POST",
        &path,
        Some(&fin),
        &[],
        entry("debit", 501, "r2"),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("insufficient_funds"))
    );
    let (s, b) = call(
        &app,
        "POST",
        &path,
        Some(&fin),
        &[],
        entry("debit", -1, "r3"),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("amount"))
    );
    let (s, b) = call(
        &app,
        "POST",
        &path,
        Some(&fin),
        &[],
        entry("sideways", 1, "r3"),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("direction"))
    );

    // Freeze: only ops_user/admin; frozen wallets take no entries.
    let freeze = format!("/wallets/{id}/freeze");
    assert_eq!(
        call(&app, "POST", &freeze, Some(&frank), &[], Some(json!({})))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&app, "POST", &freeze, Some(&fin), &[], Some(json!({})))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (s, b) = call(
        &app,
        "POST",
        &freeze,
        Some(&ops),
        &[],
        Some(json!({"reason": "fraud check"})),
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("frozen")));
    let (s, b) = call(
        &app,
        "POST",
        &path,
        Some(&fin),
        &[],
        entry("debit", 100, "r4"),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("wallet_frozen"))
    );
    let (s, b) = call(
        &app,
        "POST",
        &format!("/wallets/{id}/unfreeze"),
        Some(&ops),
        &[],
        None,
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("active")));
    let (_, b) = call(
        &app,
        "POST",
        &path,
        Some(&fin),
        &[],
        entry("debit", 100, "r4"),
    )
    .await;
    assert_eq!(b["balance"].as_i64(), Some(400));

    // Visibility.
    assert_eq!(
        call(
            &app,
            "GET",
            &format!("/wallets/{id}"),
            Some(&grace),
            &[],
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, "GET", "/wallets?owner=frank", Some(&grace), &[], None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (s, b) = call(&app, "GET", "/wallets?owner=frank", Some(&ops), &[], None).await;
    assert_eq!(
        (s, b.as_array().map(|a| a.len())),
        (StatusCode::OK, Some(1))
    );
}
