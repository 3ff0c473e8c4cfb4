//! Reading one service's merged Compose mapping into a [`Service`], naming the file and line
//! of every bad value.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_yaml::{Mapping, Value};

use super::config_hash::digest;
use super::healthcheck::Healthcheck;
use super::line_index::Segment;
use super::merge::{dependencies, key_values, scalar_string};
use super::mount::Mount;
use super::port::PortBinding;
use super::service::{Condition, Resources, RestartPolicy, Service};
use super::source::{Location, Sources, invalid};
use super::units::{parse_bytes, parse_duration};
use super::variables::{Variables, read_env_file};
use finctl_error::UserError;

/// The keys of a Compose service finctl knows (the Compose specification's list). Unknown keys
/// are errors: a typo like `healtcheck:` would otherwise be ignored silently.
const KNOWN_KEYS: &[&str] = &[
    "blkio_config",
    "build",
    "cap_add",
    "cap_drop",
    "cgroup_parent",
    "command",
    "configs",
    "container_name",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "credential_spec",
    "depends_on",
    "deploy",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "env_file",
    "environment",
    "expose",
    "extends",
    "external_links",
    "extra_hosts",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "isolation",
    "labels",
    "links",
    "logging",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "privileged",
    "profiles",
    "pull_policy",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "user",
    "userns_mode",
    "volumes",
    "volumes_from",
    "working_dir",
];

/// Checks one file's service keys (before merging, so the error names that file).
pub fn check_keys(
    name: &str,
    service: &Mapping,
    locate: impl Fn(&[Segment]) -> Location,
) -> Result<(), UserError> {
    for key in service.keys() {
        let key = key.as_str().unwrap_or_default();
        if key.starts_with("x-") || KNOWN_KEYS.contains(&key) {
            if key == "extends" {
                return Err(invalid(
                    &locate(&[
                        Segment::key("services"),
                        Segment::key(name),
                        Segment::key(key),
                    ]),
                    format_args!("services.{name}.extends is not supported"),
                    "copy the shared keys with a YAML anchor and `<<: *anchor` instead",
                ));
            }
            continue;
        }
        let suggestion = KNOWN_KEYS
            .iter()
            .map(|k| (strsim::jaro_winkler(key, k), *k))
            .filter(|(score, _)| *score > 0.85)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, k)| format!("did you mean `{k}`?"))
            .unwrap_or_else(|| "see the Compose specification's service keys".to_owned());
        return Err(invalid(
            &locate(&[
                Segment::key("services"),
                Segment::key(name),
                Segment::key(key),
            ]),
            format_args!("services.{name}: unknown key `{key}`"),
            suggestion,
        ));
    }
    Ok(())
}

/// Turns merged service mappings into [`Service`]s, naming the file and line of bad values.
pub struct ServiceReader<'a> {
    pub sources: &'a Sources,
    pub working_dir: &'a Path,
    pub vars: &'a Variables,
}

impl ServiceReader<'_> {
    fn path(name: &str, keys: &[&str]) -> Vec<Segment> {
        let mut path = vec![Segment::key("services"), Segment::key(name)];
        path.extend(keys.iter().map(|k| Segment::key(k)));
        path
    }

    fn at(&self, name: &str, keys: &[&str]) -> Location {
        self.sources.locate(&Self::path(name, keys))
    }

    fn item_at(&self, name: &str, key: &str, text: &str) -> Location {
        self.sources.locate_item(&Self::path(name, &[key]), text)
    }

    fn string(&self, name: &str, map: &Mapping, key: &str) -> Result<Option<String>, UserError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => scalar_string(value).map(Some).ok_or_else(|| {
                invalid(
                    &self.at(name, &[key]),
                    format_args!("services.{name}.{key} must be a string"),
                    "write a single value",
                )
            }),
        }
    }

    fn duration(
        &self,
        name: &str,
        value: Option<&Value>,
        keys: &[&str],
    ) -> Result<Option<Duration>, UserError> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let text = scalar_string(value).unwrap_or_default();
        parse_duration(&text).map(Some).ok_or_else(|| {
            invalid(
                &self.at(name, keys),
                format_args!(
                    "services.{name}.{}: invalid duration `{text}`",
                    keys.join(".")
                ),
                "write a duration with a unit: 500ms, 5s, 1m30s, 2h",
            )
        })
    }

    fn bytes(
        &self,
        name: &str,
        value: Option<&Value>,
        keys: &[&str],
    ) -> Result<Option<u64>, UserError> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let text = scalar_string(value).unwrap_or_default();
        parse_bytes(&text).map(Some).ok_or_else(|| {
            invalid(
                &self.at(name, keys),
                format_args!(
                    "services.{name}.{}: invalid memory size `{text}`",
                    keys.join(".")
                ),
                "write bytes with an optional unit b, k, m or g: 512m, 1g, 1536M",
            )
        })
    }

    fn words(
        &self,
        name: &str,
        map: &Mapping,
        key: &str,
    ) -> Result<Option<Vec<String>>, UserError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(line)) => shell_words::split(line).ok().map(Some).ok_or_else(|| {
                invalid(
                    &self.at(name, &[key]),
                    format_args!("services.{name}.{key}: unbalanced quotes in `{line}`"),
                    "close the quote, or write the command as a list",
                )
            }),
            Some(Value::Sequence(items)) => items
                .iter()
                .map(scalar_string)
                .collect::<Option<Vec<_>>>()
                .map(Some)
                .ok_or_else(|| {
                    invalid(
                        &self.at(name, &[key]),
                        format_args!("services.{name}.{key}: every item must be a string"),
                        "quote the items",
                    )
                }),
            Some(_) => Err(invalid(
                &self.at(name, &[key]),
                format_args!("services.{name}.{key} must be a string or a list"),
                "write `[\"prog\", \"arg\"]` or `prog arg`",
            )),
        }
    }

    pub fn read(&self, name: &str, map: &Mapping) -> Result<Service, UserError> {
        let image = self.string(name, map, "image")?;
        let build_context = match map.get("build") {
            None | Some(Value::Null) => None,
            Some(Value::String(context)) => Some(self.working_dir.join(context)),
            Some(Value::Mapping(build)) => build
                .get("context")
                .and_then(Value::as_str)
                .map(|c| self.working_dir.join(c))
                .or_else(|| Some(self.working_dir.to_path_buf())),
            Some(_) => {
                return Err(invalid(
                    &self.at(name, &["build"]),
                    format_args!("services.{name}.build must be a path or a mapping"),
                    "write `build: ./dir` or `build: {context: ./dir}`",
                ));
            }
        };
        if image.is_none() && build_context.is_none() {
            return Err(invalid(
                &self.at(name, &[]),
                format_args!("services.{name} has neither `image` nor `build`"),
                "give the service an image",
            ));
        }

        let environment = self.environment(name, map)?;
        let ports = self.ports(name, map)?;
        let volumes = self.volumes(name, map)?;
        let healthcheck = self.healthcheck(name, map)?;
        let depends_on = self.depends_on(name, map)?;
        let restart = self.restart(name, map)?;
        let resources = self.resources(name, map)?;

        let profiles = self.string_list(name, map, "profiles")?;
        let labels = key_values(map.get("labels").cloned().unwrap_or(Value::Null))
            .into_iter()
            .map(|(k, v)| {
                (
                    scalar_string(&k).unwrap_or_default(),
                    scalar_string(&v).unwrap_or_default(),
                )
            })
            .collect();
        let network_mode = self.string(name, map, "network_mode")?;
        let networks = match map.get("networks") {
            None | Some(Value::Null) if network_mode.is_none() => {
                BTreeMap::from([("default".to_owned(), Vec::new())])
            }
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Sequence(names)) => names
                .iter()
                .filter_map(scalar_string)
                .map(|n| (n, Vec::new()))
                .collect(),
            Some(Value::Mapping(entries)) => entries
                .iter()
                .map(|(k, v)| {
                    let aliases = v
                        .get("aliases")
                        .and_then(Value::as_sequence)
                        .map(|a| a.iter().filter_map(scalar_string).collect())
                        .unwrap_or_default();
                    (scalar_string(k).unwrap_or_default(), aliases)
                })
                .collect(),
            Some(_) => {
                return Err(invalid(
                    &self.at(name, &["networks"]),
                    format_args!("services.{name}.networks must be a list or a mapping"),
                    "list the networks by name",
                ));
            }
        };

        let stop_grace_period =
            self.duration(name, map.get("stop_grace_period"), &["stop_grace_period"])?;
        let init = map.get("init").and_then(Value::as_bool);
        let read_only = map
            .get("read_only")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let tmpfs = self.string_list(name, map, "tmpfs")?;
        let extra_hosts = match map.get("extra_hosts") {
            Some(Value::Mapping(hosts)) => hosts
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}:{}",
                        scalar_string(k).unwrap_or_default(),
                        scalar_string(v).unwrap_or_default()
                    )
                })
                .collect(),
            _ => self.string_list(name, map, "extra_hosts")?,
        };

        let mut service = Service {
            name: name.to_owned(),
            image,
            build_context,
            command: self.words(name, map, "command")?,
            entrypoint: self.words(name, map, "entrypoint")?,
            environment,
            ports,
            volumes,
            healthcheck,
            depends_on,
            profiles,
            user: self.string(name, map, "user")?,
            working_dir: self.string(name, map, "working_dir")?,
            restart,
            resources,
            labels,
            networks,
            network_mode,
            container_name: self.string(name, map, "container_name")?,
            hostname: self.string(name, map, "hostname")?,
            stop_signal: self.string(name, map, "stop_signal")?,
            stop_grace_period,
            init,
            read_only,
            tmpfs,
            extra_hosts,
            config_digest: String::new(),
        };
        service.config_digest = digest(map, &service.environment);
        Ok(service)
    }

    fn string_list(&self, name: &str, map: &Mapping, key: &str) -> Result<Vec<String>, UserError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Sequence(items)) => items
                .iter()
                .map(scalar_string)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    invalid(
                        &self.at(name, &[key]),
                        format_args!("services.{name}.{key}: every item must be a string"),
                        "write a list of strings",
                    )
                }),
            Some(value) => scalar_string(value).map(|s| vec![s]).ok_or_else(|| {
                invalid(
                    &self.at(name, &[key]),
                    format_args!("services.{name}.{key} must be a list"),
                    "write a list of strings",
                )
            }),
        }
    }

    fn environment(
        &self,
        name: &str,
        map: &Mapping,
    ) -> Result<BTreeMap<String, String>, UserError> {
        let mut environment = BTreeMap::new();
        let process: BTreeMap<String, String> = self
            .vars
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        for file in self.string_list(name, map, "env_file")? {
            let path = self.working_dir.join(&file);
            environment.extend(read_env_file(&path, &process).map_err(|err| {
                invalid(
                    &self.at(name, &["env_file"]),
                    format_args!("services.{name}.env_file: {}", err.message),
                    err.hint.unwrap_or_default(),
                )
            })?);
        }
        match map.get("environment") {
            None | Some(Value::Null | Value::Mapping(_) | Value::Sequence(_)) => {}
            Some(_) => {
                return Err(invalid(
                    &self.at(name, &["environment"]),
                    format_args!("services.{name}.environment must be a mapping or a list"),
                    "write `KEY: value` entries or `- KEY=value` items",
                ));
            }
        }
        for (key, value) in key_values(map.get("environment").cloned().unwrap_or(Value::Null)) {
            let key = scalar_string(&key).unwrap_or_default();
            if key.is_empty() || key.contains(char::is_whitespace) {
                return Err(invalid(
                    &self.at(name, &["environment"]),
                    format_args!("services.{name}.environment: invalid variable name `{key}`"),
                    "variable names have no spaces",
                ));
            }
            match value {
                Value::Null => {
                    if let Some(v) = self.vars.get(&key) {
                        environment.insert(key, v.to_owned());
                    }
                }
                Value::Bool(b) => {
                    environment.insert(key, b.to_string());
                }
                other => match scalar_string(&other) {
                    Some(v) => {
                        environment.insert(key, v);
                    }
                    None => {
                        return Err(invalid(
                            &self.at(name, &["environment", &key]),
                            format_args!(
                                "services.{name}.environment.{key} must be a single value"
                            ),
                            "quote the value",
                        ));
                    }
                },
            }
        }
        Ok(environment)
    }

    fn ports(&self, name: &str, map: &Mapping) -> Result<Vec<PortBinding>, UserError> {
        let mut ports: Vec<PortBinding> = Vec::new();
        let entries = match map.get("ports") {
            None | Some(Value::Null) => return Ok(ports),
            Some(Value::Sequence(entries)) => entries,
            Some(_) => {
                return Err(invalid(
                    &self.at(name, &["ports"]),
                    format_args!("services.{name}.ports must be a list"),
                    "write `- \"127.0.0.1:8080:80\"` items",
                ));
            }
        };
        for entry in entries {
            let text = scalar_string(entry).unwrap_or_default();
            let parsed = PortBinding::parse(entry).map_err(|reason| {
                invalid(
                    &self.item_at(name, "ports", &text),
                    format_args!("services.{name}.ports: invalid port `{text}`: {reason}"),
                    "write [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL], e.g. \"127.0.0.1:8080:80\"",
                )
            })?;
            for port in parsed {
                if !ports.contains(&port) {
                    ports.push(port);
                }
            }
        }
        Ok(ports)
    }

    fn volumes(&self, name: &str, map: &Mapping) -> Result<Vec<Mount>, UserError> {
        let entries = match map.get("volumes") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Sequence(entries)) => entries,
            Some(_) => {
                return Err(invalid(
                    &self.at(name, &["volumes"]),
                    format_args!("services.{name}.volumes must be a list"),
                    "write `- name:/path` items",
                ));
            }
        };
        let home = self.vars.get(finctl_env::HOME).map(Path::new);
        entries
            .iter()
            .map(|entry| {
                Mount::parse(entry, self.working_dir, home).map_err(|reason| {
                    let text = scalar_string(entry).unwrap_or_default();
                    invalid(
                        &self.item_at(name, "volumes", &text),
                        format_args!("services.{name}.volumes: invalid volume `{text}`: {reason}"),
                        "write SOURCE:TARGET[:ro] with an absolute TARGET",
                    )
                })
            })
            .collect()
    }

    fn healthcheck(&self, name: &str, map: &Mapping) -> Result<Option<Healthcheck>, UserError> {
        let health = match map.get("healthcheck") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Mapping(health)) => health,
            Some(_) => {
                return Err(invalid(
                    &self.at(name, &["healthcheck"]),
                    format_args!("services.{name}.healthcheck must be a mapping"),
                    "give it `test`, `interval`, `timeout`, `retries`, `start_period`",
                ));
            }
        };
        if health.get("disable").and_then(Value::as_bool) == Some(true) {
            return Ok(Some(Healthcheck::disabled()));
        }
        let bad_test = || {
            invalid(
                &self.at(name, &["healthcheck", "test"]),
                format_args!(
                    "services.{name}.healthcheck.test must start with CMD, CMD-SHELL or NONE"
                ),
                "write [\"CMD\", \"prog\", \"arg\"], [\"CMD-SHELL\", \"shell line\"] or a plain shell string",
            )
        };
        let test = match health.get("test") {
            None | Some(Value::Null) => None,
            Some(Value::String(line)) => Some(vec!["CMD-SHELL".to_owned(), line.clone()]),
            Some(Value::Sequence(items)) => {
                let items: Vec<String> = items
                    .iter()
                    .map(scalar_string)
                    .collect::<Option<_>>()
                    .ok_or_else(bad_test)?;
                match items.first().map(String::as_str) {
                    Some("CMD" | "CMD-SHELL") if items.len() > 1 => Some(items),
                    Some("NONE") => Some(items),
                    _ => return Err(bad_test()),
                }
            }
            Some(_) => return Err(bad_test()),
        };
        let retries = match health.get("retries") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .and_then(|r| u32::try_from(r).ok())
                    .ok_or_else(|| {
                        invalid(
                            &self.at(name, &["healthcheck", "retries"]),
                            format_args!(
                                "services.{name}.healthcheck.retries: `{}` is not a whole number",
                                scalar_string(value).unwrap_or_default()
                            ),
                            "write a count such as 3",
                        )
                    })?,
            ),
        };
        Ok(Some(Healthcheck {
            test,
            interval: self.duration(name, health.get("interval"), &["healthcheck", "interval"])?,
            timeout: self.duration(name, health.get("timeout"), &["healthcheck", "timeout"])?,
            start_period: self.duration(
                name,
                health.get("start_period"),
                &["healthcheck", "start_period"],
            )?,
            retries,
        }))
    }

    fn depends_on(
        &self,
        name: &str,
        map: &Mapping,
    ) -> Result<BTreeMap<String, Condition>, UserError> {
        let value = match map.get("depends_on") {
            None | Some(Value::Null) => return Ok(BTreeMap::new()),
            Some(value @ (Value::Sequence(_) | Value::Mapping(_))) => value.clone(),
            Some(_) => {
                return Err(invalid(
                    &self.at(name, &["depends_on"]),
                    format_args!("services.{name}.depends_on must be a list or a mapping"),
                    "list service names, or map them to `condition: service_healthy`",
                ));
            }
        };
        let mut result = BTreeMap::new();
        for (dependency, spec) in dependencies(value) {
            let dependency = scalar_string(&dependency).unwrap_or_default();
            let condition = match spec.get("condition").and_then(Value::as_str) {
                None | Some("service_started") => Condition::Started,
                Some("service_healthy") => Condition::Healthy,
                Some("service_completed_successfully") => Condition::CompletedSuccessfully,
                Some(other) => {
                    return Err(invalid(
                        &self.at(name, &["depends_on", &dependency, "condition"]),
                        format_args!(
                            "services.{name}.depends_on.{dependency}: unknown condition `{other}`"
                        ),
                        "use service_started, service_healthy or service_completed_successfully",
                    ));
                }
            };
            result.insert(dependency, condition);
        }
        Ok(result)
    }

    fn restart(&self, name: &str, map: &Mapping) -> Result<RestartPolicy, UserError> {
        let Some(text) = self.string(name, map, "restart")? else {
            return Ok(RestartPolicy::No);
        };
        Ok(match text.as_str() {
            "no" | "false" | "" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => RestartPolicy::OnFailure { max_retries: None },
            other => match other.strip_prefix("on-failure:").map(str::parse::<u32>) {
                Some(Ok(n)) => RestartPolicy::OnFailure {
                    max_retries: Some(n),
                },
                _ => {
                    return Err(invalid(
                        &self.at(name, &["restart"]),
                        format_args!("services.{name}.restart: unknown policy `{other}`"),
                        "use \"no\", always, unless-stopped, on-failure or on-failure:N",
                    ));
                }
            },
        })
    }

    fn resources(&self, name: &str, map: &Mapping) -> Result<Resources, UserError> {
        let limits = map
            .get("deploy")
            .and_then(|d| d.get("resources"))
            .and_then(|r| r.get("limits"));
        let reservations = map
            .get("deploy")
            .and_then(|d| d.get("resources"))
            .and_then(|r| r.get("reservations"));
        // As docker-compose 1.29: deploy.resources wins over the v2 keys.
        let (cpus_value, cpus_keys): (Option<&Value>, &[&str]) =
            match limits.and_then(|l| l.get("cpus")) {
                Some(v) => (Some(v), &["deploy", "resources", "limits", "cpus"]),
                None => (map.get("cpus"), &["cpus"]),
            };
        let cpus = match cpus_value.filter(|v| !v.is_null()) {
            None => None,
            Some(value) => {
                let text = scalar_string(value).unwrap_or_default();
                match text.trim().parse::<f64>() {
                    Ok(c) if c > 0.0 && c.is_finite() => Some(c),
                    _ => {
                        return Err(invalid(
                            &self.at(name, cpus_keys),
                            format_args!(
                                "services.{name}.{}: invalid CPU count `{text}`",
                                cpus_keys.join(".")
                            ),
                            "write a positive number of CPUs such as \"0.5\" or \"2\"",
                        ));
                    }
                }
            }
        };
        let memory_bytes = match limits.and_then(|l| l.get("memory")) {
            Some(v) => self.bytes(name, Some(v), &["deploy", "resources", "limits", "memory"])?,
            None => self.bytes(name, map.get("mem_limit"), &["mem_limit"])?,
        };
        let memory_reservation_bytes = match reservations.and_then(|l| l.get("memory")) {
            Some(v) => self.bytes(
                name,
                Some(v),
                &["deploy", "resources", "reservations", "memory"],
            )?,
            None => self.bytes(name, map.get("mem_reservation"), &["mem_reservation"])?,
        };
        Ok(Resources {
            cpus,
            memory_bytes,
            memory_reservation_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_command_lines_like_a_shell() {
        let split = |line: &str| shell_words::split(line).ok();
        assert_eq!(
            split(r#"sh -c 'echo "a b"' "x\"y" z\ w"#).unwrap(),
            ["sh", "-c", "echo \"a b\"", "x\"y", "z w"]
        );
        assert_eq!(split("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split("''").unwrap(), [""]);
        assert_eq!(split("echo 'open"), None);
    }
}
