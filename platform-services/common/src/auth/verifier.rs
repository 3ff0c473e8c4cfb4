use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use serde_json::Value;

use super::jwks::{JwksCache, JwksOptions, KeySource};
use super::{AuthError, User};
use crate::config::OidcConfig;

/// Verifies access tokens: RS256 only, signature by an IdP key, `iss`, `aud` and `exp`.
pub struct TokenVerifier {
    keys: JwksCache,
    validation: Validation,
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
            keys: JwksCache::new(source, options),
            validation,
        }
    }

    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.validation.leeway = leeway.as_secs();
        self
    }

    /// The token's claims, once everything checks out.
    pub async fn verify(&self, token: &str) -> Result<Value, AuthError> {
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

    /// Verify and normalise into a [`User`].
    pub async fn user(&self, token: &str) -> Result<User, AuthError> {
        let claims = self.verify(token).await?;
        User::from_claims(&claims).ok_or(AuthError::MissingClaim("sub".into()))
    }
}
