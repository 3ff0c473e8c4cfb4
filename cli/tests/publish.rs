//! `finctl publish-apis` before it reaches any gateway: a bad api-config.yaml is refused with
//! every problem's file, line and value, exit 2, and no connection is made (the admin URL
//! points nowhere, so a call would fail differently).

mod common;
use common::Test;

fn publish(dir: &std::path::Path, file: &str) -> common::Output {
    Test::new()
        .project_dir(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
        .env("FINCTL_GATEWAY_ADMIN_URL", "http://127.0.0.1:9")
        .args(["publish-apis", "--config"])
        .arg(dir.join(file))
        .run()
}

#[test]
fn a_bad_file_lists_every_problem_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("apis.yaml"),
        "\
policies:
  public: { requests: 20, per: 1m }
rest_apis:
  - name: Forex
    context: api/forex
    version: 1.0.0
    backend_url: http://forex:8000
    throttle: gold
  - name: Forex
    context: /api/forex2
    version: 1.0.0
    backend_url: not a url
",
    )
    .unwrap();
    let out = publish(dir.path(), "apis.yaml").status(2);
    let stderr = out.stderr();
    assert!(
        stderr.contains("apis.yaml is not valid (4 problems); nothing was published"),
        "{}",
        out.report()
    );
    for line in [
        "apis.yaml:5: rest_apis[0].context: `api/forex`: must start with `/`",
        "apis.yaml:8: rest_apis[0].throttle: `gold`: no such policy; declared: public",
        "apis.yaml:9: rest_apis[1].name: `Forex:1.0.0`: name and version are already used by rest_apis[0] (line 4)",
        "apis.yaml:12: rest_apis[1].backend_url: `not a url`: not a URL",
    ] {
        assert!(
            stderr.contains(line),
            "missing `{line}` in:\n{}",
            out.report()
        );
    }
    assert!(
        stderr.contains("hint: fix the lines above"),
        "{}",
        out.report()
    );
    assert!(
        !stderr.contains("not reachable"),
        "nothing was called: {}",
        out.report()
    );
}

#[test]
fn an_unknown_key_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("apis.yaml"),
        "rest_apis:\n  - name: A\n    context: /a\n    version: '1'\n    backend_url: http://a:1\n    backend: http://b:1\n",
    )
    .unwrap();
    let out = publish(dir.path(), "apis.yaml").status(2);
    assert!(
        out.stderr()
            .contains("apis.yaml:6: rest_apis[0].backend: unknown field `backend`"),
        "{}",
        out.report()
    );
}

#[test]
fn a_missing_file_says_how_to_name_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = publish(dir.path(), "nope.yaml").status(2);
    assert!(out.stderr().contains("cannot read"), "{}", out.report());
    assert!(out.stderr().contains("--config FILE"), "{}", out.report());
}
