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

    async fn pay(app: &axum::Router, token: &str, key: &str, amount: i64) -> Value {
        let (s, b) = call(
            app,
            "POST",
            "/payments",
            Some(token),
            &[("idempotency-key", key)],
            Some(json!({"amount": amount, "currency": "USD", "payee": "acme"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b
    }

    #[tokio::test]
    async fn websocket_sends_a_snapshot_then_the_callers_status_changes() {
        let idp = TestIdp::start().await;
        let (rules_url, _g1) = rule_engine(&idp).await;
        let (app, _ctx, _g2) =
            service_app(&payment::spec(), &idp, &[("RULE_ENGINE_URL", &rules_url)]).await;
        let url = serve(app.clone()).await;
        let alice = idp.token("alice", &["user"]);
        let bob = idp.token("bob", &["user"]);

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

        let created = pay(&app, &alice, "ws-1", 2500).await;
        let msg = next_json(&mut ws_alice).await;
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
                &json!("initiated"),
                &json!(2500),
                &json!("USD")
            ),
            "{msg}"
        );
        assert!(msg["updated_at"].is_string(), "{msg}");
        // A rejected payment is a change too, and a replayed request is not.
        let rejected = pay(&app, &alice, "ws-2", 5_000_000).await;
        pay(&app, &alice, "ws-1", 2500).await;
        let msg = next_json(&mut ws_alice).await;
        assert_eq!(
            (&msg["payment_id"], &msg["status"]),
            (&rejected["id"], &json!("rejected"))
        );

        // Bob's first message is his own payment: alice's were not sent to him.
        let bobs = pay(&app, &bob, "ws-1", 100).await;
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
