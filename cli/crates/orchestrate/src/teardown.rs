//! `down` and `nuke`: remove what the stack created, found by its Compose labels (so
//! containers of services since deleted from the file go too).

use anyhow::Context;
use bollard::query_parameters::{
    ListImagesOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveImageOptionsBuilder,
};
use futures_util::future::join_all;
use serde::Serialize;

use crate::labels;
use crate::up::remove_with_grace;
use finctl_engine as inventory;
use finctl_engine::Engine;

#[derive(Debug, Default, Serialize)]
pub struct Removed {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    pub images: Vec<String>,
}

/// Removes the project's containers and networks, and with `volumes` its named volumes.
pub async fn down(engine: &Engine, project: &str, volumes: bool) -> anyhow::Result<Removed> {
    let mut removed = Removed::default();
    let containers = inventory::project_containers(engine, project).await?;
    let results = join_all(containers.iter().map(|c| remove_with_grace(engine, c, 10))).await;
    for (container, result) in containers.iter().zip(results) {
        result?;
        removed.containers.push(container.name.clone());
    }
    let filter = labels::project_filter(project);
    let networks = engine
        .api()
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filter)
                .build(),
        ))
        .await
        .context("listing networks")?;
    for network in networks {
        let name = network.name.unwrap_or_default();
        engine
            .api()
            .remove_network(&name)
            .await
            .with_context(|| format!("removing network {name}"))?;
        removed.networks.push(name);
    }
    if volumes {
        let list = engine
            .api()
            .list_volumes(Some(
                ListVolumesOptionsBuilder::default()
                    .filters(&filter)
                    .build(),
            ))
            .await
            .context("listing volumes")?;
        for volume in list.volumes.unwrap_or_default() {
            engine
                .api()
                .remove_volume(
                    &volume.name,
                    None::<bollard::query_parameters::RemoveVolumeOptions>,
                )
                .await
                .with_context(|| format!("removing volume {}", volume.name))?;
            removed.volumes.push(volume.name);
        }
    }
    Ok(removed)
}

/// Removes the images finctl built (label `io.finctl.managed=true`) among `ids` (the stack's
/// and the project's images), never another project's or a pulled one.
pub async fn remove_managed_images(
    engine: &Engine,
    ids: &std::collections::BTreeSet<String>,
) -> anyhow::Result<Vec<String>> {
    let filter = std::collections::HashMap::from([(
        "label".to_owned(),
        vec![format!("{}=true", finctl_engine::labels::MANAGED)],
    )]);
    let images = engine
        .api()
        .list_images(Some(
            ListImagesOptionsBuilder::default().filters(&filter).build(),
        ))
        .await
        .context("listing images")?;
    let images: Vec<_> = images.into_iter().filter(|i| ids.contains(&i.id)).collect();
    let mut removed = Vec::new();
    // Children before parents: remove the most recently created first.
    let mut images = images;
    images.sort_by_key(|i| std::cmp::Reverse(i.created));
    for image in images {
        let name = image
            .repo_tags
            .first()
            .cloned()
            .unwrap_or_else(|| image.id.clone());
        engine
            .api()
            .remove_image(
                &image.id,
                Some(RemoveImageOptionsBuilder::default().force(true).build()),
                None,
            )
            .await
            .with_context(|| format!("removing image {name}"))?;
        removed.push(name);
    }
    Ok(removed)
}

/// Removes the containers of `services` in `project` (stopped with their grace period);
/// returns their names. Other services' containers are left alone.
pub async fn remove_services(
    engine: &Engine,
    project: &str,
    services: &[String],
) -> anyhow::Result<Vec<String>> {
    let containers: Vec<_> = inventory::project_containers(engine, project)
        .await?
        .into_iter()
        .filter(|c| services.contains(&c.service))
        .collect();
    let results = join_all(containers.iter().map(|c| remove_with_grace(engine, c, 10))).await;
    let mut removed = Vec::new();
    for (container, result) in containers.iter().zip(results) {
        result?;
        removed.push(container.name.clone());
    }
    Ok(removed)
}
