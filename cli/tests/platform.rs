//! The whole offline platform as a user runs it: `finctl up --offline` brings the infrastructure,
//! the six services and their workers up healthy; a token from the offline IdP is accepted by
//! every service's `GET /me`, which answers with that user; no token gets 401.
//!
//! The stack uses the project's real ports (127.0.0.1:8001-8006, 8080, 26257, 6379, 9092). If it
//! is already up (e.g. after the README's first quick-start command) the test uses it and leaves
//! it running; otherwise it brings it up and takes it down again.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn finctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_finctl"))
        .env("NO_COLOR", "1")
        .arg("--project-dir")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(args)
        .output()
        .expect("finctl runs")
}

/// `curl`-free HTTP: a tiny blocking client over std, enough for JSON GET/POST on loopback.
fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

#[test]
fn the_offline_platform_comes_up_and_every_service_knows_the_caller() {
    let already_up = finctl(&["health", "--offline"]).status.success();
    let up = finctl(&["--json", "up", "--offline", "--build", "--timeout", "5m"]);
    let guard = Teardown {
        active: !already_up,
    };
    assert!(
        up.status.success(),
        "finctl up failed:\n{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let report: Value = serde_json::from_slice(&up.stdout).expect("up --json");
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
    let health = finctl(&["--json", "health", "--offline"]);
    assert!(
        health.status.success(),
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );

    // A password-grant token from the IdP, at Keycloak's realm path.
    let form = "grant_type=password&username=ops_user&password=ops_user&scope=openid%20profile%20email%20groups";
    let (status, body) = http(
        "POST",
        "http://127.0.0.1:8080/realms/innover/protocol/openid-connect/token",
        &[
            ("Authorization", "Basic ZmluY3RsOmZpbmN0bC1kZXYtc2VjcmV0"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        form,
    );
    assert_eq!(status, 200, "token: {body}");
    let token: Value = serde_json::from_str(&body).unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());

    for (service, port) in [
        ("profile", 8001),
        ("payment", 8002),
        ("ledger", 8003),
        ("wallet", 8004),
        ("rule-engine", 8005),
        ("forex", 8006),
    ] {
        let url = format!("http://127.0.0.1:{port}/me");
        let (status, body) = http("GET", &url, &[("Authorization", &bearer)], "");
        assert_eq!(status, 200, "{service} /me: {body}");
        let me: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(me["status"], "ok");
        assert_eq!(me["service"], format!("svc-{service}"));
        assert_eq!(me["user"]["username"], "ops_user");
        assert_eq!(me["user"]["email"], "ops_user@innover.example");
        assert_eq!(me["user"]["roles"], serde_json::json!(["ops_user"]));
        let (status, _) = http("GET", &url, &[], "");
        assert_eq!(status, 401, "{service} /me without a token");
    }
    drop(guard);
}

/// Takes the stack down again if this test brought it up (also when an assertion fails).
struct Teardown {
    active: bool,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if self.active {
            let _ = finctl(&["down", "--offline", "--volumes"]);
        }
    }
}
