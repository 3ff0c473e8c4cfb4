//! The route table as the gateway runs it: validated, compiled, matched by longest prefix.

use axum::http::{Method, Uri};
use gateway_routes::{Access, Api, Operation, RouteTable, Throttle};

pub use gateway_routes::validate::{Invalid, validate_api, validate_table};

/// One API ready for matching.
pub struct Route {
    pub api: Api,
    pub id: String,
    pub prefix: String,
    /// `scheme://authority` of the backend.
    pub origin: String,
    /// The backend URL's own path, without a trailing `/` (often empty).
    pub base_path: String,
    ops: Vec<CompiledOp>,
}

struct CompiledOp {
    method: Option<Method>,
    segments: Vec<String>,
    /// The pattern ended in `/*`.
    rest: bool,
    index: usize,
}

/// What applies to one request: the API's rules, or its first matching operation's.
pub struct Rules<'a> {
    pub access: &'a Access,
    pub throttle: Option<&'a Throttle>,
}

impl Route {
    fn new(api: Api) -> Self {
        let backend: Uri = api.backend_url.parse().expect("validated backend URL");
        let origin = format!(
            "{}://{}",
            backend.scheme_str().unwrap_or("http"),
            backend.authority().map(|a| a.as_str()).unwrap_or("")
        );
        let base_path = backend.path().trim_end_matches('/').to_string();
        let ops = api
            .operations
            .iter()
            .enumerate()
            .map(|(index, op)| compile_op(op, index))
            .collect();
        Self {
            id: api.id(),
            prefix: api.prefix(),
            origin,
            base_path,
            ops,
            api,
        }
    }

    /// The rules for `method` on `rest` (the path below the prefix).
    pub fn rules(&self, method: &Method, rest: &str) -> Rules<'_> {
        let op: Option<&Operation> = self
            .ops
            .iter()
            .find(|op| op.matches(method, rest))
            .map(|op| &self.api.operations[op.index]);
        Rules {
            access: op
                .and_then(|o| o.access.as_ref())
                .unwrap_or(&self.api.access),
            throttle: op
                .and_then(|o| o.throttle.as_ref())
                .or(self.api.throttle.as_ref()),
        }
    }
}

fn compile_op(op: &Operation, index: usize) -> CompiledOp {
    let (pattern, rest) = match op.path.strip_suffix("/*") {
        Some(p) => (p, true),
        None => (op.path.as_str(), false),
    };
    CompiledOp {
        method: (op.method != "*").then(|| {
            Method::from_bytes(op.method.to_ascii_uppercase().as_bytes()).expect("validated")
        }),
        segments: pattern
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        rest,
        index,
    }
}

impl CompiledOp {
    fn matches(&self, method: &Method, path: &str) -> bool {
        if self.method.as_ref().is_some_and(|m| m != method) {
            return false;
        }
        let got: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if got.len() < self.segments.len() || (!self.rest && got.len() != self.segments.len()) {
            return false;
        }
        self.segments
            .iter()
            .zip(&got)
            .all(|(want, got)| (want.starts_with('{') && want.ends_with('}')) || want == got)
    }
}

/// The table the proxy reads: swapped whole, never edited in place.
#[derive(Default)]
pub struct Compiled {
    pub table: RouteTable,
    /// Longest prefix first.
    routes: Vec<Route>,
}

impl Compiled {
    /// `table` must have passed [`validate_table`].
    pub fn new(table: RouteTable) -> Self {
        let mut routes: Vec<Route> = table.apis.iter().cloned().map(Route::new).collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Self { table, routes }
    }

    /// The API serving `path` and the rest of the path below its prefix (`/` at least).
    pub fn find<'a, 'p>(&'a self, path: &'p str) -> Option<(&'a Route, &'p str)> {
        self.routes.iter().find_map(|r| {
            let rest = path.strip_prefix(r.prefix.as_str())?;
            if rest.is_empty() {
                Some((r, "/"))
            } else if rest.starts_with('/') {
                Some((r, rest))
            } else {
                None
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api(v: serde_json::Value) -> Api {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn longest_prefix_wins_and_prefix_is_segment_aligned() {
        let t = Compiled::new(RouteTable {
            apis: vec![
                api(json!({"name":"a","context":"/api","version":"v1","backend_url":"http://a"})),
                api(
                    json!({"name":"b","context":"/api/v1/b","version":"v1","backend_url":"http://b"}),
                ),
            ],
        });
        assert_eq!(t.find("/api/v1/b/v1/x").unwrap().0.api.name, "b");
        assert_eq!(t.find("/api/v1/x").unwrap().1, "/x");
        assert_eq!(t.find("/api/v1").unwrap().1, "/");
        assert!(t.find("/api/v10/x").is_none());
    }

    #[test]
    fn operations_match_params_and_rest() {
        let r = Route::new(api(json!({
            "name":"a","context":"/a","version":"v1","backend_url":"http://a",
            "operations":[
                {"method":"GET","path":"/health","access":{"anonymous":true}},
                {"method":"*","path":"/admin/*","access":{"roles":["admin"]}},
                {"method":"DELETE","path":"/items/{id}","access":{"roles":["ops"]}}
            ]
        })));
        assert!(r.rules(&Method::GET, "/health").access.anonymous);
        assert!(!r.rules(&Method::POST, "/health").access.anonymous);
        assert_eq!(r.rules(&Method::PUT, "/admin/x/y").access.roles, ["admin"]);
        assert_eq!(r.rules(&Method::DELETE, "/items/7").access.roles, ["ops"]);
        assert!(
            r.rules(&Method::DELETE, "/items/7/x")
                .access
                .roles
                .is_empty()
        );
    }

    #[test]
    fn validation_names_the_field() {
        let bad = api(json!({"name":"a","context":"api","version":"v1","backend_url":"http://a"}));
        assert_eq!(validate_api(&bad, "").unwrap_err().field, "context");
        let bad = api(json!({"name":"a","context":"/a","version":"v1","backend_url":"ftp://a"}));
        assert_eq!(validate_api(&bad, "").unwrap_err().field, "backend_url");
        let bad = api(
            json!({"name":"a","context":"/a","version":"v1","backend_url":"http://a","kind":"graphql"}),
        );
        assert_eq!(validate_api(&bad, "").unwrap_err().field, "graphql");
        let one = api(json!({"name":"a","context":"/a","version":"v1","backend_url":"http://a"}));
        let mut two = one.clone();
        two.name = "b".into();
        let err = validate_table(&RouteTable {
            apis: vec![one, two],
        })
        .unwrap_err();
        assert_eq!(err.field, "apis[1].context");
    }
}
