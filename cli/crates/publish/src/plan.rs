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
