//! JWT authentication and role guards.

mod jwks;
mod user;
mod verified_tokens;
mod verifier;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

pub use jwks::{JwksCache, JwksOptions, KeySource};
pub use user::User;
pub use verifier::{DEFAULT_VERIFIED_TOKENS, TokenVerifier};

use crate::problem::{ApiError, CommonError};

/// Header the gateway forwards the validated token in (WSO2's name).
pub const JWT_ASSERTION_HEADER: &str = "x-jwt-assertion";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("no bearer token: send `Authorization: Bearer <token>` or `X-JWT-Assertion`")]
    MissingToken,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("token algorithm {0} is not accepted; only RS256 is")]
    UnsupportedAlgorithm(String),
    #[error("the token is signed by an unknown key (kid {0})")]
    UnknownKey(String),
    #[error("the token signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(String),
    #[error("`Authorization` and `X-JWT-Assertion` name different users")]
    ConflictingTokens,
    #[error("the identity provider's keys could not be fetched: {0}")]
    KeysUnavailable(String),
}

impl ApiError for AuthError {
    fn status(&self) -> StatusCode {
        match self {
            Self::KeysUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::Expired => "token_expired",
            Self::KeysUnavailable(_) => "identity_provider_unavailable",
            _ => "invalid_token",
        }
    }
}

crate::impl_api_error_response!(AuthError);

/// The authenticated caller. Extracting it verifies every token the request carries.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let verifier = parts
            .extensions
            .get::<Arc<TokenVerifier>>()
            .cloned()
            .expect("TokenVerifier extension is installed by platform_common::http::router");
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| {
                let v = v.to_str().map_err(|_| AuthError::Malformed)?;
                let (scheme, token) = v.split_once(' ').ok_or(AuthError::Malformed)?;
                if !scheme.eq_ignore_ascii_case("bearer") {
                    return Err(AuthError::MissingToken);
                }
                Ok(token.trim().to_string())
            })
            .transpose()?;
        let assertion = parts
            .headers
            .get(JWT_ASSERTION_HEADER)
            .map(|v| {
                v.to_str()
                    .map(|s| s.trim().to_string())
                    .map_err(|_| AuthError::Malformed)
            })
            .transpose()?;
        let user = match (bearer, assertion) {
            (None, None) => return Err(AuthError::MissingToken),
            (Some(t), None) | (None, Some(t)) => verifier.user(&t).await?,
            (Some(b), Some(a)) => {
                let (ub, ua) = (verifier.user(&b).await?, verifier.user(&a).await?);
                if ub.username != ua.username {
                    return Err(AuthError::ConflictingTokens);
                }
                ub
            }
        };
        Ok(CurrentUser(user))
    }
}

/// A role requirement: any-of (the seeds' `require_roles`) or all-of (`require_all_roles`).
#[derive(Debug, Clone, Copy)]
pub enum RoleGuard {
    AnyOf(&'static [&'static str]),
    AllOf(&'static [&'static str]),
}

impl RoleGuard {
    pub fn check(&self, user: &User) -> Result<(), CommonError> {
        let (ok, roles, how) = match self {
            Self::AnyOf(r) => (user.has_any_role(r), r, "one of"),
            Self::AllOf(r) => (user.has_all_roles(r), r, "all of"),
        };
        if ok {
            Ok(())
        } else {
            Err(CommonError::Forbidden(format!(
                "this action requires {how} the roles: {}",
                roles.join(", ")
            )))
        }
    }
}

/// The platform's roles (seeds: "Roles and users").
pub mod roles {
    pub const ADMIN: &str = "admin";
    pub const OPS_USER: &str = "ops_user";
    pub const FINANCE: &str = "finance";
    pub const AUDITOR: &str = "auditor";
    pub const USER: &str = "user";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards() {
        let u = User {
            id: "x".into(),
            username: "x".into(),
            email: None,
            roles: vec!["finance".into()],
        };
        assert!(RoleGuard::AnyOf(&["admin", "finance"]).check(&u).is_ok());
        let err = RoleGuard::AllOf(&["admin", "finance"])
            .check(&u)
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            err.to_string(),
            "this action requires all of the roles: admin, finance"
        );
    }
}
