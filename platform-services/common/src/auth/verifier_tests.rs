//! The verifier against a real HTTP JWKS endpoint (an in-process IdP on 127.0.0.1).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use super::{AuthError, TokenVerifier};
use crate::testing::{AUDIENCE, TestIdp, TestKey, sign};

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
