//! The offline images as `docker images` shows them, and the Compose files as Debian's
//! `docker-compose` reads them.

use std::path::PathBuf;
use std::process::Command;

use finctl_compose::Project;
use finctl_engine::Engine;
use finctl_images::{BuildOptions, BuildOutcome, Builder, Catalog, LABEL_INPUT_HASH, Selection};
use finctl_progress::Options;

const OFFLINE: [&str; 5] = ["base", "postgres", "redis", "kafka", "idp"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test]
async fn offline_images_carry_their_input_hash_and_a_second_build_rebuilds_nothing()
-> anyhow::Result<()> {
    let project = Project::locate(Some(&root()))?;
    let catalog = Catalog::load(&project.image_recipes_dir(), &project.services_dir())?;
    let engine = Engine::connect().await?;
    let builder = Builder::new(
        engine.clone(),
        project.root().to_path_buf(),
        catalog,
        finctl_images::cache_dir(),
    );
    let selection = Selection {
        offline: true,
        names: OFFLINE.iter().map(|s| s.to_string()).collect(),
    };

    // Whatever state the machine is in, after one build everything is there...
    let first = builder
        .build(&selection, BuildOptions::default(), Options::plain())
        .await?;
    assert!(!first.failed(), "{:?}", first.images);
    // ...and a second build with nothing changed does nothing.
    let second = builder
        .build(&selection, BuildOptions::default(), Options::plain())
        .await?;
    for image in &second.images {
        assert_eq!(
            image.outcome,
            BuildOutcome::UpToDate,
            "{} was rebuilt",
            image.name
        );
    }

    assert_eq!(second.images[0].name, "base", "the parent is built first");
    for name in OFFLINE {
        let built = second
            .images
            .iter()
            .find(|i| i.name == name)
            .unwrap_or_else(|| panic!("{name} not built"));
        let inspect = engine.api().inspect_image(&built.tag).await?;
        let labels = inspect.config.and_then(|c| c.labels).unwrap_or_default();
        let hash = labels
            .get(LABEL_INPUT_HASH)
            .unwrap_or_else(|| panic!("{} has no input-hash label", built.tag));
        assert_eq!(hash.len(), 64, "a SHA-256 in hex");
        assert_eq!(
            Some(hash),
            built.input_hash.as_ref(),
            "label is the hash the build computed"
        );
    }
    Ok(())
}

fn compose_config(files: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("docker-compose");
    cmd.current_dir(root());
    for file in files {
        cmd.args(["-f", file]);
    }
    cmd.args(["config", "--quiet"])
        .output()
        .expect("docker-compose is installed (.ci/run installs it)")
}

#[test]
fn docker_compose_accepts_the_stack_with_and_without_the_offline_override() {
    for files in [
        &["compose/docker-compose.yml"][..],
        &["compose/docker-compose.yml", "compose/offline.yml"][..],
    ] {
        let output = compose_config(files);
        assert!(
            output.status.success(),
            "{files:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn docker_compose_resolves_the_offline_images_and_ports() {
    let output = Command::new("docker-compose")
        .current_dir(root())
        .args([
            "-f",
            "compose/docker-compose.yml",
            "-f",
            "compose/offline.yml",
            "config",
        ])
        .output()
        .expect("docker-compose");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for image in [
        "finctl/postgres:offline",
        "finctl/redis:offline",
        "finctl/kafka:offline",
        "finctl/idp:offline",
    ] {
        assert!(text.contains(image), "{image} not in the merged config");
    }
    for port in ["26257", "6379", "9092", "8080"] {
        assert!(
            text.contains(&format!("127.0.0.1:{port}:")),
            "port {port} not published on 127.0.0.1"
        );
    }
}
