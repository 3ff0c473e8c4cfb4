//! GraphQL APIs: size and depth limits enforced before forwarding, the schema served at
//! `<prefix>/schema.graphql`.

use std::collections::{HashMap, HashSet};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gateway_routes::GraphqlSettings;
use graphql_parser::query::{Definition, OperationDefinition, Selection, SelectionSet};
use http_body_util::BodyExt;
use percent_encoding::percent_decode_str;

use crate::proxy::problem;

/// Room for `variables` and `operationName` beside the query in a POST body: the one place
/// the gateway buffers a request, and only up to this bound.
const ENVELOPE_BYTES: usize = 64 * 1024;

/// The schema, when `rest` asks for it.
pub fn schema(settings: &GraphqlSettings, method: &Method, rest: &str) -> Option<Response> {
    if method != Method::GET || rest != "/schema.graphql" {
        return None;
    }
    Some(match &settings.schema {
        Some(sdl) => (
            [(header::CONTENT_TYPE, "application/graphql; charset=utf-8")],
            sdl.clone(),
        )
            .into_response(),
        None => problem(
            StatusCode::NOT_FOUND,
            "no_schema",
            "this API has no schema published",
        ),
    })
}

/// Checks the query of a GET (`?query=`) or POST (`{"query": ...}`) request; the request
/// comes back whole (a POST body re-assembled from the bounded buffer).
pub async fn check(settings: &GraphqlSettings, req: Request) -> Result<Request, Box<Response>> {
    if req.method() == Method::GET {
        let query = req.uri().query().unwrap_or("").split('&').find_map(|p| {
            p.strip_prefix("query=").map(|v| {
                percent_decode_str(&v.replace('+', " "))
                    .decode_utf8_lossy()
                    .to_string()
            })
        });
        if let Some(q) = query {
            limits(settings, &q)?;
        }
        return Ok(req);
    }
    if req.method() != Method::POST {
        return Ok(req);
    }
    let (parts, body) = req.into_parts();
    let bound = settings.max_query_bytes.saturating_add(ENVELOPE_BYTES);
    let bytes = match http_body_util::Limited::new(body, bound).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Err(Box::new(problem(
                StatusCode::BAD_REQUEST,
                "query_too_large",
                format!("the request body exceeds {bound} bytes"),
            )));
        }
    };
    let envelope: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        Box::new(problem(
            StatusCode::BAD_REQUEST,
            "invalid_graphql_request",
            format!("expected a JSON body {{\"query\": ...}}: {e}"),
        ))
    })?;
    let Some(q) = envelope.get("query").and_then(|q| q.as_str()) else {
        return Err(Box::new(problem(
            StatusCode::BAD_REQUEST,
            "invalid_graphql_request",
            "the body has no `query` string",
        )));
    };
    limits(settings, q)?;
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn limits(settings: &GraphqlSettings, query: &str) -> Result<(), Box<Response>> {
    if query.len() > settings.max_query_bytes {
        return Err(Box::new(problem(
            StatusCode::BAD_REQUEST,
            "query_too_large",
            format!(
                "the query is {} bytes; this API allows {}",
                query.len(),
                settings.max_query_bytes
            ),
        )));
    }
    let d = depth(query).map_err(|e| {
        Box::new(problem(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("not a GraphQL query: {e}"),
        ))
    })?;
    if d > settings.max_depth {
        return Err(Box::new(problem(
            StatusCode::BAD_REQUEST,
            "query_too_deep",
            format!(
                "the query is {d} levels deep; this API allows {}",
                settings.max_depth
            ),
        )));
    }
    Ok(())
}

/// The deepest field nesting of any operation; fragments count where they are spread.
pub fn depth(query: &str) -> Result<usize, String> {
    let doc = graphql_parser::parse_query::<&str>(query).map_err(|e| e.to_string())?;
    let mut fragments = HashMap::new();
    for d in &doc.definitions {
        if let Definition::Fragment(f) = d {
            fragments.insert(f.name, &f.selection_set);
        }
    }
    let mut deepest = 0;
    for d in &doc.definitions {
        if let Definition::Operation(op) = d {
            let set = match op {
                OperationDefinition::SelectionSet(s) => s,
                OperationDefinition::Query(q) => &q.selection_set,
                OperationDefinition::Mutation(m) => &m.selection_set,
                OperationDefinition::Subscription(s) => &s.selection_set,
            };
            deepest = deepest.max(set_depth(set, &fragments, &mut HashSet::new()));
        }
    }
    Ok(deepest)
}

fn set_depth<'a>(
    set: &SelectionSet<'a, &'a str>,
    fragments: &HashMap<&'a str, &SelectionSet<'a, &'a str>>,
    visiting: &mut HashSet<&'a str>,
) -> usize {
    set.items
        .iter()
        .map(|s| match s {
            Selection::Field(f) => 1 + set_depth(&f.selection_set, fragments, visiting),
            Selection::InlineFragment(i) => set_depth(&i.selection_set, fragments, visiting),
            Selection::FragmentSpread(s) => match fragments.get(s.fragment_name) {
                // A fragment spreading itself is invalid GraphQL; count it once.
                Some(f) if visiting.insert(s.fragment_name) => {
                    let d = set_depth(f, fragments, visiting);
                    visiting.remove(s.fragment_name);
                    d
                }
                _ => 0,
            },
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::depth;

    #[test]
    fn depth_counts_fields_and_fragments() {
        assert_eq!(depth("{ a }").unwrap(), 1);
        assert_eq!(depth("query { a { b { c } } d }").unwrap(), 3);
        assert_eq!(
            depth("query { a { ...F } } fragment F on T { b { c { d } } }").unwrap(),
            4
        );
        assert_eq!(depth("mutation { pay { id } }").unwrap(), 2);
        assert!(depth("{ a { ").is_err());
    }
}
