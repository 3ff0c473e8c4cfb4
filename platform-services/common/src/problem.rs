//! RFC 7807 `application/problem+json` errors with stable machine-readable codes.
//!
//! Each service defines its own error enum, implements [`ApiError`] for it (status, code,
//! optional field) and gets an axum response with [`impl_api_error_response!`].

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The body of every error response.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema, PartialEq, Eq)]
pub struct Problem {
    /// A URI naming the problem type: `urn:finctl:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable code clients can switch on.
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
    /// The request field at fault, for validation problems (`amount`, `currency`, ...).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:finctl:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            code: code.to_string(),
            detail: Some(detail.into()),
            field: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, axum::Json(&self)).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// An error a service can return from a handler.
pub trait ApiError: std::error::Error {
    fn status(&self) -> StatusCode;
    /// Stable, snake_case, never reworded once published.
    fn code(&self) -> &'static str;
    fn field(&self) -> Option<&str> {
        None
    }

    fn to_problem(&self) -> Problem {
        let status = self.status();
        // Never echo internal error text to clients; it is logged instead.
        let detail = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(code = self.code(), error = %self, "request failed");
            "internal error; see the service log".to_string()
        } else {
            self.to_string()
        };
        let p = Problem::new(status, self.code(), detail);
        match self.field() {
            Some(f) => p.with_field(f),
            None => p,
        }
    }
}

/// Implements `IntoResponse` for a service error enum through its [`ApiError`] impl.
#[macro_export]
macro_rules! impl_api_error_response {
    ($t:ty) => {
        impl ::axum::response::IntoResponse for $t {
            fn into_response(self) -> ::axum::response::Response {
                $crate::problem::ApiError::to_problem(&self).into_response()
            }
        }
    };
}

/// Errors every service shares; service enums wrap it with `#[from]`.
#[derive(Debug, thiserror::Error)]
pub enum CommonError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{detail}")]
    InvalidBody {
        field: Option<String>,
        detail: String,
    },
    #[error("{detail}")]
    Validation { field: String, detail: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0} is unavailable")]
    DependencyUnavailable(&'static str),
    /// A serialization conflict (SQLSTATE 40001) that outlived its retries; the request may
    /// be sent again.
    #[error("the database is busy with conflicting changes; retry the request")]
    Contention(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl CommonError {
    pub fn validation(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            detail: detail.into(),
        }
    }
}

impl ApiError for CommonError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::InvalidBody { .. } => StatusCode::BAD_REQUEST,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::DependencyUnavailable(_) | Self::Contention(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::InvalidBody { .. } => "invalid_body",
            Self::Validation { .. } => "validation_failed",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::DependencyUnavailable(_) => "dependency_unavailable",
            Self::Contention(_) => "contention",
            Self::Internal(_) => "internal",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::InvalidBody { field, .. } => field.as_deref(),
            Self::Validation { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl_api_error_response!(CommonError);

impl From<tokio_postgres::Error> for CommonError {
    fn from(e: tokio_postgres::Error) -> Self {
        crate::db::DbError::from(e).into()
    }
}

impl From<crate::db::PoolError> for CommonError {
    fn from(e: crate::db::PoolError) -> Self {
        crate::db::DbError::from(e).into()
    }
}

/// Gives a service error enum that wraps [`CommonError`] (`#[from]`) the database
/// conversions `?` needs: from `tokio_postgres::Error`, the pool's `PoolError` and
/// [`DbError`](crate::db::DbError), each through [`CommonError`].
#[macro_export]
macro_rules! impl_db_error_conversions {
    ($t:ty) => {
        impl $crate::db::Retryable for $t {
            fn is_retryable(&self) -> bool {
                matches!(self, Self::Common(c) if $crate::db::Retryable::is_retryable(c))
            }
        }
        impl ::std::convert::From<$crate::db::DbError> for $t {
            fn from(e: $crate::db::DbError) -> Self {
                $crate::CommonError::from(e).into()
            }
        }
        impl ::std::convert::From<$crate::db::PoolError> for $t {
            fn from(e: $crate::db::PoolError) -> Self {
                $crate::CommonError::from(e).into()
            }
        }
        impl ::std::convert::From<$crate::db::TokioPostgresError> for $t {
            fn from(e: $crate::db::TokioPostgresError) -> Self {
                $crate::CommonError::from(e).into()
            }
        }
    };
}

impl From<crate::db::DbError> for CommonError {
    fn from(e: crate::db::DbError) -> Self {
        match e {
            crate::db::DbError::Unavailable(_) => Self::DependencyUnavailable("database"),
            crate::db::DbError::Retry(e) => Self::Contention(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_problem_names_field() {
        let p = CommonError::validation("amount", "must be positive").to_problem();
        assert_eq!(p.status, 422);
        assert_eq!(p.code, "validation_failed");
        assert_eq!(p.field.as_deref(), Some("amount"));
        assert_eq!(p.kind, "urn:finctl:problem:validation_failed");
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["type"], "urn:finctl:problem:validation_failed");
    }

    #[test]
    fn internal_detail_is_not_leaked() {
        let p = CommonError::Internal("password=hunter2".into()).to_problem();
        assert!(!p.detail.unwrap().contains("hunter2"));
    }

    #[test]
    fn response_has_problem_content_type() {
        let r = CommonError::Unauthorized("missing token".into()).into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
