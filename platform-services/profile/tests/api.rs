//! profile against real Postgres and Redis.

use axum::http::StatusCode;
use platform_testing::{TestIdp, call, service_app};
use serde_json::json;

#[tokio::test]
async fn kyc_lifecycle_and_roles() {
    let idp = TestIdp::start().await;
    let (app, _ctx, _g) = service_app(&profile::spec(), &idp, &[]).await;
    let dana = idp.token("dana", &["user"]);
    let eve = idp.token("eve", &["user"]);
    let ops = idp.token("ops", &["ops_user"]);
    let finance = idp.token("fin", &["finance"]);

    let (s, b) = call(&app, "GET", "/me", Some(&dana), &[], None).await;
    assert_eq!(
        (s, b["service"].as_str(), b["user"]["username"].as_str()),
        (StatusCode::OK, Some("svc-profile"), Some("dana"))
    );
    assert_eq!(
        call(&app, "GET", "/profiles/me", Some(&dana), &[], None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (s, b) = call(
        &app,
        "PUT",
        "/profiles/me",
        Some(&dana),
        &[],
        Some(json!({"full_name": ""})),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("full_name"))
    );
    let (s, b) = call(
        &app,
        "PUT",
        "/profiles/me",
        Some(&dana),
        &[],
        Some(json!({"full_name": "Dana Scully"})),
    )
    .await;
    assert_eq!(
        (s, b["kyc_status"].as_str(), b["email"].as_str()),
        (StatusCode::OK, Some("pending"), Some("dana@innover.local"))
    );

    // Reviewers cannot skip submission; others cannot review.
    let decide = |d: &str| Some(json!({"decision": d}));
    let (s, b) = call(
        &app,
        "PUT",
        "/profiles/dana/kyc/decision",
        Some(&ops),
        &[],
        decide("verified"),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_kyc_transition"))
    );
    assert_eq!(
        call(&app, "POST", "/profiles/me/kyc", Some(&dana), &[], None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        call(
            &app,
            "PUT",
            "/profiles/dana/kyc/decision",
            Some(&finance),
            &[],
            decide("verified")
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(
            &app,
            "PUT",
            "/profiles/dana/kyc/decision",
            Some(&eve),
            &[],
            decide("verified")
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let (s, b) = call(
        &app,
        "PUT",
        "/profiles/dana/kyc/decision",
        Some(&ops),
        &[],
        decide("pending"),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("decision"))
    );
    let (s, b) = call(
        &app,
        "PUT",
        "/profiles/dana/kyc/decision",
        Some(&ops),
        &[],
        decide("bogus"),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("decision"))
    );

    // Rejected, resubmitted, verified; verified is final.
    let (s, b) = call(
        &app,
        "PUT",
        "/profiles/dana/kyc/decision",
        Some(&ops),
        &[],
        Some(json!({"decision": "rejected", "reason": "blurry"})),
    )
    .await;
    assert_eq!(
        (s, b["kyc_status"].as_str(), b["kyc_reason"].as_str()),
        (StatusCode::OK, Some("rejected"), Some("blurry"))
    );
    assert_eq!(
        call(&app, "POST", "/profiles/me/kyc", Some(&dana), &[], None)
            .await
            .0,
        StatusCode::OK
    );
    let (s, b) = call(
        &app,
        "PUT",
        "/profiles/dana/kyc/decision",
        Some(&ops),
        &[],
        decide("verified"),
    )
    .await;
    assert_eq!(
        (s, b["kyc_status"].as_str(), b["kyc_reviewed_by"].as_str()),
        (StatusCode::OK, Some("verified"), Some("ops"))
    );
    assert_eq!(
        call(&app, "POST", "/profiles/me/kyc", Some(&dana), &[], None)
            .await
            .0,
        StatusCode::CONFLICT
    );

    // Reading others' profiles needs a staff role.
    assert_eq!(
        call(&app, "GET", "/profiles/dana", Some(&eve), &[], None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&app, "GET", "/profiles/dana", Some(&ops), &[], None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, "GET", "/profiles/nobody", Some(&ops), &[], None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}
