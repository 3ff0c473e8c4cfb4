//! `finctl bootstrap database`: databases, login roles and database grants over the Postgres
//! wire, in SQL that CockroachDB and PostgreSQL both accept (`pg_database`, `pg_roles` and
//! `has_database_privilege` are in both; `IF NOT EXISTS` is not, for databases, in Postgres).

use anyhow::Context as _;
use tokio_postgres::Client;

use crate::decl::{DatabaseDecl, DbUser, Grant};
use crate::{Action, Change};

/// One statement to run, with the plan row it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub change: Change,
    /// `None` for unchanged rows.
    pub sql: Option<String>,
}

/// A double-quoted identifier (names are checked to be plain; quoting keeps them exact).
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Looks up what `decl` names and returns the plan: a statement per missing or different
/// resource, in order (databases, users, grants).
pub async fn plan(client: &Client, decl: &DatabaseDecl) -> anyhow::Result<Vec<Statement>> {
    let mut out = Vec::new();
    for name in &decl.databases {
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[name])
            .await
            .context("looking up databases")?
            .is_some();
        out.push(row(
            "database",
            name,
            exists,
            format!("CREATE DATABASE {}", ident(name)),
        ));
    }
    for user in &decl.users {
        let exists = role_exists(client, &user.name).await?;
        out.push(row("user", &user.name, exists, create_user(user)));
    }
    for grant in &decl.grants {
        out.push(grant_row(client, grant).await?);
    }
    Ok(out)
}

async fn role_exists(client: &Client, name: &str) -> anyhow::Result<bool> {
    Ok(client
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name])
        .await
        .context("looking up roles")?
        .is_some())
}

fn create_user(user: &DbUser) -> String {
    match &user.password {
        Some(p) => format!(
            "CREATE USER {} WITH LOGIN PASSWORD {}",
            ident(&user.name),
            literal(p.expose())
        ),
        None => format!("CREATE USER {} WITH LOGIN", ident(&user.name)),
    }
}

fn row(kind: &'static str, name: &str, exists: bool, sql: String) -> Statement {
    Statement {
        change: Change::new(
            "database",
            kind,
            name,
            if exists {
                Action::Unchanged
            } else {
                Action::Create
            },
        ),
        sql: (!exists).then_some(sql),
    }
}

/// The privileges `ALL` stands for, as `has_database_privilege` checks them.
const ALL: &[&str] = &["CONNECT", "CREATE"];

async fn grant_row(client: &Client, grant: &Grant) -> anyhow::Result<Statement> {
    let name = format!("{} on {}", grant.user, grant.database);
    let wanted: Vec<&str> = if grant.privileges.contains("ALL") {
        ALL.to_vec()
    } else {
        grant.privileges.iter().map(String::as_str).collect()
    };
    // The user or database may not exist yet on a dry run: then nothing is granted.
    let present = role_exists(client, &grant.user).await?
        && client
            .query_opt(
                "SELECT 1 FROM pg_database WHERE datname = $1",
                &[&grant.database],
            )
            .await?
            .is_some();
    let mut missing = Vec::new();
    for privilege in &wanted {
        let has = present
            && client
                .query_one(
                    "SELECT has_database_privilege($1, $2, $3)",
                    &[&grant.user, &grant.database, privilege],
                )
                .await
                .with_context(|| format!("checking {privilege} of {name}"))?
                .get::<_, bool>(0);
        if !has {
            missing.push(*privilege);
        }
    }
    let sql = format!(
        "GRANT {} ON DATABASE {} TO {}",
        if grant.privileges.contains("ALL") {
            "ALL".to_string()
        } else {
            missing.join(", ")
        },
        ident(&grant.database),
        ident(&grant.user)
    );
    let (action, sql) = if missing.is_empty() {
        (Action::Unchanged, None)
    } else if missing.len() == wanted.len() {
        (Action::Create, Some(sql))
    } else {
        (
            Action::Update(missing.iter().map(|p| p.to_ascii_lowercase()).collect()),
            Some(sql),
        )
    };
    Ok(Statement {
        change: Change::new("database", "grant", name, action),
        sql,
    })
}

/// Runs the plan's statements in order; the first failure stops it (what ran stays: the next
/// run finds it and goes on from there).
pub async fn apply(client: &Client, plan: &[Statement]) -> anyhow::Result<usize> {
    let mut done = 0;
    for statement in plan {
        let Some(sql) = &statement.sql else { continue };
        client.batch_execute(sql).await.with_context(|| {
            format!(
                "{} {} failed",
                statement.change.action.label(),
                statement.change.kind
            ) + &format!(" {}", statement.change.name)
        })?;
        done += 1;
    }
    Ok(done)
}
