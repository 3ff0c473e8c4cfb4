//! wallet against real Postgres and Redis: one test per rule.

use axum::http::StatusCode;
use platform_testing::TestApi;
use serde_json::{Value, json};

async fn start() -> TestApi {
    TestApi::start(&wallet::spec(), &[]).await
}

/// frank, a plain user who owns the wallets below.
fn frank(api: &TestApi) -> String {
    api.token("frank", &["user"])
}

fn finance(api: &TestApi) -> String {
    api.token("fin", &["finance"])
}

fn ops(api: &TestApi) -> String {
    api.token("ops", &["ops_user"])
}

/// frank opens a wallet in `currency`.
async fn open(api: &TestApi, currency: &str) -> (StatusCode, Value) {
    let body = json!({"currency": currency});
    api.call("POST", "/wallets", &frank(api), Some(body)).await
}

/// frank's new EUR wallet; returns its id.
async fn wallet(api: &TestApi) -> String {
    let (s, w) = open(api, "EUR").await;
    assert_eq!(s, StatusCode::CREATED, "{w}");
    w["id"].as_str().unwrap().to_string()
}

/// An entry posted by finance.
async fn entry(api: &TestApi, id: &str, dir: &str, amount: i64, r: &str) -> (StatusCode, Value) {
    entry_as(api, &finance(api), id, dir, amount, r).await
}

async fn entry_as(
    api: &TestApi,
    token: &str,
    id: &str,
    dir: &str,
    amount: i64,
    r: &str,
) -> (StatusCode, Value) {
    let body = json!({"direction": dir, "amount": amount, "reference": r});
    api.call("POST", &format!("/wallets/{id}/entries"), token, Some(body))
        .await
}

#[tokio::test]
async fn a_new_wallet_is_active_and_empty() {
    let api = start().await;
    let (s, w) = open(&api, "EUR").await;
    assert_eq!(
        (s, w["balance"].as_i64(), w["status"].as_str()),
        (StatusCode::CREATED, Some(0), Some("active"))
    );
}

#[tokio::test]
async fn one_wallet_per_user_and_currency() {
    let api = start().await;
    wallet(&api).await;
    let (s, b) = open(&api, "EUR").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("wallet_exists"))
    );
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

#[tokio::test]
async fn only_finance_and_admin_post_entries() {
    let api = start().await;
    let id = wallet(&api).await;
    let (s, _) = entry_as(&api, &frank(&api), &id, "credit", 500, "r1").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_credit_raises_the_balance_and_its_reference_again_is_a_no_op() {
    let api = start().await;
    let id = wallet(&api).await;
    let (s, b) = entry(&api, &id, "credit", 500, "r1").await;
    assert_eq!((s, b["balance"].as_i64()), (StatusCode::OK, Some(500)));
    let (_, b) = entry(&api, &id, "credit", 500, "r1").await;
    assert_eq!(
        b["balance"].as_i64(),
        Some(500),
        "same reference is a no-op"
    );
}

#[tokio::test]
async fn a_reference_reused_for_another_entry_is_refused() {
    let api = start().await;
    let id = wallet(&api).await;
    entry(&api, &id, "credit", 500, "r1").await;
    let (s, b) = entry(&api, &id, "credit", 501, "r1").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("reference_reused"))
    );
}

#[tokio::test]
async fn a_debit_beyond_the_balance_is_insufficient_funds() {
    let api = start().await;
    let id = wallet(&api).await;
    entry(&api, &id, "credit", 500, "r1").await;
    let (s, b) = entry(&api, &id, "debit", 501, "r2").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("insufficient_funds"))
    );
}

#[tokio::test]
async fn a_bad_entry_names_the_field() {
    let api = start().await;
    let id = wallet(&api).await;
    let (s, b) = entry(&api, &id, "debit", -1, "r3").await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("amount"))
    );
    let (s, b) = entry(&api, &id, "sideways", 1, "r3").await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("direction"))
    );
}

#[tokio::test]
async fn only_ops_user_and_admin_freeze() {
    let api = start().await;
    let id = wallet(&api).await;
    let freeze = format!("/wallets/{id}/freeze");
    for token in [frank(&api), finance(&api)] {
        assert_eq!(
            api.call("POST", &freeze, &token, Some(json!({}))).await.0,
            StatusCode::FORBIDDEN
        );
    }
}

#[tokio::test]
async fn a_frozen_wallet_takes_no_entries_until_unfrozen() {
    let api = start().await;
    let id = wallet(&api).await;
    entry(&api, &id, "credit", 500, "r1").await;
    let (s, b) = api
        .call(
            "POST",
            &format!("/wallets/{id}/freeze"),
            &ops(&api),
            Some(json!({"reason": "fraud check"})),
        )
        .await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("frozen")));
    let (s, b) = entry(&api, &id, "debit", 100, "r4").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("wallet_frozen"))
    );
    let (s, b) = api
        .call("POST", &format!("/wallets/{id}/unfreeze"), &ops(&api), None)
        .await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("active")));
    let (_, b) = entry(&api, &id, "debit", 100, "r4").await;
    assert_eq!(b["balance"].as_i64(), Some(400));
}

#[tokio::test]
async fn others_wallets_are_not_found_and_listing_them_needs_staff() {
    let api = start().await;
    let id = wallet(&api).await;
    let grace = api.token("grace", &["user"]);
    assert_eq!(
        api.call("GET", &format!("/wallets/{id}"), &grace, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.call("GET", "/wallets?owner=frank", &grace, None)
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
