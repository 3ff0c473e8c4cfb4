//! rule-engine against real Postgres and Redis.

use axum::http::StatusCode;
use platform_testing::{TestIdp, call, service_app};
use serde_json::json;

#[tokio::test]
async fn limits_velocity_and_rule_management() {
    let idp = TestIdp::start().await;
    let (app, _ctx, _g) = service_app(&rule_engine::spec(), &idp, &[]).await;
    let user = idp.token("carol", &["user"]);
    let admin = idp.token("admin", &["admin"]);
    let eval = |amount: i64, currency: &str, pid: &str| json!({"user": "carol", "roles": ["user"], "amount": amount, "currency": currency, "payment_id": pid});

    let (s, b) = call(
        &app,
        "POST",
        "/evaluate",
        Some(&user),
        &[],
        Some(eval(100, "USD", "p1")),
    )
    .await;
    assert_eq!(
        (s, b["decision"].as_str()),
        (StatusCode::OK, Some("allow")),
        "{b}"
    );
    let (_, b) = call(
        &app,
        "POST",
        "/evaluate",
        Some(&user),
        &[],
        Some(eval(600_000, "USD", "p2")),
    )
    .await;
    assert_eq!(b["decision"], "review", "{b}");
    let (_, b) = call(
        &app,
        "POST",
        "/evaluate",
        Some(&user),
        &[],
        Some(eval(1_000_001, "USD", "p3")),
    )
    .await;
    assert_eq!(b["decision"], "deny", "{b}");
    let (_, b) = call(
        &app,
        "POST",
        "/evaluate",
        Some(&user),
        &[],
        Some(eval(10, "JPY", "p4")),
    )
    .await;
    assert_eq!(b["decision"], "deny", "no JPY limit for user: {b}");

    // Claiming a role the token lacks does not raise the limit.
    let (_, b) = call(
        &app,
        "POST",
        "/evaluate",
        Some(&user),
        &[],
        Some(json!({"user": "carol", "roles": ["admin"], "amount": 10, "currency": "USD"})),
    )
    .await;
    assert_eq!(b["decision"], "deny", "{b}");
    // Evaluating someone else needs admin or ops_user.
    let (s, _) = call(
        &app,
        "POST",
        "/evaluate",
        Some(&user),
        &[],
        Some(json!({"user": "dave", "roles": ["user"], "amount": 10, "currency": "USD"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Velocity: tighten EUR to 3 per hour; re-evaluating one payment id counts once.
    let (s, _) = call(
        &app,
        "PUT",
        "/rules/velocity/EUR",
        Some(&user),
        &[],
        Some(json!({"window_seconds": 3600, "max_count": 3, "max_total": 1000000})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &app,
        "PUT",
        "/rules/velocity/EUR",
        Some(&admin),
        &[],
        Some(json!({"window_seconds": 3600, "max_count": 3, "max_total": 1000000})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    for pid in ["e1", "e1", "e2", "e3"] {
        let (_, b) = call(
            &app,
            "POST",
            "/evaluate",
            Some(&user),
            &[],
            Some(eval(10, "EUR", pid)),
        )
        .await;
        assert_eq!(b["decision"], "allow", "{pid}: {b}");
    }
    let (_, b) = call(
        &app,
        "POST",
        "/evaluate",
        Some(&user),
        &[],
        Some(eval(10, "EUR", "e4")),
    )
    .await;
    assert_eq!(b["decision"], "review", "{b}");
    assert!(
        b["reasons"][0].as_str().unwrap().contains("4 payments"),
        "{b}"
    );

    // Limits: admin sets and deletes; bad values name the field.
    let (s, b) = call(
        &app,
        "PUT",
        "/rules/limits/user/JPY",
        Some(&admin),
        &[],
        Some(json!({"max_amount": 0})),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("max_amount"))
    );
    let (s, _) = call(
        &app,
        "PUT",
        "/rules/limits/user/JPY",
        Some(&admin),
        &[],
        Some(json!({"max_amount": 5000, "review_above": 1000})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, b) = call(
        &app,
        "POST",
        "/evaluate",
        Some(&user),
        &[],
        Some(eval(10, "JPY", "j1")),
    )
    .await;
    assert_eq!(b["decision"], "allow", "{b}");
    let (s, b) = call(&app, "GET", "/rules", Some(&admin), &[], None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        b["limits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["currency"] == "JPY")
    );
    assert_eq!(
        call(
            &app,
            "DELETE",
            "/rules/limits/user/JPY",
            Some(&admin),
            &[],
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(
            &app,
            "DELETE",
            "/rules/limits/user/JPY",
            Some(&admin),
            &[],
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    // Bad evaluation input.
    let (s, b) = call(
        &app,
        "POST",
        "/evaluate",
        Some(&user),
        &[],
        Some(eval(-1, "USD", "x")),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("amount"))
    );
}
