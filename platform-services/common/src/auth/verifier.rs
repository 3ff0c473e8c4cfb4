use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use serde_json::Value;

use super::jwks::{JwksCache, JwksOptions, KeySource};
use super::verified_tokens::{VerifiedTokens, token_hash};
use super::{AuthError, User};
use crate::config::OidcConfig;

/// Tokens remembered after full verification (about 250 bytes each).
pub const DEFAULT_VERIFIED_TOKENS: usize = 10_000;

/// Verifies access tokens: RS256 only, signature by an IdP key, `iss`, `aud` and `exp`.
///
/// [`TokenVerifier::user`] remembers the tokens that passed, by hash, until their `exp` and
/// for at most the JWKS `max_age`. A key rotation that removes a `kid` therefore evicts
/// nothing: the key cache itself may keep trusting a removed key for up to `max_age` (it
/// refetches only when stale or on an unknown `kid`), so a remembered token is accepted no
/// longer than a freshly verified one could be.
pub struct TokenVerifier {
    keys: JwksCache,
    validation: Validation,
    verified: VerifiedTokens,
    max_entry_age: u64,
    /// Counted so tests can see the verified-token cache work; one relaxed add per miss.
    full_verifications: std::sync::atomic::AtomicUsize,
}

impl TokenVerifier {
    pub fn new(config: &OidcConfig, options: JwksOptions) -> Self {
        let source = match &config.jwks_url {
            Some(u) => KeySource::Jwks(u.clone()),
            None => KeySource::Discovery(config.discovery_url.clone()),
        };
        Self::with_source(source, &config.issuer, &config.audiences, options)
    }

    pub fn with_source(
        source: KeySource,
        issuer: &str,
        audiences: &[String],
        options: JwksOptions,
    ) -> Self {
        // Exactly one algorithm: a token claiming HS256 (signed with our public key as the
        // HMAC secret) or `none` never reaches signature checking.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 30;
        validation.validate_nbf = true;
        Self {
            max_entry_age: options.max_age.as_secs(),
            keys: JwksCache::new(source, options),
            validation,
            verified: VerifiedTokens::new(DEFAULT_VERIFIED_TOKENS),
            full_verifications: Default::default(),
        }
    }

    /// How many verified tokens to remember; 0 verifies every request in full.
    pub fn with_verified_tokens(mut self, capacity: usize) -> Self {
        self.verified = VerifiedTokens::new(capacity);
        self
    }

    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.validation.leeway = leeway.as_secs();
        self
    }

    /// Fetches the IdP's keys now; Ok once at least one usable key is cached.
    pub async fn load_keys(&self) -> Result<(), AuthError> {
        self.keys.load().await
    }

    /// How many tokens were verified in full (signature and claims), not answered from the
    /// verified-token cache.
    pub fn full_verifications(&self) -> usize {
        self.full_verifications
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The token's claims, once everything checks out.
    pub async fn verify(&self, token: &str) -> Result<Value, AuthError> {
        self.full_verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let header = decode_header(token).map_err(|e| match e.kind() {
            // `alg: none` and other unknown algorithms fail to parse here.
            ErrorKind::Json(_) | ErrorKind::InvalidAlgorithmName => {
                AuthError::UnsupportedAlgorithm("not RS256".into())
            }
            _ => AuthError::Malformed,
        })?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::UnsupportedAlgorithm(format!("{:?}", header.alg)));
        }
        let key = self.keys.key(header.kid.as_deref()).await?;
        let data = decode::<Value>(token, &key, &self.validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::ImmatureSignature => AuthError::NotYetValid,
            ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
            ErrorKind::InvalidAudience => AuthError::WrongAudience,
            ErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(c.clone()),
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::InvalidAlgorithm => AuthError::UnsupportedAlgorithm("key mismatch".into()),
            _ => AuthError::Malformed,
        })?;
        Ok(data.claims)
    }

    /// Verify and normalise into a [`User`]; a token verified before is not verified again
    /// while it is valid.
    pub async fn user(&self, token: &str) -> Result<User, AuthError> {
        let key = token_hash(token);
        if let Some(user) = self.verified.get(&key, now()) {
            return Ok(user);
        }
        let claims = self.verify(token).await?;
        let user = User::from_claims(&claims).ok_or(AuthError::MissingClaim("sub".into()))?;
        // `exp` is required and was checked; a non-integer `exp` or `nbf` is just not cached.
        let not_before = match claims.get("nbf") {
            None => Some(None),
            Some(nbf) => nbf.as_u64().map(Some),
        };
        if let (Some(exp), Some(not_before)) =
            (claims.get("exp").and_then(Value::as_u64), not_before)
        {
            let now = now();
            let valid_until = exp.min(now.saturating_add(self.max_entry_age));
            self.verified
                .insert(key, user.clone(), valid_until, not_before, now);
        }
        Ok(user)
    }
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}
