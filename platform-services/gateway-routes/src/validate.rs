//! The route table's invariants, checked by the gateway's admin API before a change is
//! applied and by `finctl publish-apis` before anything is sent: one set of rules, so a
//! table the publisher accepts is one the gateway accepts.

use std::collections::HashSet;

use http::{Method, Uri};

use crate::{Api, ApiKind, RouteTable, Throttle};

/// A rejected API or table: the field at fault (`apis[2].backend_url`) and why.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks one API on its own; `at` prefixes the field names (`apis[0].`).
pub fn validate_api(api: &Api, at: &str) -> Result<(), Invalid> {
    if api.name.trim().is_empty() {
        return Err(invalid(format!("{at}name"), "must not be empty"));
    }
    if api.version.trim().is_empty() || api.version.contains('/') {
        return Err(invalid(
            format!("{at}version"),
            "must be one non-empty path segment",
        ));
    }
    let c = &api.context;
    if !c.starts_with('/') || c.len() < 2 || c.ends_with('/') {
        return Err(invalid(
            format!("{at}context"),
            "must start with `/` and not end with `/` (like `/api/payment`)",
        ));
    }
    if crate::path::check(&api.prefix()).is_err() || c.contains(['?', '#', ' ']) {
        return Err(invalid(format!("{at}context"), "must be a plain path"));
    }
    let backend: Uri = api
        .backend_url
        .parse()
        .map_err(|e| invalid(format!("{at}backend_url"), format!("not a URL: {e}")))?;
    if !matches!(backend.scheme_str(), Some("http") | Some("https")) || backend.host().is_none() {
        return Err(invalid(
            format!("{at}backend_url"),
            "must be an http:// or https:// URL with a host",
        ));
    }
    if backend.query().is_some() {
        return Err(invalid(
            format!("{at}backend_url"),
            "must not carry a query",
        ));
    }
    match (api.kind, &api.graphql) {
        (ApiKind::Graphql, None) => {
            return Err(invalid(format!("{at}graphql"), "required for kind graphql"));
        }
        (ApiKind::Graphql, Some(g)) if g.max_query_bytes == 0 || g.max_depth == 0 => {
            return Err(invalid(
                format!("{at}graphql"),
                "limits must be greater than zero",
            ));
        }
        (k, Some(_)) if k != ApiKind::Graphql => {
            return Err(invalid(
                format!("{at}graphql"),
                "only allowed for kind graphql",
            ));
        }
        _ => {}
    }
    if let Some(t) = &api.throttle {
        validate_throttle(t, &format!("{at}throttle"))?;
    }
    let t = &api.timeouts;
    if t.connect_ms == 0 || t.response_ms == 0 || t.idle_ms == 0 || t.total_ms == Some(0) {
        return Err(invalid(
            format!("{at}timeouts"),
            "must be greater than zero",
        ));
    }
    for (i, op) in api.operations.iter().enumerate() {
        let f = format!("{at}operations[{i}]");
        if op.method != "*" && Method::from_bytes(op.method.as_bytes()).is_err() {
            return Err(invalid(format!("{f}.method"), "an HTTP method or `*`"));
        }
        if !op.path.starts_with('/') {
            return Err(invalid(format!("{f}.path"), "must start with `/`"));
        }
        if let Some(t) = &op.throttle {
            validate_throttle(t, &format!("{f}.throttle"))?;
        }
    }
    if let Some(cors) = &api.cors {
        if cors.origins.is_empty() {
            return Err(invalid(format!("{at}cors.origins"), "must not be empty"));
        }
    }
    Ok(())
}

fn validate_throttle(t: &Throttle, field: &str) -> Result<(), Invalid> {
    if t.requests == 0 || t.period_seconds == 0 {
        return Err(invalid(
            field,
            "requests and period_seconds must be greater than zero",
        ));
    }
    Ok(())
}

/// Checks a whole table: every API, and no two sharing an id or a `context/version`.
pub fn validate_table(table: &RouteTable) -> Result<(), Invalid> {
    let mut ids = HashSet::new();
    let mut prefixes = HashSet::new();
    for (i, api) in table.apis.iter().enumerate() {
        validate_api(api, &format!("apis[{i}]."))?;
        if !ids.insert(api.id()) {
            return Err(invalid(
                format!("apis[{i}].name"),
                format!("duplicate id {}", api.id()),
            ));
        }
        if !prefixes.insert(api.prefix()) {
            return Err(invalid(
                format!("apis[{i}].context"),
                format!("{} is published twice", api.prefix()),
            ));
        }
    }
    Ok(())
}
