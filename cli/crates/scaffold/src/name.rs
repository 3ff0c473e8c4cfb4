//! A new service's name: what it may be on its own, before the project is looked at.

use std::fmt;

use heck::{ToSnakeCase, ToUpperCamelCase};

/// Names the platform or its tooling uses already: infrastructure services, the gateway,
/// image recipes, the workspace's shared crates, and words that would make confusing
/// containers, queues or crates.
pub const RESERVED: &[&str] = &[
    "all",
    "api",
    "base",
    "bench",
    "cli",
    "cockroach",
    "common",
    "compose",
    "docs",
    "finctl",
    "gateway",
    "gateway-routes",
    "idp",
    "kafka",
    "keycloak",
    "platform",
    "postgres",
    "redis",
    "redpanda",
    "service",
    "templates",
    "test",
    "testing",
    "tests",
    "worker",
];

/// Rust keywords (2024 edition, reserved ones too): a crate's library is named after the
/// service, so `fn` or `type` could never be imported.
const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// The longest name: container names, queues (`<name>-tasks`) and topics stay readable.
pub const MAX_LEN: usize = 32;

/// A valid service name: lowercase kebab-case, not reserved.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServiceName(String);

/// Why a name cannot be a service's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidName {
    pub name: String,
    pub reason: String,
}

impl fmt::Display for InvalidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` cannot be a service name: {}",
            self.name, self.reason
        )
    }
}

impl std::error::Error for InvalidName {}

impl ServiceName {
    pub fn parse(name: &str) -> Result<Self, InvalidName> {
        let invalid = |reason: &str| InvalidName {
            name: name.to_owned(),
            reason: reason.to_owned(),
        };
        if name.is_empty() {
            return Err(invalid("it is empty"));
        }
        if name.len() > MAX_LEN {
            return Err(invalid(&format!("it is longer than {MAX_LEN} characters")));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            let hint = if bad.is_ascii_uppercase() || bad == '_' {
                format!(
                    "`{bad}` is not allowed; use lowercase kebab-case, e.g. `{}`",
                    name.to_snake_case().replace('_', "-")
                )
            } else {
                format!("`{bad}` is not allowed; use a-z, 0-9 and single dashes")
            };
            return Err(invalid(&hint));
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(invalid("it must start with a lowercase letter (a-z)"));
        }
        if name.ends_with('-') || name.contains("--") {
            return Err(invalid(
                "dashes must separate words: no trailing or double dash",
            ));
        }
        if name.ends_with("-worker") {
            return Err(invalid(
                "`-worker` is the suffix of every service's worker container",
            ));
        }
        if RESERVED.contains(&name) {
            return Err(invalid("the platform uses that name already"));
        }
        if RUST_KEYWORDS.contains(&name.to_snake_case().as_str()) {
            return Err(invalid(
                "it is a Rust keyword, so its crate could not be used",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `fx_audit`: the crate's library name.
    pub fn snake(&self) -> String {
        self.0.to_snake_case()
    }

    /// `FxAudit`: type names.
    pub fn pascal(&self) -> String {
        self.0.to_upper_camel_case()
    }

    /// The worker's Compose service.
    pub fn worker(&self) -> String {
        format!("{}-worker", self.0)
    }

    /// The gateway context of its API.
    pub fn context(&self) -> String {
        format!("/api/{}", self.0)
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str) -> String {
        ServiceName::parse(name).unwrap_err().reason
    }

    #[test]
    fn lowercase_kebab_case_names_are_accepted() {
        for name in ["loyalty", "fx-audit", "kyc2", "a-b-c"] {
            assert_eq!(ServiceName::parse(name).unwrap().as_str(), name);
        }
        let name = ServiceName::parse("fx-audit").unwrap();
        assert_eq!(
            (name.snake(), name.pascal(), name.worker(), name.context()),
            (
                "fx_audit".to_owned(),
                "FxAudit".to_owned(),
                "fx-audit-worker".to_owned(),
                "/api/fx-audit".to_owned()
            )
        );
    }

    #[test]
    fn each_bad_name_says_what_is_wrong() {
        assert!(reason("").contains("empty"));
        assert!(
            reason("FxAudit").contains("`fx-audit`"),
            "{}",
            reason("FxAudit")
        );
        assert!(reason("fx_audit").contains("`fx-audit`"));
        assert!(reason("2fa").contains("start with a lowercase letter"));
        assert!(reason("-fx").contains("start with a lowercase letter"));
        assert!(reason("fx-").contains("trailing or double dash"));
        assert!(reason("fx--audit").contains("trailing or double dash"));
        assert!(reason("fx.audit").contains("`.` is not allowed"));
        assert!(reason("audit-worker").contains("-worker"));
        assert!(reason("gateway").contains("uses that name"));
        assert!(reason("redis").contains("uses that name"));
        assert!(reason("type").contains("Rust keyword"));
        assert!(reason(&"a".repeat(MAX_LEN + 1)).contains("longer than"));
    }
}
