//! wallet against real Postgres and Redis: one test per rule. Test tokens carry
//! `sub` = the username, so owners and requesters below are those names.

use axum::http::StatusCode;
use futures_util::future::join_all;
use ledger::book;
use platform_testing::TestApi;
use serde_json::{Value, json};
use uuid::Uuid;

async fn start() -> TestApi {
    TestApi::start(&wallet::spec(), &[]).await
}

/// frank, a plain user who owns the wallets below.
fn frank(api: &TestApi) -> String {
    api.token("frank", &["user"])
}

fn grace(api: &TestApi) -> String {
    api.token("grace", &["user"])
}

/// fin requests credits; fin2 approves them.
fn fin(api: &TestApi) -> String {
    api.token("fin", &["finance"])
}

fn fin2(api: &TestApi) -> String {
    api.token("fin2", &["finance"])
}

fn ops(api: &TestApi) -> String {
    api.token("ops", &["ops_user"])
}

/// `token`'s holder opens a wallet in `currency`.
async fn open_as(api: &TestApi, token: &str, currency: &str) -> (StatusCode, Value) {
    let body = json!({"currency": currency});
    api.call("POST", "/wallets", token, Some(body)).await
}

/// frank opens a wallet in `currency`.
async fn open(api: &TestApi, currency: &str) -> (StatusCode, Value) {
    open_as(api, &frank(api), currency).await
}

/// A new EUR wallet of `token`'s holder; returns its id.
async fn wallet_of(api: &TestApi, token: &str) -> String {
    let (s, w) = open_as(api, token, "EUR").await;
    assert_eq!(s, StatusCode::CREATED, "{w}");
    w["id"].as_str().unwrap().to_string()
}

/// frank's new EUR wallet; returns its id.
async fn wallet(api: &TestApi) -> String {
    wallet_of(api, &frank(api)).await
}

/// The wallet as staff see it.
async fn read(api: &TestApi, id: &str) -> Value {
    let (s, w) = api
        .call("GET", &format!("/wallets/{id}"), &ops(api), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{w}");
    w
}

async fn balance(api: &TestApi, id: &str) -> i64 {
    read(api, id).await["balance"].as_i64().unwrap()
}

async fn request_credit(
    api: &TestApi,
    token: &str,
    id: &str,
    amount: i64,
    r: &str,
) -> (StatusCode, Value) {
    let body = json!({"amount": amount, "reference": r});
    api.call(
        "POST",
        &format!("/wallets/{id}/credit-requests"),
        token,
        Some(body),
    )
    .await
}

async fn approve(api: &TestApi, token: &str, request: &str) -> (StatusCode, Value) {
    api.call(
        "POST",
        &format!("/credit-requests/{request}/approve"),
        token,
        None,
    )
    .await
}

/// fin requests `amount` for the wallet and fin2 approves it; the approved request.
async fn credit(api: &TestApi, id: &str, amount: i64, r: &str) -> Value {
    let (s, req) = request_credit(api, &fin(api), id, amount, r).await;
    assert_eq!(s, StatusCode::CREATED, "{req}");
    let (s, req) = approve(api, &fin2(api), req["id"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{req}");
    req
}

async fn withdraw_as(
    api: &TestApi,
    token: &str,
    id: &str,
    amount: i64,
    r: &str,
) -> (StatusCode, Value) {
    let body = json!({"amount": amount, "reference": r});
    api.call(
        "POST",
        &format!("/wallets/{id}/withdrawals"),
        token,
        Some(body),
    )
    .await
}

async fn withdraw(api: &TestApi, id: &str, amount: i64, r: &str) -> (StatusCode, Value) {
    withdraw_as(api, &frank(api), id, amount, r).await
}

async fn ledger_account(api: &TestApi, id: &str) -> book::Account {
    let c = api.ctx.db.get().await.unwrap();
    book::account(&c, id.parse().unwrap())
        .await
        .unwrap()
        .expect("the wallet's ledger account")
}

fn code(b: &Value) -> Option<&str> {
    b["code"].as_str()
}

#[tokio::test]
async fn a_new_wallet_is_an_active_empty_ledger_account_of_its_owner() {
    let api = start().await;
    let (s, w) = open(&api, "EUR").await;
    assert_eq!(
        (
            s,
            w["balance"].as_i64(),
            w["available"].as_i64(),
            w["status"].as_str()
        ),
        (StatusCode::CREATED, Some(0), Some(0), Some("active"))
    );
    assert_eq!(w["owner"].as_str(), Some("frank"));
    let a = ledger_account(&api, w["id"].as_str().unwrap()).await;
    assert_eq!(
        (
            a.kind,
            a.owner.as_deref(),
            a.currency.as_str(),
            a.frozen,
            a.balance()
        ),
        (book::AccountKind::Wallet, Some("frank"), "EUR", false, 0)
    );
}

#[tokio::test]
async fn a_wallet_is_keyed_by_subject_not_username() {
    let api = start().await;
    let mut claims = api.idp.claims("frank", &["user"]);
    claims["sub"] = json!("sub-frank-1");
    let token = platform_testing::sign(&claims, platform_testing::TestKey::A);
    let (s, w) = open_as(&api, &token, "EUR").await;
    assert_eq!(
        (s, w["owner"].as_str()),
        (StatusCode::CREATED, Some("sub-frank-1"))
    );
    // Another subject with the same username is another user.
    let (s, _) = open(&api, "EUR").await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, mine) = api.call("GET", "/wallets", &token, None).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn one_wallet_per_user_and_currency() {
    let api = start().await;
    wallet(&api).await;
    let (s, b) = open(&api, "EUR").await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, Some("wallet_exists")));
}

#[tokio::test]
async fn an_unknown_currency_names_the_field() {
    let api = start().await;
    let (s, b) = open(&api, "EURO").await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("currency"))
    );
}

/// The old `POST /wallets/{id}/entries` created money from nowhere with one person; it is
/// gone, and a credit request alone moves nothing.
#[tokio::test]
async fn credit_from_nowhere_is_impossible() {
    let api = start().await;
    let id = wallet(&api).await;
    for token in [fin(&api), api.token("root", &["admin"])] {
        let body = json!({"direction": "credit", "amount": 500, "reference": "r1"});
        let (s, _) = api
            .call(
                "POST",
                &format!("/wallets/{id}/entries"),
                &token,
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    let (s, req) = request_credit(&api, &fin(&api), &id, 500, "r1").await;
    assert_eq!(
        (s, req["status"].as_str(), req["transfer_id"].as_str()),
        (StatusCode::CREATED, Some("pending_approval"), None)
    );
    assert_eq!(balance(&api, &id).await, 0);
    assert_eq!(ledger_account(&api, &id).await.balance(), 0);
}

#[tokio::test]
async fn only_finance_and_admin_request_and_approve_credits() {
    let api = start().await;
    let id = wallet(&api).await;
    for token in [frank(&api), ops(&api)] {
        let (s, _) = request_credit(&api, &token, &id, 500, "r1").await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (_, req) = request_credit(&api, &fin(&api), &id, 500, "r1").await;
    let req = req["id"].as_str().unwrap();
    for token in [frank(&api), ops(&api)] {
        assert_eq!(approve(&api, &token, req).await.0, StatusCode::FORBIDDEN);
    }
    let (s, b) = approve(&api, &api.token("root", &["admin"]), req).await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("approved"))
    );
}

#[tokio::test]
async fn a_credit_approved_by_a_second_person_is_a_ledger_deposit() {
    let api = start().await;
    let id = wallet(&api).await;
    let req = credit(&api, &id, 500, "r1").await;
    assert_eq!(
        (
            req["status"].as_str(),
            req["requested_by"].as_str(),
            req["decided_by"].as_str()
        ),
        (Some("approved"), Some("fin"), Some("fin2"))
    );
    assert!(req["transfer_id"].is_string(), "{req}");
    let w = read(&api, &id).await;
    assert_eq!(
        (w["balance"].as_i64(), w["available"].as_i64()),
        (Some(500), Some(500))
    );
    let c = api.ctx.db.get().await.unwrap();
    let settlement = book::account(&c, book::settlement_account_id("EUR"))
        .await
        .unwrap()
        .expect("the EUR settlement account");
    assert_eq!(settlement.balance(), -500);
    // Approving again answers the approved request and moves nothing more.
    let (s, again) = approve(&api, &fin2(&api), req["id"].as_str().unwrap()).await;
    assert_eq!((s, &again), (StatusCode::OK, &req));
    assert_eq!(balance(&api, &id).await, 500);
}

#[tokio::test]
async fn nobody_approves_their_own_credit_request() {
    let api = start().await;
    let id = wallet(&api).await;
    let root = api.token("root", &["admin", "finance"]);
    for (token, reference) in [(fin(&api), "r1"), (root, "r2")] {
        let (_, req) = request_credit(&api, &token, &id, 500, reference).await;
        let req_id = req["id"].as_str().unwrap();
        let (s, b) = approve(&api, &token, req_id).await;
        assert_eq!(
            (s, code(&b)),
            (StatusCode::FORBIDDEN, Some("self_approval_forbidden"))
        );
        let (_, now) = api
            .call("GET", &format!("/credit-requests/{req_id}"), &token, None)
            .await;
        assert_eq!(now["status"].as_str(), Some("pending_approval"));
    }
    assert_eq!(balance(&api, &id).await, 0);
}

#[tokio::test]
async fn nobody_approves_a_credit_to_their_own_wallet() {
    let api = start().await;
    let fin2_wallet = wallet_of(&api, &fin2(&api)).await;
    let (_, req) = request_credit(&api, &fin(&api), &fin2_wallet, 500, "r1").await;
    let (s, b) = approve(&api, &fin2(&api), req["id"].as_str().unwrap()).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, Some("own_wallet_credit_forbidden"))
    );
    assert_eq!(balance(&api, &fin2_wallet).await, 0);
    // A third person may.
    let (s, _) = approve(
        &api,
        &api.token("fin3", &["finance"]),
        req["id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(balance(&api, &fin2_wallet).await, 500);
}

#[tokio::test]
async fn a_credit_request_reference_again_is_the_same_request_another_amount_is_refused() {
    let api = start().await;
    let id = wallet(&api).await;
    let (s1, first) = request_credit(&api, &fin(&api), &id, 500, "r1").await;
    let (s2, again) = request_credit(&api, &fin(&api), &id, 500, "r1").await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(first, again);
    let (s, b) = request_credit(&api, &fin(&api), &id, 501, "r1").await;
    assert_eq!(
        (s, code(&b), b["field"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("reference_reused"),
            Some("reference")
        )
    );
}

#[tokio::test]
async fn a_bad_amount_or_reference_names_the_field() {
    let api = start().await;
    let id = wallet(&api).await;
    let (s, b) = request_credit(&api, &fin(&api), &id, 0, "r1").await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("amount"))
    );
    let (s, b) = withdraw(&api, &id, 1, "  ").await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reference"))
    );
}

#[tokio::test]
async fn a_rejected_request_moves_nothing_and_cannot_be_approved() {
    let api = start().await;
    let id = wallet(&api).await;
    let (_, req) = request_credit(&api, &fin(&api), &id, 500, "r1").await;
    let req_id = req["id"].as_str().unwrap();
    let reject = format!("/credit-requests/{req_id}/reject");
    let (s, b) = api
        .call(
            "POST",
            &reject,
            &fin2(&api),
            Some(json!({"reason": "no ticket"})),
        )
        .await;
    assert_eq!(
        (s, b["status"].as_str(), b["decision_reason"].as_str()),
        (StatusCode::OK, Some("rejected"), Some("no ticket"))
    );
    let (s, b) = approve(&api, &fin2(&api), req_id).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, Some("credit_request_decided"))
    );
    assert_eq!(balance(&api, &id).await, 0);
    // And an approved one cannot be rejected.
    let approved = credit(&api, &id, 300, "r2").await;
    let (s, b) = api
        .call(
            "POST",
            &format!(
                "/credit-requests/{}/reject",
                approved["id"].as_str().unwrap()
            ),
            &fin(&api),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, Some("credit_request_decided"))
    );
    assert_eq!(balance(&api, &id).await, 300);
}

#[tokio::test]
async fn credit_requests_are_seen_by_staff_and_the_wallets_owner() {
    let api = start().await;
    let id = wallet(&api).await;
    let (_, req) = request_credit(&api, &fin(&api), &id, 500, "r1").await;
    let one = format!("/credit-requests/{}", req["id"].as_str().unwrap());
    assert_eq!(
        api.call("GET", &one, &frank(&api), None).await.0,
        StatusCode::OK
    );
    let (s, b) = api.call("GET", &one, &grace(&api), None).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::NOT_FOUND, Some("credit_request_not_found"))
    );
    assert_eq!(
        api.call("GET", "/credit-requests", &frank(&api), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    credit(&api, &id, 300, "r2").await;
    let auditor = api.token("audrey", &["auditor"]);
    let (s, b) = api
        .call(
            "GET",
            "/credit-requests?status=pending_approval",
            &auditor,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let refs: Vec<&str> = b
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["reference"].as_str())
        .collect();
    assert_eq!(refs, ["r1"]);
    let (_, b) = api
        .call(
            "GET",
            &format!("/credit-requests?wallet_id={id}"),
            &auditor,
            None,
        )
        .await;
    assert_eq!(b.as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn the_owner_withdraws_to_settlement_idempotently_on_the_reference() {
    let api = start().await;
    let id = wallet(&api).await;
    credit(&api, &id, 500, "c1").await;
    let (s, first) = withdraw(&api, &id, 200, "w1").await;
    assert_eq!(
        (s, first["amount"].as_i64(), first["requested_by"].as_str()),
        (StatusCode::CREATED, Some(200), Some("frank"))
    );
    let (s, again) = withdraw(&api, &id, 200, "w1").await;
    assert_eq!((s, &again), (StatusCode::OK, &first));
    assert_eq!(balance(&api, &id).await, 300);
    let (s, b) = withdraw(&api, &id, 201, "w1").await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, Some("reference_reused"))
    );
    let (s, b) = withdraw(&api, &id, 301, "w2").await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::CONFLICT, Some("insufficient_funds"))
    );
    assert_eq!(balance(&api, &id).await, 300);
}

#[tokio::test]
async fn only_the_owner_withdraws() {
    let api = start().await;
    let id = wallet(&api).await;
    credit(&api, &id, 500, "c1").await;
    let (s, b) = withdraw_as(&api, &grace(&api), &id, 100, "w1").await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::NOT_FOUND, Some("wallet_not_found"))
    );
    let root = api.token("root", &["admin"]);
    let (s, b) = withdraw_as(&api, &root, &id, 100, "w1").await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, Some("not_wallet_owner"))
    );
    assert_eq!(balance(&api, &id).await, 500);
}

#[tokio::test]
async fn concurrent_duplicates_move_money_once() {
    let api = start().await;
    let id = wallet(&api).await;
    let (_, req) = request_credit(&api, &fin(&api), &id, 500, "c1").await;
    let req_id = req["id"].as_str().unwrap();
    let approver = fin2(&api);
    let approvals = join_all((0..8).map(|_| approve(&api, &approver, req_id))).await;
    assert!(
        approvals.iter().all(|(s, _)| *s == StatusCode::OK),
        "{approvals:?}"
    );
    assert_eq!(balance(&api, &id).await, 500);
    let withdrawals = join_all((0..8).map(|_| withdraw(&api, &id, 100, "w1"))).await;
    assert!(
        withdrawals
            .iter()
            .all(|(s, b)| s.is_success() && b["id"] == withdrawals[0].1["id"]),
        "{withdrawals:?}"
    );
    assert_eq!(
        withdrawals
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count(),
        1
    );
    assert_eq!(balance(&api, &id).await, 400);
}

/// Concurrent withdrawals with different references never overdraw: each is refused or
/// posted whole, and conflicts are retried rather than answered as errors.
#[tokio::test]
async fn concurrent_withdrawals_never_overdraw() {
    let api = start().await;
    let id = wallet(&api).await;
    credit(&api, &id, 300, "c1").await;
    let refs: Vec<String> = (0..6).map(|i| format!("w{i}")).collect();
    let results = join_all(refs.iter().map(|r| withdraw(&api, &id, 100, r))).await;
    let mut statuses: Vec<u16> = results.iter().map(|(s, _)| s.as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 201, 201, 409, 409, 409], "{results:?}");
    assert!(
        results
            .iter()
            .filter(|(s, _)| *s == StatusCode::CONFLICT)
            .all(|(_, b)| code(b) == Some("insufficient_funds"))
    );
    assert_eq!(balance(&api, &id).await, 0);
}

#[tokio::test]
async fn only_ops_user_and_admin_freeze() {
    let api = start().await;
    let id = wallet(&api).await;
    let freeze = format!("/wallets/{id}/freeze");
    for token in [frank(&api), fin(&api)] {
        assert_eq!(
            api.call("POST", &freeze, &token, Some(json!({}))).await.0,
            StatusCode::FORBIDDEN
        );
    }
}

#[tokio::test]
async fn a_frozen_wallet_is_a_frozen_ledger_account_that_moves_nothing_until_unfrozen() {
    let api = start().await;
    let id = wallet(&api).await;
    credit(&api, &id, 500, "c1").await;
    let (s, b) = api
        .call(
            "POST",
            &format!("/wallets/{id}/freeze"),
            &ops(&api),
            Some(json!({"reason": "fraud check"})),
        )
        .await;
    assert_eq!(
        (s, b["status"].as_str(), b["status_reason"].as_str()),
        (StatusCode::OK, Some("frozen"), Some("fraud check"))
    );
    assert!(ledger_account(&api, &id).await.frozen);
    let (s, b) = withdraw(&api, &id, 100, "w1").await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, Some("wallet_frozen")));
    let (_, req) = request_credit(&api, &fin(&api), &id, 100, "c2").await;
    let (s, b) = approve(&api, &fin2(&api), req["id"].as_str().unwrap()).await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, Some("wallet_frozen")));
    assert_eq!(balance(&api, &id).await, 500);
    let (s, b) = api
        .call("POST", &format!("/wallets/{id}/unfreeze"), &ops(&api), None)
        .await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("active")));
    assert!(!ledger_account(&api, &id).await.frozen);
    assert_eq!(withdraw(&api, &id, 100, "w1").await.0, StatusCode::CREATED);
    let (s, b) = approve(&api, &fin2(&api), req["id"].as_str().unwrap()).await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("approved"))
    );
    assert_eq!(balance(&api, &id).await, 500);
}

#[tokio::test]
async fn nobody_unfreezes_their_own_wallet() {
    let api = start().await;
    let olga = api.token("olga", &["ops_user", "admin"]);
    let id = wallet_of(&api, &olga).await;
    let (s, _) = api
        .call(
            "POST",
            &format!("/wallets/{id}/freeze"),
            &ops(&api),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let unfreeze = format!("/wallets/{id}/unfreeze");
    let (s, b) = api.call("POST", &unfreeze, &olga, None).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::FORBIDDEN, Some("self_unfreeze_forbidden"))
    );
    assert!(ledger_account(&api, &id).await.frozen);
    let (s, b) = api.call("POST", &unfreeze, &ops(&api), None).await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("active")));
}

#[tokio::test]
async fn others_wallets_are_not_found_and_listing_them_needs_staff() {
    let api = start().await;
    let id = wallet(&api).await;
    assert_eq!(
        api.call("GET", &format!("/wallets/{id}"), &grace(&api), None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.call("GET", "/wallets?owner=frank", &grace(&api), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (s, b) = api
        .call("GET", "/wallets?owner=frank", &ops(&api), None)
        .await;
    assert_eq!(
        (s, b.as_array().map(|a| a.len())),
        (StatusCode::OK, Some(1))
    );
}

/// Sum of wallet balances = approved credits - withdrawals = -(settlement balance), and each
/// wallet's balance is its ledger account's.
#[tokio::test]
async fn money_is_conserved_and_every_balance_is_the_ledgers() {
    let api = start().await;
    let frank_w = wallet(&api).await;
    let grace_w = wallet_of(&api, &grace(&api)).await;
    let mut credited = 0;
    for (i, (w, amount)) in [(&frank_w, 700), (&grace_w, 300), (&frank_w, 250)]
        .into_iter()
        .enumerate()
    {
        credit(&api, w, amount, &format!("c{i}")).await;
        credited += amount;
    }
    // A pending and a rejected request move nothing.
    request_credit(&api, &fin(&api), &frank_w, 10_000, "pending").await;
    let (_, r) = request_credit(&api, &fin(&api), &grace_w, 10_000, "rejected").await;
    api.call(
        "POST",
        &format!("/credit-requests/{}/reject", r["id"].as_str().unwrap()),
        &fin2(&api),
        Some(json!({})),
    )
    .await;
    let mut withdrawn = 0;
    for (token, w, amount, r) in [
        (frank(&api), &frank_w, 400, "w1"),
        (grace(&api), &grace_w, 300, "w2"),
        (frank(&api), &frank_w, 50, "w3"),
    ] {
        let (s, b) = withdraw_as(&api, &token, w, amount, r).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        withdrawn += amount;
    }
    // Refused and repeated withdrawals move nothing.
    withdraw(&api, &frank_w, 1_000_000, "w4").await;
    withdraw(&api, &frank_w, 400, "w1").await;

    let mut wallets_total = 0;
    for w in [&frank_w, &grace_w] {
        let b = balance(&api, w).await;
        assert_eq!(b, ledger_account(&api, w).await.balance(), "wallet {w}");
        wallets_total += b;
    }
    let c = api.ctx.db.get().await.unwrap();
    let settlement = book::account(&c, book::settlement_account_id("EUR"))
        .await
        .unwrap()
        .expect("the EUR settlement account");
    assert_eq!(
        (wallets_total, credited - withdrawn),
        (500, 500),
        "wallets and approved credits - withdrawals"
    );
    assert_eq!(-settlement.balance(), wallets_total);
}

/// A database from before the ledger: a wallet row with a balance of its own and no ledger
/// account. Migration 1001 opens its account (frozen if it was) and turns the old balance
/// into a credit request for a second person to approve: nothing is zeroed silently.
#[tokio::test]
async fn an_old_wallets_balance_becomes_a_pending_credit_request() {
    let api = start().await;
    let id = Uuid::new_v4();
    let c = api.ctx.db.get().await.unwrap();
    c.execute(
        "INSERT INTO wallets (id, owner, currency, balance, status, status_reason)
         VALUES ($1, 'frank', 'EUR', 700, 'frozen', 'old freeze')",
        &[&id],
    )
    .await
    .unwrap();
    c.execute(
        "DELETE FROM schema_migrations WHERE service = 'wallet' AND version = 1001",
        &[],
    )
    .await
    .unwrap();
    for _ in 0..2 {
        // Twice: running it again changes nothing.
        platform_common::migrate::run(&api.ctx.db, "wallet", wallet::spec().migrations)
            .await
            .unwrap();
        c.execute(
            "DELETE FROM schema_migrations WHERE service = 'wallet' AND version = 1001",
            &[],
        )
        .await
        .unwrap();
    }
    let id = id.to_string();
    let w = read(&api, &id).await;
    assert_eq!(
        (
            w["balance"].as_i64(),
            w["status"].as_str(),
            w["status_reason"].as_str()
        ),
        (Some(0), Some("frozen"), Some("old freeze"))
    );
    let (_, reqs) = api
        .call(
            "GET",
            &format!("/credit-requests?wallet_id={id}"),
            &fin(&api),
            None,
        )
        .await;
    let reqs = reqs.as_array().unwrap();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(
        (reqs[0]["amount"].as_i64(), reqs[0]["status"].as_str()),
        (Some(700), Some("pending_approval"))
    );
    api.call("POST", &format!("/wallets/{id}/unfreeze"), &ops(&api), None)
        .await;
    let (s, _) = approve(&api, &fin(&api), reqs[0]["id"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(balance(&api, &id).await, 700);
}
