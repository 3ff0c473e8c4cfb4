//! Keeps a service's OpenAPI document true: it is valid OpenAPI 3.1 (checked by
//! `openapi-spec-validator` from PyPI, pinned, in a virtual environment under the cache folder)
//! and it lists exactly the routes the service's router serves, with exactly their methods.
//!
//! The router is the real one, built without infrastructure: the database pool and Redis
//! client connect lazily, and the probes send no token, so no handler gets past its
//! authentication. A route is told apart from the router's fallbacks by the fallbacks' own
//! answers (404 `not_found` "route not found", 405 `method_not_allowed`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use platform_common::config::{DbConfig, RedisConfig};
use platform_common::service::{Context, ServiceSpec};
use platform_common::{Secret, http};
use serde_json::Value;

use crate::{TestIdp, call};

/// The validator's PyPI release; bump it here.
pub const SPEC_VALIDATOR: &str = "openapi-spec-validator==0.9.0";
/// The methods a router can route; every other one is refused by hyper or axum alike.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The service's document as `/openapi.json` serves it.
pub fn document(spec: &ServiceSpec) -> Value {
    http::openapi(&format!("svc-{}", spec.name), (spec.openapi)()).0
}

/// The full app of `spec` on infrastructure that is never contacted.
async fn offline_app(spec: &ServiceSpec, idp: &TestIdp) -> axum::Router {
    let env: Arc<HashMap<String, String>> = Arc::new(idp.env().into_iter().collect());
    let redis = platform_common::redis_handle::RedisHandle::new(&RedisConfig {
        url: Secret::new("redis://127.0.0.1:1".to_string()),
        address: "127.0.0.1:1".into(),
    })
    .expect("redis config");
    let db = DbConfig {
        host: "127.0.0.1".into(),
        port: 1,
        name: "unused".into(),
        user: "unused".into(),
        password: None,
    };
    let ctx = Context {
        service: format!("svc-{}", spec.name),
        name: spec.name,
        db: platform_common::db::pool(&db, 1),
        jobs: platform_common::jobs::JobClient::new(spec.name, redis.clone()),
        redis,
        env,
    };
    crate::assemble(spec, &ctx, idp)
}

/// Asserts that the document is valid and that it and the router agree route for route.
pub async fn check(spec: &ServiceSpec) {
    let doc = document(spec);
    validate(spec.name, &doc);
    let idp = TestIdp::start().await;
    let app = offline_app(spec, &idp).await;
    let served = router_paths(&app);
    let documented: BTreeMap<String, BTreeSet<String>> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let methods = METHODS
                .iter()
                .filter(|m| item.get(m.to_lowercase()).is_some())
                .map(|m| m.to_string())
                .collect();
            (path.clone(), methods)
        })
        .collect();
    let documented_paths: BTreeSet<String> = documented.keys().cloned().collect();
    assert_eq!(
        served, documented_paths,
        "{}: the router's paths (left) and the document's (right) differ",
        spec.name
    );
    let mut wrong = Vec::new();
    for (path, methods) in &documented {
        let concrete = sample_path(path);
        for method in METHODS {
            let (status, body) = call(&app, method, &concrete, None, &[], None).await;
            let fallback = (status == 404 && body["detail"] == "route not found")
                || (status == 405 && body["code"] == "method_not_allowed");
            match (methods.contains(method), fallback) {
                (true, true) => wrong.push(format!(
                    "{method} {path}: documented, not routed ({status})"
                )),
                (false, false) => wrong.push(format!(
                    "{method} {path}: routed ({status}), not documented"
                )),
                _ => {}
            }
        }
    }
    assert!(wrong.is_empty(), "{}: {wrong:#?}", spec.name);
}

/// The paths an axum router matches, read from its `Debug` form (axum lists them there; it
/// has no other way to enumerate routes). Fails loudly if that form ever changes.
fn router_paths(app: &axum::Router) -> BTreeSet<String> {
    let debug = format!("{app:?}");
    let start = debug
        .find("paths: {")
        .expect("axum's Router Debug output lists its paths");
    let rest = &debug[start + "paths: {".len()..];
    // Paths contain `{param}`: the map ends at the first `}` outside a string.
    let section = &rest[..closing_brace(rest).expect("the path map closes")];
    section
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|p| p.starts_with('/') && !p.contains("__private__"))
        .map(str::to_string)
        .collect()
}

/// The index of the `}` that closes a Debug map whose values are quoted strings.
fn closing_brace(s: &str) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '}' if !in_string => return Some(i),
            _ => {}
        }
    }
    None
}

/// `/payments/{id}` with a value in each parameter.
fn sample_path(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                "00000000-0000-4000-8000-000000000000"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Runs `openapi-spec-validator` on the document; panics with its report when it is invalid.
pub fn validate(name: &str, doc: &Value) {
    let venv = spec_validator_venv();
    let file = std::env::temp_dir().join(format!(
        "openapi-{name}-{}.json",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&file, serde_json::to_vec_pretty(doc).expect("serialises")).expect("write");
    let out = Command::new(venv.join("bin/python"))
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("run openapi-spec-validator");
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "{name}: the OpenAPI document is not valid:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `${FINCTL_CACHE_DIR:-~/.cache/finctl}/venvs/openapi-spec-validator-<version>`, created with
/// `python3 -m venv` and pip on first use (PyPI must be reachable then).
fn spec_validator_venv() -> PathBuf {
    let cache = std::env::var_os("FINCTL_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/finctl")
        });
    let venv = cache.join("venvs").join(SPEC_VALIDATOR.replace("==", "-"));
    if venv.join("bin/openapi-spec-validator").exists() {
        // Its scripts name the folder it was built in; `bin/python -m` does not.
        return venv;
    }
    // Built beside its final name and renamed, so parallel tests never see half a venv.
    let tmp = venv.with_extension(format!("tmp-{}", std::process::id()));
    let run = |cmd: &mut Command| {
        let out = cmd
            .output()
            .expect("run python3 (apt-get install python3-venv)");
        assert!(
            out.status.success(),
            "{cmd:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::create_dir_all(venv.parent().expect("parent")).expect("create the venvs folder");
    run(Command::new("python3").args(["-m", "venv"]).arg(&tmp));
    run(Command::new(tmp.join("bin/python")).args(["-m", "pip", "install", "-q", SPEC_VALIDATOR]));
    if std::fs::rename(&tmp, &venv).is_err() {
        // Another test won the race; its venv is complete.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    venv
}
