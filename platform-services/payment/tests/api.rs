//! payment with the real rule-engine (in-process, on 127.0.0.1), real Postgres and Redis.

use axum::http::StatusCode;
use platform_testing::{TestIdp, call, service_app};
use serde_json::json;

/// Serves rule-engine on a loopback port; returns its base URL.
async fn rule_engine(idp: &TestIdp) -> (String, Vec<platform_testing::infra::Guard>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (url, serve_rule_engine(idp, listener).await)
}

/// Serves rule-engine on `listener`.
async fn serve_rule_engine(
    idp: &TestIdp,
    listener: tokio::net::TcpListener,
) -> Vec<platform_testing::infra::Guard> {
    let (app, _ctx, guards) = service_app(&rule_engine::spec(), idp, &[]).await;
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    guards
}

#[tokio::test]
async fn idempotent_payments_checked_by_rule_engine() {
    let idp = TestIdp::start().await;
    let (rules_url, _g1) = rule_engine(&idp).await;
    let (app, ctx, _g2) =
        service_app(&payment::spec(), &idp, &[("RULE_ENGINE_URL", &rules_url)]).await;
    let alice = idp.token("alice", &["user"]);
    let bob = idp.token("bob", &["user"]);
    let auditor = idp.token("auditor", &["auditor"]);
    let body = json!({"amount": 2500, "currency": "USD", "payee": "acme"});

    let (s, _) = call(
        &app,
        "POST",
        "/payments",
        None,
        &[("idempotency-key", "k1")],
        Some(body.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, b) = call(
        &app,
        "POST",
        "/payments",
        Some(&alice),
        &[],
        Some(body.clone()),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str(), b["field"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("missing_idempotency_key"),
            Some("Idempotency-Key")
        )
    );

    let (s, first) = call(
        &app,
        "POST",
        "/payments",
        Some(&alice),
        &[("idempotency-key", "k1")],
        Some(body.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(first["status"], "initiated");
    let (s, again) = call(
        &app,
        "POST",
        "/payments",
        Some(&alice),
        &[("idempotency-key", "k1")],
        Some(body.clone()),
    )
    .await;
    assert_eq!((s, &again), (StatusCode::CREATED, &first));
    let (s, b) = call(
        &app,
        "POST",
        "/payments",
        Some(&alice),
        &[("idempotency-key", "k1")],
        Some(json!({"amount": 2501, "currency": "USD", "payee": "acme"})),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_key_reused"))
    );
    // Keys are per caller: bob may use "k1" too.
    let (s, _) = call(
        &app,
        "POST",
        "/payments",
        Some(&bob),
        &[("idempotency-key", "k1")],
        Some(body.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);

    // Above the user limit: recorded as rejected with reasons, no event.
    let (s, b) = call(
        &app,
        "POST",
        "/payments",
        Some(&alice),
        &[("idempotency-key", "big")],
        Some(json!({"amount": 5_000_000, "currency": "USD", "payee": "acme"})),
    )
    .await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::CREATED, Some("rejected")),
        "{b}"
    );
    assert!(b["reasons"][0].as_str().unwrap().contains("exceeds"));

    // Reading: owner and staff see it; another user gets 404.
    let path = format!("/payments/{}", first["id"].as_str().unwrap());
    assert_eq!(
        call(&app, "GET", &path, Some(&alice), &[], None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, "GET", &path, Some(&auditor), &[], None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, "GET", &path, Some(&bob), &[], None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, "GET", "/payments/not-a-uuid", Some(&bob), &[], None)
            .await
            .0,
        StatusCode::BAD_REQUEST
    );

    // Bad input changes nothing.
    for (b, field) in [
        (
            json!({"amount": -1, "currency": "USD", "payee": "x"}),
            "amount",
        ),
        (
            serde_json::from_str(
                r#"{"amount": 99999999999999999999, "currency": "USD", "payee": "x"}"#,
            )
            .unwrap(),
            "amount",
        ),
        (
            json!({"amount": 1.5, "currency": "USD", "payee": "x"}),
            "amount",
        ),
        (
            json!({"amount": 1, "currency": "ABC", "payee": "x"}),
            "currency",
        ),
        (
            json!({"amount": 1, "currency": "USD", "payee": ""}),
            "payee",
        ),
        (json!({"amount": 1, "currency": "USD"}), "payee"),
    ] {
        let (s, r) = call(
            &app,
            "POST",
            "/payments",
            Some(&alice),
            &[("idempotency-key", "bad")],
            Some(b.clone()),
        )
        .await;
        assert_eq!(
            (s, r["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{b}: {r}"
        );
    }

    let c = ctx.db.get().await.unwrap();
    let payments: i64 = c
        .query_one("SELECT count(*) FROM payments", &[])
        .await
        .unwrap()
        .get(0);
    let events: i64 = c
        .query_one(
            "SELECT count(*) FROM outbox WHERE topic = 'payment.initiated'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!((payments, events), (3, 2));
}

async fn stored_keys(c: &platform_common::db::Client) -> i64 {
    c.query_one("SELECT count(*) FROM idempotency_keys", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn rule_engine_down_is_503_and_a_retry_then_succeeds() {
    let idp = TestIdp::start().await;
    // Reserve a port with nothing listening.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = dead.local_addr().unwrap();
    let url = format!("http://{addr}");
    drop(dead);
    let (app, ctx, _g) = service_app(&payment::spec(), &idp, &[("RULE_ENGINE_URL", &url)]).await;
    let alice = idp.token("alice", &["user"]);
    let body = json!({"amount": 100, "currency": "EUR", "payee": "acme"});
    // The same request, the same key, each time.
    let pay = || {
        call(
            &app,
            "POST",
            "/payments",
            Some(&alice),
            &[("idempotency-key", "r1")],
            Some(body.clone()),
        )
    };
    let (s, b) = pay().await;
    assert_eq!(
        (s, b["code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("rule_engine_unavailable")
        )
    );
    let c = ctx.db.get().await.unwrap();
    assert_eq!(
        stored_keys(&c).await,
        0,
        "nothing stored, so the client's retry is free to succeed later"
    );

    // The rule engine comes back on the same address; the same request with the same key
    // now goes through.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("the reserved port is free again");
    let _rules = serve_rule_engine(&idp, listener).await;
    let (s, b) = pay().await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::CREATED, Some("initiated")),
        "{b}"
    );
    assert_eq!(
        stored_keys(&c).await,
        1,
        "the successful retry is stored once"
    );
}
