//! `finctl bootstrap` and `finctl token` against the real offline stack: PostgreSQL, tansu and
//! Canaille after `finctl up --offline` (which bootstraps). One test, in steps, because the
//! steps change the shared stack (a fresh IdP, scratch topics, a user's roles).
//!
//! `up` bootstrapped the repository's declarations (on CI from empty volumes); the steps here
//! add scratch resources through a copy of the declarations (`--dir`), with names unique to
//! the run, so creation is observed, not assumed, and the repository's own stay as they are.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;
use common::Test;

const USERS: [&str; 5] = ["admin", "ops_user", "finance", "auditor", "user"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn finctl() -> Test {
    Test::new().project_dir(root())
}

/// `finctl --json bootstrap ARGS...`, exit 0, its report.
fn bootstrap(args: &[&str]) -> Value {
    finctl()
        .args(["--json", "bootstrap"])
        .args(args)
        .run()
        .status(0)
        .json()
}

/// (kind, name, action) of every row that is not unchanged.
fn writes(report: &Value) -> Vec<(String, String, String)> {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "unchanged")
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_owned(),
                c["name"].as_str().unwrap().to_owned(),
                c["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A copy of compose/bootstrap/ with `edit` applied to one file.
fn declarations(file: &str, edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["database.yaml", "topics.yaml", "identity.yaml"] {
        let text = std::fs::read_to_string(root().join("compose/bootstrap").join(name)).unwrap();
        let text = if name == file { edit(&text) } else { text };
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn path(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}

fn roles_of(user: &str) -> Vec<String> {
    let decoded = finctl()
        .args(["--json", "token", "--user", user, "--decode"])
        .run()
        .status(0)
        .json();
    let mut roles: Vec<String> = decoded["summary"]["roles"]
        .as_array()
        .unwrap_or_else(|| panic!("roles in {decoded:#}"))
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    roles.sort();
    roles
}

fn topics() -> Vec<String> {
    finctl()
        .args(["--json", "topics"])
        .run()
        .status(0)
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topic"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn bootstrap_makes_what_is_declared_once_and_tokens_carry_the_roles() {
    finctl()
        .args(["up", "--offline", "--build", "--timeout", "5m"])
        .run()
        .status(0);

    // --- right after `up`: nothing to change, no write call --------------------------------
    let again = bootstrap(&[]);
    assert_eq!(writes(&again), [], "{again:#}");
    assert_eq!(again["applied"], 0);
    assert_eq!(again["idp"], "canaille");
    let kinds: Vec<&str> = again["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    for kind in ["database", "user", "grant", "topic", "role", "client"] {
        assert!(kinds.contains(&kind), "{kind} in {again:#}");
    }

    // --- new realm content: created on the first run, nothing to do on the second ---------
    // Scratch names unique to this run (nothing is ever deleted, so a rerun needs new ones).
    let n = std::process::id();
    let (role, alice, bob, client) = (
        format!("bt_reviewer_{n}"),
        format!("bt_alice_{n}"),
        format!("bt_bob_{n}"),
        format!("bt_client_{n}"),
    );
    let scratch = declarations("identity.yaml", |t| {
        t.replace("roles: [admin, ops_user, finance, auditor, user]", &format!("roles: [admin, ops_user, finance, auditor, user, {role}]"))
            .replace("clients:\n", &format!(
                "  - {{ username: {alice}, email: {alice}@innover.example, first_name: Alice, last_name: Test, password_env: IDP_PASSWORD_USER, roles: [{role}, user] }}\n  \
                 - {{ username: {bob}, email: {bob}@innover.example, first_name: Bob, last_name: Test, password_env: IDP_PASSWORD_USER, roles: [{role}] }}\n\
                 clients:\n  - {{ client_id: {client}, secret_env: IDP_CLIENT_SECRET, grant_types: [client_credentials] }}\n"
            ))
    });
    let dry = bootstrap(&["identity", "--dir", path(&scratch), "--dry-run"]);
    let planned = writes(&dry);
    assert_eq!(
        planned,
        [
            ("role".to_owned(), role.clone(), "create".to_owned()),
            ("client".to_owned(), client.clone(), "create".to_owned()),
            ("user".to_owned(), alice.clone(), "create".to_owned()),
            ("user".to_owned(), bob.clone(), "create".to_owned()),
        ],
        "{dry:#}"
    );
    assert_eq!(dry["applied"], 0);
    finctl()
        .args(["token", "--user", &alice, "--password", "user"])
        .run()
        .status(1);
    let created = bootstrap(&["identity", "--dir", path(&scratch)]);
    assert_eq!(writes(&created), planned);
    assert_eq!(
        created["applied"], 4,
        "one write per planned change: {created:#}"
    );
    let second = bootstrap(&["identity", "--dir", path(&scratch)]);
    assert_eq!(
        writes(&second),
        [],
        "a second run changes nothing: {second:#}"
    );
    assert_eq!(second["applied"], 0);
    let decoded = finctl()
        .args([
            "--json",
            "token",
            "--user",
            &alice,
            "--password",
            "user",
            "--decode",
        ])
        .run()
        .status(0)
        .json();
    let mut roles: Vec<&str> = decoded["summary"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    roles.sort();
    assert_eq!(roles, [role.as_str(), "user"], "{decoded:#}");
    finctl()
        .args(["token", "--client-credentials", "--client", "finctl"])
        .run()
        .status(0);

    // --- a token for each user carries that user's role ------------------------------------
    for user in USERS {
        assert_eq!(roles_of(user), [user], "{user}'s token");
    }
    let token = finctl()
        .args(["token", "--user", "finance"])
        .run()
        .status(0);
    assert_eq!(
        token.stdout().trim().split('.').count(),
        3,
        "stdout is the JWT alone"
    );
    let table = finctl()
        .args(["token", "--user", "auditor", "--decode"])
        .run()
        .status(0);
    assert!(
        table.stdout().contains("auditor") && table.stdout().contains("(in "),
        "{}",
        table.report()
    );
    let wrong = finctl()
        .args(["token", "--user", "admin", "--password", "nope"])
        .run()
        .status(1);
    assert!(
        wrong.stderr().contains("wrong password or unknown user"),
        "{}",
        wrong.report()
    );
    let unknown = finctl()
        .args(["token", "--user", "mallory"])
        .run()
        .status(1);
    assert!(
        unknown.stderr().contains("unknown user `mallory`"),
        "{}",
        unknown.report()
    );

    // --- a changed declaration applies that change only ------------------------------------
    let changed = declarations("identity.yaml", |t| {
        t.replace("    roles: [finance]", "    roles: [finance, auditor]")
    });
    let topic = "bootstrap.test-scratch";
    let with_topic = declarations("topics.yaml", |t| {
        format!("{t}  - name: {topic}\n    partitions: 2\n")
    });
    let plan = bootstrap(&["identity", "--dir", path(&changed), "--dry-run"]);
    assert_eq!(
        writes(&plan),
        [("user".into(), "finance".into(), "update".into())],
        "{plan:#}"
    );
    assert_eq!(
        roles_of("finance"),
        ["finance"],
        "a dry run changes nothing"
    );
    let applied = bootstrap(&["identity", "--dir", path(&changed)]);
    assert_eq!(applied["applied"], 1, "{applied:#}");
    let row = applied["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "finance" && c["kind"] == "user")
        .unwrap();
    assert_eq!(row["fields"], serde_json::json!(["roles"]), "{row}");
    assert_eq!(roles_of("finance"), ["auditor", "finance"]);
    // Back to the repository's declarations: the declared role not declared for finance goes.
    let back = bootstrap(&["identity"]);
    assert_eq!(back["applied"], 1, "{back:#}");
    assert_eq!(roles_of("finance"), ["finance"]);

    if topics().contains(&topic.to_owned()) {
        // A previous run's (the broker keeps topics until it restarts).
        finctl()
            .args([
                "exec",
                "--offline",
                "redpanda",
                "--",
                "/usr/local/bin/tansu",
                "topic",
                "delete",
                topic,
                "--broker",
                "tcp://127.0.0.1:9092",
            ])
            .run()
            .status(0);
    }
    let dry = bootstrap(&["topics", "--dir", path(&with_topic), "--dry-run"]);
    assert_eq!(
        writes(&dry),
        [("topic".into(), topic.into(), "create".into())]
    );
    assert!(
        !topics().contains(&topic.to_owned()),
        "a dry run creates nothing"
    );
    let made = bootstrap(&["topics", "--dir", path(&with_topic)]);
    assert_eq!(made["applied"], 1, "{made:#}");
    assert!(topics().contains(&topic.to_owned()));
    assert_eq!(
        writes(&bootstrap(&["topics", "--dir", path(&with_topic)])),
        []
    );
    // tansu cannot add partitions: a clear error naming the topic and the broker's limit.
    let more = declarations("topics.yaml", |t| {
        format!("{t}  - name: {topic}\n    partitions: 4\n")
    });
    let refused = finctl()
        .args(["bootstrap", "topics", "--dir", path(&more)])
        .run()
        .status(1);
    assert!(
        refused.stderr().contains(topic) && refused.stderr().contains("no CreatePartitions"),
        "{}",
        refused.report()
    );

    let scratch_db = declarations("database.yaml", |t| {
        t.replace(
            "  - name: innover\n",
            "  - name: innover\n  - name: bootstrap_scratch\n",
        )
    });
    let db = bootstrap(&["database", "--dir", path(&scratch_db)]);
    let db_writes = writes(&db);
    assert!(
        db_writes.is_empty()
            || db_writes
                == [(
                    "database".into(),
                    "bootstrap_scratch".into(),
                    "create".into()
                )],
        "{db:#}"
    );
    assert_eq!(
        writes(&bootstrap(&["database", "--dir", path(&scratch_db)])),
        []
    );

    // --- bad input: file:line and value, exit 2, nothing contacted or changed --------------
    for (file, edit, expected) in [
        (
            "identity.yaml",
            Box::new(|t: &str| t.replace("    roles: [user]", "    roles: [usr]"))
                as Box<dyn Fn(&str) -> String>,
            "roles[0]: `usr`: not a role declared under `roles`; did you mean `user`?",
        ),
        (
            "identity.yaml",
            Box::new(|t: &str| t.replace("IDP_PASSWORD_AUDITOR", "IDP_PASSWORD_NOT_SET")),
            "password_env: `IDP_PASSWORD_NOT_SET`: the variable is not set",
        ),
        (
            "topics.yaml",
            Box::new(|t: &str| format!("{t}  - name: zero\n    partitions: 0\n")),
            "partitions: `0`: must be at least 1",
        ),
        (
            "identity.yaml",
            Box::new(|t: &str| t.replace("role_claim: groups", "role_claim: groups\ncolour: blue")),
            "unknown field `colour`",
        ),
    ] {
        let dir = declarations(file, edit);
        let out = finctl()
            .args(["bootstrap", "--dir", path(&dir)])
            .run()
            .status(2);
        let text = out.stderr();
        assert!(text.contains(expected), "{}", out.report());
        assert!(
            text.contains(&format!("{}:", Path::new(path(&dir)).join(file).display())),
            "names the file with its line: {}",
            out.report()
        );
    }
    assert_eq!(writes(&bootstrap(&[])), [], "the bad runs changed nothing");
}
