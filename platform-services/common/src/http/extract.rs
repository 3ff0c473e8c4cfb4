//! Request extractors whose rejections are problem+json naming the field at fault.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::problem::CommonError;

/// A JSON body. Malformed JSON is a 400 `invalid_body`; a well-formed body with a wrong,
/// missing or out-of-range field is a 422 `validation_failed` with `field` set.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = CommonError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim();
                m == "application/json" || m.ends_with("+json")
            });
        if !is_json {
            return Err(CommonError::InvalidBody {
                field: None,
                detail: "expected a JSON body with Content-Type: application/json".into(),
            });
        }
        let bytes =
            Bytes::from_request(req, state)
                .await
                .map_err(|e| CommonError::InvalidBody {
                    field: None,
                    detail: e.body_text(),
                })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parse a JSON document, classifying the error as the extractor does.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CommonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(classify)?;
    de.end().map_err(|e| CommonError::InvalidBody {
        field: None,
        detail: format!("malformed JSON: {e}"),
    })?;
    reject_nul(bytes)?;
    Ok(value)
}

/// U+0000 in a JSON string (only ever written `\u0000`): no database text column can hold it,
/// so it is refused here, naming the field, rather than failing in the database as a 500.
fn reject_nul(bytes: &[u8]) -> Result<(), CommonError> {
    if !bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        return Ok(());
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Ok(());
    };
    match nul_path(&value, String::new()) {
        Some(field) => Err(CommonError::Validation {
            field,
            detail: "must not contain the NUL character (U+0000)".into(),
        }),
        None => Ok(()),
    }
}

/// The path (`payee`, `items[2].name`) of the first string or key holding U+0000.
fn nul_path(value: &serde_json::Value, at: String) -> Option<String> {
    match value {
        serde_json::Value::String(s) if s.contains('\0') => Some(at),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_path(v, format!("{at}[{i}]"))),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
            let here = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            if k.contains('\0') {
                Some(here)
            } else {
                nul_path(v, here)
            }
        }),
        _ => None,
    }
}

/// `%00` in a path or query: refused like [`reject_nul`] does in bodies.
fn has_encoded_nul(s: &str) -> bool {
    s.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

fn classify(err: serde_path_to_error::Error<serde_json::Error>) -> CommonError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        return CommonError::InvalidBody {
            field: None,
            detail: format!("malformed JSON: {inner}"),
        };
    }
    let msg = strip_position(&inner.to_string());
    // serde reports a missing field at the parent path; the name is in the message.
    let field = if let Some(name) = msg
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
    {
        if path == "." {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    } else if path == "." {
        String::new()
    } else {
        path
    };
    if field.is_empty() {
        CommonError::InvalidBody {
            field: None,
            detail: msg,
        }
    } else {
        CommonError::Validation { field, detail: msg }
    }
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Path parameters; a bad one is a 400 naming `path`.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = CommonError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if has_encoded_nul(parts.uri.path()) {
            return Err(CommonError::InvalidBody {
                field: Some("path".into()),
                detail: "must not contain the NUL character (%00)".into(),
            });
        }
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| CommonError::InvalidBody {
                field: Some("path".into()),
                detail: e.body_text(),
            })
    }
}

/// Query parameters; a bad one is a 400 naming `query`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = CommonError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.query().is_some_and(has_encoded_nul) {
            return Err(CommonError::InvalidBody {
                field: Some("query".into()),
                detail: "must not contain the NUL character (%00)".into(),
            });
        }
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| CommonError::InvalidBody {
                field: Some("query".into()),
                detail: e.body_text(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        amount: i64,
        currency: String,
    }

    fn field(r: Result<Body, CommonError>) -> (String, Option<String>) {
        match r.unwrap_err() {
            CommonError::Validation { field, detail } => (detail, Some(field)),
            CommonError::InvalidBody { field, detail } => (detail, field),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn wrong_type_names_field() {
        let (_, f) = field(parse_json(br#"{"amount": "10", "currency": "USD"}"#));
        assert_eq!(f.as_deref(), Some("amount"));
    }

    #[test]
    fn overflow_names_field() {
        let (_, f) = field(parse_json(
            br#"{"amount": 99999999999999999999, "currency": "USD"}"#,
        ));
        assert_eq!(f.as_deref(), Some("amount"));
    }

    #[test]
    fn missing_field_named() {
        let (d, f) = field(parse_json(br#"{"amount": 1}"#));
        assert_eq!(f.as_deref(), Some("currency"));
        assert_eq!(d, "missing field `currency`");
    }

    #[test]
    fn nul_in_a_string_is_refused_naming_the_field() {
        let (d, f) = field(parse_json(br#"{"amount": 1, "currency": "US\u0000D"}"#));
        assert_eq!(f.as_deref(), Some("currency"));
        assert!(d.contains("NUL"), "{d}");
        assert!(has_encoded_nul("/profiles/a%00b"));
        assert!(!has_encoded_nul("/profiles/a%20b%100"));
    }

    #[test]
    fn malformed_json_is_invalid_body() {
        assert!(matches!(
            parse_json::<Body>(br#"{"amount": "#),
            Err(CommonError::InvalidBody { field: None, .. })
        ));
        assert!(matches!(
            parse_json::<Body>(br#"{"amount": 1, "currency": "USD"} x"#),
            Err(CommonError::InvalidBody { .. })
        ));
    }
}
