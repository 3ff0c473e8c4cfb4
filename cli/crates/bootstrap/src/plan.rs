//! A plan row: one resource, what bootstrap does to it.

use serde::Serialize;

/// What happens to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action", content = "fields")]
pub enum Action {
    Create,
    /// The fields that differ, by their declaration names.
    Update(Vec<String>),
    Unchanged,
}

impl Action {
    pub fn is_write(&self) -> bool {
        !matches!(self, Self::Unchanged)
    }

    pub fn label(&self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update(_) => "update",
            Self::Unchanged => "unchanged",
        }
    }
}

/// One row of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `database`, `topics` or `identity`.
    pub part: &'static str,
    /// `database`, `user`, `grant`, `topic`, `realm`, `role`, `client`, `role-claim`.
    pub kind: &'static str,
    pub name: String,
    #[serde(flatten)]
    pub action: Action,
}

impl Change {
    pub fn new(
        part: &'static str,
        kind: &'static str,
        name: impl Into<String>,
        action: Action,
    ) -> Self {
        Self {
            part,
            kind,
            name: name.into(),
            action,
        }
    }
}
