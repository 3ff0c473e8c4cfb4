//! The whole offline platform as a user runs it: `finctl up --offline` brings the infrastructure,
//! the six services and their workers up healthy; a token from the offline IdP is accepted by
//! every service's `GET /me`, which answers with that user; no token gets 401.
//!
//! The stack uses the project's real ports (127.0.0.1:8001-8006, 8080, 26257, 6379, 9092). If it
//! is already up (e.g. after the README's first quick-start command) the test uses it and leaves
//! it running; otherwise it brings it up and takes it down again.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::Value;

mod common;
use common::{Teardown, Test};

/// finctl on the project itself (not a throwaway one: this test checks the real platform).
fn finctl() -> Test {
    Test::new().project_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
}

#[tokio::test]
async fn the_offline_platform_comes_up_and_every_service_knows_the_caller() {
    let already_up = finctl().args(["health", "--offline"]).run().code() == Some(0);
    let up = finctl()
        .args(["--json", "up", "--offline", "--build", "--timeout", "5m"])
        .run();
    let guard = Teardown {
        active: !already_up,
    };
    let report = up.status(0).json();
    let services = report["services"].as_array().expect("services");
    let names: Vec<&str> = services
        .iter()
        .filter_map(|s| s["service"].as_str())
        .collect();
    for name in [
        "profile",
        "payment",
        "ledger",
        "wallet",
        "rule-engine",
        "forex",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
        assert!(
            names.contains(&format!("{name}-worker").as_str()),
            "{name}-worker missing"
        );
    }
    let ready = services
        .iter()
        .filter(|s| s["outcome"]["kind"] == "ready")
        .count();
    assert_eq!(ready, services.len(), "every service ready: {report:#}");

    // `health` agrees, and says so with exit 0.
    finctl()
        .args(["--json", "health", "--offline"])
        .assert_status(0);

    // Without --offline, the commands act on the stack as it was started: no port only the
    // upstream images serve (Keycloak's admin UI 8082, Redpanda's host listener 19092), no
    // upstream image missing, every service ok, and no warning.
    let urls = finctl().args(["--json", "urls"]).assert_status(0);
    assert!(!urls.stderr().contains("warning"), "{}", urls.report());
    for port in [":8082", ":19092"] {
        assert!(!urls.stdout().contains(port), "{port}: {}", urls.report());
    }
    let doctor = finctl().args(["--json", "doctor"]).run();
    let checks = doctor.json();
    for check in checks.as_array().expect("doctor's checks") {
        let detail = check["detail"].as_str().unwrap_or_default();
        assert!(
            !detail.contains("quay.io/keycloak") && !detail.contains("redis:7"),
            "doctor looked at the upstream images: {check}"
        );
    }
    finctl().args(["--json", "health"]).assert_status(0);
    // Saying --offline agrees with the running stack: no warning; a profile it was not
    // started with contradicts it: one.
    let agreed = finctl().args(["ps", "--offline"]).assert_status(0);
    assert!(!agreed.stderr().contains("warning"), "{}", agreed.report());
    let contradicted = finctl()
        .args(["ps", "--offline", "--profile", "cluster"])
        .assert_status(0);
    assert_eq!(
        contradicted.stderr().matches("warning:").count(),
        1,
        "{}",
        contradicted.report()
    );

    // A password-grant token from the IdP, at Keycloak's realm path.
    let http = reqwest::Client::new();
    let response = http
        .post("http://127.0.0.1:8080/realms/innover/protocol/openid-connect/token")
        .basic_auth("finctl", Some("finctl-dev-secret"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=password&username=ops_user&password=ops_user&scope=openid%20profile%20email%20groups")
        .send()
        .await
        .expect("token request");
    let (status, body) = (
        response.status(),
        response.text().await.expect("token body"),
    );
    assert_eq!(status, StatusCode::OK, "token: {body}");
    let token: Value = serde_json::from_str(&body).unwrap();
    let access_token = token["access_token"].as_str().unwrap();

    for (service, port) in [
        ("profile", 8001),
        ("payment", 8002),
        ("ledger", 8003),
        ("wallet", 8004),
        ("rule-engine", 8005),
        ("forex", 8006),
    ] {
        let url = format!("http://127.0.0.1:{port}/me");
        let response = http
            .get(&url)
            .bearer_auth(access_token)
            .send()
            .await
            .expect("GET /me");
        let (status, body) = (response.status(), response.text().await.expect("/me body"));
        assert_eq!(status, StatusCode::OK, "{service} /me: {body}");
        let me: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(me["status"], "ok");
        assert_eq!(me["service"], format!("svc-{service}"));
        assert_eq!(me["user"]["username"], "ops_user");
        assert_eq!(me["user"]["email"], "ops_user@innover.example");
        assert_eq!(me["user"]["roles"], serde_json::json!(["ops_user"]));
        let status = http.get(&url).send().await.expect("GET /me").status();
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{service} /me without a token"
        );
    }
    drop(guard);
}
