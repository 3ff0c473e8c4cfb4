//! wallet against real Postgres and Redis: one test per rule.

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
        let (app, _ctx, infra) = service_app(&wallet::spec(), &idp, &[]).await;
        Self {
            app,
            idp,
            _infra: infra,
        }
    }

    /// frank, a plain user who owns the wallets below.
    fn frank(&self) -> String {
        self.idp.token("frank", &["user"])
    }

    fn finance(&self) -> String {
        self.idp.token("fin", &["finance"])
    }

    fn ops(&self) -> String {
        self.idp.token("ops", &["ops_user"])
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

    async fn open(&self, currency: &str) -> (StatusCode, Value) {
        self.call(
            "POST",
            "/wallets",
            &self.frank(),
            Some(json!({"currency": currency})),
        )
        .await
    }

    /// frank's new EUR wallet; returns its id.
    async fn wallet(&self) -> String {
        let (s, w) = self.open("EUR").await;
        assert_eq!(s, StatusCode::CREATED, "{w}");
        w["id"].as_str().unwrap().to_string()
    }

    /// An entry posted by finance.
    async fn entry(&self, id: &str, dir: &str, amount: i64, r: &str) -> (StatusCode, Value) {
        self.entry_as(&self.finance(), id, dir, amount, r).await
    }

    async fn entry_as(
        &self,
        token: &str,
        id: &str,
        dir: &str,
        amount: i64,
        r: &str,
    ) -> (StatusCode, Value) {
        self.call(
            "POST",
            &format!("/wallets/{id}/entries"),
            token,
            Some(json!({"direction": dir, "amount": amount, "reference": r})),
        )
        .await
    }
}

#[tokio::test]
async fn a_new_wallet_is_active_and_empty() {
    let api = Api::start().await;
    let (s, w) = api.open("EUR").await;
    assert_eq!(
        (s, w["balance"].as_i64(), w["status"].as_str()),
        (StatusCode::CREATED, Some(0), Some("active"))
    );
}

#[tokio::test]
async fn one_wallet_per_user_and_currency() {
    let api = Api::start().await;
    api.wallet().await;
    let (s, b) = api.open("EUR").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("wallet_exists"))
    );
}

#[tokio::test]
async fn an_unknown_currency_names_the_field() {
    let api = Api::start().await;
    let (s, b) = api.open("EURO").await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("currency"))
    );
}

#[tokio::test]
async fn only_finance_and_admin_post_entries() {
    let api = Api::start().await;
    let id = api.wallet().await;
    let (s, _) = api.entry_as(&api.frank(), &id, "credit", 500, "r1").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_credit_raises_the_balance_and_its_reference_again_is_a_no_op() {
    let api = Api::start().await;
    let id = api.wallet().await;
    let (s, b) = api.entry(&id, "credit", 500, "r1").await;
    assert_eq!((s, b["balance"].as_i64()), (StatusCode::OK, Some(500)));
    let (_, b) = api.entry(&id, "credit", 500, "r1").await;
    assert_eq!(
        b["balance"].as_i64(),
        Some(500),
        "same reference is a no-op"
    );
}

#[tokio::test]
async fn a_reference_reused_for_another_entry_is_refused() {
    let api = Api::start().await;
    let id = api.wallet().await;
    api.entry(&id, "credit", 500, "r1").await;
    let (s, b) = api.entry(&id, "credit", 501, "r1").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("reference_reused"))
    );
}

#[tokio::test]
async fn a_debit_beyond_the_balance_is_insufficient_funds() {
    let api = Api::start().await;
    let id = api.wallet().await;
    api.entry(&id, "credit", 500, "r1").await;
    let (s, b) = api.entry(&id, "debit", 501, "r2").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("insufficient_funds"))
    );
}

#[tokio::test]
async fn a_bad_entry_names_the_field() {
    let api = Api::start().await;
    let id = api.wallet().await;
    let (s, b) = api.entry(&id, "debit", -1, "r3").await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("amount"))
    );
    let (s, b) = api.entry(&id, "sideways", 1, "r3").await;
    assert_eq!(
        (s, b["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("direction"))
    );
}

#[tokio::test]
async fn only_ops_user_and_admin_freeze() {
    let api = Api::start().await;
    let id = api.wallet().await;
    let freeze = format!("/wallets/{id}/freeze");
    for token in [api.frank(), api.finance()] {
        assert_eq!(
            api.call("POST", &freeze, &token, Some(json!({}))).await.0,
            StatusCode::FORBIDDEN
        );
    }
}

#[tokio::test]
async fn a_frozen_wallet_takes_no_entries_until_unfrozen() {
    let api = Api::start().await;
    let id = api.wallet().await;
    api.entry(&id, "credit", 500, "r1").await;
    let (s, b) = api
        .call(
            "POST",
            &format!("/wallets/{id}/freeze"),
            &api.ops(),
            Some(json!({"reason": "fraud check"})),
        )
        .await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("frozen")));
    let (s, b) = api.entry(&id, "debit", 100, "r4").await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("wallet_frozen"))
    );
    let (s, b) = api
        .call("POST", &format!("/wallets/{id}/unfreeze"), &api.ops(), None)
        .await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("active")));
    let (_, b) = api.entry(&id, "debit", 100, "r4").await;
    assert_eq!(b["balance"].as_i64(), Some(400));
}

#[tokio::test]
async fn others_wallets_are_not_found_and_listing_them_needs_staff() {
    let api = Api::start().await;
    let id = api.wallet().await;
    let grace = api.idp.token("grace", &["user"]);
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
        .call("GET", "/wallets?owner=frank", &api.ops(), None)
        .await;
    assert_eq!(
        (s, b.as_array().map(|a| a.len())),
        (StatusCode::OK, Some(1))
    );
}
