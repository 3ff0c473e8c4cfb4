//! profile against real Postgres and Redis: one test per rule.

use axum::http::StatusCode;
use platform_testing::TestApi;
use serde_json::{Value, json};

async fn start() -> TestApi {
    TestApi::start(&profile::spec(), &[]).await
}

/// `user` with a profile (KYC pending); returns their token.
async fn with_profile(api: &TestApi, user: &str) -> String {
    let token = api.token(user, &["user"]);
    let (s, _) = api
        .call(
            "PUT",
            "/profiles/me",
            &token,
            Some(json!({"full_name": "Dana Scully"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    token
}

/// `user` with a profile and KYC submitted; returns their token.
async fn with_submitted_kyc(api: &TestApi, user: &str) -> String {
    let token = with_profile(api, user).await;
    assert_eq!(
        api.call("POST", "/profiles/me/kyc", &token, None).await.0,
        StatusCode::OK
    );
    token
}

/// A KYC decision on dana's profile by the holder of `token`.
async fn decide_dana(api: &TestApi, token: &str, body: Option<Value>) -> (StatusCode, Value) {
    api.call("PUT", "/profiles/dana/kyc/decision", token, body)
        .await
}

fn decide(d: &str) -> Option<Value> {
    Some(json!({"decision": d}))
}

#[tokio::test]
async fn me_names_the_service_and_the_caller() {
    let api = start().await;
    let dana = api.token("dana", &["user"]);
    let (s, b) = api.call("GET", "/me", &dana, None).await;
    assert_eq!(
        (s, b["service"].as_str(), b["user"]["username"].as_str()),
        (StatusCode::OK, Some("svc-profile"), Some("dana"))
    );
}

#[tokio::test]
async fn own_profile_is_not_found_before_the_first_put() {
    let api = start().await;
    let dana = api.token("dana", &["user"]);
    assert_eq!(
        api.call("GET", "/profiles/me", &dana, None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn put_refuses_an_empty_full_name() {
    let api = start().await;
    let dana = api.token("dana", &["user"]);
    let (s, b) = api
        .call("PUT", "/profiles/me", &dana, Some(json!({"full_name": ""})))
        .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("full_name"))
    );
}

#[tokio::test]
async fn put_creates_a_pending_profile_with_the_tokens_email() {
    let api = start().await;
    let dana = api.token("dana", &["user"]);
    let (s, b) = api
        .call(
            "PUT",
            "/profiles/me",
            &dana,
            Some(json!({"full_name": "Dana Scully"})),
        )
        .await;
    assert_eq!(
        (s, b["kyc_status"].as_str(), b["email"].as_str()),
        (StatusCode::OK, Some("pending"), Some("dana@innover.local"))
    );
}

#[tokio::test]
async fn reviewers_cannot_decide_before_submission() {
    let api = start().await;
    with_profile(&api, "dana").await;
    let ops = api.token("ops", &["ops_user"]);
    let (s, b) = decide_dana(&api, &ops, decide("verified")).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_kyc_transition"))
    );
}

#[tokio::test]
async fn only_ops_user_and_admin_decide_kyc() {
    let api = start().await;
    with_submitted_kyc(&api, "dana").await;
    let finance = api.token("fin", &["finance"]);
    let eve = api.token("eve", &["user"]);
    for token in [&finance, &eve] {
        assert_eq!(
            decide_dana(&api, token, decide("verified")).await.0,
            StatusCode::FORBIDDEN
        );
    }
}

#[tokio::test]
async fn a_decision_is_verified_or_rejected() {
    let api = start().await;
    with_submitted_kyc(&api, "dana").await;
    let ops = api.token("ops", &["ops_user"]);
    for decision in ["pending", "bogus"] {
        let (s, b) = decide_dana(&api, &ops, decide(decision)).await;
        assert_eq!(
            (s, b["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("decision")),
            "{decision}"
        );
    }
}

#[tokio::test]
async fn rejected_kyc_is_resubmitted_then_verified_and_verified_is_final() {
    let api = start().await;
    let dana = with_submitted_kyc(&api, "dana").await;
    let ops = api.token("ops", &["ops_user"]);
    let (s, b) = decide_dana(
        &api,
        &ops,
        Some(json!({"decision": "rejected", "reason": "blurry"})),
    )
    .await;
    assert_eq!(
        (s, b["kyc_status"].as_str(), b["kyc_reason"].as_str()),
        (StatusCode::OK, Some("rejected"), Some("blurry"))
    );
    assert_eq!(
        api.call("POST", "/profiles/me/kyc", &dana, None).await.0,
        StatusCode::OK
    );
    let (s, b) = decide_dana(&api, &ops, decide("verified")).await;
    assert_eq!(
        (s, b["kyc_status"].as_str(), b["kyc_reviewed_by"].as_str()),
        (StatusCode::OK, Some("verified"), Some("ops"))
    );
    assert_eq!(
        api.call("POST", "/profiles/me/kyc", &dana, None).await.0,
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn reading_others_profiles_needs_a_staff_role() {
    let api = start().await;
    with_profile(&api, "dana").await;
    let eve = api.token("eve", &["user"]);
    let ops = api.token("ops", &["ops_user"]);
    assert_eq!(
        api.call("GET", "/profiles/dana", &eve, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.call("GET", "/profiles/dana", &ops, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        api.call("GET", "/profiles/nobody", &ops, None).await.0,
        StatusCode::NOT_FOUND
    );
}
