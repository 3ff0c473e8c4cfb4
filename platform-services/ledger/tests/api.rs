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

    // Exactly the two transfers applied (not the replay, not the refusal) are in the outbox.
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
    // SERIALIZABLE: a transfer that loses every retry on these five hot accounts is a 503
    // `contention` that applied nothing (the balances below count only the 201s).
    assert!(
        statuses.iter().all(|s| *s == StatusCode::CREATED
            || *s == StatusCode::CONFLICT
            || *s == StatusCode::SERVICE_UNAVAILABLE),
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

fn two_phase(
    debit: &str,
    credit: &str,
    amount: i64,
    kind: &str,
    pending_id: Option<&Value>,
) -> Value {
    let mut t = transfer(debit, credit, amount);
    t["kind"] = json!(kind);
    if let Some(p) = pending_id {
        t["pending_id"] = p.clone();
    }
    t
}

async fn get(app: &axum::Router, token: &str, path: &str) -> (StatusCode, Value) {
    call(app, "GET", path, Some(token), &[], None).await
}

async fn post(app: &axum::Router, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    call(app, "POST", path, Some(token), &[], Some(body)).await
}

/// (balance, available, debits_pending, credits_pending) as the API shows them.
async fn balances(app: &axum::Router, token: &str, id: &str) -> (i64, i64, i64, i64) {
    let (s, a) = get(app, token, &format!("/accounts/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let n = |k: &str| a[k].as_i64().unwrap_or_else(|| panic!("{k} in {a}"));
    (
        n("balance"),
        n("available"),
        n("debits_pending"),
        n("credits_pending"),
    )
}

#[tokio::test]
async fn pending_post_and_void_over_http() {
    let idp = TestIdp::start().await;
    let (app, ctx, _g) = service_app(&ledger::spec(), &idp, &[]).await;
    let finance = idp.token("finance", &["finance"]);
    let bank = account(&app, &finance, "USD", false).await;
    let alice = account(&app, &finance, "USD", true).await;
    let bob = account(&app, &finance, "USD", true).await;
    let (s, _) = post(&app, &finance, "/transfers", transfer(&bank, &alice, 1000)).await;
    assert_eq!(s, StatusCode::CREATED);

    // Pending: 201 with its state and timeout; the payer's available shrinks, not its balance.
    let mut hold = two_phase(&alice, &bob, 400, "pending", None);
    hold["timeout_seconds"] = json!(60);
    let (s, held) = post(&app, &finance, "/transfers", hold.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{held}");
    assert_eq!(
        (held["kind"].as_str(), held["state"].as_str()),
        (Some("pending"), Some("pending"))
    );
    assert!(held["timeout_at"].is_string(), "{held}");
    assert_eq!(balances(&app, &finance, &alice).await, (1000, 600, 400, 0));
    assert_eq!(balances(&app, &finance, &bob).await, (0, 0, 0, 400));
    // More than is available is refused.
    let (s, b) = post(&app, &finance, "/transfers", transfer(&alice, &bob, 601)).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("exceeds_credits"))
    );

    // Post it (the body repeats the pending transfer's fields); a replay is 200 with the
    // original; another post or a void is 409 pending_transfer_resolved.
    let post_body = two_phase(&alice, &bob, 400, "post_pending", Some(&held["id"]));
    let (s, posted) = post(&app, &finance, "/transfers", post_body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{posted}");
    assert_eq!(posted["pending_id"], held["id"]);
    let (s, again) = post(&app, &finance, "/transfers", post_body.clone()).await;
    assert_eq!((s, &again), (StatusCode::OK, &posted));
    for kind in ["post_pending", "void_pending"] {
        let (s, b) = post(
            &app,
            &finance,
            "/transfers",
            two_phase(&alice, &bob, 400, kind, Some(&held["id"])),
        )
        .await;
        assert_eq!(
            (s, b["code"].as_str()),
            (StatusCode::CONFLICT, Some("pending_transfer_resolved")),
            "{kind}: {b}"
        );
    }
    assert_eq!(balances(&app, &finance, &alice).await, (600, 600, 0, 0));
    assert_eq!(balances(&app, &finance, &bob).await, (400, 400, 0, 0));
    let (s, b) = get(
        &app,
        &finance,
        &format!("/transfers/{}", held["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!((s, b["state"].as_str()), (StatusCode::OK, Some("posted")));

    // A post for another amount is refused, not posted in full.
    let (s, second) = post(
        &app,
        &finance,
        "/transfers",
        two_phase(&alice, &bob, 100, "pending", None),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, b) = post(
        &app,
        &finance,
        "/transfers",
        two_phase(&alice, &bob, 50, "post_pending", Some(&second["id"])),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str(), b["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("validation_failed"),
            Some("amount")
        ),
        "{b}"
    );
    // Void releases it.
    let (s, _) = post(
        &app,
        &finance,
        "/transfers",
        two_phase(&alice, &bob, 100, "void_pending", Some(&second["id"])),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(balances(&app, &finance, &alice).await, (600, 600, 0, 0));

    // Past its timeout a pending transfer cannot be posted: 409 pending_transfer_expired.
    let (_, third) = post(
        &app,
        &finance,
        "/transfers",
        two_phase(&alice, &bob, 100, "pending", None),
    )
    .await;
    ctx.db
        .get()
        .await
        .unwrap()
        .execute(
            "UPDATE transfers SET timeout_at = now() - INTERVAL '1 second' WHERE id = $1",
            &[&third["id"].as_str().unwrap().parse::<Uuid>().unwrap()],
        )
        .await
        .unwrap();
    let (s, b) = post(
        &app,
        &finance,
        "/transfers",
        two_phase(&alice, &bob, 100, "post_pending", Some(&third["id"])),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("pending_transfer_expired"))
    );
    assert_eq!(
        balances(&app, &finance, &bob).await,
        (400, 400, 0, 100),
        "nothing posted"
    );

    // Resolving needs a pending transfer that exists.
    let (s, b) = post(
        &app,
        &finance,
        "/transfers",
        two_phase(&alice, &bob, 100, "post_pending", None),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("pending_id")),
        "{b}"
    );
    let (s, b) = post(
        &app,
        &finance,
        "/transfers",
        two_phase(
            &alice,
            &bob,
            100,
            "void_pending",
            Some(&json!(Uuid::new_v4())),
        ),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("pending_transfer_not_found"))
    );
}

#[tokio::test]
async fn linked_transfers_over_http_apply_all_or_none() {
    let idp = TestIdp::start().await;
    let (app, ctx, _g) = service_app(&ledger::spec(), &idp, &[]).await;
    let finance = idp.token("finance", &["finance"]);
    let auditor = idp.token("auditor", &["auditor"]);
    let bank = account(&app, &finance, "USD", false).await;
    let alice = account(&app, &finance, "USD", true).await;
    let bob = account(&app, &finance, "USD", true).await;
    let (s, _) = post(&app, &finance, "/transfers", transfer(&bank, &alice, 1000)).await;
    assert_eq!(s, StatusCode::CREATED);
    let outbox = || async {
        let n: i64 = ctx
            .db
            .get()
            .await
            .unwrap()
            .query_one(
                "SELECT count(*) FROM outbox WHERE topic = 'ledger.transfer_posted'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        n
    };

    // The second overdraws bob: 409, and the first is not applied either.
    let (first, second) = (transfer(&alice, &bob, 500), transfer(&bob, &bank, 700));
    let batch = json!({"transfers": [first, second]});
    let (s, b) = post(&app, &finance, "/transfers/linked", batch).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("exceeds_credits")),
        "{b}"
    );
    for t in [&first, &second] {
        let (s, _) = get(
            &app,
            &finance,
            &format!("/transfers/{}", t["id"].as_str().unwrap()),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    assert_eq!(balances(&app, &finance, &alice).await, (1000, 1000, 0, 0));
    assert_eq!(outbox().await, 1, "only the funding");

    // Bob has the money when he pays: both apply, in order; a replay is 200 and the same.
    let (first, second) = (transfer(&alice, &bob, 800), transfer(&bob, &bank, 700));
    let batch = json!({"transfers": [first, second]});
    let (s, done) = post(&app, &finance, "/transfers/linked", batch.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{done}");
    assert_eq!(
        (&done[0]["id"], &done[1]["id"]),
        (&first["id"], &second["id"])
    );
    let (s, again) = post(&app, &finance, "/transfers/linked", batch.clone()).await;
    assert_eq!((s, &again), (StatusCode::OK, &done));
    assert_eq!(balances(&app, &finance, &alice).await, (200, 200, 0, 0));
    assert_eq!(balances(&app, &finance, &bob).await, (100, 100, 0, 0));
    assert_eq!(
        outbox().await,
        3,
        "one event per applied transfer, none for the replay"
    );

    // A pending and a posted transfer linked: a refused post leaves no hold.
    let hold = two_phase(&alice, &bob, 100, "pending", None);
    let (s, _) = post(
        &app,
        &finance,
        "/transfers/linked",
        json!({"transfers": [hold, transfer(&bob, &bank, 101)]}),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(balances(&app, &finance, &alice).await, (200, 200, 0, 0));

    // Shape and roles.
    let (s, b) = post(
        &app,
        &finance,
        "/transfers/linked",
        json!({"transfers": []}),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("transfers"))
    );
    let many: Vec<Value> = (0..101).map(|_| transfer(&bank, &alice, 1)).collect();
    let (s, _) = post(
        &app,
        &finance,
        "/transfers/linked",
        json!({"transfers": many}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, b) = post(
        &app,
        &finance,
        "/transfers/linked",
        json!({"transfers": [transfer(&bank, &bank, 1)]}),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("credit_account_id"))
    );
    let (s, b) = post(
        &app,
        &auditor,
        "/transfers/linked",
        json!({"transfers": [transfer(&bank, &alice, 1)]}),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    assert_eq!(balances(&app, &finance, &alice).await, (200, 200, 0, 0));
}
