//! forex against real Postgres and Redis: one test per rule.

use std::time::Duration;

use axum::http::StatusCode;
use forex::ManualRates;
use platform_testing::TestApi;
use serde_json::{Value, json};

/// A 50 bps spread, quotes valid for `quote_ttl_seconds`, rates quoted for an hour after
/// they were loaded, no rates loaded.
async fn start(quote_ttl_seconds: &str) -> TestApi {
    let env = [
        ("FOREX_SPREAD_BPS", "50"),
        ("FOREX_QUOTE_TTL_SECONDS", quote_ttl_seconds),
        ("FOREX_MAX_RATE_AGE_SECONDS", "3600"),
    ];
    TestApi::start(&forex::spec(), &env).await
}

/// The bundled rates loaded.
async fn load_rates(api: &TestApi) {
    let r = forex::refresh_rates(&api.ctx.db, None, ManualRates::Keep)
        .await
        .unwrap();
    assert_eq!((r.loaded, r.kept_manual.len()), (13, 0));
}

/// A token whose stable subject (`sub`) is `sub` and whose username is `username`.
fn token_for(api: &TestApi, sub: &str, username: &str) -> String {
    let mut claims = api.idp.claims(username, &["user"]);
    claims["sub"] = json!(sub);
    platform_testing::sign(&claims, platform_testing::TestKey::A)
}

/// The EUR rate in `GET /rates`.
async fn eur(api: &TestApi) -> Value {
    let user = api.token("hank", &["user"]);
    let (_, rates) = api.call("GET", "/rates", &user, None).await;
    rates
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["currency"] == "EUR")
        .cloned()
        .unwrap_or(Value::Null)
}

/// Makes `currency`'s rate look loaded `seconds` ago.
async fn age_rate(api: &TestApi, currency: &str, seconds: i64) {
    let c = api.ctx.db.get().await.unwrap();
    let n = c
        .execute(
            "UPDATE rates SET updated_at = now() - $2::BIGINT * interval '1 second' WHERE currency = $1",
            &[&currency, &seconds],
        )
        .await
        .unwrap();
    assert_eq!(n, 1, "{currency} has a rate");
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
async fn a_quote_belongs_to_the_callers_subject_not_their_username() {
    let api = with_rates().await;
    let hank = token_for(&api, "sub-hank", "hank");
    // Hank renamed: the same subject under a new username.
    let henry = token_for(&api, "sub-hank", "henry");
    // Someone else who now has the username "hank".
    let impostor = token_for(&api, "sub-other", "hank");
    let (_, quote) = quote(&api, &hank, "USD", "EUR", 10_000).await;
    let conv = Some(json!({"quote_id": quote["id"]}));
    let (s, b) = api
        .call("POST", "/conversions", &impostor, conv.clone())
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("quote_not_found"))
    );
    let (s, b) = api.call("POST", "/conversions", &henry, conv).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let c = api.ctx.db.get().await.unwrap();
    let row = c
        .query_one(
            "SELECT owner, owner_id FROM quotes WHERE id = $1::TEXT::UUID",
            &[&quote["id"].as_str().unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        ("hank".to_string(), "sub-hank".to_string())
    );
}

#[tokio::test]
async fn a_manual_rate_survives_refreshes_until_reset() {
    let api = with_rates().await;
    let admin = api.token("admin", &["admin"]);
    let user = api.token("hank", &["user"]);
    let (s, put) = api
        .call(
            "PUT",
            "/rates/EUR",
            &admin,
            Some(json!({"per_usd": "0.95"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{put}");
    assert_eq!(put["source"], "manual:admin");

    // The worker's refresh (at start, periodic, or the job) keeps the manual rate.
    let r = forex::refresh_rates(&api.ctx.db, None, ManualRates::Keep)
        .await
        .unwrap();
    assert_eq!((r.loaded, r.kept_manual), (12, vec!["EUR".to_string()]));
    let rate = eur(&api).await;
    assert_eq!(
        (&rate["per_usd"], &rate["source"]),
        (&json!("0.95000000"), &json!("manual:admin"))
    );
    // Quotes use it: 100.00 USD at 0.95 less 50 bps = 0.945250 -> 94.52 EUR.
    let (_, q) = quote(&api, &user, "USD", "EUR", 10_000).await;
    assert_eq!(q["buy_amount"].as_i64(), Some(9_452), "{q}");

    // Another manual PUT replaces it.
    let (s, _) = api
        .call(
            "PUT",
            "/rates/EUR",
            &admin,
            Some(json!({"per_usd": "0.96"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(eur(&api).await["per_usd"], "0.96000000");

    // The explicit reset goes back to the file's rate.
    let r = forex::refresh_rates(&api.ctx.db, None, ManualRates::Replace)
        .await
        .unwrap();
    assert_eq!((r.loaded, r.kept_manual.len()), (13, 0));
    let rate = eur(&api).await;
    assert_eq!(
        (&rate["per_usd"], &rate["source"]),
        (&json!("0.92340000"), &json!("bundled"))
    );
}

#[tokio::test]
async fn a_quote_refuses_a_rate_older_than_the_maximum_age() {
    let api = with_rates().await;
    let user = api.token("hank", &["user"]);
    let admin = api.token("admin", &["admin"]);
    // Loaded two hours ago; the maximum age is an hour.
    age_rate(&api, "EUR", 7_200).await;
    let (s, b) = quote(&api, &user, "USD", "EUR", 10_000).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rate_stale")),
        "{b}"
    );
    // Either side of the quote.
    let (s, b) = quote(&api, &user, "EUR", "GBP", 10_000).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rate_stale"))
    );
    // Fresh rates are quoted.
    let (s, _) = quote(&api, &user, "USD", "GBP", 10_000).await;
    assert_eq!(s, StatusCode::CREATED);
    // Just inside the age is fine.
    age_rate(&api, "EUR", 3_000).await;
    let (s, b) = quote(&api, &user, "USD", "EUR", 10_000).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // A manual rate ages like any other; setting it again confirms it.
    let (s, _) = api
        .call(
            "PUT",
            "/rates/EUR",
            &admin,
            Some(json!({"per_usd": "0.95"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    age_rate(&api, "EUR", 7_200).await;
    let (s, _) = quote(&api, &user, "USD", "EUR", 10_000).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = api
        .call(
            "PUT",
            "/rates/EUR",
            &admin,
            Some(json!({"per_usd": "0.95"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = quote(&api, &user, "USD", "EUR", 10_000).await;
    assert_eq!(s, StatusCode::CREATED);
    // A refresh confirms the rates it loads.
    age_rate(&api, "GBP", 7_200).await;
    load_rates_keeping(&api, 12).await;
    let (s, _) = quote(&api, &user, "USD", "GBP", 10_000).await;
    assert_eq!(s, StatusCode::CREATED);
}

/// The bundled rates loaded, `loaded` of them (the others are manual).
async fn load_rates_keeping(api: &TestApi, loaded: usize) {
    let r = forex::refresh_rates(&api.ctx.db, None, ManualRates::Keep)
        .await
        .unwrap();
    assert_eq!(r.loaded, loaded);
}

/// As on CockroachDB, whose transactions are SERIALIZABLE unless told otherwise: new
/// connections to the test database default to it, and the pool's open ones are dropped.
async fn serializable_by_default(api: &TestApi) {
    let c = api.ctx.db.get().await.unwrap();
    let name: String = c
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    c.batch_execute(&format!(
        "ALTER DATABASE {name} SET default_transaction_isolation TO 'serializable'"
    ))
    .await
    .unwrap();
    drop(c);
    api.ctx.db.retain(|_, _| false);
    let c = api.ctx.db.get().await.unwrap();
    let level: String = c
        .query_one("SHOW transaction_isolation", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(level, "serializable");
}

/// Runs `request` while another transaction holds `lock_sql`'s row lock, and commits that
/// transaction once the request waits for the lock: a serialization conflict (40001) for a
/// SERIALIZABLE request, which must run its transaction again rather than fail.
async fn against_a_concurrent_writer<F: std::future::Future>(
    api: &TestApi,
    lock_sql: &str,
    request: F,
) -> F::Output {
    let mut holder = api.ctx.db.get().await.unwrap();
    let tx = holder.transaction().await.unwrap();
    assert_eq!(tx.execute(lock_sql, &[]).await.unwrap(), 1);
    let commit_when_waited_for = async {
        let watcher = api.ctx.db.get().await.unwrap();
        for _ in 0..1_000 {
            let waiting: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if waiting > 0 {
                return tx.commit().await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the request never waited for the lock");
    };
    let (out, ()) = tokio::join!(request, commit_when_waited_for);
    out
}

#[tokio::test]
async fn a_serialization_conflict_is_retried_in_every_write_path() {
    let api = with_rates().await;
    serializable_by_default(&api).await;
    let admin = api.token("admin", &["admin"]);
    let user = api.token("hank", &["user"]);
    let touch_eur = "UPDATE rates SET per_usd_e8 = per_usd_e8 WHERE currency = 'EUR'";

    let put = api.call(
        "PUT",
        "/rates/EUR",
        &admin,
        Some(json!({"per_usd": "0.95"})),
    );
    let (s, b) = against_a_concurrent_writer(&api, touch_eur, put).await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let refresh = forex::refresh_rates(&api.ctx.db, None, ManualRates::Replace);
    let r = against_a_concurrent_writer(&api, touch_eur, refresh).await;
    assert_eq!(r.unwrap().loaded, 13);

    let (_, q) = quote(&api, &user, "USD", "EUR", 10_000).await;
    let touch_quote = format!(
        "UPDATE quotes SET expires_at = expires_at WHERE id = '{}'",
        q["id"].as_str().unwrap()
    );
    let convert = api.call(
        "POST",
        "/conversions",
        &user,
        Some(json!({"quote_id": q["id"]})),
    );
    let (s, b) = against_a_concurrent_writer(&api, &touch_quote, convert).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
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
