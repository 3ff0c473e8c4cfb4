//! The verifier against a real HTTP JWKS endpoint (an in-process IdP on 127.0.0.1).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use platform_common::auth::{AuthError, TokenVerifier};
use platform_testing::{AUDIENCE, TestIdp, TestKey, sign};

async fn idp() -> (TestIdp, TokenVerifier) {
    let idp = TestIdp::start().await;
    let v = idp.verifier(Duration::from_secs(30));
    (idp, v)
}

#[tokio::test]
async fn valid_token_yields_user() {
    let (idp, v) = idp().await;
    let user = v.user(&idp.token("admin", &["admin"])).await.unwrap();
    assert_eq!(user.username, "admin");
    assert_eq!(user.email.as_deref(), Some("admin@innover.local"));
    assert_eq!(user.roles, ["admin"]);
}

#[tokio::test]
async fn expired_token_rejected() {
    let (idp, v) = idp().await;
    let mut c = idp.claims("admin", &["admin"]);
    let now = jsonwebtoken::get_current_timestamp();
    c["exp"] = json!(now - 120);
    c["iat"] = json!(now - 600);
    assert_eq!(
        v.verify(&sign(&c, TestKey::A)).await.unwrap_err(),
        AuthError::Expired
    );
}

#[tokio::test]
async fn missing_exp_rejected() {
    let (idp, v) = idp().await;
    let mut c = idp.claims("admin", &[]);
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        v.verify(&sign(&c, TestKey::A)).await.unwrap_err(),
        AuthError::MissingClaim("exp".into())
    );
}

#[tokio::test]
async fn wrong_issuer_rejected() {
    let (idp, v) = idp().await;
    let mut c = idp.claims("admin", &[]);
    c["iss"] = json!("http://evil.example");
    assert_eq!(
        v.verify(&sign(&c, TestKey::A)).await.unwrap_err(),
        AuthError::WrongIssuer
    );
}

#[tokio::test]
async fn wrong_audience_rejected() {
    let (idp, v) = idp().await;
    let mut c = idp.claims("admin", &[]);
    c["aud"] = json!("someone-else");
    assert_eq!(
        v.verify(&sign(&c, TestKey::A)).await.unwrap_err(),
        AuthError::WrongAudience
    );
    // An audience list containing ours is fine.
    c["aud"] = json!(["someone-else", AUDIENCE]);
    assert!(v.verify(&sign(&c, TestKey::A)).await.is_ok());
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn alg_none_rejected() {
    let (idp, v) = idp().await;
    let c = idp.claims("admin", &["admin"]);
    for alg in ["none", "None", "NONE"] {
        let token = format!(
            "{}.{}.",
            b64(&json!({"alg": alg, "typ": "JWT", "kid": "test-key-a"})),
            b64(&c)
        );
        let err = v.verify(&token).await.unwrap_err();
        assert!(
            matches!(err, AuthError::UnsupportedAlgorithm(_)),
            "{alg}: {err:?}"
        );
    }
}

#[tokio::test]
async fn hs256_signed_with_public_key_rejected() {
    let (idp, v) = idp().await;
    let c = idp.claims("admin", &["admin"]);
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(TestKey::A.kid().into());
    let token = encode(
        &header,
        &c,
        &EncodingKey::from_secret(TestKey::A.public_pem().as_bytes()),
    )
    .unwrap();
    assert_eq!(
        v.verify(&token).await.unwrap_err(),
        AuthError::UnsupportedAlgorithm("HS256".into())
    );
}

#[tokio::test]
async fn tampered_payload_rejected() {
    let (idp, v) = idp().await;
    let token = idp.token("user", &["user"]);
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(&idp.claims("user", &["admin"])),
        parts[2]
    );
    assert_eq!(
        v.verify(&forged).await.unwrap_err(),
        AuthError::BadSignature
    );
}

#[tokio::test]
async fn garbage_is_malformed() {
    let (_idp, v) = idp().await;
    assert_eq!(
        v.verify("not-a-jwt").await.unwrap_err(),
        AuthError::Malformed
    );
}

#[tokio::test]
async fn unknown_kid_refreshes_keys_once_then_accepts_rotated_key() {
    let idp = TestIdp::start().await;
    let v = idp.verifier(Duration::from_millis(200));
    v.verify(&idp.token("a", &[])).await.unwrap();
    assert_eq!(idp.jwks_hits(), 1);
    // Cached: no new fetch.
    v.verify(&idp.token("a", &[])).await.unwrap();
    assert_eq!(idp.jwks_hits(), 1);

    // The IdP rotates to key B; a token with kid B triggers a refresh.
    idp.publish(&[TestKey::A, TestKey::B]).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let token_b = sign(&idp.claims("b", &["user"]), TestKey::B);
    assert_eq!(v.user(&token_b).await.unwrap().username, "b");
    assert_eq!(idp.jwks_hits(), 2);
}

#[tokio::test]
async fn unknown_kid_refresh_is_rate_limited() {
    let idp = TestIdp::start().await;
    let v = idp.verifier(Duration::from_secs(60));
    v.verify(&idp.token("a", &[])).await.unwrap();
    let token_b = sign(&idp.claims("b", &[]), TestKey::B);
    for _ in 0..20 {
        assert_eq!(
            v.verify(&token_b).await.unwrap_err(),
            AuthError::UnknownKey("test-key-b".into())
        );
    }
    // First fetch plus at most one refresh for the burst of unknown kids.
    assert!(idp.jwks_hits() <= 2, "hits: {}", idp.jwks_hits());
}

#[tokio::test]
async fn idp_down_is_keys_unavailable() {
    let idp = TestIdp::start().await;
    let v = idp.verifier(Duration::from_secs(1));
    let token = idp.token("a", &[]);
    drop(idp);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(matches!(
        v.verify(&token).await.unwrap_err(),
        AuthError::KeysUnavailable(_)
    ));
}

#[tokio::test]
async fn each_roles_claim_shape_is_read() {
    let (idp, v) = idp().await;
    let shapes = [
        json!({"roles": ["finance"]}),
        json!({"groups": ["finance"]}),
        json!({"realm_access": {"roles": ["finance"]}}),
        json!({"http://wso2.org/claims/role": "finance"}),
        json!({"http://wso2.org/claims/role": ["Internal/finance"]}),
    ];
    for extra in shapes {
        let mut c = idp.claims("f", &[]);
        c.as_object_mut().unwrap().remove("groups");
        for (k, val) in extra.as_object().unwrap() {
            c[k] = val.clone();
        }
        let user = v.user(&sign(&c, TestKey::A)).await.unwrap();
        assert_eq!(user.roles, ["finance"], "claims: {extra}");
    }
}

fn full_verifications(v: &TokenVerifier) -> usize {
    v.full_verifications()
}

#[tokio::test]
async fn verified_token_is_not_verified_again() {
    let (idp, v) = idp().await;
    let token = idp.token("admin", &["admin"]);
    let first = v.user(&token).await.unwrap();
    assert_eq!(full_verifications(&v), 1);
    for _ in 0..5 {
        assert_eq!(v.user(&token).await.unwrap(), first);
    }
    assert_eq!(full_verifications(&v), 1);
    // Another token is verified in full.
    v.user(&idp.token("user", &["user"])).await.unwrap();
    assert_eq!(full_verifications(&v), 2);
}

#[tokio::test]
async fn verified_token_is_rejected_once_expired() {
    let (idp, v) = idp().await;
    let v = v.with_leeway(Duration::ZERO);
    let mut c = idp.claims("admin", &["admin"]);
    // Two seconds: the first two calls stay inside one whole second before `exp`.
    c["exp"] = json!(jsonwebtoken::get_current_timestamp() + 2);
    let token = sign(&c, TestKey::A);
    v.user(&token).await.unwrap();
    v.user(&token).await.unwrap();
    assert_eq!(full_verifications(&v), 1);
    // Past `exp` (jsonwebtoken rejects once `now > exp`).
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    assert_eq!(v.user(&token).await.unwrap_err(), AuthError::Expired);
    assert_eq!(full_verifications(&v), 2);
}

#[tokio::test]
async fn token_with_one_byte_changed_is_not_served_from_the_cache() {
    let (idp, v) = idp().await;
    let token = idp.token("user", &["user"]);
    v.user(&token).await.unwrap();
    // A byte in the middle of the signature (the last base64 character may only carry padding
    // bits).
    let mut forged = token.clone().into_bytes();
    let i = forged.len() - 20;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(v.user(&forged).await.unwrap_err(), AuthError::BadSignature);
    assert_eq!(full_verifications(&v), 2);
    // Nor is a failure remembered in place of the real token.
    v.user(&token).await.unwrap();
    assert_eq!(full_verifications(&v), 2);
}

#[tokio::test]
async fn rejected_tokens_are_never_remembered() {
    let (idp, v) = idp().await;
    let mut c = idp.claims("admin", &["admin"]);
    c["aud"] = json!("someone-else");
    let token = sign(&c, TestKey::A);
    for _ in 0..3 {
        assert_eq!(v.user(&token).await.unwrap_err(), AuthError::WrongAudience);
    }
    assert_eq!(full_verifications(&v), 3);
}

#[tokio::test]
async fn without_cache_every_request_is_verified() {
    let (idp, v) = idp().await;
    let v = v.with_verified_tokens(0);
    let token = idp.token("admin", &["admin"]);
    v.user(&token).await.unwrap();
    v.user(&token).await.unwrap();
    assert_eq!(full_verifications(&v), 2);
}

/// Both headers go through the cache: the extractor is what services use.
#[tokio::test]
async fn bearer_and_assertion_headers_use_the_cache() {
    use std::sync::Arc;

    use axum::extract::FromRequestParts;

    use platform_common::auth::{CurrentUser, JWT_ASSERTION_HEADER};

    let (idp, v) = idp().await;
    let v = Arc::new(v);
    let token = idp.token("admin", &["admin"]);
    let extract = |name: &'static str, value: String| {
        let v = v.clone();
        async move {
            let (mut parts, ()) = axum::http::Request::builder()
                .header(name, value)
                .body(())
                .unwrap()
                .into_parts();
            parts.extensions.insert(v);
            CurrentUser::from_request_parts(&mut parts, &()).await
        }
    };
    for _ in 0..3 {
        let u = extract("authorization", format!("Bearer {token}")).await;
        assert_eq!(u.unwrap().0.username, "admin");
        let u = extract(JWT_ASSERTION_HEADER, token.clone()).await;
        assert_eq!(u.unwrap().0.username, "admin");
    }
    assert_eq!(full_verifications(&v), 1);
}
