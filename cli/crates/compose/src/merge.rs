//! Compose's override rules, applied file by file (docker-compose 1.29's
//! `merge_service_dicts`, which Compose v2 follows):
//!
//! - `environment`, `labels`, `depends_on`, `extra_hosts`, `sysctls`, `ulimits`: merged by key
//!   (list and mapping forms both accepted);
//! - `volumes`, `devices`: merged by container path;
//! - `ports`, `profiles`, `cap_add`, `env_file`, `dns`, ...: union;
//! - `healthcheck`: merged by key (so `test` is replaced), `disable: true` replaces all;
//! - `deploy`, `logging`, `build`, `networks`: merged recursively;
//! - everything else (`image`, `command`, `entrypoint`, `user`, ...): replaced.

use serde_yaml::{Mapping, Value};

/// Merges `over` (a later file) into `base` (the files before it).
pub fn merge_documents(base: &mut Mapping, over: Mapping) {
    for (key, value) in over {
        match key.as_str() {
            Some("services") => {
                let (Some(base_services), Value::Mapping(over_services)) = (
                    base.get_mut("services").and_then(Value::as_mapping_mut),
                    &value,
                ) else {
                    base.insert(key, value);
                    continue;
                };
                for (name, service) in over_services.clone() {
                    match (base_services.get_mut(&name), service) {
                        (Some(Value::Mapping(existing)), Value::Mapping(service)) => {
                            merge_service(existing, service);
                        }
                        (_, service) => {
                            base_services.insert(name, service);
                        }
                    }
                }
            }
            Some("volumes" | "networks" | "secrets" | "configs") => {
                match (base.get_mut(&key).and_then(Value::as_mapping_mut), value) {
                    (Some(existing), Value::Mapping(entries)) => existing.extend(entries),
                    (_, value) => {
                        base.insert(key, value);
                    }
                }
            }
            _ => {
                base.insert(key, value);
            }
        }
    }
}

/// Merges one service's override into its base definition.
pub fn merge_service(base: &mut Mapping, over: Mapping) {
    for (key, value) in over {
        let Some(name) = key.as_str().map(str::to_owned) else {
            base.insert(key, value);
            continue;
        };
        let merged = match (name.as_str(), base.remove(&key)) {
            (_, None) => value,
            (
                "environment" | "labels" | "extra_hosts" | "sysctls" | "ulimits" | "storage_opt",
                Some(old),
            ) => {
                let mut map = key_values(old);
                map.extend(key_values(value));
                Value::Mapping(map)
            }
            ("depends_on", Some(old)) => {
                let mut map = dependencies(old);
                map.extend(dependencies(value));
                Value::Mapping(map)
            }
            ("volumes" | "devices", Some(old)) => merge_by_target(old, value),
            (
                "ports"
                | "profiles"
                | "cap_add"
                | "cap_drop"
                | "expose"
                | "external_links"
                | "volumes_from"
                | "device_cgroup_rules"
                | "links"
                | "secrets"
                | "configs"
                | "security_opt"
                | "dns"
                | "dns_search"
                | "env_file"
                | "tmpfs",
                Some(old),
            ) => union(old, value),
            ("healthcheck", Some(old)) => {
                let disables = value
                    .get("disable")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                match (old, value) {
                    (Value::Mapping(mut old), Value::Mapping(new)) if !disables => {
                        old.extend(new);
                        Value::Mapping(old)
                    }
                    (_, new) => new,
                }
            }
            ("build", Some(old)) => deep_merge(build_mapping(old), build_mapping(value)),
            ("networks", Some(old)) => deep_merge(networks_mapping(old), networks_mapping(value)),
            ("deploy" | "logging", Some(old)) => deep_merge(old, value),
            (_, Some(_)) => value,
        };
        base.insert(key, merged);
    }
}

/// `environment`/`labels` in either form as a mapping: `["A=1", "B"]` -> `{A: "1", B: null}`.
pub fn key_values(value: Value) -> Mapping {
    match value {
        Value::Mapping(map) => map,
        Value::Sequence(items) => items
            .into_iter()
            .map(|item| {
                let text = scalar_string(&item).unwrap_or_default();
                match text.split_once('=') {
                    Some((k, v)) => (Value::from(k), Value::from(v)),
                    None => (Value::from(text), Value::Null),
                }
            })
            .collect(),
        _ => Mapping::new(),
    }
}

/// `depends_on` in either form as a mapping: `[db]` -> `{db: {condition: service_started}}`.
pub fn dependencies(value: Value) -> Mapping {
    match value {
        Value::Mapping(map) => map,
        Value::Sequence(items) => items
            .into_iter()
            .map(|item| {
                let mut condition = Mapping::new();
                condition.insert("condition".into(), "service_started".into());
                (item, Value::Mapping(condition))
            })
            .collect(),
        _ => Mapping::new(),
    }
}

/// A scalar as Compose would read it as text.
pub fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The container path a `volumes`/`devices` entry mounts at.
pub fn mount_target(entry: &Value) -> Option<String> {
    match entry {
        Value::String(spec) => {
            let parts: Vec<&str> = spec.split(':').collect();
            match parts.len() {
                1 => Some(parts[0].to_owned()),
                _ => Some(parts[1].to_owned()),
            }
        }
        Value::Mapping(map) => map.get("target").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

fn merge_by_target(old: Value, new: Value) -> Value {
    let mut entries: Vec<Value> = old.as_sequence().cloned().unwrap_or_default();
    for entry in new.as_sequence().cloned().unwrap_or_default() {
        let target = mount_target(&entry);
        match entries
            .iter()
            .position(|e| target.is_some() && mount_target(e) == target)
        {
            Some(at) => entries[at] = entry,
            None => entries.push(entry),
        }
    }
    Value::Sequence(entries)
}

fn as_list(value: Value) -> Vec<Value> {
    match value {
        Value::Sequence(items) => items,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn union(old: Value, new: Value) -> Value {
    let mut items = as_list(old);
    for item in as_list(new) {
        if !items.contains(&item) {
            items.push(item);
        }
    }
    Value::Sequence(items)
}

fn build_mapping(value: Value) -> Value {
    match value {
        Value::String(context) => {
            let mut map = Mapping::new();
            map.insert("context".into(), Value::String(context));
            Value::Mapping(map)
        }
        other => other,
    }
}

fn networks_mapping(value: Value) -> Value {
    match value {
        Value::Sequence(names) => {
            Value::Mapping(names.into_iter().map(|n| (n, Value::Null)).collect())
        }
        other => other,
    }
}

/// Mappings merged key by key, recursively; anything else replaced by `new`.
pub fn deep_merge(old: Value, new: Value) -> Value {
    match (old, new) {
        (Value::Mapping(mut old), Value::Mapping(new)) => {
            for (key, value) in new {
                let merged = match old.remove(&key) {
                    Some(existing) => deep_merge(existing, value),
                    None => value,
                };
                old.insert(key, merged);
            }
            Value::Mapping(old)
        }
        (old @ Value::Mapping(_), Value::Null) => old,
        (_, new) => new,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Mapping {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn follows_compose_override_rules() {
        let mut base = yaml(
            r#"
image: a
command: ["serve", "--x"]
environment: ["A=1", "B=2"]
depends_on: [db, cache]
ports: ["8000:8000"]
volumes: ["data:/data", "./conf:/etc/conf:ro"]
profiles: [one]
healthcheck: {test: ["CMD", "a"], interval: 5s}
deploy: {resources: {limits: {cpus: "1", memory: 1G}}}
"#,
        );
        let over = yaml(
            r#"
image: b
command: []
environment: {B: "3", C: "4"}
depends_on: {db: {condition: service_healthy}}
ports: ["9000:9000", "8000:8000"]
volumes: ["other:/data"]
profiles: [two]
healthcheck: {test: ["CMD", "b"]}
deploy: {resources: {limits: {memory: 2G}}}
"#,
        );
        merge_service(&mut base, over);
        let expected = yaml(
            r#"
image: b
command: []
environment: {A: "1", B: "3", C: "4"}
depends_on: {db: {condition: service_healthy}, cache: {condition: service_started}}
ports: ["8000:8000", "9000:9000"]
volumes: ["other:/data", "./conf:/etc/conf:ro"]
profiles: [one, two]
healthcheck: {test: ["CMD", "b"], interval: 5s}
deploy: {resources: {limits: {cpus: "1", memory: 2G}}}
"#,
        );
        for (key, value) in &expected {
            assert_eq!(base.get(key), Some(value), "key {key:?}");
        }
    }

    #[test]
    fn disabling_a_healthcheck_replaces_it() {
        let mut base = yaml("healthcheck: {test: [CMD, a], interval: 5s}");
        merge_service(&mut base, yaml("healthcheck: {disable: true}"));
        assert_eq!(base["healthcheck"], Value::Mapping(yaml("disable: true")));
    }

    #[test]
    fn documents_merge_services_by_name() {
        let mut base = yaml("services: {a: {image: x, user: u}}\nvolumes: {v1: {}}");
        merge_documents(
            &mut base,
            yaml("services: {a: {image: y}, b: {image: z}}\nvolumes: {v2: {}}"),
        );
        let services = base["services"].as_mapping().unwrap();
        assert_eq!(services["a"]["image"], Value::from("y"));
        assert_eq!(services["a"]["user"], Value::from("u"));
        assert_eq!(services["b"]["image"], Value::from("z"));
        assert_eq!(base["volumes"].as_mapping().unwrap().len(), 2);
    }
}
