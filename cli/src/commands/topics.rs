//! `finctl topics`: list and create Kafka topics, over the Kafka Admin API from this machine
//! (the same connection `finctl bootstrap topics` uses: see [`admin`]).

use std::sync::Arc;

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

use crate::cli::{GlobalArgs, TopicsArgs, TopicsCommand};
use crate::printer::Printer;
use finctl_bootstrap::kafka::Admin;
use finctl_compose::Stack;
use finctl_error::{ExitStatus, UserError};

/// The Compose service that runs the Kafka broker.
pub(super) const BROKER_SERVICE: &str = "redpanda";
/// The Kafka port the broker serves in its container.
const KAFKA_PORT: u16 = 9092;

#[derive(Debug, Serialize)]
struct Topic {
    topic: String,
    partitions: usize,
}

pub async fn topics(
    global: &GlobalArgs,
    args: TopicsArgs,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    let stack = super::compose::load(global, &args.stack, printer).await?;
    let admin = admin(&stack)?;
    match args.action.unwrap_or(TopicsCommand::List) {
        TopicsCommand::List => {
            let topics: Vec<Topic> = listed(&admin)
                .await?
                .into_iter()
                .map(|(topic, partitions)| Topic { topic, partitions })
                .collect();
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
            let count = i32::try_from(partitions).unwrap_or(i32::MAX);
            let topic = name.clone();
            blocking(&admin, move |a| a.create_topic(&topic, count, 1, &[]))
                .await?
                .map_err(|err| {
                    UserError::failure(
                        format!("cannot create topic {name}: {err}"),
                        format!("`finctl topics` lists what exists; `finctl logs {BROKER_SERVICE}` says more"),
                    )
                })?;
            printer.status(&format!(
                "created topic {name} ({partitions} partition{})",
                if partitions == 1 { "" } else { "s" }
            ));
        }
    }
    Ok(ExitStatus::Success)
}

/// An admin connection to the stack's broker from this machine (see [`broker_address`]).
pub(super) fn admin(stack: &Stack) -> anyhow::Result<Arc<Admin>> {
    let (bootstrap, rewrites) = broker_address(stack)?;
    Ok(Arc::new(Admin::connect(&bootstrap, &rewrites)?))
}

/// How this machine reaches the broker: bootstrap through its published port, and every
/// `service:port` a broker may advertise (`redpanda:9092`, or a container name) rewritten to
/// the address this machine reaches that port at.
pub(super) fn broker_address(stack: &Stack) -> anyhow::Result<(String, Vec<(String, String)>)> {
    let (host, port) = super::bootstrap::published(stack, BROKER_SERVICE, KAFKA_PORT)?;
    let bootstrap = format!("{host}:{port}");
    let mut rewrites = Vec::new();
    for (name, service) in &stack.services {
        let container = stack.container_name(service, 1);
        for binding in service.ports.iter().filter(|p| p.protocol == "tcp") {
            let Some(published) = binding.published else {
                continue;
            };
            let to = format!("{}:{published}", super::urls::client_host(binding));
            rewrites.push((format!("{name}:{}", binding.target), to.clone()));
            rewrites.push((format!("{container}:{}", binding.target), to));
        }
    }
    Ok((bootstrap, rewrites))
}

/// Runs a blocking admin call off the async runtime.
pub(super) async fn blocking<T: Send + 'static>(
    admin: &Arc<Admin>,
    call: impl FnOnce(&Admin) -> T + Send + 'static,
) -> anyhow::Result<T> {
    let admin = Arc::clone(admin);
    Ok(tokio::task::spawn_blocking(move || call(&admin)).await?)
}

/// The broker's topics and partition counts, or a failure saying the broker is unreachable.
pub(super) async fn listed(
    admin: &Arc<Admin>,
) -> anyhow::Result<std::collections::BTreeMap<String, usize>> {
    blocking(admin, Admin::topics).await?.map_err(|err| {
        UserError::failure(
            format!("cannot reach the Kafka broker ({BROKER_SERVICE}): {err:#}"),
            format!("`finctl up` starts it; `finctl logs {BROKER_SERVICE}` says why it is down"),
        )
        .into()
    })
}
