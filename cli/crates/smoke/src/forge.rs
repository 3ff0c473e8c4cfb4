//! The bad tokens of the auth suite: every way a token must be refused, built from a genuine
//! token of the stack's IdP.
//!
//! Some need only the genuine token and the IdP's public key (tampered claims, `alg: none`,
//! HS256 keyed with the public key, an unknown `kid`, malformed); expired, wrong-issuer and
//! wrong-audience tokens must carry a valid signature to prove the check is the claim's, so
//! they need the IdP's private key, which only the offline IdP lets finctl read. Without it
//! those are reported as unavailable, and their cases are skipped with the reason.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};

/// The Hurl variables this module provides, in the order the auth suite lists them.
pub const NAMES: [&str; 8] = [
    "bad_token_malformed",
    "bad_token_tampered",
    "bad_token_alg_none",
    "bad_token_hs256_public_key",
    "bad_token_unknown_kid",
    "bad_token_expired",
    "bad_token_wrong_issuer",
    "bad_token_wrong_audience",
];

/// The IdP's signing key (private) or verification key (public), by `kid`.
pub struct Key {
    pub kid: String,
    public: RsaPublicKey,
    private: Option<RsaPrivateKey>,
}

impl Key {
    /// The RS256 key of a JWKS (public keys only: what `jwks_uri` serves).
    pub fn from_jwks(jwks: &Value, kid: Option<&str>) -> anyhow::Result<Self> {
        let keys = jwks["keys"]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("a JWKS has a `keys` array"))?;
        let jwk = keys
            .iter()
            .find(|k| {
                k["kty"] == "RSA"
                    && kid.is_none_or(|kid| k["kid"] == kid)
                    && (k["alg"].is_null() || k["alg"] == "RS256")
            })
            .ok_or_else(|| anyhow::anyhow!("no RS256 key {} in the JWKS", kid.unwrap_or("")))?;
        let int = |name: &str| -> anyhow::Result<BigUint> {
            let text = jwk[name]
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("the JWK has no `{name}`"))?;
            Ok(BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(text)?))
        };
        let public = RsaPublicKey::new(int("n")?, int("e")?)?;
        let private = if jwk.get("d").is_some() {
            Some(RsaPrivateKey::from_components(
                int("n")?,
                int("e")?,
                int("d")?,
                vec![int("p")?, int("q")?],
            )?)
        } else {
            None
        };
        Ok(Self {
            kid: jwk["kid"].as_str().unwrap_or_default().to_owned(),
            public,
            private,
        })
    }

    fn sign(&self, claims: &Value) -> Option<String> {
        let private = self.private.as_ref()?;
        sign_with(private, &self.kid, claims)
    }
}

fn sign_with(key: &RsaPrivateKey, kid: &str, claims: &Value) -> Option<String> {
    let pem = key.to_pkcs1_pem(LineEnding::LF).ok()?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).ok()?,
    )
    .ok()
}

/// The header and claims of a JWT, unverified (None for an opaque token); padded base64url
/// is accepted too.
pub fn decode(token: &str) -> Option<(Value, Value)> {
    let mut parts = token.split('.');
    let part = |p: Option<&str>| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p?.trim_end_matches('=')).ok()?).ok()
    };
    Some((part(parts.next())?, part(parts.next())?))
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// The bad tokens, and for those that could not be made, why.
#[derive(Debug, Default)]
pub struct Forged {
    pub tokens: BTreeMap<String, String>,
    pub unavailable: BTreeMap<String, String>,
}

/// Builds the bad tokens from `genuine` (a token the IdP issued for a user without the admin
/// role) and the IdP's `key` (`why_not_private`: why its private half is not at hand).
pub fn forge(genuine: &str, key: &Key, why_not_private: &str) -> anyhow::Result<Forged> {
    let (header, claims) =
        decode(genuine).ok_or_else(|| anyhow::anyhow!("the IdP's token is not a JWT"))?;
    let mut parts = genuine.splitn(3, '.');
    let (h, _, signature) = (
        parts.next().unwrap_or_default(),
        parts.next(),
        parts.next().unwrap_or_default(),
    );
    let mut forged = Forged::default();
    let mut put = |name: &str, token: Option<String>, why: &str| match token {
        Some(token) => {
            forged.tokens.insert(name.to_owned(), token);
        }
        None => {
            forged.unavailable.insert(name.to_owned(), why.to_owned());
        }
    };

    put("bad_token_malformed", Some("not-a-jwt".into()), "");

    // The genuine signature over claims that now say admin.
    let mut elevated = claims.clone();
    elevated["realm_access"] = json!({"roles": ["admin"]});
    elevated["roles"] = json!(["admin"]);
    elevated["preferred_username"] = json!("admin");
    put(
        "bad_token_tampered",
        Some(format!("{h}.{}.{signature}", encode(&elevated))),
        "",
    );

    let mut none = json!({"alg": "none", "typ": "JWT"});
    if let Some(kid) = header.get("kid") {
        none["kid"] = kid.clone();
    }
    put(
        "bad_token_alg_none",
        Some(format!("{}.{}.", encode(&none), encode(&claims))),
        "",
    );

    // The classic key confusion: HMAC keyed with the public key's PEM.
    let public_pem = key.public.to_public_key_pem(LineEnding::LF)?;
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(key.kid.clone());
    let hs256 = jsonwebtoken::encode(
        &hs,
        &claims,
        &EncodingKey::from_secret(public_pem.as_bytes()),
    )?;
    put("bad_token_hs256_public_key", Some(hs256), "");

    // Signed properly, by a key the IdP never published.
    let stranger = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024)?;
    put(
        "bad_token_unknown_kid",
        sign_with(&stranger, "finctl-smoke-unknown-kid", &claims),
        "could not sign with a fresh key",
    );

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut expired = claims.clone();
    expired["iat"] = json!(now - 7200);
    expired["nbf"] = json!(now - 7200);
    expired["exp"] = json!(now - 3600);
    put("bad_token_expired", key.sign(&expired), why_not_private);

    let mut issuer = claims.clone();
    issuer["iss"] = json!("http://issuer.invalid/realms/other");
    put("bad_token_wrong_issuer", key.sign(&issuer), why_not_private);

    let mut audience = claims;
    audience["aud"] = json!("some-other-api");
    audience["azp"] = json!("some-other-client");
    put(
        "bad_token_wrong_audience",
        key.sign(&audience),
        why_not_private,
    );
    Ok(forged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn jwk_of(key: &RsaPrivateKey, kid: &str, private: bool) -> Value {
        use rsa::traits::{PrivateKeyParts, PublicKeyParts};
        let b = |n: &BigUint| URL_SAFE_NO_PAD.encode(n.to_bytes_be());
        let mut jwk =
            json!({"kty": "RSA", "kid": kid, "alg": "RS256", "n": b(key.n()), "e": b(key.e())});
        if private {
            jwk["d"] = json!(b(key.d()));
            jwk["p"] = json!(b(&key.primes()[0]));
            jwk["q"] = json!(b(&key.primes()[1]));
        }
        json!({"keys": [jwk]})
    }

    fn verify(token: &str, key: &RsaPrivateKey, iss: &str, aud: &str) -> bool {
        let pem = RsaPublicKey::from(key)
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[iss]);
        validation.set_audience(&[aud]);
        jsonwebtoken::decode::<Value>(
            token,
            &DecodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            &validation,
        )
        .is_ok()
    }

    #[test]
    fn every_bad_token_is_refused_by_a_correct_verifier_and_differs_as_named() {
        let idp = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = json!({"iss": "http://idp/realms/innover", "aud": "finctl", "sub": "u1",
            "preferred_username": "user", "realm_access": {"roles": ["user"]}, "exp": now + 300});
        let genuine = sign_with(&idp, "k1", &claims).unwrap();
        assert!(
            verify(&genuine, &idp, "http://idp/realms/innover", "finctl"),
            "the genuine token verifies"
        );

        let key = Key::from_jwks(&jwk_of(&idp, "k1", true), None).unwrap();
        let forged = forge(&genuine, &key, "no key").unwrap();
        assert!(forged.unavailable.is_empty(), "{:?}", forged.unavailable);
        assert_eq!(forged.tokens.len(), NAMES.len());
        for name in NAMES {
            let token = &forged.tokens[name];
            assert!(
                !verify(token, &idp, "http://idp/realms/innover", "finctl"),
                "{name} must be refused"
            );
        }
        // Each is bad for its own reason: the claim-level ones carry a valid signature.
        let claims_of = |name: &str| decode(&forged.tokens[name]).unwrap().1;
        assert!(claims_of("bad_token_expired")["exp"].as_u64().unwrap() < now);
        assert!(verify(
            &forged.tokens["bad_token_wrong_issuer"],
            &idp,
            "http://issuer.invalid/realms/other",
            "finctl"
        ));
        assert!(verify(
            &forged.tokens["bad_token_wrong_audience"],
            &idp,
            "http://idp/realms/innover",
            "some-other-api"
        ));
        assert_eq!(
            decode(&forged.tokens["bad_token_alg_none"]).unwrap().0["alg"],
            "none"
        );
        assert_eq!(
            claims_of("bad_token_tampered")["realm_access"]["roles"][0],
            "admin"
        );

        // With the public key only, the signed claim-level tokens are unavailable, with the reason.
        let public = Key::from_jwks(&jwk_of(&idp, "k1", false), Some("k1")).unwrap();
        let forged = forge(&genuine, &public, "Keycloak keeps its key").unwrap();
        assert_eq!(
            forged
                .unavailable
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            [
                "bad_token_expired",
                "bad_token_wrong_audience",
                "bad_token_wrong_issuer"
            ]
        );
        assert!(
            forged
                .unavailable
                .values()
                .all(|v| v == "Keycloak keeps its key")
        );
    }
}
