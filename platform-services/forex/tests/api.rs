//! forex against real Postgres and Redis: one test per rule.

use std::time::Duration;

use axum::http::StatusCode;
use platform_testing::TestApi;
use serde_json::{Value, json};

/// A 50 bps spread, quotes valid for `quote_ttl_seconds`, no rates loaded.
async fn start(quote_ttl_seconds: &str) -> TestApi {
    let env = [
        ("FOREX_SPREAD_BPS", "50"),
        ("FOREX_QUOTE_TTL_SECONDS", quote_ttl_seconds),
    ];
    TestApi::start(&forex::spec(), &env).await
}

/// The bundled rates loaded.
async fn load_rates(api: &TestApi) {
    assert_eq!(forex::refresh_rates(&api.ctx.db, None).await.unwrap(), 13);
}

/// Quotes valid for 30 s, the bundled rates loaded.
async fn with_rates() -> TestApi {
    let api = start("30").await;
    load_rates(&api).await;
    api
}

async fn quote(
    api: &TestApi,
    token: &str,
    sell: &str,
    buy: &str,
    amount: i64,
) -> (StatusCode, Value) {
    api.call("POST", "/quotes", token, q(sell, buy, amount))
        .await
}

fn q(sell: &str, buy: &str, amount: i64) -> Option<Value> {
    Some(json!({"sell_currency": sell, "buy_currency": buy, "sell_amount": amount}))
}

#[tokio::test]
async fn no_rate_is_a_clear_422() {
    let api = start("30").await;
    let user = api.token("hank", &["user"]);
    let (s, b) = quote(&api, &user, "USD", "EUR", 10_000).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rate_unavailable"))
    );
}

#[tokio::test]
async fn the_refresh_job_loads_the_bundled_rates() {
    let api = with_rates().await;
    let user = api.token("hank", &["user"]);
    let (s, rates) = api.call("GET", "/rates", &user, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        rates
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["currency"] == "EUR" && r["per_usd"] == "0.92340000")
    );
}

#[tokio::test]
async fn a_quote_is_the_mid_rate_less_the_spread_rounded_down() {
    let api = with_rates().await;
    let user = api.token("hank", &["user"]);
    // 100.00 USD -> EUR at 0.9234 less 50 bps = 0.91878300 -> 91.87 EUR.
    let (s, quote) = quote(&api, &user, "USD", "EUR", 10_000).await;
    assert_eq!(s, StatusCode::CREATED, "{quote}");
    assert_eq!(
        (
            quote["buy_amount"].as_i64(),
            quote["rate"].as_str(),
            quote["mid_rate"].as_str()
        ),
        (Some(9_187), Some("0.91878300"), Some("0.92340000"))
    );
}

#[tokio::test]
async fn a_quote_converts_between_currency_exponents() {
    let api = with_rates().await;
    let user = api.token("hank", &["user"]);
    // 10000 JPY -> USD (exponent 0 -> 2).
    let (_, b) = quote(&api, &user, "JPY", "USD", 10_000).await;
    assert_eq!(b["buy_amount"].as_i64(), Some(6_414), "{b}");
}

#[tokio::test]
async fn only_the_quotes_owner_converts_it_and_only_once() {
    let api = with_rates().await;
    let user = api.token("hank", &["user"]);
    let other = api.token("ivy", &["user"]);
    let (_, quote) = quote(&api, &user, "USD", "EUR", 10_000).await;
    let conv = json!({"quote_id": quote["id"]});
    assert_eq!(
        api.call("POST", "/conversions", &other, Some(conv.clone()))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.call("POST", "/conversions", &user, Some(conv.clone()))
            .await
            .0,
        StatusCode::CREATED
    );
    let (s, b) = api.call("POST", "/conversions", &user, Some(conv)).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("quote_already_converted"))
    );
}

#[tokio::test]
async fn an_expired_quote_is_gone() {
    let api = start("1").await;
    load_rates(&api).await;
    let user = api.token("hank", &["user"]);
    let (_, late) = quote(&api, &user, "USD", "GBP", 5_000).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (s, b) = api
        .call(
            "POST",
            "/conversions",
            &user,
            Some(json!({"quote_id": late["id"]})),
        )
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::GONE, Some("quote_expired"))
    );
}

#[tokio::test]
async fn bad_quote_requests_name_the_field() {
    let api = with_rates().await;
    let user = api.token("hank", &["user"]);
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
        let (s, b) = api.call("POST", "/quotes", &user, body.clone()).await;
        assert_eq!(
            (s, b["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body:?}: {b}"
        );
    }
}

#[tokio::test]
async fn only_admin_sets_a_rate() {
    let api = start("30").await;
    let user = api.token("hank", &["user"]);
    let (s, _) = api
        .call("PUT", "/rates/EUR", &user, Some(json!({"per_usd": "0.9"})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_rate_is_a_decimal_string() {
    let api = start("30").await;
    let admin = api.token("admin", &["admin"]);
    let (s, b) = api
        .call("PUT", "/rates/EUR", &admin, Some(json!({"per_usd": 0.9})))
        .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("per_usd"))
    );
    let (s, b) = api
        .call("PUT", "/rates/EUR", &admin, Some(json!({"per_usd": "0.9"})))
        .await;
    assert_eq!(
        (s, b["per_usd"].as_str()),
        (StatusCode::OK, Some("0.90000000"))
    );
}

mod rate_stream {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    /// Reads Server-Sent Events off a response body as they arrive.
    struct Events {
        body: Body,
        buf: String,
    }

    impl Events {
        /// The next event's `event:` and JSON `data:`, skipping comments; fails after 5 s.
        async fn next(&mut self) -> (String, Value) {
            loop {
                if let Some(end) = self.buf.find("\n\n") {
                    let block: String = self.buf.drain(..end + 2).collect();
                    let (mut name, mut data) = (String::new(), String::new());
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("event:") {
                            name = v.trim().to_string();
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push_str(v.trim());
                        }
                    }
                    if name.is_empty() && data.is_empty() {
                        continue; // a keep-alive comment
                    }
                    return (name, serde_json::from_str(&data).expect("JSON data"));
                }
                let frame = tokio::time::timeout(Duration::from_secs(5), self.body.frame())
                    .await
                    .expect("an event within 5 s")
                    .expect("the stream has not ended")
                    .expect("no body error");
                if let Ok(bytes) = frame.into_data() {
                    self.buf
                        .push_str(std::str::from_utf8(&bytes).expect("UTF-8"));
                }
            }
        }
    }

    async fn open(api: &TestApi, token: &str) -> Events {
        let req = axum::http::Request::get("/rates/stream")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let resp = api.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Events {
            body: resp.into_body(),
            buf: String::new(),
        }
    }

    #[tokio::test]
    async fn the_stream_sends_every_rate_then_each_change() {
        let api = with_rates().await;
        let user = api.token("alice", &["user"]);
        let admin = api.token("admin", &["admin"]);

        let (s, b) =
            platform_testing::call(&api.app, "GET", "/rates/stream", None, &[], None).await;
        assert_eq!(
            (s, b["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("missing_token"))
        );

        let (_, table) = api.call("GET", "/rates", &user, None).await;
        let mut events = open(&api, &user).await;
        let mut first = Vec::new();
        for _ in table.as_array().unwrap() {
            let (name, data) = events.next().await;
            assert_eq!(name, "rate");
            first.push(data);
        }
        assert_eq!(Value::Array(first), table);

        // A refused PUT sends nothing; an accepted one sends the new rate.
        let (s, _) = api
            .call("PUT", "/rates/EUR", &user, Some(json!({"per_usd": "0.5"})))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, put) = api
            .call(
                "PUT",
                "/rates/EUR",
                &admin,
                Some(json!({"per_usd": "0.95"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{put}");
        let (name, data) = events.next().await;
        assert_eq!((name.as_str(), &data), ("rate", &put));
        assert_eq!(
            (&data["currency"], &data["per_usd"], &data["source"]),
            (&json!("EUR"), &json!("0.95000000"), &json!("manual:admin"))
        );
    }
}
