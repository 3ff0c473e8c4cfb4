//! payment with the real rule-engine (in-process, on 127.0.0.1), real Postgres and Redis;
//! wallets are ledger accounts on the same database.

mod harness;

use axum::http::StatusCode;
use platform_testing::{TestIdp, call, service_app};
use serde_json::json;
use uuid::Uuid;

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
    // The KYC gate is above the rule engine's user limit here, so the limit decides.
    let (app, ctx, _g2) = service_app(
        &payment::spec(),
        &idp,
        &[
            ("RULE_ENGINE_URL", &rules_url),
            ("PAYMENT_KYC_THRESHOLD", "100000000"),
        ],
    )
    .await;
    harness::with_neighbours(&ctx.db).await;
    let alice = idp.token("alice", &["user"]);
    let bob = idp.token("bob", &["user"]);
    let auditor = idp.token("auditor", &["auditor"]);
    let alices = harness::wallet(&ctx.db, "alice", "USD", 0).await;
    harness::wallet(&ctx.db, "bob", "USD", 0).await;
    let acme = harness::wallet(&ctx.db, "acme", "USD", 0).await;
    let body = json!({"amount": 2500, "currency": "USD", "payee_wallet_id": acme, "payee": "acme"});

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
    assert_eq!(
        (
            &first["status"],
            &first["payee"],
            &first["payer_wallet_id"],
            &first["payee_wallet_id"]
        ),
        (
            &json!("screened"),
            &json!("acme"),
            &json!(alices),
            &json!(acme)
        )
    );
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
    let mut other = body.clone();
    other["amount"] = json!(2501);
    let (s, b) = call(
        &app,
        "POST",
        "/payments",
        Some(&alice),
        &[("idempotency-key", "k1")],
        Some(other),
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

    // Above the user limit: recorded as rejected with the rule engine's reasons.
    let mut big = body.clone();
    big["amount"] = json!(5_000_000);
    let (s, b) = call(
        &app,
        "POST",
        "/payments",
        Some(&alice),
        &[("idempotency-key", "big")],
        Some(big),
    )
    .await;
    assert_eq!(
        (s, b["status"].as_str(), b["failure_reason"].as_str()),
        (StatusCode::CREATED, Some("rejected"), Some("rule_denied")),
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
    let settlement = ledger::book::settlement_account_id("USD");
    for (b, status, code, field) in [
        (
            json!({"amount": -1, "currency": "USD", "payee_wallet_id": acme}),
            422,
            "validation_failed",
            "amount",
        ),
        (
            serde_json::from_str(&format!(
                r#"{{"amount": 99999999999999999999, "currency": "USD", "payee_wallet_id": "{acme}"}}"#
            ))
            .unwrap(),
            422,
            "validation_failed",
            "amount",
        ),
        (
            json!({"amount": 1.5, "currency": "USD", "payee_wallet_id": acme}),
            422,
            "validation_failed",
            "amount",
        ),
        (
            json!({"amount": 1, "currency": "ABC", "payee_wallet_id": acme}),
            422,
            "validation_failed",
            "currency",
        ),
        (
            json!({"amount": 1, "currency": "USD", "payee_wallet_id": acme, "payee": ""}),
            422,
            "validation_failed",
            "payee",
        ),
        (
            json!({"amount": 1, "currency": "USD", "payee": "acme"}),
            422,
            "validation_failed",
            "payee_wallet_id",
        ),
        (
            json!({"amount": 1, "currency": "USD", "payee_wallet_id": Uuid::new_v4()}),
            422,
            "payee_wallet_not_found",
            "payee_wallet_id",
        ),
        (
            // The ledger's own accounts are no one's wallet.
            json!({"amount": 1, "currency": "USD", "payee_wallet_id": settlement}),
            422,
            "payee_wallet_not_found",
            "payee_wallet_id",
        ),
        (
            json!({"amount": 1, "currency": "EUR", "payee_wallet_id": acme}),
            422,
            "payer_wallet_not_found",
            "currency",
        ),
        (
            json!({"amount": 1, "currency": "USD", "payee_wallet_id": alices}),
            422,
            "same_wallet",
            "payee_wallet_id",
        ),
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
            (s.as_u16(), r["code"].as_str(), r["field"].as_str()),
            (status, Some(code), Some(field)),
            "{b}: {r}"
        );
    }

    // Every payment recorded was announced; the rejected one ended as payment.failed.
    let c = ctx.db.get().await.unwrap();
    let count = |sql: &'static str| {
        let c = &c;
        async move { c.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("SELECT count(*) FROM payments").await, 3);
    assert_eq!(
        count("SELECT count(*) FROM outbox WHERE topic = 'payment.initiated'").await,
        3
    );
    assert_eq!(
        count("SELECT count(*) FROM outbox WHERE topic = 'payment.failed'").await,
        1
    );
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
    harness::with_neighbours(&ctx.db).await;
    let alice = idp.token("alice", &["user"]);
    harness::wallet(&ctx.db, "alice", "EUR", 0).await;
    let acme = harness::wallet(&ctx.db, "acme", "EUR", 0).await;
    let body = json!({"amount": 100, "currency": "EUR", "payee_wallet_id": acme});
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
    // The key was reserved with the payment before screening: the payment waits, initiated.
    let c = ctx.db.get().await.unwrap();
    assert_eq!(stored_keys(&c).await, 1);
    let status: String = c
        .query_one("SELECT status FROM payments", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "initiated");

    // The rule engine comes back on the same address; the same request with the same key
    // screens that payment.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("the reserved port is free again");
    let _rules = serve_rule_engine(&idp, listener).await;
    let (s, b) = pay().await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::CREATED, Some("screened")),
        "{b}"
    );
    assert_eq!(stored_keys(&c).await, 1, "one key");
    let payments: i64 = c
        .query_one("SELECT count(*) FROM payments", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(payments, 1, "one payment");
}

mod updates {
    use std::time::Duration;

    use futures_util::{SinkExt, StreamExt};
    use serde_json::Value;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::{self, Message};

    use super::*;

    type Socket = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    /// The payment app on a loopback port (a WebSocket needs a real connection).
    async fn serve(app: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("ws://{addr}/payments/updates")
    }

    async fn connect(
        url: &str,
        header: Option<(&'static str, String)>,
    ) -> Result<(Socket, tungstenite::handshake::client::Response), tungstenite::Error> {
        let mut req = url.into_client_request().unwrap();
        if let Some((k, v)) = header {
            req.headers_mut()
                .insert(k, axum::http::HeaderValue::from_str(&v).unwrap());
        }
        tokio_tungstenite::connect_async(req).await
    }

    async fn refused_status(url: &str, header: Option<(&'static str, String)>) -> u16 {
        match connect(url, header).await {
            Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
            Err(e) => panic!("expected an HTTP refusal, got {e}"),
            Ok(_) => panic!("expected a refusal, the socket opened"),
        }
    }

    /// The next JSON text message, skipping pings; fails after 5 s.
    async fn next_json(ws: &mut Socket) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .expect("a message within 5 s")
                .expect("socket open")
                .expect("no socket error");
            match msg {
                Message::Text(t) => return serde_json::from_str(&t).expect("JSON text message"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    /// Messages about payment `id` until one says `status`; the states before it may be any of
    /// `passing` (a state that lasts less than one read of the feed may be skipped, so the
    /// test asks for none of them), never another payment's.
    async fn until_status(ws: &mut Socket, id: &Value, status: &str, passing: &[&str]) -> Value {
        loop {
            let msg = next_json(ws).await;
            assert_eq!(
                (&msg["type"], &msg["payment_id"]),
                (&json!("payment"), id),
                "{msg}"
            );
            if msg["status"] == status {
                return msg;
            }
            assert!(
                passing.iter().any(|p| msg["status"] == *p),
                "{msg} on the way to {status}"
            );
        }
    }

    async fn pay(app: &axum::Router, token: &str, key: &str, amount: i64, payee: Uuid) -> Value {
        let (s, b) = call(
            app,
            "POST",
            "/payments",
            Some(token),
            &[("idempotency-key", key)],
            Some(json!({"amount": amount, "currency": "USD", "payee_wallet_id": payee})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b
    }

    /// The saga's later steps run in the worker, not in the API process that holds the socket:
    /// the socket still shows them, each once, up to the final state.
    #[tokio::test]
    async fn websocket_follows_the_saga_that_another_process_runs() {
        let t = harness::Payments::start().await;
        let url = serve(t.app.clone()).await;
        let (alice_sub, alice) = t.user("alice", &["user"]);
        t.wallet(&alice_sub, "USD", 10_000).await;
        let acme = t.wallet("acme", "USD", 0).await;
        let (mut ws, _) = connect(&url, Some(("authorization", format!("Bearer {alice}"))))
            .await
            .expect("alice connects");
        assert_eq!(next_json(&mut ws).await["type"], "snapshot");

        let created = pay(&t.app, &alice, "feed-1", 2500, acme).await;
        let id = &created["id"];
        until_status(&mut ws, id, "screened", &["initiated"]).await;
        // The pump applies the events as the workers would: nothing here calls the API.
        t.pump
            .drain_until(|topic| topic == "payment.post_requested")
            .await;
        // `held` lasts until the next drain: it is seen, placed by the ledger's reply.
        until_status(&mut ws, id, "held", &[]).await;
        t.pump.drain().await;
        let msg = until_status(&mut ws, id, "completed", &[]).await;
        assert_eq!(msg["amount"], 2500, "the final state: {msg}");
        // Each change once: the feed reads the same rows again for seconds and says nothing.
        let quiet = tokio::time::timeout(Duration::from_secs(2), ws.next()).await;
        assert!(quiet.is_err(), "announced again: {quiet:?}");
    }

    #[tokio::test]
    async fn websocket_sends_a_snapshot_then_the_callers_status_changes() {
        // Subjects differ from usernames here: changes are routed by subject.
        let t = harness::Payments::start().await;
        let app = t.app.clone();
        let url = serve(app.clone()).await;
        let (alice_sub, alice) = t.user("alice", &["user"]);
        let (bob_sub, bob) = t.user("bob", &["user"]);
        t.wallet(&alice_sub, "USD", 0).await;
        t.wallet(&bob_sub, "USD", 0).await;
        let acme = t.wallet("acme", "USD", 0).await;

        // No token, a bad token in any of the three places: refused before the upgrade.
        assert_eq!(refused_status(&url, None).await, 401);
        assert_eq!(
            refused_status(&format!("{url}?access_token=not.a.jwt"), None).await,
            401
        );
        assert_eq!(
            refused_status(
                &url,
                Some(("sec-websocket-protocol", "bearer, not.a.jwt".into()))
            )
            .await,
            401
        );
        assert_eq!(
            refused_status(&url, Some(("authorization", "Bearer not.a.jwt".into()))).await,
            401
        );

        let (mut ws_alice, _) = connect(&url, Some(("authorization", format!("Bearer {alice}"))))
            .await
            .expect("alice connects with a bearer header");
        let (mut ws_bob, _) = connect(&format!("{url}?access_token={bob}"), None)
            .await
            .expect("bob connects with access_token");
        assert_eq!(
            next_json(&mut ws_alice).await,
            json!({"type": "snapshot", "payments": []})
        );
        assert_eq!(
            next_json(&mut ws_bob).await,
            json!({"type": "snapshot", "payments": []})
        );

        let created = pay(&app, &alice, "ws-1", 2500, acme).await;
        // `initiated` (before the screening) is seen when a read of the feed falls between.
        let msg = until_status(&mut ws_alice, &created["id"], "screened", &["initiated"]).await;
        assert_eq!(
            (
                &msg["type"],
                &msg["payment_id"],
                &msg["status"],
                &msg["amount"],
                &msg["currency"]
            ),
            (
                &json!("payment"),
                &created["id"],
                &json!("screened"),
                &json!(2500),
                &json!("USD")
            ),
            "{msg}"
        );
        assert!(msg["updated_at"].is_string(), "{msg}");
        // A rejected payment is a change too, and a replayed request is not.
        let rejected = pay(&app, &alice, "ws-2", 5_000_000, acme).await;
        pay(&app, &alice, "ws-1", 2500, acme).await;
        until_status(&mut ws_alice, &rejected["id"], "rejected", &["initiated"]).await;

        // Bob's first message is his own payment: alice's were not sent to him.
        let bobs = pay(&app, &bob, "ws-1", 100, acme).await;
        assert_eq!(next_json(&mut ws_bob).await["payment_id"], bobs["id"]);

        // A new connection's snapshot lists the payments that can still change, not the rejected.
        let (mut again, resp) = connect(
            &url,
            Some(("sec-websocket-protocol", format!("bearer, {alice}"))),
        )
        .await
        .expect("alice connects with the bearer subprotocol");
        assert_eq!(
            resp.headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some("bearer")
        );
        let snapshot = next_json(&mut again).await;
        assert_eq!(snapshot["type"], "snapshot");
        let ids: Vec<&Value> = snapshot["payments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["payment_id"])
            .collect();
        assert_eq!(ids, vec![&created["id"]], "{snapshot}");

        // A client's close is answered with a close, then the stream ends.
        again.send(Message::Close(None)).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), again.next())
            .await
            .expect("answered within 5 s");
        assert!(matches!(answer, Some(Ok(Message::Close(_)))), "{answer:?}");
        let end = tokio::time::timeout(Duration::from_secs(5), again.next())
            .await
            .expect("ends within 5 s");
        assert!(end.is_none() || matches!(end, Some(Err(_))), "{end:?}");
    }
}
