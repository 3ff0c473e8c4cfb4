//! `finctl topics`: list and create Kafka topics with the broker container's own tool.
//!
//! The offline broker (tansu) and Redpanda ship different tools; which one runs is decided by
//! the running container's image, so the same command works with and without `--offline`.

use std::time::Duration;

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

use crate::cli::{GlobalArgs, TopicsArgs, TopicsCommand};
use crate::printer::Printer;
use finctl_engine::Engine;
use finctl_engine::run_probe;
use finctl_error::{ExitStatus, UserError};

/// The Compose service that runs the Kafka broker.
pub(super) const BROKER_SERVICE: &str = "redpanda";
/// How long the broker's tool may take to answer.
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize)]
pub(super) struct Topic {
    pub topic: String,
    pub partitions: u64,
}

/// The admin tool inside the broker's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tool {
    /// `tansu topic ...` (the offline stand-in).
    Tansu,
    /// `rpk topic ...` (Redpanda).
    Rpk,
}

impl Tool {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Tansu => "tansu",
            Self::Rpk => "redpanda",
        }
    }

    /// Creates a topic with its settings (`retention.ms`, `cleanup.policy`, ...).
    pub(super) fn create_with(
        self,
        name: &str,
        partitions: i32,
        replication: i32,
        configs: &[(&str, String)],
    ) -> Vec<String> {
        let partitions = partitions.to_string();
        let mut cmd = match self {
            Self::Tansu => words(&[
                "/usr/local/bin/tansu",
                "topic",
                "create",
                name,
                "--partitions",
                &partitions,
                "--broker",
                "tcp://127.0.0.1:9092",
            ]),
            Self::Rpk => words(&[
                "rpk",
                "topic",
                "create",
                name,
                "-p",
                &partitions,
                "-r",
                &replication.to_string(),
            ]),
        };
        for (key, value) in configs {
            cmd.push(match self {
                Self::Tansu => "--config".into(),
                Self::Rpk => "-c".into(),
            });
            cmd.push(format!("{key}={value}"));
        }
        cmd
    }

    /// `rpk topic describe -c`: the topic's settings. tansu's tool cannot read them.
    pub(super) fn describe_configs(self, name: &str) -> Option<Vec<String>> {
        match self {
            Self::Tansu => None,
            Self::Rpk => Some(words(&["rpk", "topic", "describe", name, "-c"])),
        }
    }

    /// KEY VALUE SOURCE rows of `rpk topic describe -c`.
    pub(super) fn parse_configs(output: &str) -> std::collections::BTreeMap<String, String> {
        output
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let key = fields.next()?;
                let value = fields.next()?;
                key.contains('.')
                    .then(|| (key.to_owned(), value.to_owned()))
            })
            .collect()
    }

    /// Adds partitions up to `total`; tansu has no CreatePartitions.
    pub(super) fn add_partitions(self, name: &str, delta: i32) -> Option<Vec<String>> {
        match self {
            Self::Tansu => None,
            Self::Rpk => Some(words(&[
                "rpk",
                "topic",
                "add-partitions",
                name,
                "--num",
                &delta.to_string(),
            ])),
        }
    }

    /// Sets settings; tansu has no AlterConfigs.
    pub(super) fn alter_configs(
        self,
        name: &str,
        configs: &[(&str, String)],
    ) -> Option<Vec<String>> {
        match self {
            Self::Tansu => None,
            Self::Rpk => {
                let mut cmd = words(&["rpk", "topic", "alter-config", name]);
                for (key, value) in configs {
                    cmd.push("--set".into());
                    cmd.push(format!("{key}={value}"));
                }
                Some(cmd)
            }
        }
    }

    pub(super) fn list(self) -> Vec<String> {
        match self {
            Self::Tansu => words(&[
                "/usr/local/bin/tansu",
                "topic",
                "list",
                "--broker",
                "tcp://127.0.0.1:9092",
            ]),
            Self::Rpk => words(&["rpk", "topic", "list"]),
        }
    }

    fn create(self, name: &str, partitions: u32) -> Vec<String> {
        let partitions = partitions.to_string();
        match self {
            Self::Tansu => words(&[
                "/usr/local/bin/tansu",
                "topic",
                "create",
                name,
                "--partitions",
                &partitions,
                "--broker",
                "tcp://127.0.0.1:9092",
            ]),
            Self::Rpk => words(&["rpk", "topic", "create", name, "-p", &partitions]),
        }
    }

    /// The topics in the tool's list output.
    pub(super) fn parse_list(self, output: &str) -> anyhow::Result<Vec<Topic>> {
        match self {
            Self::Tansu => {
                let json_start = output.find('[').unwrap_or(0);
                let raw: Vec<serde_json::Value> = serde_json::from_str(&output[json_start..])
                    .map_err(|err| {
                        anyhow::anyhow!("unexpected `tansu topic list` output: {err}")
                    })?;
                Ok(raw
                    .iter()
                    .filter(|t| t["is_internal"] != true)
                    .filter_map(|t| {
                        Some(Topic {
                            topic: t["name"].as_str()?.to_owned(),
                            partitions: t["partitions"].as_array().map_or(0, |p| p.len() as u64),
                        })
                    })
                    .collect())
            }
            // NAME  PARTITIONS  REPLICAS, after a header line.
            Self::Rpk => Ok(output
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let mut fields = line.split_whitespace();
                    Some(Topic {
                        topic: fields.next()?.to_owned(),
                        partitions: fields.next()?.parse().ok()?,
                    })
                })
                .collect()),
        }
    }
}

fn words(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|&p| p.to_owned()).collect()
}

pub async fn topics(
    global: &GlobalArgs,
    args: TopicsArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let stack = super::compose::load(global, &args.stack, printer)?;
    let service = stack.service(BROKER_SERVICE)?;
    let container = stack.container_name(service, 1);
    let engine = Engine::connect().await?;
    let tool = broker_tool(&engine, &container).await?;
    match args.action.unwrap_or(TopicsCommand::List) {
        TopicsCommand::List => {
            let output = run_tool(&engine, &container, &tool.list()).await?;
            let mut topics = tool.parse_list(&output)?;
            topics.sort_by(|a, b| a.topic.cmp(&b.topic));
            if printer.json() {
                printer.data(&serde_json::to_string_pretty(&topics)?);
            } else {
                let mut table = Table::new();
                table
                    .load_preset(UTF8_BORDERS_ONLY)
                    .set_header(["topic", "partitions"]);
                for t in &topics {
                    table.add_row([t.topic.clone(), t.partitions.to_string()]);
                }
                printer.data(&table.to_string());
            }
        }
        TopicsCommand::Create { name, partitions } => {
            run_tool(&engine, &container, &tool.create(&name, partitions)).await?;
            printer.status(&format!(
                "created topic {name} ({partitions} partition{})",
                if partitions == 1 { "" } else { "s" }
            ));
        }
    }
    Ok(ExitStatus::Success)
}

/// Redpanda's image has rpk; anything else is the offline tansu broker.
pub(super) async fn broker_tool(engine: &Engine, container: &str) -> anyhow::Result<Tool> {
    let inspect = match engine.api().inspect_container(container, None).await {
        Ok(inspect) => inspect,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {
            return Err(UserError::failure(
                format!("{BROKER_SERVICE} has no container"),
                format!("start it with `finctl up {BROKER_SERVICE}`"),
            )
            .into());
        }
        Err(err) => return Err(err.into()),
    };
    if inspect.state.as_ref().and_then(|s| s.running) != Some(true) {
        return Err(UserError::failure(
            format!("{container} is not running"),
            format!("start it with `finctl up {BROKER_SERVICE}`"),
        )
        .into());
    }
    let image = inspect.config.and_then(|c| c.image).unwrap_or_default();
    Ok(if image.contains("redpanda") {
        Tool::Rpk
    } else {
        Tool::Tansu
    })
}

/// Runs the tool in the broker's container; its output, or a failure carrying it.
pub(super) async fn run_tool(
    engine: &Engine,
    container: &str,
    cmd: &[String],
) -> anyhow::Result<String> {
    let (code, output) = run_probe(engine, container, cmd, TOOL_TIMEOUT).await?;
    if code == Some(0) {
        return Ok(output);
    }
    Err(UserError::failure(
        format!("`{}` failed in {container}: {output}", cmd.join(" ")),
        format!("check the broker: `finctl logs {BROKER_SERVICE}`"),
    )
    .into())
}
