//! ledger against a real PostgreSQL (CockroachDB's wire protocol) and Redis.

use axum::http::StatusCode;
use platform_testing::{TestIdp, call, service_app};
use serde_json::{Value, json};
use uuid::Uuid;

async fn account(app: &axum::Router, token: &str, currency: &str, no_overdraft: bool) -> String {
    let id = Uuid::new_v4().to_string();
    let (s, b) = call(
        app,
        "POST",
        "/accounts",
        Some(token),
        &[],
        Some(
            json!({"id": id, "currency": currency, "debits_must_not_exceed_credits": no_overdraft}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    id
}

fn transfer(debit: &str, credit: &str, amount: i64) -> Value {
    json!({"id": Uuid::new_v4(), "debit_account_id": debit, "credit_account_id": credit, "amount": amount, "currency": "USD"})
}

#[tokio::test]
async fn roles_idempotency_and_limits() {
    let idp = TestIdp::start().await;
    let (app, ctx, _g) = service_app(&ledger::spec(), &idp, &[]).await;
    let finance = idp.token("finance", &["finance"]);
    let auditor = idp.token("auditor", &["auditor"]);
    let user = idp.token("user", &["user"]);

    let (s, _) = call(
        &app,
        "GET",
        &format!("/accounts/{}", Uuid::new_v4()),
        None,
        &[],
        None,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let bank = account(&app, &finance, "USD", false).await;
    let alice = account(&app, &finance, "USD", true).await;
    let eur = account(&app, &finance, "EUR", false).await;

    // Auditor reads but cannot post; user can do neither.
    let t = transfer(&bank, &alice, 1000);
    let (s, b) = call(
        &app,
        "POST",
        "/transfers",
        Some(&auditor),
        &[],
        Some(t.clone()),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (s, _) = call(
        &app,
        "GET",
        &format!("/accounts/{bank}"),
        Some(&user),
        &[],
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Post, replay, conflict.
    let (s, first) = call(
        &app,
        "POST",
        "/transfers",
        Some(&finance),
        &[],
        Some(t.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let (s, again) = call(
        &app,
        "POST",
        "/transfers",
        Some(&finance),
        &[],
        Some(t.clone()),
    )
    .await;
    assert_eq!((s, &again), (StatusCode::OK, &first));
    let mut changed = t.clone();
    changed["amount"] = json!(1001);
    let (s, b) = call(
        &app,
        "POST",
        "/transfers",
        Some(&finance),
        &[],
        Some(changed),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("exists_with_different_fields"))
    );

    let (s, a) = call(
        &app,
        "GET",
        &format!("/accounts/{alice}"),
        Some(&auditor),
        &[],
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (a["credits_posted"].as_i64(), a["balance"].as_i64()),
        (Some(1000), Some(1000))
    );

    // Alice may not go negative: 1000 in, 1001 out is refused and changes nothing.
    let (s, b) = call(
        &app,
        "POST",
        "/transfers",
        Some(&finance),
        &[],
        Some(transfer(&alice, &bank, 1001)),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("exceeds_credits"))
    );
    let (s, _) = call(
        &app,
        "POST",
        "/transfers",
        Some(&finance),
        &[],
        Some(transfer(&alice, &bank, 1000)),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);

    // Bad input: each a 4xx naming the field, nothing changes.
    let cases: Vec<(Value, StatusCode, Option<&str>)> = vec![
        (
            transfer(&bank, &alice, -5),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("amount"),
        ),
        (
            transfer(&bank, &alice, 0),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("amount"),
        ),
        (
            json!({"id": Uuid::new_v4(), "debit_account_id": bank, "credit_account_id": alice, "amount": 1e30, "currency": "USD"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("amount"),
        ),
        (
            json!({"id": Uuid::new_v4(), "debit_account_id": bank, "credit_account_id": alice, "amount": "10", "currency": "USD"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("amount"),
        ),
        (
            json!({"id": Uuid::new_v4(), "debit_account_id": bank, "credit_account_id": alice, "amount": 10, "currency": "XYZ"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("currency"),
        ),
        (
            json!({"id": Uuid::new_v4(), "debit_account_id": bank, "credit_account_id": alice, "amount": 10}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("currency"),
        ),
        (
            json!({"id": "nope", "debit_account_id": bank, "credit_account_id": alice, "amount": 10, "currency": "USD"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("id"),
        ),
        (
            transfer(&bank, &bank, 10),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("credit_account_id"),
        ),
        (
            transfer(&bank, &eur, 10),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("currency"),
        ),
    ];
    for (body, status, field) in cases {
        let (s, b) = call(
            &app,
            "POST",
            "/transfers",
            Some(&finance),
            &[],
            Some(body.clone()),
        )
        .await;
        assert_eq!((s, b["field"].as_str()), (status, field), "{body} -> {b}");
    }
    let (s, b) = call(
        &app,
        "POST",
        "/transfers",
        Some(&finance),
        &[("content-type", "application/json")],
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");

    // Exactly the three posted transfers are in the outbox.
    let c = ctx.db.get().await.unwrap();
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM outbox WHERE topic = 'ledger.transfer_posted'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
}

#[tokio::test]
async fn concurrent_transfers_keep_invariants() {
    let idp = TestIdp::start().await;
    let (app, ctx, _g) = service_app(&ledger::spec(), &idp, &[]).await;
    let finance = idp.token("finance", &["finance"]);
    let bank = account(&app, &finance, "USD", false).await;
    let wallets: Vec<String> =
        futures_util::future::join_all((0..4).map(|_| account(&app, &finance, "USD", true))).await;
    // Fund each wallet with 1000.
    for w in &wallets {
        let (s, _) = call(
            &app,
            "POST",
            "/transfers",
            Some(&finance),
            &[],
            Some(transfer(&bank, w, 1000)),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    // 80 transfers of 300 between wallets and out to the bank, 8 at a time (the pool's
    // size); wallets run dry, so some must be refused.
    let jobs = (0..80).map(|i| {
        let from = wallets[i % 4].clone();
        let to = if i % 5 == 0 {
            bank.clone()
        } else {
            wallets[(i + 1) % 4].clone()
        };
        let (app, token) = (app.clone(), finance.clone());
        async move {
            call(
                &app,
                "POST",
                "/transfers",
                Some(&token),
                &[],
                Some(transfer(&from, &to, 300)),
            )
            .await
            .0
        }
    });
    use futures_util::StreamExt;
    let statuses: Vec<StatusCode> = futures_util::stream::iter(jobs)
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(
        statuses.contains(&StatusCode::CONFLICT),
        "some transfers must hit the overdraft rule"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT),
        "{statuses:?}"
    );

    let c = ctx.db.get().await.unwrap();
    let row = c
        .query_one(
            "SELECT sum(debits_posted)::BIGINT, sum(credits_posted)::BIGINT FROM accounts",
            &[],
        )
        .await
        .unwrap();
    let (d, cr): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(d, cr, "debits equal credits");
    let negative: i64 = c
        .query_one("SELECT count(*) FROM accounts WHERE debits_must_not_exceed_credits AND debits_posted > credits_posted", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(negative, 0);
    // Balances match the transfers table.
    let posted: i64 = c
        .query_one(
            "SELECT coalesce(sum(amount), 0)::BIGINT FROM transfers",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(posted, d);
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count() as i64;
    assert_eq!(posted, 4000 + created * 300);
}
