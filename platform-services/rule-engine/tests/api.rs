//! rule-engine against real Postgres and Redis: one test per rule.

use axum::http::StatusCode;
use platform_testing::TestApi;
use serde_json::{Value, json};

async fn start() -> TestApi {
    TestApi::start(&rule_engine::spec(), &[]).await
}

/// carol, a plain user.
fn user(api: &TestApi) -> String {
    api.token("carol", &["user"])
}

fn admin(api: &TestApi) -> String {
    api.token("admin", &["admin"])
}

/// carol evaluates her own payment `pid` with her `user` role.
async fn evaluate(api: &TestApi, amount: i64, currency: &str, pid: &str) -> (StatusCode, Value) {
    let body = json!({"user": "carol", "roles": ["user"], "amount": amount, "currency": currency, "payment_id": pid});
    api.call("POST", "/evaluate", &user(api), Some(body)).await
}

#[tokio::test]
async fn an_amount_within_the_limit_is_allowed() {
    let api = start().await;
    let (s, b) = evaluate(&api, 100, "USD", "p1").await;
    assert_eq!(
        (s, b["decision"].as_str()),
        (StatusCode::OK, Some("allow")),
        "{b}"
    );
}

#[tokio::test]
async fn an_amount_above_the_review_threshold_is_reviewed() {
    let api = start().await;
    let (_, b) = evaluate(&api, 600_000, "USD", "p2").await;
    assert_eq!(b["decision"], "review", "{b}");
}

#[tokio::test]
async fn an_amount_above_the_limit_is_denied() {
    let api = start().await;
    let (_, b) = evaluate(&api, 1_000_001, "USD", "p3").await;
    assert_eq!(b["decision"], "deny", "{b}");
}

#[tokio::test]
async fn no_limit_for_the_roles_and_currency_is_denied() {
    let api = start().await;
    let (_, b) = evaluate(&api, 10, "JPY", "p4").await;
    assert_eq!(b["decision"], "deny", "no JPY limit for user: {b}");
}

#[tokio::test]
async fn claiming_a_role_the_token_lacks_does_not_raise_the_limit() {
    let api = start().await;
    let (_, b) = api
        .call(
            "POST",
            "/evaluate",
            &user(&api),
            Some(json!({"user": "carol", "roles": ["admin"], "amount": 10, "currency": "USD"})),
        )
        .await;
    assert_eq!(b["decision"], "deny", "{b}");
}

#[tokio::test]
async fn evaluating_someone_else_needs_admin_or_ops_user() {
    let api = start().await;
    let (s, _) = api
        .call(
            "POST",
            "/evaluate",
            &user(&api),
            Some(json!({"user": "dave", "roles": ["user"], "amount": 10, "currency": "USD"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

/// EUR: at most 3 payments an hour.
fn tight_eur_velocity() -> Value {
    json!({"window_seconds": 3600, "max_count": 3, "max_total": 1000000})
}

#[tokio::test]
async fn only_admin_sets_velocity_rules() {
    let api = start().await;
    let (s, _) = api
        .call(
            "PUT",
            "/rules/velocity/EUR",
            &user(&api),
            Some(tight_eur_velocity()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn velocity_counts_a_payment_once_and_reviews_beyond_the_window_count() {
    let api = start().await;
    let (s, _) = api
        .call(
            "PUT",
            "/rules/velocity/EUR",
            &admin(&api),
            Some(tight_eur_velocity()),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    for pid in ["e1", "e1", "e2", "e3"] {
        let (_, b) = evaluate(&api, 10, "EUR", pid).await;
        assert_eq!(b["decision"], "allow", "{pid}: {b}");
    }
    let (_, b) = evaluate(&api, 10, "EUR", "e4").await;
    assert_eq!(b["decision"], "review", "{b}");
    assert!(
        b["reasons"][0].as_str().unwrap().contains("4 payments"),
        "{b}"
    );
}

#[tokio::test]
async fn a_limit_of_zero_names_the_field() {
    let api = start().await;
    let (s, b) = api
        .call(
            "PUT",
            "/rules/limits/user/JPY",
            &admin(&api),
            Some(json!({"max_amount": 0})),
        )
        .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("max_amount"))
    );
}

#[tokio::test]
async fn admin_sets_a_limit_that_applies_is_listed_and_can_be_deleted_once() {
    let api = start().await;
    let admin = admin(&api);
    let (s, _) = api
        .call(
            "PUT",
            "/rules/limits/user/JPY",
            &admin,
            Some(json!({"max_amount": 5000, "review_above": 1000})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, b) = evaluate(&api, 10, "JPY", "j1").await;
    assert_eq!(b["decision"], "allow", "{b}");
    let (s, b) = api.call("GET", "/rules", &admin, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        b["limits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["currency"] == "JPY")
    );
    assert_eq!(
        api.call("DELETE", "/rules/limits/user/JPY", &admin, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.call("DELETE", "/rules/limits/user/JPY", &admin, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_negative_amount_names_the_field() {
    let api = start().await;
    let (s, b) = evaluate(&api, -1, "USD", "x").await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("amount"))
    );
}

/// A token whose subject (`sub`) is `sub` and whose username is `username`.
fn token_as(api: &TestApi, sub: &str, username: &str, roles: &[&str]) -> String {
    let mut claims = api.idp.claims(username, roles);
    claims["sub"] = json!(sub);
    platform_testing::sign(&claims, platform_testing::TestKey::A)
}

async fn set_eur_velocity(api: &TestApi, max_count: i64) {
    let body = json!({"window_seconds": 3600, "max_count": max_count, "max_total": 1_000_000_000});
    let (s, b) = api
        .call("PUT", "/rules/velocity/EUR", &admin(api), Some(body))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// The holder of `token`, subject `sub`, evaluates payment `pid` of 10.00 EUR.
async fn evaluate_as(api: &TestApi, token: &str, sub: &str, pid: &str) -> (StatusCode, Value) {
    let body = json!({"user": sub, "roles": ["user"], "amount": 1000, "currency": "EUR", "payment_id": pid});
    api.call("POST", "/evaluate", token, Some(body)).await
}

#[tokio::test]
async fn a_payment_evaluated_again_gets_its_first_decision() {
    let api = start().await;
    set_eur_velocity(&api, 3).await;
    for pid in ["e1", "e2", "e3"] {
        let (_, b) = evaluate(&api, 10, "EUR", pid).await;
        assert_eq!(b["decision"], "allow", "{pid}: {b}");
    }
    let (_, fourth) = evaluate(&api, 10, "EUR", "e4").await;
    assert_eq!(fourth["decision"], "review", "{fourth}");
    // A retry of e1 after the window filled up: still allowed, and not counted again.
    let (s, b) = evaluate(&api, 10, "EUR", "e1").await;
    assert_eq!(
        (s, &b),
        (StatusCode::OK, &json!({"decision": "allow", "reasons": []}))
    );
    let (_, b) = evaluate(&api, 10, "EUR", "e4").await;
    assert_eq!(b, fourth);
    let (_, b) = evaluate(&api, 10, "EUR", "e5").await;
    assert!(
        b["reasons"][0].as_str().unwrap().contains("5 payments"),
        "{b}"
    );
}

#[tokio::test]
async fn a_payment_id_comes_back_only_with_the_same_payment() {
    let api = start().await;
    let (_, b) = evaluate(&api, 10, "EUR", "p1").await;
    assert_eq!(b["decision"], "allow", "{b}");
    let (s, b) = evaluate(&api, 11, "EUR", "p1").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("payment_id_reused")),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_payment_evaluated_20_times_concurrently_counts_once() {
    let api = start().await;
    set_eur_velocity(&api, 2).await;
    let carol = user(&api);
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (app, carol) = (api.app.clone(), carol.clone());
        calls.spawn(async move {
            let body = json!({"user": "carol", "roles": ["user"], "amount": 1000, "currency": "EUR",
                "payment_id": "same"});
            platform_testing::call(&app, "POST", "/evaluate", Some(&carol), &[], Some(body)).await
        });
    }
    for (s, b) in calls.join_all().await {
        assert_eq!(
            (s, &b),
            (StatusCode::OK, &json!({"decision": "allow", "reasons": []}))
        );
    }
    // "same" is one payment in the window: the next is the second, the one after the third.
    let (_, b) = evaluate(&api, 1000, "EUR", "second").await;
    assert_eq!(b["decision"], "allow", "{b}");
    let (_, b) = evaluate(&api, 1000, "EUR", "third").await;
    assert!(
        b["reasons"][0].as_str().unwrap().contains("3 payments"),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_payments_of_one_payer_each_count_and_none_fails() {
    let api = start().await;
    set_eur_velocity(&api, 10).await;
    let carol = user(&api);
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (app, carol) = (api.app.clone(), carol.clone());
        calls.spawn(async move {
            let body = json!({"user": "carol", "roles": ["user"], "amount": 1000, "currency": "EUR",
                "payment_id": format!("c{i}")});
            platform_testing::call(&app, "POST", "/evaluate", Some(&carol), &[], Some(body)).await
        });
    }
    let mut allowed = 0;
    for (s, b) in calls.join_all().await {
        // Reading the window and joining it conflict at SERIALIZABLE: run again, not a 5xx.
        assert_eq!(s, StatusCode::OK, "{b}");
        if b["decision"] == "allow" {
            allowed += 1;
        }
    }
    // Each saw the payments before it: no more than the rule's ten slipped through together.
    assert_eq!(allowed, 10);
    let (_, b) = evaluate(&api, 1000, "EUR", "c20").await;
    assert!(
        b["reasons"][0].as_str().unwrap().contains("21 payments"),
        "{b}"
    );
}

#[tokio::test]
async fn the_window_is_the_payers_subject_not_their_username() {
    let api = start().await;
    set_eur_velocity(&api, 2).await;
    let carol = token_as(&api, "41b2-carol", "carol", &["user"]);
    assert_eq!(
        evaluate_as(&api, &carol, "41b2-carol", "k1").await.1["decision"],
        "allow"
    );
    // Her username is not who she is.
    let (s, _) = evaluate_as(&api, &carol, "carol", "k2").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Renamed, she is still in her window.
    let renamed = token_as(&api, "41b2-carol", "carol.renamed", &["user"]);
    assert_eq!(
        evaluate_as(&api, &renamed, "41b2-carol", "k3").await.1["decision"],
        "allow"
    );
    let (_, b) = evaluate_as(&api, &renamed, "41b2-carol", "k4").await;
    assert!(
        b["reasons"][0].as_str().unwrap().contains("3 payments"),
        "{b}"
    );
    // Whoever carries the username "carol" now has a window of their own.
    let other = token_as(&api, "99ff-other", "carol", &["user"]);
    assert_eq!(
        evaluate_as(&api, &other, "99ff-other", "k5").await.1["decision"],
        "allow"
    );
}
