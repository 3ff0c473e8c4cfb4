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

/// A token whose subject (`sub`) is `sub` and whose username is `username`: the IdP's
/// subject is stable, its username can be renamed.
fn token_as(api: &TestApi, sub: &str, username: &str, roles: &[&str]) -> String {
    let mut claims = api.idp.claims(username, roles);
    claims["sub"] = json!(sub);
    platform_testing::sign(&claims, platform_testing::TestKey::A)
}

async fn put_profile(api: &TestApi, token: &str) -> (StatusCode, Value) {
    api.call(
        "PUT",
        "/profiles/me",
        token,
        Some(json!({"full_name": "Dana Scully"})),
    )
    .await
}

#[tokio::test]
async fn a_profile_is_keyed_by_the_subject_and_the_username_is_only_shown() {
    let api = start().await;
    let dana = token_as(&api, "3c9e-dana", "dana", &["user"]);
    let (s, b) = put_profile(&api, &dana).await;
    assert_eq!(
        (s, b["user_id"].as_str(), b["username"].as_str()),
        (StatusCode::OK, Some("3c9e-dana"), Some("dana")),
        "{b}"
    );
    // Someone else who now carries the username "dana" has no profile.
    let other = token_as(&api, "77aa-other", "dana", &["user"]);
    assert_eq!(
        api.call("GET", "/profiles/me", &other, None).await.0,
        StatusCode::NOT_FOUND
    );
    // Dana, renamed, keeps hers; saving it shows the new username.
    let renamed = token_as(&api, "3c9e-dana", "dana.scully", &["user"]);
    let (s, b) = api.call("GET", "/profiles/me", &renamed, None).await;
    assert_eq!(
        (s, b["full_name"].as_str()),
        (StatusCode::OK, Some("Dana Scully"))
    );
    let (_, b) = put_profile(&api, &renamed).await;
    assert_eq!(b["username"], "dana.scully", "{b}");
    // Staff address it by subject, not by username.
    let ops = token_as(&api, "0b1d-ops", "ops", &["ops_user"]);
    let (s, b) = api.call("GET", "/profiles/3c9e-dana", &ops, None).await;
    assert_eq!(
        (s, b["username"].as_str()),
        (StatusCode::OK, Some("dana.scully"))
    );
    assert_eq!(
        api.call("GET", "/profiles/dana.scully", &ops, None).await.0,
        StatusCode::NOT_FOUND
    );
    // Her own profile, by subject, needs no staff role.
    assert_eq!(
        api.call("GET", "/profiles/3c9e-dana", &renamed, None)
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn nobody_decides_their_own_kyc_and_a_second_reviewer_does() {
    let api = start().await;
    // An ops_user whose username is not their subject, with KYC submitted.
    let ops = token_as(&api, "0b1d-ops", "ops", &["ops_user", "admin"]);
    assert_eq!(put_profile(&api, &ops).await.0, StatusCode::OK);
    assert_eq!(
        api.call("POST", "/profiles/me/kyc", &ops, None).await.0,
        StatusCode::OK
    );
    for decision in ["verified", "rejected"] {
        let (s, b) = api
            .call(
                "PUT",
                "/profiles/0b1d-ops/kyc/decision",
                &ops,
                decide(decision),
            )
            .await;
        assert_eq!(
            (s, b["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("self_approval_forbidden")),
            "{decision}: {b}"
        );
    }
    // Renamed, still themselves.
    let renamed = token_as(&api, "0b1d-ops", "someone-else", &["admin"]);
    let (s, b) = api
        .call(
            "PUT",
            "/profiles/0b1d-ops/kyc/decision",
            &renamed,
            decide("verified"),
        )
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("self_approval_forbidden"))
    );
    let (_, b) = api.call("GET", "/profiles/me", &ops, None).await;
    assert_eq!(b["kyc_status"], "submitted", "untouched: {b}");

    let admin = token_as(&api, "5e6f-admin", "admin", &["admin"]);
    let (s, b) = api
        .call(
            "PUT",
            "/profiles/0b1d-ops/kyc/decision",
            &admin,
            decide("verified"),
        )
        .await;
    assert_eq!(
        (
            s,
            b["kyc_status"].as_str(),
            b["kyc_reviewer_id"].as_str(),
            b["kyc_reviewed_by"].as_str()
        ),
        (
            StatusCode::OK,
            Some("verified"),
            Some("5e6f-admin"),
            Some("admin")
        ),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_to_one_profile_are_applied_or_refused_never_an_error() {
    let api = start().await;
    let dana = token_as(&api, "3c9e-dana", "dana", &["user"]);
    // Ten saves of a profile that does not exist yet: at SERIALIZABLE they conflict, and
    // each conflict is run again.
    let mut saves = tokio::task::JoinSet::new();
    for i in 0..10 {
        let (app, dana) = (api.app.clone(), dana.clone());
        saves.spawn(async move {
            let body = json!({"full_name": format!("Dana {i}")});
            platform_testing::call(&app, "PUT", "/profiles/me", Some(&dana), &[], Some(body)).await
        });
    }
    for (s, b) in saves.join_all().await {
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    assert_eq!(
        api.call("POST", "/profiles/me/kyc", &dana, None).await.0,
        StatusCode::OK
    );
    // Ten reviewers decide at once: one decision is made, the others find it made.
    let mut decisions = tokio::task::JoinSet::new();
    for i in 0..10 {
        let app = api.app.clone();
        let ops = token_as(&api, &format!("ops-{i}"), "ops", &["ops_user"]);
        let decision = if i % 2 == 0 { "verified" } else { "rejected" };
        decisions.spawn(async move {
            platform_testing::call(
                &app,
                "PUT",
                "/profiles/3c9e-dana/kyc/decision",
                Some(&ops),
                &[],
                decide(decision),
            )
            .await
        });
    }
    let answers = decisions.join_all().await;
    let made: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(made.len(), 1, "{answers:?}");
    for (s, b) in &answers {
        assert!(
            *s == StatusCode::OK
                || (*s == StatusCode::CONFLICT && b["code"] == "invalid_kyc_transition"),
            "{s}: {b}"
        );
    }
    let (_, b) = api.call("GET", "/profiles/me", &dana, None).await;
    assert_eq!(b["kyc_status"], made[0]["kyc_status"], "{b}");
}

#[tokio::test]
async fn kyc_verified_is_true_only_for_a_verified_subject() {
    let api = start().await;
    let verified = async |id: &str| {
        let c = api.ctx.db.get().await.unwrap();
        profile::kyc_verified(&c, id).await.unwrap()
    };
    assert!(!verified("3c9e-dana").await, "no profile");
    let dana = token_as(&api, "3c9e-dana", "dana", &["user"]);
    put_profile(&api, &dana).await;
    assert!(!verified("3c9e-dana").await, "pending");
    api.call("POST", "/profiles/me/kyc", &dana, None).await;
    assert!(!verified("3c9e-dana").await, "submitted");
    let ops = api.token("ops", &["ops_user"]);
    let (s, _) = api
        .call(
            "PUT",
            "/profiles/3c9e-dana/kyc/decision",
            &ops,
            decide("verified"),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(verified("3c9e-dana").await);
    assert!(!verified("dana").await, "the username is not the subject");
    // Inside the caller's own transaction too.
    let mut c = api.ctx.db.get().await.unwrap();
    let tx = c.transaction().await.unwrap();
    assert!(profile::kyc_verified(&tx, "3c9e-dana").await.unwrap());
    tx.rollback().await.unwrap();

    let rejected = token_as(&api, "9f00-fox", "fox", &["user"]);
    put_profile(&api, &rejected).await;
    api.call("POST", "/profiles/me/kyc", &rejected, None).await;
    api.call(
        "PUT",
        "/profiles/9f00-fox/kyc/decision",
        &ops,
        decide("rejected"),
    )
    .await;
    assert!(!verified("9f00-fox").await, "rejected");
}

#[tokio::test]
async fn a_database_of_profiles_by_username_is_upgraded_with_its_kyc() {
    use platform_common::{db, migrate};
    let (cfg, _g) = platform_testing::infra::postgres().await;
    let pool = db::pool(&cfg, 2);
    let spec = profile::spec();
    migrate::run(&pool, "profile", &spec.migrations[..1])
        .await
        .unwrap();
    let c = pool.get().await.unwrap();
    c.batch_execute(
        "INSERT INTO profiles (username, email, full_name, kyc_status, kyc_reviewed_by, kyc_reason)
         VALUES ('dana', 'dana@innover.local', 'Dana Scully', 'verified', 'ops', 'ok'),
                ('fox', NULL, 'Fox Mulder', 'submitted', NULL, NULL)",
    )
    .await
    .unwrap();
    migrate::run(&pool, "profile", spec.migrations)
        .await
        .unwrap();
    assert!(profile::kyc_verified(&c, "dana").await.unwrap());
    assert!(!profile::kyc_verified(&c, "fox").await.unwrap());
    let row = c
        .query_one(
            "SELECT username, full_name, kyc_reviewer_id, kyc_reviewed_by FROM user_profiles
             WHERE user_id = 'dana'",
            &[],
        )
        .await
        .unwrap();
    let got: (String, String, Option<String>, Option<String>) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(
        got,
        (
            "dana".into(),
            "Dana Scully".into(),
            Some("ops".into()),
            Some("ops".into())
        )
    );
    // Run again: nothing left to apply.
    assert!(
        migrate::run(&pool, "profile", spec.migrations)
            .await
            .unwrap()
            .is_empty()
    );
}
