use std::path::Path;

use super::*;

fn no_schema(_: &Path) -> std::io::Result<String> {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "no such file",
    ))
}

fn resolve(text: &str) -> Result<Resolved, Invalid> {
    resolve_text(Path::new("api-config.yaml"), text, &no_schema)
}

/// Every problem as `line: path: message`.
fn problems(text: &str) -> Vec<String> {
    match resolve(text) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(invalid) => invalid
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.line.unwrap_or(0), p))
            .collect(),
    }
}

const GOOD: &str = "\
roles: [admin, user]
policies:
  public: { requests: 20, per: 1m }
  protected: { requests: 100, per: 1m }
defaults:
  throttle: protected
rest_apis:
  - name: Forex
    context: /api/forex
    version: 1.0.0
    backend_url: http://forex:8000/
    operations:
      - { method: get, path: /health, access: { anonymous: true }, throttle: public }
      - { method: PUT, path: /rates/*, access: { roles: [admin] } }
ai_apis:
  - name: Assistant
    context: /api/assistant
    version: v1
    backend_url: http://assistant:8000
    throttle: none
";

#[test]
fn the_repository_file_is_valid() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../api-config.yaml");
    let resolved = load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert!(resolved.table.apis.len() >= 6);
    // The gateway accepts the whole table too.
    gateway_routes::validate::validate_table(&resolved.table).unwrap();
}

#[test]
fn a_good_file_resolves_every_default() {
    let table = resolve(GOOD).unwrap().table;
    assert_eq!(table.apis.len(), 2);
    let forex = &table.apis[0];
    assert_eq!(forex.id(), "Forex:1.0.0");
    assert_eq!(forex.kind, ApiKind::Rest);
    assert_eq!(
        forex.backend_url, "http://forex:8000",
        "trailing slash dropped"
    );
    assert_eq!(forex.owner.as_deref(), Some(FINCTL_OWNER));
    let throttle = forex.throttle.as_ref().unwrap();
    assert_eq!(
        (
            throttle.policy.as_str(),
            throttle.requests,
            throttle.period_seconds
        ),
        ("protected", 100, 60)
    );
    assert_eq!(forex.operations[0].method, "GET", "methods are upper-cased");
    assert!(forex.operations[0].access.as_ref().unwrap().anonymous);
    assert_eq!(
        forex.operations[0].throttle.as_ref().unwrap().policy,
        "public"
    );
    assert_eq!(
        forex.operations[1].access.as_ref().unwrap().roles,
        ["admin"]
    );
    assert_eq!(
        forex.operations[1].throttle, None,
        "an operation without a policy keeps the API's"
    );
    let ai = &table.apis[1];
    assert_eq!(ai.kind, ApiKind::Ai);
    assert_eq!(ai.throttle, None, "`none` turns throttling off");
    assert_eq!(
        ai.timeouts.response_ms, 300_000,
        "AI APIs wait long for the first byte"
    );
    assert_eq!(ai.timeouts.total_ms, Some(600_000));
}

#[test]
fn unknown_keys_name_the_line_and_the_key() {
    let text = GOOD.replace("    version: v1\n", "    version: v1\n    timeout: 30s\n");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with(
            "19: api-config.yaml:19: ai_apis[0].timeout: unknown field `timeout`, expected one of"
        ),
        "{found:?}"
    );
}

#[test]
fn a_missing_field_is_named() {
    let text = GOOD.replace("    backend_url: http://assistant:8000\n", "");
    let found = problems(&text);
    assert!(
        found[0].contains("missing field `backend_url`"),
        "{found:?}"
    );
    assert!(found[0].contains("ai_apis[0]"), "{found:?}");
}

#[test]
fn every_semantic_problem_is_reported_with_its_line_and_value() {
    let text = "\
roles: [admin, user]
policies:
  public: { requests: 20, per: 1m }
rest_apis:
  - name: A
    context: api/a
    version: 1.0.0
    backend_url: ftp://a
  - name: B
    context: /api/b
    version: 1.0.0
    backend_url: http://b:8000
    throttle: gold
    access: { roles: [admn] }
  - name: A
    context: /api/other
    version: 1.0.0
    backend_url: http://a:8000
  - name: C
    context: /api/b
    version: 1.0.0
    backend_url: http://c:8000
    timeouts: { response: soon }
";
    let found = problems(text);
    let expect = [
        "6: api-config.yaml:6: rest_apis[0].context: `api/a`: must start with `/`",
        "8: api-config.yaml:8: rest_apis[0].backend_url: `ftp://a`: must be an http:// or https:// URL",
        "13: api-config.yaml:13: rest_apis[1].throttle: `gold`: no such policy; declared: public",
        "14: api-config.yaml:14: rest_apis[1].access.roles[0]: `admn`: not one of the declared roles: admin, user (did you mean `admin`?)",
        "15: api-config.yaml:15: rest_apis[2].name: `A:1.0.0`: name and version are already used by rest_apis[0] (line 5)",
        "20: api-config.yaml:20: rest_apis[3].context: `/api/b/1.0.0`: context and version are already used by rest_apis[1] (line 9)",
        "23: api-config.yaml:23: rest_apis[3].timeouts.response: `soon`: not a duration",
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for (found, expect) in found.iter().zip(expect) {
        assert!(
            found.starts_with(expect),
            "\n found: {found}\nexpect: {expect}"
        );
    }
}

#[test]
fn a_duplicate_context_and_version_is_refused() {
    let text = "\
rest_apis:
  - { name: A, context: /api/x, version: '1', backend_url: 'http://a:1' }
  - { name: B, context: /api/x/, version: '1', backend_url: 'http://b:1' }
";
    let found = problems(text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("rest_apis[1].context: `/api/x/1`: context and version are already used by rest_apis[0] (line 2)"), "{found:?}");
}

#[test]
fn the_gateway_rules_apply_too() {
    // An operation method the gateway would refuse is caught here, at its line.
    let text = "\
rest_apis:
  - name: A
    context: /api/a
    version: '1'
    backend_url: http://a:1
    operations:
      - { method: 'GE T', path: /x }
";
    let found = problems(text);
    assert!(
        found[0].starts_with("7: api-config.yaml:7: rest_apis[0].operations[0].method: `GE T`"),
        "{found:?}"
    );
}

#[test]
fn graphql_needs_a_readable_schema() {
    let text = "\
graphql_apis:
  - name: G
    context: /api/graph
    version: '1'
    backend_url: http://g:1
    schema: missing.graphql
rest_apis:
  - { name: R, context: /api/r, version: '1', backend_url: 'http://r:1', max_depth: 3 }
";
    let found = problems(text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].contains("graphql_apis[0].schema: `missing.graphql`: cannot read the schema"),
        "{found:?}"
    );
    assert!(
        found[1].contains("rest_apis[0].max_depth: only GraphQL APIs"),
        "{found:?}"
    );

    let sdl = |_: &Path| Ok("type Query { me: String }".to_owned());
    let resolved = resolve_text(
        Path::new("api-config.yaml"),
        text.split("rest_apis").next().unwrap(),
        &sdl,
    )
    .unwrap();
    let graphql = resolved.table.apis[0].graphql.as_ref().unwrap();
    assert_eq!(graphql.schema.as_deref(), Some("type Query { me: String }"));
    assert_eq!((graphql.max_depth, graphql.max_query_bytes), (10, 16384));
}

#[test]
fn a_yaml_syntax_error_names_its_line() {
    let found = problems("rest_apis:\n  - name: [unclosed\n");
    assert!(found[0].contains("api-config.yaml:"), "{found:?}");
    assert!(
        !found[0].starts_with("0:"),
        "a syntax error knows its line: {found:?}"
    );
}

#[test]
fn an_empty_file_publishes_nothing() {
    assert!(resolve("").unwrap().table.apis.is_empty());
    assert!(resolve("# nothing yet\n").unwrap().table.apis.is_empty());
}
