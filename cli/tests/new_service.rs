//! `finctl new-service` in throwaway copies of this repository: the checks that refuse bad
//! input without writing anything, `--dry-run`, edits that only add lines and come out again
//! byte for byte, `--update`'s three-way merge; a generated service that builds, passes its
//! own tests, clippy and rustfmt (the template cannot rot); and, on the offline platform, a
//! generated service that comes up healthy, routed through the gateway and smoke-tested.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Teardown, Test};
use serde_json::Value;

/// The tests that change the shared platform (`--remove` stops containers of that name and
/// prunes the gateway's routes to what its copy lists) take turns.
static PLATFORM: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn platform_turn() -> std::sync::MutexGuard<'static, ()> {
    PLATFORM
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A copy of the repository's files (tracked, and new ones git does not ignore), made a git
/// repository of its own with one commit, so `git status` shows what a command changed.
struct Copy {
    dir: tempfile::TempDir,
}

impl Copy {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("finctl-new-service-")
            .tempdir()
            .unwrap();
        let listed = Command::new("git")
            .current_dir(repo_root())
            .args([
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ])
            .output()
            .expect("git ls-files");
        assert!(listed.status.success(), "git ls-files failed");
        for path in listed.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
            let path = Path::new(std::str::from_utf8(path).unwrap());
            let from = repo_root().join(path);
            if !from.is_file() {
                continue; // deleted in the working tree
            }
            let to = dir.path().join(path);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap();
        }
        let copy = Self { dir };
        copy.git(&["init", "-q"]);
        copy.commit("the repository as it was");
        copy
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn finctl(&self) -> Test {
        Test::new().project_dir(self.path())
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .current_dir(self.path())
            .args(args)
            .env("GIT_AUTHOR_NAME", "test")
            .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
            .env("GIT_COMMITTER_NAME", "test")
            .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-qm", message, "--allow-empty"]);
    }

    /// `git status --porcelain`: empty when the tree is as committed.
    fn status(&self) -> String {
        self.git(&["status", "--porcelain"])
    }

    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.path().join(path))
            .unwrap_or_else(|err| panic!("{path}: {err}"))
    }

    fn write(&self, path: &str, text: &str) {
        std::fs::write(self.path().join(path), text).unwrap();
    }

    /// (added, removed) lines per changed tracked file.
    fn numstat(&self) -> Vec<(usize, usize, String)> {
        self.git(&["diff", "--numstat"])
            .lines()
            .map(|line| {
                let mut parts = line.split('\t');
                let added = parts.next().unwrap().parse().unwrap();
                let removed = parts.next().unwrap().parse().unwrap();
                (added, removed, parts.next().unwrap().to_owned())
            })
            .collect()
    }
}

const EDITED: [&str; 4] = [
    "Cargo.toml",
    "compose/docker-compose.yml",
    "api-config.yaml",
    "compose/bootstrap/topics.yaml",
];

#[test]
fn bad_names_and_taken_ports_are_one_line_exit_2_and_write_nothing() {
    let copy = Copy::new();
    let cases: [(&[&str], &str); 8] = [
        (
            &["FxAudit"],
            "`FxAudit` cannot be a service name: `F` is not allowed; use lowercase kebab-case, e.g. `fx-audit`",
        ),
        (&["fx_audit"], "e.g. `fx-audit`"),
        (&["fx--audit"], "no trailing or double dash"),
        (&["gateway"], "the platform uses that name already"),
        (&["audit-worker"], "`-worker` is the suffix"),
        (
            &["wallet"],
            "wallet exists already: platform-services/wallet is there",
        ),
        (
            &["fx-audit", "--port", "8001"],
            "port 8001 is taken: the stack's `profile` publishes it",
        ),
        (&["fx-audit", "--port", "80"], "80 is not in 1024.."),
    ];
    for (args, message) in cases {
        let out = copy
            .finctl()
            .arg("new-service")
            .args(args.iter().copied())
            .args(["--no-start"])
            .run()
            .status(2)
            .stderr_contains(message);
        assert!(
            out.stderr()
                .lines()
                .filter(|l| l.starts_with("error"))
                .count()
                == 1,
            "one error line: {}",
            out.stderr()
        );
        assert_eq!(copy.status(), "", "{args:?} wrote something");
    }
}

#[test]
fn dry_run_prints_the_new_files_and_a_diff_of_each_edit_and_writes_nothing() {
    let copy = Copy::new();
    let out = copy
        .finctl()
        .args(["new-service", "fx-audit", "--dry-run"])
        .run()
        .status(0)
        .stderr_contains("Dry run: nothing was written.");
    for expected in [
        "create  platform-services/fx-audit/src/lib.rs",
        "create  platform-services/fx-audit/.finctl-service.toml",
        "create  tests/smoke/smoke/fx-audit.hurl",
        "modify  Cargo.toml (+1 -0)",
        "--- a/compose/docker-compose.yml\n+++ b/compose/docker-compose.yml",
        "+  fx-audit-worker:",
        "+    context: \"/api/fx-audit\"",
        "+  - name: fx-audit.record_created",
        "+      - \"127.0.0.1:80",
    ] {
        assert!(
            out.stdout().contains(expected),
            "{expected:?} in:\n{}",
            out.stdout()
        );
    }
    assert_eq!(copy.status(), "");
}

#[test]
fn a_generated_service_only_adds_lines_and_is_removed_byte_for_byte() {
    let _turn = platform_turn();
    let copy = Copy::new();
    let comments = |copy: &Copy| -> Vec<String> {
        EDITED
            .iter()
            .flat_map(|f| copy.read(f).lines().map(str::to_owned).collect::<Vec<_>>())
            .filter(|l| l.trim_start().starts_with('#'))
            .collect()
    };
    let before = comments(&copy);
    copy.finctl()
        .args([
            "new-service",
            "fx-audit",
            "--no-start",
            "--description",
            "FX \"audit\" trail",
        ])
        .run()
        .status(0)
        .stdout_contains("modify  compose/docker-compose.yml (+17 -0)");
    let numstat = copy.numstat();
    let files: Vec<&str> = numstat.iter().map(|(_, _, f)| f.as_str()).collect();
    assert_eq!(
        files,
        [
            "Cargo.toml",
            "api-config.yaml",
            "compose/bootstrap/topics.yaml",
            "compose/docker-compose.yml"
        ]
    );
    assert!(
        numstat
            .iter()
            .all(|(added, removed, _)| *added > 0 && *removed == 0),
        "{numstat:?}"
    );
    let after = comments(&copy);
    assert!(
        before.iter().all(|c| after.contains(c)),
        "every comment is still there"
    );
    assert!(
        copy.read("api-config.yaml")
            .contains("description: \"FX \\\"audit\\\" trail\"")
    );
    let answers = copy.read("platform-services/fx-audit/.finctl-service.toml");
    assert!(
        answers.contains("port = 80") && answers.contains("worker = true"),
        "{answers}"
    );

    // Debian's docker-compose reads the edited stack as it is.
    let config = Command::new("docker-compose")
        .current_dir(copy.path())
        .args([
            "-f",
            "compose/docker-compose.yml",
            "-f",
            "compose/offline.yml",
            "config",
            "--services",
        ])
        .output()
        .expect("docker-compose");
    let services = String::from_utf8_lossy(&config.stdout);
    assert!(
        config.status.success(),
        "{}",
        String::from_utf8_lossy(&config.stderr)
    );
    assert!(
        services.lines().any(|s| s == "fx-audit-worker"),
        "{services}"
    );

    // The same name again: it says so, finds nothing missing and changes nothing.
    let status = copy.status();
    copy.finctl()
        .args(["new-service", "fx-audit", "--no-start"])
        .run()
        .status(0)
        .stderr_contains("fx-audit exists already (made by `finctl new-service` from template v")
        .stderr_contains("files are all in place");
    assert_eq!(copy.status(), status);
    // A missing piece (an interrupted run) is finished.
    std::fs::remove_file(copy.path().join("tests/smoke/smoke/fx-audit.hurl")).unwrap();
    copy.finctl()
        .args(["new-service", "fx-audit", "--no-start"])
        .run()
        .status(0)
        .stdout_contains("create  tests/smoke/smoke/fx-audit.hurl");
    assert_eq!(copy.status(), status);

    copy.finctl()
        .args(["new-service", "--remove", "fx-audit"])
        .run()
        .status(0)
        .stdout_contains("delete  platform-services/fx-audit/src/lib.rs")
        .stderr_contains("fx-audit is removed");
    assert_eq!(copy.status(), "", "every file as it was, byte for byte");
    copy.finctl()
        .args(["new-service", "--remove", "wallet"])
        .run()
        .status(2)
        .stderr_contains("wallet was not made by `finctl new-service`");
}

#[test]
fn update_merges_the_template_into_edited_code_and_marks_conflicts() {
    let copy = Copy::new();
    copy.finctl()
        .args(["new-service", "fx-audit", "--no-start"])
        .run()
        .status(0);
    copy.commit("fx-audit, template v1");
    copy.finctl()
        .args(["new-service", "--update", "fx-audit"])
        .run()
        .status(0)
        .stderr_contains("up to date with the template");

    // The template changes main.rs's first line and the Compose entry; the team added a
    // line at the end of main.rs and a comment to the Compose entry.
    let main_tpl = "templates/service/crate/src/main.rs.j2";
    copy.write(
        main_tpl,
        &format!("// template v2\n{}", copy.read(main_tpl)),
    );
    let manifest = "templates/service/template.toml";
    copy.write(
        manifest,
        &copy.read(manifest).replace("version = 1", "version = 2"),
    );
    let compose_tpl = "templates/service/stack/compose.yml.j2";
    copy.write(
        compose_tpl,
        &copy.read(compose_tpl).replace(
            "      SERVICE_NAME: svc-{{ name }}\n",
            "      SERVICE_NAME: svc-{{ name }}\n      RUST_LOG: debug\n",
        ),
    );
    copy.commit("template v2");
    let main = "platform-services/fx-audit/src/main.rs";
    copy.write(main, &format!("{}// ours at the end\n", copy.read(main)));
    let compose = "compose/docker-compose.yml";
    copy.write(
        compose,
        &copy
            .read(compose)
            .replace("  fx-audit:\n", "  fx-audit:\n    # ours: a comment\n"),
    );
    copy.finctl()
        .args(["new-service", "--update", "fx-audit"])
        .run()
        .status(0)
        .stderr_contains("fx-audit: template v1 -> v2");
    let merged = copy.read(main);
    assert!(
        merged.starts_with("// template v2\n") && merged.ends_with("// ours at the end\n"),
        "{merged}"
    );
    let stack = copy.read(compose);
    assert!(
        stack.contains("  fx-audit:\n    # ours: a comment\n"),
        "ours kept"
    );
    assert!(
        stack.contains("SERVICE_NAME: svc-fx-audit\n      RUST_LOG: debug\n"),
        "theirs added"
    );
    assert!(
        copy.read("platform-services/fx-audit/.finctl-service.toml")
            .contains("version = 2")
    );
    copy.commit("fx-audit on template v2");

    // Both change the same line: marked in the file, listed, nothing lost, exit 1.
    copy.write(
        main_tpl,
        &copy
            .read(main_tpl)
            .replace("// template v2", "// template v3"),
    );
    copy.write(
        manifest,
        &copy.read(manifest).replace("version = 2", "version = 3"),
    );
    copy.commit("template v3");
    copy.write(
        main,
        &copy.read(main).replace("// template v2", "// ours, not v2"),
    );
    copy.finctl()
        .args(["new-service", "--update", "fx-audit"])
        .run()
        .status(1)
        .stderr_contains("1 file(s) have conflicts")
        .stderr_contains("  platform-services/fx-audit/src/main.rs");
    let conflicted = copy.read(main);
    for part in [
        "<<<<<<< ours\n// ours, not v2\n",
        "=======\n// template v3\n>>>>>>> theirs\n",
        "// ours at the end\n",
    ] {
        assert!(conflicted.contains(part), "{part:?} in:\n{conflicted}");
    }
}

/// The cargo a nested build uses, and its target folder: the one this test was built in, so
/// the platform's dependencies are compiled already. `--release`: the running `cargo test`
/// holds the lock of the debug profile's folder, and CI builds release artefacts anyway.
fn cargo(dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(dir).env("CARGO_TARGET_DIR", target_dir());
    cmd
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(".."))
}

fn cargo_ok(dir: &Path, args: &[&str]) {
    let out = cargo(dir).args(args).output().expect("cargo");
    assert!(
        out.status.success(),
        "cargo {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The template cannot rot: a change in platform-common (or anywhere) that breaks generated
/// services fails here.
#[test]
fn generated_services_build_pass_their_tests_clippy_and_rustfmt() {
    let copy = Copy::new();
    copy.finctl()
        .args(["new-service", "fx-audit", "--no-start"])
        .run()
        .status(0);
    copy.finctl()
        .args(["new-service", "plain-audit", "--no-worker", "--no-start"])
        .run()
        .status(0);
    let crates = ["-p", "fx-audit", "-p", "plain-audit"];
    cargo_ok(copy.path(), &[&["fmt", "--check"][..], &crates].concat());
    cargo_ok(
        copy.path(),
        &[
            &["clippy", "--release", "--all-targets"][..],
            &crates,
            &["--", "-D", "warnings"],
        ]
        .concat(),
    );
    cargo_ok(copy.path(), &[&["test", "--release"][..], &crates].concat());
}

/// Takes a generated service out of the shared platform again, also when the test fails.
struct RemoveService<'a> {
    copy: &'a Copy,
    name: &'a str,
}

impl Drop for RemoveService<'_> {
    fn drop(&mut self) {
        let _ = self
            .copy
            .finctl()
            .args(["new-service", "--remove", self.name])
            .command()
            .output();
    }
}

/// GET `url` (with a bearer token): status and JSON body (null when not JSON).
fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut request = reqwest::Client::new().get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

#[test]
fn a_new_service_comes_up_routed_and_smoke_tested_on_the_platform() {
    let _turn = platform_turn();
    let _platform = Teardown::up_offline();
    let copy = Copy::new();
    let _remove = RemoveService {
        copy: &copy,
        name: "fx-audit",
    };
    let out = copy
        .finctl()
        .args(["new-service", "fx-audit"])
        // Its image's release build reuses the platform's compiled dependencies.
        .env("CARGO_TARGET_DIR", target_dir().display().to_string())
        .run()
        .status(0)
        .stderr_contains("The running stack was started with compose/offline.yml");
    for expected in [
        "fx-audit is up.",
        "http://127.0.0.1:8007",
        "/api/fx-audit/1.0.0",
        "smoke-test",
    ] {
        assert!(
            out.stdout().contains(expected),
            "{expected:?} in:\n{}",
            out.stdout()
        );
    }

    // Healthy, API and worker.
    let ps = copy
        .finctl()
        .args(["--json", "ps", "--offline"])
        .run()
        .status(0)
        .json();
    for service in ["fx-audit", "fx-audit-worker"] {
        let row = ps
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["service"] == service)
            .unwrap_or_else(|| panic!("{service} in {ps}"));
        assert_eq!(
            (row["state"].as_str(), row["ok"].as_bool()),
            (Some("running"), Some(true)),
            "{row}"
        );
    }

    // A token from the IdP reaches its /me through the gateway.
    let token = copy
        .finctl()
        .args(["token", "--offline", "--user", "user"])
        .run()
        .status(0);
    let (status, me) = get(
        "http://127.0.0.1:8280/api/fx-audit/1.0.0/me",
        Some(token.stdout().trim()),
    );
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["service"].as_str(), me["user"]["username"].as_str()),
        (Some("svc-fx-audit"), Some("user")),
        "{me}"
    );

    // Its smoke cases, as a user runs them.
    copy.finctl()
        .args(["smoke-test", "--offline", "--service", "fx-audit"])
        .run()
        .status(0);

    // Removed: containers gone, route unpublished, files as they were.
    copy.finctl()
        .args(["new-service", "--remove", "fx-audit"])
        .run()
        .status(0)
        .stderr_contains("Removed containers: ");
    let (status, _) = get("http://127.0.0.1:8280/api/fx-audit/1.0.0/health", None);
    assert_eq!(status, 404, "the route is unpublished");
    assert_eq!(copy.status(), "");
}
