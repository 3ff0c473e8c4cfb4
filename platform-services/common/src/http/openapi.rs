//! The OpenAPI pieces every service shares: the bearer JWT scheme, the problem+json schema and
//! the error responses each operation can produce.
//!
//! Handlers declare what is theirs in `#[utoipa::path]`: success responses with examples and
//! links, parameters, the request body, `security(("bearer" = [roles..]))` (the roles of any-of
//! guards; empty: any valid token), and their own problem codes as an extension:
//! `extensions(("x-problem-codes" = json!({"404": ["payment_not_found"]})))`.
//! [`complete`] then adds what follows from that, the same way for every service, so the six
//! documents cannot drift apart:
//!
//! | the operation has | it may answer |
//! |---|---|
//! | a bearer requirement | 401 `missing_token`, `invalid_token`, `token_expired`; 503 `identity_provider_unavailable`, `dependency_unavailable` |
//! | roles in it | 403 `forbidden` |
//! | a request body | 400 `invalid_body` (malformed JSON, wrong content type); 413 `payload_too_large` (over 1 MiB); 422 `validation_failed` |
//! | path or query parameters | 400 `invalid_body` (a value of the wrong type) |
//!
//! Every error response is `application/problem+json` with the shared [`Problem`] schema, its
//! `status` fixed and its `code` limited to the listed values.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Value, json};
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, ToSchema};

use crate::problem::{PROBLEM_JSON, Problem};

/// The security scheme's name in every document.
pub const BEARER: &str = "bearer";
/// The operation extension handlers list their own problem codes in, by status.
pub const PROBLEM_CODES: &str = "x-problem-codes";

const AUTH_CODES: &[&str] = &["missing_token", "invalid_token", "token_expired"];
const UNAVAILABLE_CODES: &[&str] = &["identity_provider_unavailable", "dependency_unavailable"];
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// Adds the bearer JWT scheme (`components.securitySchemes.bearer`).
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An RS256 JWT from the platform's identity provider (`finctl token`). \
                         The scopes an operation lists are roles: any one of them is required.",
                    ))
                    .build(),
            ),
        );
        components
            .schemas
            .entry(Problem::name().into_owned())
            .or_insert_with(<Problem as utoipa::PartialSchema>::schema);
    }
}

/// A finished document: JSON, because it says what utoipa's types cannot (see [`complete`]).
#[derive(Debug, Clone)]
pub struct Document(pub Value);

impl Document {
    /// `(method, path, operation)` for every operation, methods in upper case.
    pub fn operations(&self) -> impl Iterator<Item = (String, &str, &Value)> {
        self.0["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(path, item)| {
                METHODS.iter().filter_map(move |m| {
                    item.get(*m).map(|op| (m.to_uppercase(), path.as_str(), op))
                })
            })
    }
}

/// Every operation's error responses, from what it declares (see the module doc), and the
/// link objects' field names as OpenAPI spells them (utoipa 5 writes `operation_id`).
pub fn complete(doc: OpenApi) -> Document {
    let mut value = serde_json::to_value(&doc).expect("an OpenAPI document serialises");
    if let Some(paths) = value.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let path_params = item.get("parameters").cloned();
            for method in METHODS {
                if let Some(op) = item.get_mut(*method) {
                    complete_operation(op, path_params.as_ref());
                    fix_links(op);
                }
            }
        }
    }
    Document(value)
}

fn fix_links(op: &mut Value) {
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    for response in responses.values_mut() {
        let Some(links) = response.get_mut("links").and_then(Value::as_object_mut) else {
            continue;
        };
        for link in links.values_mut().filter_map(Value::as_object_mut) {
            for (from, to) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(v) = link.remove(from) {
                    link.insert(to.to_string(), v);
                }
            }
        }
    }
}

fn complete_operation(op: &mut Value, path_params: Option<&Value>) {
    let mut problems: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    let mut add = |status: u16, codes: &[&str]| {
        problems
            .entry(status)
            .or_default()
            .extend(codes.iter().map(|c| c.to_string()));
    };
    // The operation's own codes first: each response's example shows the first.
    // utoipa flattens an operation's extensions into it.
    let declared = op.as_object_mut().and_then(|o| o.remove(PROBLEM_CODES));
    if let Some(Value::Object(by_status)) = declared {
        for (status, codes) in by_status {
            let status: u16 = status
                .parse()
                .unwrap_or_else(|_| panic!("{PROBLEM_CODES}: `{status}` is not a status"));
            let codes: Vec<&str> = codes
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            add(status, &codes);
        }
    }
    let roles: Option<Vec<Value>> = op.get("security").and_then(Value::as_array).and_then(|s| {
        s.iter()
            .find_map(|req| req.get(BEARER).and_then(Value::as_array).cloned())
    });
    if let Some(roles) = &roles {
        add(401, AUTH_CODES);
        add(503, UNAVAILABLE_CODES);
        if !roles.is_empty() {
            add(403, &["forbidden"]);
        }
    }
    if op.get("requestBody").is_some() {
        add(400, &["invalid_body"]);
        add(413, &["payload_too_large"]);
        add(422, &["validation_failed"]);
    }
    let params_in = |wanted: &[&str]| {
        [op.get("parameters"), path_params]
            .into_iter()
            .flatten()
            .filter_map(Value::as_array)
            .flatten()
            .any(|p| p["in"].as_str().is_some_and(|i| wanted.contains(&i)))
    };
    if params_in(&["path", "query"]) {
        add(400, &["invalid_body"]);
    }
    if params_in(&["path"]) {
        // An empty segment matches no route: the router's own 404.
        add(404, &["not_found"]);
    }
    for (status, codes) in problems {
        let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
        add_problem(op, status, &codes);
    }
}

/// Adds `codes` to the operation's problem+json response for `status`, creating it when
/// missing; a description already there is kept.
pub fn add_problem(op: &mut Value, status: u16, codes: &[&str]) {
    let responses = op
        .as_object_mut()
        .expect("an operation is an object")
        .entry("responses")
        .or_insert_with(|| json!({}));
    let key = status.to_string();
    let existing = responses.get(&key);
    let mut all: Vec<String> = existing
        .and_then(|r| r.pointer(CODES_POINTER))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    for c in codes {
        if !all.iter().any(|e| e == c) {
            all.push(c.to_string());
        }
    }
    let description = existing
        .and_then(|r| r.get("description"))
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| {
            StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error")
                .to_string()
        });
    responses[&key] = problem_response(status, &all, description);
}

/// Where a problem response built here lists its codes.
const CODES_POINTER: &str =
    "/content/application~1problem+json/schema/allOf/1/properties/code/enum";

/// A problem+json response whose `status` is `status` and whose `code` is one of `codes`.
fn problem_response(status: u16, codes: &[String], description: String) -> Value {
    let first = codes.first().map(String::as_str).unwrap_or("error");
    let example = Problem::new(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        first,
        example_detail(first),
    );
    json!({
        "description": description,
        "content": {
            PROBLEM_JSON: {
                "schema": {
                    "allOf": [
                        {"$ref": format!("#/components/schemas/{}", Problem::name())},
                        {
                            "type": "object",
                            "properties": {
                                "status": {"type": "integer", "enum": [status]},
                                "code": {"type": "string", "enum": codes},
                            },
                        },
                    ],
                },
                "example": example,
            },
        },
    })
}

fn example_detail(code: &str) -> &'static str {
    match code {
        "missing_token" => {
            "no bearer token: send `Authorization: Bearer <token>` or `X-JWT-Assertion`"
        }
        "forbidden" => "this action requires one of the roles: admin",
        "invalid_body" => "expected a JSON body with Content-Type: application/json",
        "validation_failed" => "must be a positive integer number of minor units",
        "identity_provider_unavailable" => "the identity provider's keys could not be fetched",
        _ => "see `code`",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(op: Value) -> OpenApi {
        serde_json::from_value(json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1"},
            "paths": {"/things/{id}": {"post": op}},
        }))
        .unwrap()
    }

    fn responses(doc: &Document) -> Value {
        doc.0["paths"]["/things/{id}"]["post"]["responses"].clone()
    }

    #[test]
    fn secured_operation_with_roles_body_and_codes() {
        let d = complete(doc(json!({
            "security": [{"bearer": ["admin"]}],
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
            "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
            "responses": {"200": {"description": "ok"}, "404": {"description": "no such thing"}},
            "x-problem-codes": {"404": ["thing_not_found"], "422": ["thing_invalid"]},
        })));
        let r = responses(&d);
        let statuses: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            statuses,
            ["200", "400", "401", "403", "404", "413", "422", "503"]
        );
        assert_eq!(r["404"]["description"], "no such thing");
        let codes =
            &r["422"]["content"][PROBLEM_JSON]["schema"]["allOf"][1]["properties"]["code"]["enum"];
        assert_eq!(codes, &json!(["thing_invalid", "validation_failed"]));
        let not_found =
            &r["404"]["content"][PROBLEM_JSON]["schema"]["allOf"][1]["properties"]["code"]["enum"];
        assert_eq!(not_found, &json!(["thing_not_found", "not_found"]));
        assert_eq!(
            r["401"]["content"][PROBLEM_JSON]["example"]["code"],
            "missing_token"
        );
        let op = &d.0["paths"]["/things/{id}"]["post"];
        assert!(op.get(PROBLEM_CODES).is_none(), "the extension is consumed");
    }

    #[test]
    fn open_operation_gets_no_auth_errors() {
        let d = complete(doc(json!({"responses": {"200": {"description": "ok"}}})));
        assert_eq!(responses(&d), json!({"200": {"description": "ok"}}));
    }
}
