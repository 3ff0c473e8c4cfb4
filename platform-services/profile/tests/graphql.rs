//! profile's GraphQL read model against real Postgres: the REST routes' role rules, over POST
//! and GET, and the errors a client sees.

use axum::http::StatusCode;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use platform_testing::TestApi;
use serde_json::{Value, json};

async fn start() -> TestApi {
    TestApi::start(&profile::spec(), &[]).await
}

async fn query(api: &TestApi, token: &str, q: &str) -> (StatusCode, Value) {
    api.call("POST", "/graphql", token, Some(json!({ "query": q })))
        .await
}

async fn put_profile(api: &TestApi, token: &str, name: &str) {
    let (s, _) = api
        .call(
            "PUT",
            "/profiles/me",
            token,
            Some(json!({ "full_name": name })),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}

/// The first error's `extensions.code`, or None when the reply has no errors.
fn error_code(b: &Value) -> Option<&str> {
    b["errors"][0]["extensions"]["code"].as_str()
}

#[tokio::test]
async fn me_is_null_before_the_first_put_then_the_profile() {
    let api = start().await;
    let dana = api.token("dana", &["user"]);
    let (s, b) = query(&api, &dana, "{ me { username } }").await;
    assert_eq!((s, &b["data"]["me"]), (StatusCode::OK, &Value::Null));
    assert!(b.get("errors").is_none(), "{b}");

    put_profile(&api, &dana, "Dana Scully").await;
    let (s, b) = query(&api, &dana, "{ me { username fullName kycStatus } }").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b["data"]["me"],
        json!({"username": "dana", "fullName": "Dana Scully", "kycStatus": "PENDING"})
    );
}

#[tokio::test]
async fn profiles_are_found_by_subject_and_show_the_username() {
    let api = start().await;
    let mut claims = api.idp.claims("dana", &["user"]);
    claims["sub"] = json!("3c9e-dana");
    let dana = platform_testing::sign(&claims, platform_testing::TestKey::A);
    put_profile(&api, &dana, "Dana Scully").await;
    let (_, b) = query(&api, &dana, "{ me { userId username } }").await;
    assert_eq!(
        b["data"]["me"],
        json!({"userId": "3c9e-dana", "username": "dana"}),
        "{b}"
    );
    let ops = api.token("walter", &["ops_user"]);
    let (_, b) = query(
        &api,
        &ops,
        r#"{ profile(userId: "3c9e-dana") { username } }"#,
    )
    .await;
    assert_eq!(b["data"]["profile"]["username"], "dana", "{b}");
    // Her username is not a key.
    let (_, b) = query(&api, &ops, r#"{ profile(userId: "dana") { username } }"#).await;
    assert_eq!(b["data"]["profile"], Value::Null, "{b}");
}

#[tokio::test]
async fn get_with_a_query_parameter_answers_like_post() {
    let api = start().await;
    let dana = api.token("dana", &["user"]);
    put_profile(&api, &dana, "Dana Scully").await;
    let q = utf8_percent_encode("{ me { fullName } }", NON_ALPHANUMERIC);
    let (s, b) = api
        .call("GET", &format!("/graphql?query={q}"), &dana, None)
        .await;
    assert_eq!(
        (s, b["data"]["me"]["fullName"].as_str()),
        (StatusCode::OK, Some("Dana Scully"))
    );
}

#[tokio::test]
async fn another_users_profile_needs_a_reader_role() {
    let api = start().await;
    let dana = api.token("dana", &["user"]);
    put_profile(&api, &dana, "Dana Scully").await;
    let q = r#"{ profile(userId: "dana") { username } }"#;

    let fox = api.token("fox", &["user"]);
    let (s, b) = query(&api, &fox, q).await;
    assert_eq!(
        (s, error_code(&b), &b["data"]["profile"]),
        (StatusCode::OK, Some("forbidden"), &Value::Null),
        "{b}"
    );
    assert_eq!(b["errors"][0]["extensions"]["status"], 403);

    for role in ["auditor", "ops_user", "admin"] {
        let t = api.token("walter", &[role]);
        let (_, b) = query(&api, &t, q).await;
        assert_eq!(b["data"]["profile"]["username"], "dana", "{role}: {b}");
    }
    // The owner reads their own without a reader role.
    let (_, b) = query(&api, &dana, q).await;
    assert_eq!(b["data"]["profile"]["username"], "dana");
    // Unknown users are null, not an error.
    let t = api.token("walter", &["auditor"]);
    let (_, b) = query(&api, &t, r#"{ profile(userId: "nobody") { username } }"#).await;
    assert_eq!(
        (&b["data"]["profile"], error_code(&b)),
        (&Value::Null, None)
    );
}

#[tokio::test]
async fn the_review_queue_lists_submitted_profiles_oldest_first_for_staff_only() {
    let api = start().await;
    for user in ["dana", "fox", "monica"] {
        let t = api.token(user, &["user"]);
        put_profile(&api, &t, user).await;
        if user != "fox" {
            let (s, _) = api.call("POST", "/profiles/me/kyc", &t, None).await;
            assert_eq!(s, StatusCode::OK);
        }
    }
    let q = "{ profiles(kycStatus: SUBMITTED) { username kycStatus } }";
    let ops = api.token("walter", &["ops_user"]);
    let (_, b) = query(&api, &ops, q).await;
    assert_eq!(
        b["data"]["profiles"],
        json!([
            {"username": "dana", "kycStatus": "SUBMITTED"},
            {"username": "monica", "kycStatus": "SUBMITTED"}
        ]),
        "{b}"
    );
    let (_, b) = query(&api, &ops, "{ profiles(first: 1) { username } }").await;
    assert_eq!(b["data"]["profiles"], json!([{"username": "dana"}]));

    let user = api.token("fox", &["user"]);
    let (_, b) = query(&api, &user, q).await;
    assert_eq!(error_code(&b), Some("forbidden"), "{b}");
    // Page size is bounded.
    let (_, b) = query(&api, &ops, "{ profiles(first: 1000) { username } }").await;
    assert!(
        b["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("less than or equal to 200")),
        "{b}"
    );
}

#[tokio::test]
async fn no_token_is_401_problem_json_and_bad_queries_are_graphql_errors() {
    let api = start().await;
    let (s, b) = platform_testing::call(
        &api.app,
        "POST",
        "/graphql",
        None,
        &[],
        Some(json!({"query": "{ me { username } }"})),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("missing_token")),
        "{b}"
    );

    let dana = api.token("dana", &["user"]);
    let (_, b) = query(&api, &dana, "{ me { password } }").await;
    assert!(
        b["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("password")),
        "{b}"
    );
    let (_, b) = query(&api, &dana, "mutation { me }").await;
    assert!(b["errors"].is_array(), "{b}");
}
