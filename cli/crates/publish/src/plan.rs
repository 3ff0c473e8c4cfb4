//! The plan: for each API, create, update (which fields), unchanged or delete; then applying
//! it, one call per change, in the plan's order.

use gateway_routes::Api;
use serde::Serialize;

use crate::target::{Remote, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Unchanged,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Unchanged => "unchanged",
            Self::Delete => "delete",
        }
    }
}

/// One row of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// `name:version`.
    pub id: String,
    pub name: String,
    pub version: String,
    pub context: String,
    pub kind: gateway_routes::ApiKind,
    pub action: Action,
    /// For updates: the fields that differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// What is sent (create, update), projected to what the target keeps.
    #[serde(skip)]
    pub desired: Option<Api>,
    #[serde(skip)]
    pub remote: Option<Remote>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub target: String,
    pub location: String,
    pub changes: Vec<Change>,
    /// APIs on the target that are not in the file and that `--prune` would delete.
    pub prunable: Vec<String>,
    /// APIs on the target that are not in the file and not finctl's: never touched.
    pub foreign: Vec<String>,
}

impl Plan {
    /// Compares the desired APIs (in the file's order) with the target's. Without `prune`,
    /// APIs only the target has are left alone; with it, those finctl owns are deleted.
    pub fn new(target: &dyn Target, desired: &[Api], remote: &[Remote], prune: bool) -> Self {
        let mut changes = Vec::new();
        for api in desired {
            let projected = target.project(api);
            let id = api.id();
            let existing = remote.iter().find(|r| r.api.id() == id);
            let (action, fields) = match existing {
                None => (Action::Create, Vec::new()),
                Some(r) => {
                    let fields = differing_fields(&projected, &target.project(&r.api));
                    if fields.is_empty() {
                        (Action::Unchanged, fields)
                    } else {
                        (Action::Update, fields)
                    }
                }
            };
            changes.push(Change {
                id,
                name: api.name.clone(),
                version: api.version.clone(),
                context: api.context.clone(),
                kind: api.kind,
                action,
                fields,
                desired: Some(projected),
                remote: existing.cloned(),
            });
        }
        let mut prunable = Vec::new();
        let mut foreign = Vec::new();
        for r in remote {
            let id = r.api.id();
            if desired.iter().any(|a| a.id() == id) {
                continue;
            }
            if !r.owned {
                foreign.push(id);
            } else if prune {
                changes.push(Change {
                    id,
                    name: r.api.name.clone(),
                    version: r.api.version.clone(),
                    context: r.api.context.clone(),
                    kind: r.api.kind,
                    action: Action::Delete,
                    fields: Vec::new(),
                    desired: None,
                    remote: Some(r.clone()),
                });
            } else {
                prunable.push(id);
            }
        }
        Self {
            target: target.name().to_owned(),
            location: target.location(),
            changes,
            prunable,
            foreign,
        }
    }

    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    /// Anything to write.
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action != Action::Unchanged)
    }

    /// `2 to create, 1 to update, 3 unchanged`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for (action, label) in [
            (Action::Create, "to create"),
            (Action::Update, "to update"),
            (Action::Delete, "to delete"),
            (Action::Unchanged, "unchanged"),
        ] {
            let n = self.count(action);
            if n > 0 {
                parts.push(format!("{n} {label}"));
            }
        }
        if parts.is_empty() {
            "no APIs".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// The top-level fields of two APIs that differ, in the order [`Api`] declares them.
pub fn differing_fields(a: &Api, b: &Api) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(a), serde_json::to_value(b))
    else {
        return vec!["api".into()];
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.dedup();
    let order = [
        "name",
        "context",
        "version",
        "kind",
        "backend_url",
        "description",
        "tags",
        "access",
        "throttle",
        "operations",
        "cors",
        "timeouts",
        "graphql",
        "owner",
    ];
    let mut out: Vec<String> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| k.to_string())
        .collect();
    out.sort_by_key(|k| order.iter().position(|o| o == k).unwrap_or(order.len()));
    out.dedup();
    out
}

/// Makes the plan's changes, in order, stopping at the first failure (a second run picks up
/// where this one stopped: the plan is recomputed from what the target then has).
/// `on_change` is told of each change once it is made. Returns the ids changed.
pub async fn apply(
    target: &mut dyn Target,
    plan: &Plan,
    on_change: &mut (dyn FnMut(&Change) + Send),
) -> anyhow::Result<Vec<String>> {
    let mut done = Vec::new();
    if !plan.has_changes() {
        return Ok(done);
    }
    for change in &plan.changes {
        let result = match (change.action, &change.desired, &change.remote) {
            (Action::Create, Some(api), _) => target.create(api).await,
            (Action::Update, Some(api), Some(remote)) => {
                target.update(remote, api, &change.fields).await
            }
            (Action::Delete, _, Some(remote)) => target.delete(remote).await,
            _ => continue,
        };
        if let Err(err) = result {
            return Err(err.context(format!(
                "could not {} {} on {} ({} change(s) made before it)",
                change.action.as_str(),
                change.id,
                plan.target,
                done.len()
            )));
        }
        done.push(change.id.clone());
        on_change(change);
    }
    let desired: Vec<Api> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Delete)
        .filter_map(|c| c.desired.clone())
        .collect();
    target.finish(&desired).await?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_routes::{FINCTL_OWNER, Throttle};

    /// A target that keeps everything (like the builtin one); only `Plan::new` is exercised.
    struct Keeps;

    #[async_trait::async_trait]
    impl Target for Keeps {
        fn name(&self) -> &'static str {
            "test"
        }
        fn location(&self) -> String {
            "memory".into()
        }
        async fn list(&mut self) -> anyhow::Result<Vec<Remote>> {
            Ok(Vec::new())
        }
        async fn create(&mut self, _: &Api) -> anyhow::Result<()> {
            Ok(())
        }
        async fn update(&mut self, _: &Remote, _: &Api, _: &[String]) -> anyhow::Result<()> {
            Ok(())
        }
        async fn delete(&mut self, _: &Remote) -> anyhow::Result<()> {
            Ok(())
        }
    }

    fn api(name: &str, backend: &str) -> Api {
        serde_json::from_value(serde_json::json!({
            "name": name, "context": format!("/api/{name}"), "version": "1",
            "backend_url": backend, "owner": FINCTL_OWNER,
        }))
        .unwrap()
    }

    fn remote(api: Api, owned: bool) -> Remote {
        Remote {
            handle: api.id(),
            owned,
            api,
        }
    }

    #[test]
    fn each_api_is_created_updated_with_its_fields_or_left_unchanged() {
        let mut changed = api("b", "http://b:2");
        changed.throttle = Some(Throttle {
            policy: "public".into(),
            requests: 20,
            period_seconds: 60,
        });
        let desired = [api("a", "http://a:1"), changed, api("c", "http://c:1")];
        let on_target = [
            remote(api("b", "http://b:1"), true),
            remote(api("c", "http://c:1"), true),
        ];
        let plan = Plan::new(&Keeps, &desired, &on_target, false);
        let rows: Vec<(&str, Action, Vec<String>)> = plan
            .changes
            .iter()
            .map(|c| (c.id.as_str(), c.action, c.fields.clone()))
            .collect();
        assert_eq!(
            rows,
            [
                ("a:1", Action::Create, vec![]),
                (
                    "b:1",
                    Action::Update,
                    vec!["backend_url".to_owned(), "throttle".to_owned()]
                ),
                ("c:1", Action::Unchanged, vec![]),
            ]
        );
        assert_eq!(plan.summary(), "1 to create, 1 to update, 1 unchanged");
    }

    #[test]
    fn prune_deletes_only_what_finctl_published() {
        let desired = [api("a", "http://a:1")];
        let on_target = [
            remote(api("a", "http://a:1"), true),
            remote(api("old", "http://o:1"), true),
            remote(api("theirs", "http://t:1"), false),
        ];
        let kept = Plan::new(&Keeps, &desired, &on_target, false);
        assert!(!kept.has_changes());
        assert_eq!(kept.prunable, ["old:1"]);
        assert_eq!(kept.foreign, ["theirs:1"]);

        let pruned = Plan::new(&Keeps, &desired, &on_target, true);
        let deletes: Vec<&str> = pruned
            .changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(deletes, ["old:1"]);
        assert_eq!(pruned.foreign, ["theirs:1"], "never someone else's");
    }

    #[test]
    fn an_api_someone_else_created_is_adopted_by_an_update() {
        let mut theirs = api("a", "http://a:1");
        theirs.owner = None;
        let plan = Plan::new(
            &Keeps,
            &[api("a", "http://a:1")],
            &[remote(theirs, false)],
            false,
        );
        assert_eq!(plan.changes[0].action, Action::Update);
        assert_eq!(plan.changes[0].fields, ["owner"]);
    }
}
