//! The built-in gateway as users reach it: the offline stack (real gateway container, real
//! IdP tokens, real services) after `finctl up --offline`, which publishes api-config.yaml.
//!
//! One test, in steps, because several steps change the shared stack (a stopped backend, a
//! gateway restart, routes published and pruned): run in parallel they would see each other.
//! If the stack is already up (after the README's first command) it is used and left
//! running; otherwise it is brought up and taken down again.
//!
//! The forged tokens are signed with the IdP's own private key (read from its container), so
//! each negative case is refused for the one reason it names, not for a bad signature.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

mod common;
use common::{Teardown, Test, docker};

const GATEWAY: &str = "http://127.0.0.1:8280";
const ADMIN: &str = "http://127.0.0.1:8281";
/// compose/.env's development default.
const ADMIN_TOKEN: &str = "dev-gateway-admin-token";
const TOKEN_URL: &str = "http://127.0.0.1:8080/realms/innover/protocol/openid-connect/token";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn finctl() -> Test {
    Test::new().project_dir(root())
}

async fn token(http: &reqwest::Client, user: &str) -> String {
    let response = http
        .post(TOKEN_URL)
        .basic_auth("finctl", Some("finctl-dev-secret"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=password&username={user}&password={user}&scope=openid%20profile%20email%20groups"
        ))
        .send()
        .await
        .expect("token request");
    let status = response.status();
    let body: Value = response.json().await.expect("token body");
    assert_eq!(status, StatusCode::OK, "token for {user}: {body}");
    body["access_token"].as_str().unwrap().to_owned()
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
}

fn encode_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// The IdP's signing key, from its container: (kid, private PEM, public PEM).
fn idp_key() -> (String, String, String) {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::EncodePublicKey;
    let out = finctl()
        .args([
            "exec",
            "--offline",
            "keycloak",
            "--",
            "cat",
            "/var/lib/idp/jwks.json",
        ])
        .run()
        .status(0);
    let jwks: Value = serde_json::from_str(out.stdout()).expect("the IdP's private JWKS");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["alg"] == "RS256")
        .expect("an RS256 key")
        .clone();
    let int = |name: &str| {
        rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap())
    };
    let key =
        rsa::RsaPrivateKey::from_components(int("n"), int("e"), int("d"), vec![int("p"), int("q")])
            .expect("an RSA key");
    let private = key
        .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
        .unwrap()
        .to_string();
    let public = rsa::RsaPublicKey::from(&key)
        .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
        .unwrap();
    (jwk["kid"].as_str().unwrap().to_owned(), private, public)
}

/// Signs `claims` as the IdP would, with `kid`.
fn sign(claims: &Value, kid: &str, private_pem: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

async fn get(http: &reqwest::Client, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut request = http.get(format!("{GATEWAY}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("gateway request");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

async fn routes(http: &reqwest::Client) -> Value {
    http.get(format!("{ADMIN}/admin/apis"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("admin API")
        .json()
        .await
        .expect("route table")
}

/// The id of the caller's wallet in `currency`, opened through the gateway if it has none.
async fn wallet(http: &reqwest::Client, token: &str, currency: &str) -> String {
    let url = format!("{GATEWAY}/api/wallet/1.0.0/wallets");
    let find = |list: Value| {
        list.as_array()
            .and_then(|ws| ws.iter().find(|w| w["currency"] == currency))
            .map(|w| w["id"].as_str().unwrap().to_owned())
    };
    let list = || async {
        let response = http.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "list wallets");
        response.json::<Value>().await.unwrap()
    };
    if let Some(id) = find(list().await) {
        return id;
    }
    let response = http
        .post(&url)
        .bearer_auth(token)
        .json(&json!({ "currency": currency }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert!(
        status.is_success() || status == StatusCode::CONFLICT,
        "open a {currency} wallet: {status} {}",
        response.text().await.unwrap_or_default()
    );
    find(list().await).unwrap_or_else(|| panic!("no {currency} wallet after opening one"))
}

/// Waits until `path` answers `want` through the gateway (after a restart).
async fn wait_for(http: &reqwest::Client, path: &str, token: Option<&str>, want: StatusCode) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut request = http.get(format!("{GATEWAY}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Ok(response) = request.send().await
            && response.status() == want
        {
            return;
        }
        assert!(Instant::now() < deadline, "{path} never answered {want}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn the_gateway_routes_authenticates_throttles_and_keeps_its_routes() {
    let _guard = Teardown::up_offline();
    let http = reqwest::Client::new();

    // --- `up` published the file: a second publish has nothing to do ---------------------
    let again = finctl()
        .args(["--json", "publish-apis"])
        .run()
        .status(0)
        .json();
    let changes = again["changes"].as_array().unwrap();
    assert!(changes.len() >= 6, "{again:#}");
    assert!(
        changes.iter().all(|c| c["action"] == "unchanged"),
        "right after `up`, everything is published: {again:#}"
    );
    assert_eq!(again["applied"], json!([]), "no write call: {again:#}");

    // --- routing and identity ----------------------------------------------------------
    let ops = token(&http, "ops_user").await;
    let (status, body) = get(&http, "/api/forex/1.0.0/health", Some(&ops)).await;
    assert_eq!(status, StatusCode::OK, "forex health: {body}");
    for (context, service) in [
        ("profile", "profile"),
        ("payment", "payment"),
        ("ledger", "ledger"),
        ("wallet", "wallet"),
        ("rules", "rule-engine"),
        ("forex", "forex"),
    ] {
        let (status, body) = get(&http, &format!("/api/{context}/1.0.0/me"), Some(&ops)).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{service} /me through the gateway: {body}"
        );
        let me: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(me["service"], format!("svc-{service}"), "{body}");
        assert_eq!(me["user"]["username"], "ops_user", "{body}");
    }

    // --- every bad token is refused at the edge --------------------------------------------
    let (kid, private_pem, public_pem) = idp_key();
    let parts: Vec<&str> = ops.split('.').collect();
    let claims = decode_part(parts[1]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // The IdP's key really is the one signing: a copy of the token's claims, re-signed, passes.
    let resigned = sign(&claims, &kid, &private_pem);
    let (status, body) = get(&http, "/api/forex/1.0.0/me", Some(&resigned)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "re-signed with the IdP's key: {body}"
    );

    let with = |patch: Value| {
        let mut c = claims.clone();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        sign(&c, &kid, &private_pem)
    };
    let mut tampered_claims = claims.clone();
    tampered_claims["preferred_username"] = json!("admin");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        encode_part(&tampered_claims),
        parts[2]
    );
    let alg_none = format!(
        "{}.{}.",
        encode_part(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        parts[1]
    );
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    let hs256 = jsonwebtoken::encode(
        &hs_header,
        &claims,
        &EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .unwrap();
    let unknown_kid = platform_testing::sign(&claims, platform_testing::TestKey::B);
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("malformed", Some("not-a-jwt".into())),
        ("tampered signature", Some(tampered)),
        (
            "expired",
            Some(with(json!({"exp": now - 3600, "iat": now - 7200}))),
        ),
        (
            "wrong issuer",
            Some(with(json!({"iss": "http://evil.example/realms/innover"}))),
        ),
        ("wrong audience", Some(with(json!({"aud": "someone-else"})))),
        ("alg none", Some(alg_none)),
        ("HS256 signed with the IdP's public key", Some(hs256)),
        ("unknown kid", Some(unknown_kid)),
    ];
    for (case, token) in &cases {
        let mut request = http.get(format!("{GATEWAY}/api/payment/1.0.0/me"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}");
        assert!(
            challenge.as_deref().unwrap_or("").starts_with("Bearer"),
            "{case}: {challenge:?}"
        );
        assert_eq!(
            content_type.as_deref(),
            Some("application/problem+json"),
            "{case}"
        );
    }

    // --- roles per operation: setting a rate is for admins -----------------------------
    let user = token(&http, "user").await;
    let admin = token(&http, "admin").await;
    let put_rate = |token: &str| {
        http.put(format!("{GATEWAY}/api/forex/1.0.0/rates/CHF"))
            .bearer_auth(token)
            .json(&json!({"per_usd": "0.88"}))
            .send()
    };
    let response = put_rate(&user).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "user may not set rates"
    );
    let response = put_rate(&admin).await.unwrap();
    let status = response.status();
    assert!(
        status.is_success(),
        "admin sets a rate: {status} {}",
        response.text().await.unwrap()
    );

    // --- a client-sent X-JWT-Assertion impersonates no one --------------------------------
    let forged_assertion =
        with(json!({"preferred_username": "admin", "realm_access": {"roles": ["admin"]}}));
    let response = http
        .get(format!("{GATEWAY}/api/wallet/1.0.0/me"))
        .bearer_auth(&user)
        .header("X-JWT-Assertion", forged_assertion)
        .send()
        .await
        .unwrap();
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["user"]["username"], "user", "{me}");

    // --- CORS preflight, answered by the gateway ---------------------------------------
    let response = http
        .request(
            reqwest::Method::OPTIONS,
            format!("{GATEWAY}/api/forex/1.0.0/rates"),
        )
        .header("Origin", "http://localhost:3000")
        .header("Access-Control-Request-Method", "PUT")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "preflight: {}",
        response.status()
    );
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );

    // --- WebSocket: payment status updates, the token in the query (as browsers must) ---
    let ws_url = format!("ws://127.0.0.1:8280/api/payment-updates/1.0.0?access_token={user}");
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .expect("WebSocket upgrade through the gateway");
    let snapshot = next_json(&mut ws).await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    let key = format!(
        "gateway-test-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    // A payment goes from the caller's wallet to the payee's: both need a USD wallet (the
    // payer's is empty, so the saga ends in `failed`; the update on creation is what counts).
    wallet(&http, &user, "USD").await;
    let auditor = token(&http, "auditor").await;
    let payee_wallet = wallet(&http, &auditor, "USD").await;
    let response = http
        .post(format!("{GATEWAY}/api/payment/1.0.0/payments"))
        .bearer_auth(&user)
        .header("Idempotency-Key", key)
        .json(
            &json!({"amount": 1200, "currency": "USD", "payee_wallet_id": payee_wallet,
            "payee": "gateway-test"}),
        )
        .send()
        .await
        .unwrap();
    let status = response.status();
    let payment: Value = response.json().await.unwrap();
    assert!(
        status.is_success(),
        "payment through the gateway: {status} {payment}"
    );
    let update = next_json(&mut ws).await;
    assert_eq!(update["type"], "payment", "{update}");
    assert_eq!(update["payment_id"], payment["id"], "{update} vs {payment}");
    ws.close(None).await.unwrap();
    match tokio_tungstenite::connect_async("ws://127.0.0.1:8280/api/payment-updates/1.0.0").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(
                response.status().as_u16(),
                401,
                "a WebSocket without a token"
            );
        }
        other => panic!(
            "a WebSocket without a token was not refused: {:?}",
            other.map(|_| ())
        ),
    }

    // --- SSE: forex rates stream; the first event arrives while the stream stays open --
    let mut response = http
        .get(format!("{GATEWAY}/api/forex-stream/1.0.0"))
        .bearer_auth(&ops)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let first = tokio::time::timeout(Duration::from_secs(10), response.chunk())
        .await
        .expect("the first event within 10 s, before the stream ends")
        .unwrap()
        .expect("a chunk, not the end of the stream");
    let first = String::from_utf8_lossy(&first).into_owned();
    assert!(first.contains("data:"), "an SSE event: {first:?}");
    drop(response);

    // --- GraphQL: profile's read model; size and depth checked at the gateway -----------
    let graphql = format!("{GATEWAY}/api/profile-graphql/1.0.0");
    let post = |token: String, query: &str| {
        http.post(&graphql)
            .bearer_auth(token)
            .json(&json!({ "query": query }))
            .send()
    };
    let response = post(ops.clone(), "{ profiles(first: 5) { username kycStatus } }")
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let reply: Value = response.json().await.unwrap();
    assert!(
        reply["data"]["profiles"].is_array() && reply.get("errors").is_none(),
        "ops_user reads the review queue: {reply}"
    );
    let reply: Value = post(user.clone(), "{ profiles { username } }")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        reply["errors"][0]["extensions"]["code"], "forbidden",
        "the REST role rules hold over GraphQL: {reply}"
    );
    // GET with ?query= (as GraphQL-over-HTTP allows), then the gateway's own checks.
    let (status, body) = get(
        &http,
        "/api/profile-graphql/1.0.0?query=%7B%20me%20%7B%20username%20%7D%20%7D",
        Some(&user),
    )
    .await;
    let reply: Value = serde_json::from_str(&body).unwrap_or_default();
    assert!(
        status == StatusCode::OK && reply["data"].get("me").is_some(),
        "GET: {status} {body}"
    );
    let response = post(user.clone(), "{ me { a { b { c { d { e } } } } } }")
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "query_too_deep", "{problem}");
    let response = post(
        user.clone(),
        &format!("{{ me {{ username }} }} #{}", "x".repeat(9000)),
    )
    .await
    .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "over max_query_bytes"
    );
    let (status, _) = get(&http, "/api/profile-graphql/1.0.0?query=%7Bme%7D", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "GraphQL needs a token");
    // The schema is published with the API: the committed file, byte for byte.
    let (status, sdl) = get(
        &http,
        "/api/profile-graphql/1.0.0/schema.graphql",
        Some(&user),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sdl,
        std::fs::read_to_string(root().join("platform-services/profile/schema.graphql")).unwrap()
    );

    // --- throttling: the `public` policy allows 20 a minute per caller -------------------
    let mut limited = None;
    for _ in 0..40 {
        let response = http
            .get(format!("{GATEWAY}/api/rules/1.0.0/health"))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
    }
    let limited = limited.expect("a burst of 40 passes a 20/min policy: 429 expected");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(limited.headers().contains_key("ratelimit-limit"));
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let (status, _) = get(&http, "/api/rules/1.0.0/health", None).await;
    assert_eq!(status, StatusCode::OK, "calls pass again after Retry-After");

    // --- a stopped backend: 502, fast --------------------------------------------------
    let ps = finctl()
        .args(["--json", "ps", "--offline"])
        .run()
        .status(0)
        .json();
    let ledger = ps
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "ledger")
        .and_then(|s| s["container"].as_str())
        .expect("the ledger container")
        .to_owned();
    docker(&["stop", &ledger]);
    let mut fastest = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let (status, body) = get(&http, "/api/ledger/1.0.0/me", Some(&ops)).await;
        fastest = fastest.min(started.elapsed());
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    }
    assert!(fastest < Duration::from_secs(1), "502 took {fastest:?}");
    finctl()
        .args(["up", "--offline", "--timeout", "3m", "ledger"])
        .run()
        .status(0);

    // --- the routes survive a gateway restart ------------------------------------------
    let before = routes(&http).await;
    finctl()
        .args(["restart", "--offline", "gateway"])
        .run()
        .status(0);
    wait_for(&http, "/api/forex/1.0.0/me", Some(&ops), StatusCode::OK).await;
    assert_eq!(
        routes(&http).await,
        before,
        "the route table after a restart"
    );

    // --- publish and prune -------------------------------------------------------------
    let original = std::fs::read_to_string(root().join("api-config.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The GraphQL schema is read relative to the file: copies keep it beside them.
    let schema = "platform-services/profile/schema.graphql";
    std::fs::create_dir_all(dir.path().join(schema).parent().unwrap()).unwrap();
    std::fs::copy(root().join(schema), dir.path().join(schema)).unwrap();
    let extra = dir.path().join("apis.yaml");
    std::fs::write(
        &extra,
        original.replace(
            "rest_apis:\n",
            "rest_apis:\n  - { name: Scratch API, context: /api/scratch, version: '1', backend_url: 'http://forex:8000' }\n",
        ),
    )
    .unwrap();
    let extra_arg = extra.to_str().unwrap();
    let created = finctl()
        .args(["--json", "publish-apis", "--config", extra_arg])
        .run()
        .status(0)
        .json();
    assert_eq!(created["applied"], json!(["Scratch API:1"]), "{created:#}");
    let (status, _) = get(&http, "/api/scratch/1/me", Some(&ops)).await;
    assert_eq!(status, StatusCode::OK, "the new route works at once");
    // Without --prune, the repository's file leaves it and says so.
    let kept = finctl().args(["publish-apis"]).run().status(0);
    assert!(kept.stderr().contains("--prune"), "{}", kept.report());
    let pruned = finctl()
        .args(["--json", "publish-apis", "--prune"])
        .run()
        .status(0)
        .json();
    assert_eq!(pruned["applied"], json!(["Scratch API:1"]), "{pruned:#}");
    let (status, _) = get(&http, "/api/scratch/1/me", Some(&ops)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a pruned route is gone");

    // --- a bad file: file:line, exit 2, the routes untouched ----------------------------
    let before = routes(&http).await;
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        original.replace("context: \"/api/ledger\"", "context: \"api/ledger\""),
    )
    .unwrap();
    let line = original
        .lines()
        .position(|l| l.contains("context: \"/api/ledger\""))
        .unwrap()
        + 1;
    let refused = finctl()
        .args(["publish-apis", "--config", bad.to_str().unwrap()])
        .run()
        .status(2);
    let expected =
        format!("bad.yaml:{line}: rest_apis[2].context: `api/ledger`: must start with `/`");
    assert!(refused.stderr().contains(&expected), "{}", refused.report());
    assert_eq!(routes(&http).await, before, "nothing published");
}

/// The next text message of a WebSocket, as JSON (pings are skipped).
async fn next_json<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a WebSocket message within 10 s")
            .expect("the WebSocket is open")
            .expect("a WebSocket frame");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).expect("JSON");
        }
    }
}
