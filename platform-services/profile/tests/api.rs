//! profile against real Postgres and Redis: one test per rule.

use axum::Router;
use axum::http::StatusCode;
use platform_testing::infra::Guard;
use platform_testing::{TestIdp, call, service_app};
use serde_json::{Value, json};

/// The service's app on its own database, and the IdP its tokens come from.
struct Api {
    app: Router,
    idp: TestIdp,
    _infra: Vec<Guard>,
}

impl Api {
    async fn start() -> Self {
        let idp = TestIdp::start().await;
        let (app, _ctx, infra) = service_app(&profile::spec(), &idp, &[]).await;
        Self {
            app,
            idp,
            _infra: infra,
        }
    }

    fn token(&self, user: &str, roles: &[&str]) -> String {
        self.idp.token(user, roles)
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        call(&self.app, method, path, Some(token), &[], body).await
    }

    /// `user` with a profile (KYC pending); returns their token.
    async fn with_profile(&self, user: &str) -> String {
        let token = self.token(user, &["user"]);
        let (s, _) = self
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
    async fn with_submitted_kyc(&self, user: &str) -> String {
        let token = self.with_profile(user).await;
        assert_eq!(
            self.call("POST", "/profiles/me/kyc", &token, None).await.0,
            StatusCode::OK
        );
        token
    }
}

fn decide(d: &str) -> Option<Value> {
    Some(json!({"decision": d}))
}

#[tokio::test]
async fn me_names_the_service_and_the_caller() {
    let api = Api::start().await;
    let dana = api.token("dana", &["user"]);
    let (s, b) = api.call("GET", "/me", &dana, None).await;
    assert_eq!(
        (s, b["service"].as_str(), b["user"]["username"].as_str()),
        (StatusCode::OK, Some("svc-profile"), Some("dana"))
    );
}

#[tokio::test]
async fn own_profile_is_not_found_before_the_first_put() {
    let api = Api::start().await;
    let dana = api.token("dana", &["user"]);
    assert_eq!(
        api.call("GET", "/profiles/me", &dana, None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn put_refuses_an_empty_full_name() {
    let api = Api::start().await;
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
    let api = Api::start().await;
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
    let api = Api::start().await;
    api.with_profile("dana").await;
    let ops = api.token("ops", &["ops_user"]);
    let (s, b) = api
        .call(
            "PUT",
            "/profiles/dana/kyc/decision",
            &ops,
            decide("verified"),
        )
        .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("invalid_kyc_transition"))
    );
}

#[tokio::test]
async fn only_ops_user_and_admin_decide_kyc() {
    let api = Api::start().await;
    api.with_submitted_kyc("dana").await;
    let finance = api.token("fin", &["finance"]);
    let eve = api.token("eve", &["user"]);
    for token in [&finance, &eve] {
        assert_eq!(
            api.call(
                "PUT",
                "/profiles/dana/kyc/decision",
                token,
                decide("verified")
            )
            .await
            .0,
            StatusCode::FORBIDDEN
        );
    }
}

#[tokio::test]
async fn a_decision_is_verified_or_rejected() {
    let api = Api::start().await;
    api.with_submitted_kyc("dana").await;
    let ops = api.token("ops", &["ops_user"]);
    for decision in ["pending", "bogus"] {
        let (s, b) = api
            .call("PUT", "/profiles/dana/kyc/decision", &ops, decide(decision))
            .await;
        assert_eq!(
            (s, b["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("decision")),
            "{decision}"
        );
    }
}

#[tokio::test]
async fn rejected_kyc_is_resubmitted_then_verified_and_verified_is_final() {
    let api = Api::start().await;
    let dana = api.with_submitted_kyc("dana").await;
    let ops = api.token("ops", &["ops_user"]);
    let (s, b) = api
        .call(
            "PUT",
            "/profiles/dana/kyc/decision",
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
    let (s, b) = api
        .call(
            "PUT",
            "/profiles/dana/kyc/decision",
            &ops,
            decide("verified"),
        )
        .await;
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
    let api = Api::start().await;
    api.with_profile("dana").await;
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
