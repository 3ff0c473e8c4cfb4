//! The declarations' checks: each bad input named by file, line and value.

use std::collections::BTreeMap;

use super::*;

fn vars() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("IDP_PASSWORD_ADMIN", "admin"),
        ("IDP_PASSWORD_USER", "user"),
        ("IDP_CLIENT_SECRET", "s3cret"),
        ("DB_REPORTING_PASSWORD", "pw"),
    ])
}

/// Loads `files` (name -> text) from a scratch folder; the error text on failure.
fn load_files(files: &[(&str, &str)]) -> Result<Declarations, String> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let vars = vars();
    load(dir.path(), &Part::ALL, &|k| {
        vars.get(k).map(|v| v.to_string())
    })
    .map_err(|e| format!("{e}"))
}

const IDENTITY: &str = "\
realm: innover
roles: [admin, user]
users:
  - username: admin
    email: admin@innover.example
    first_name: Ada
    last_name: Admin
    password_env: IDP_PASSWORD_ADMIN
    roles: [admin]
  - username: user
    email: user@innover.example
    first_name: Uma
    last_name: User
    password_env: IDP_PASSWORD_USER
    roles: [user]
clients:
  - client_id: finctl
    secret_env: IDP_CLIENT_SECRET
    grant_types: [password, client_credentials]
";

#[test]
fn the_repository_declarations_are_valid() {
    let compose = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../compose");
    let vars = finctl_compose::Variables::layered(Path::new(compose), &BTreeMap::new()).unwrap();
    let dir = Path::new(compose).join("bootstrap");
    let decl = load(&dir, &Part::ALL, &|k| vars.get(k).map(str::to_owned)).unwrap();
    assert_eq!(
        decl.identity.roles,
        ["admin", "ops_user", "finance", "auditor", "user"]
    );
    assert_eq!(decl.identity.users.len(), 5);
    for user in &decl.identity.users {
        assert_eq!(user.roles.len(), 1, "{}", user.username);
        assert!(user.roles.contains(&user.username), "one user per role");
        assert_eq!(
            user.password.expose(),
            user.username,
            "the seeds' passwords"
        );
    }
    assert_eq!(decl.identity.clients[0].client_id, "finctl");
    assert!(decl.topics.iter().any(|t| t.name == "payment.initiated"));
    assert_eq!(decl.database.databases, ["innover"]);
}

#[test]
fn defaults_fill_topics_and_secrets_are_resolved() {
    let decl = load_files(&[
        ("identity.yaml", IDENTITY),
        (
            "topics.yaml",
            "defaults: { partitions: 2, retention: 3d }\ntopics:\n  - name: a.b\n  - { name: c, partitions: 1, retention: infinite, cleanup_policy: 'delete, compact' }\n",
        ),
    ])
    .unwrap();
    assert_eq!(decl.topics[0].partitions, 2);
    assert_eq!(
        decl.topics[0].retention_ms(),
        (3 * 86_400_000u64).to_string()
    );
    assert_eq!(decl.topics[0].cleanup_policy, "delete");
    assert_eq!(decl.topics[1].retention_ms(), "-1");
    assert_eq!(decl.topics[1].cleanup_policy, "compact,delete");
    assert_eq!(decl.identity.clients[0].secret.expose(), "s3cret");
    assert_eq!(
        decl.identity.clients[0].audience, "finctl",
        "the client id by default"
    );
    assert_eq!(
        format!("{:?}", decl.identity.clients[0].secret),
        "Secret(***)"
    );
}

#[test]
fn a_user_with_an_undeclared_role_is_named_with_its_line() {
    let text = IDENTITY.replace("roles: [user]", "roles: [usr]");
    let err = load_files(&[("identity.yaml", &text)]).unwrap_err();
    assert!(
        err.contains("identity.yaml:15: users[1].roles[0]: `usr`: not a role declared under `roles`; did you mean `user`?"),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
}

#[test]
fn an_unset_secret_variable_is_named() {
    let text = IDENTITY.replace("IDP_PASSWORD_USER", "IDP_PASSWORD_NOBODY");
    let err = load_files(&[("identity.yaml", &text)]).unwrap_err();
    assert!(
        err.contains("identity.yaml:14: users[1].password_env: `IDP_PASSWORD_NOBODY`: the variable is not set"),
        "{err}"
    );
}

#[test]
fn an_inline_password_is_an_unknown_key() {
    let text = IDENTITY.replace(
        "    password_env: IDP_PASSWORD_ADMIN\n",
        "    password: admin\n",
    );
    let err = load_files(&[("identity.yaml", &text)]).unwrap_err();
    assert!(
        err.contains("identity.yaml:8: users[0].password: unknown field `password`"),
        "{err}"
    );
}

#[test]
fn a_duplicate_user_names_both_lines() {
    let text = IDENTITY.replace("username: user", "username: admin");
    let err = load_files(&[("identity.yaml", &text)]).unwrap_err();
    assert!(
        err.contains("identity.yaml:10: users[1].username: `admin`: declared twice; the first is users[0] (line 4)"),
        "{err}"
    );
}

#[test]
fn a_topic_with_zero_partitions_and_a_bad_policy_are_both_reported() {
    let err = load_files(&[(
        "topics.yaml",
        "topics:\n  - name: a\n    partitions: 0\n  - name: b\n    cleanup_policy: keep\n",
    )])
    .unwrap_err();
    assert!(
        err.contains("topics.yaml:3: topics[0].partitions: `0`: must be at least 1"),
        "{err}"
    );
    assert!(
        err.contains("topics.yaml:5: topics[1].cleanup_policy: `keep`: one of delete, compact, compact,delete"),
        "{err}"
    );
    assert!(err.contains("(2 problems)"), "{err}");
}

#[test]
fn grants_name_declared_users_and_databases_and_real_privileges() {
    let err = load_files(&[(
        "database.yaml",
        "databases: [{ name: innover }]\nusers: [{ name: reporting, password_env: DB_REPORTING_PASSWORD }]\ngrants:\n  - { user: nobody, database: innover, privileges: [SELECT] }\n",
    )])
    .unwrap_err();
    assert!(
        err.contains("database.yaml:4: grants[0].user: `nobody`: not a user declared"),
        "{err}"
    );
    assert!(
        err.contains("grants[0].privileges[0]: `SELECT`: not a database privilege"),
        "{err}"
    );
    let ok = load_files(&[(
        "database.yaml",
        "databases: [{ name: innover }]\nusers: [{ name: reporting, password_env: DB_REPORTING_PASSWORD }]\ngrants:\n  - { user: reporting, database: innover, privileges: [connect] }\n",
    )])
    .unwrap();
    assert_eq!(
        ok.database.grants[0].privileges,
        BTreeSet::from(["CONNECT".to_string()])
    );
    assert_eq!(
        ok.database.users[0].password.as_ref().unwrap().expose(),
        "pw"
    );
}

#[test]
fn a_missing_file_is_an_empty_part() {
    let decl = load_files(&[]).unwrap();
    assert!(decl.topics.is_empty() && decl.identity.users.is_empty());
}
