//! The configuration hash Compose labels a container with: when it changes, `up` recreates
//! the container.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};
use sha2::{Digest, Sha256};

use super::merge::scalar_string;
use super::service::Service;

impl Service {
    /// A stable hash of everything that shapes this service's container (not its profiles or
    /// its dependencies), for the `com.docker.compose.config-hash` label: a container whose
    /// label differs was made from another configuration and is recreated. Pass the image id
    /// so that a rebuilt image also counts as a change.
    pub fn config_hash(&self, image_id: Option<&str>) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.config_digest.as_bytes());
        if let Some(id) = image_id {
            hasher.update(b"\0image:");
            hasher.update(id.as_bytes());
        }
        hex::encode(hasher.finalize())
    }
}

/// SHA-256 of the service's merged configuration in a canonical form (keys sorted), with the
/// resolved environment in place of `environment`/`env_file`, and without the keys that do
/// not shape the container (`depends_on`, `profiles`).
pub(crate) fn digest(map: &Mapping, environment: &BTreeMap<String, String>) -> String {
    let mut canonical = String::new();
    let mut keys: Vec<(String, &Value)> = map
        .iter()
        .map(|(k, v)| (scalar_string(k).unwrap_or_default(), v))
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "depends_on" | "profiles" | "environment" | "env_file"
            )
        })
        .collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, value) in keys {
        canonical.push_str(&key);
        canonical.push('=');
        write_canonical(value, &mut canonical);
        canonical.push('\n');
    }
    for (key, value) in environment {
        canonical.push_str(&format!("env:{key}={value}\n"));
    }
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Mapping(map) => {
            let mut entries: Vec<(String, &Value)> = map
                .iter()
                .map(|(k, v)| (scalar_string(k).unwrap_or_default(), v))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (key, value) in entries {
                out.push_str(&format!("{key:?}:"));
                write_canonical(value, out);
                out.push(',');
            }
            out.push('}');
        }
        Value::Sequence(items) => {
            out.push('[');
            for item in items {
                write_canonical(item, out);
                out.push(',');
            }
            out.push(']');
        }
        Value::Tagged(tagged) => {
            out.push_str(&tagged.tag.to_string());
            write_canonical(&tagged.value, out);
        }
        Value::Null => out.push_str("null"),
        other => out.push_str(&format!("{:?}", scalar_string(other).unwrap_or_default())),
    }
}
