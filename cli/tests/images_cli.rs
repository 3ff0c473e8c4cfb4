//! `finctl images` as a user meets it: the real binary, real recipe files, a real engine.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::prelude::*;
use predicates::prelude::*;

fn finctl() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_finctl"));
    cmd.env("NO_COLOR", "1").env_remove("FINCTL_PROJECT_DIR");
    cmd
}

fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A throwaway project with the given recipes (name -> image.toml) and a trivial Dockerfile each.
fn project_with(recipes: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("compose/images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(
        dir.path().join("compose/docker-compose.yml"),
        "services: {}\n",
    )
    .unwrap();
    for (name, toml) in recipes {
        let recipe = images.join(name);
        std::fs::create_dir_all(&recipe).unwrap();
        std::fs::write(recipe.join("image.toml"), toml).unwrap();
        std::fs::write(
            recipe.join("Dockerfile"),
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
        )
        .unwrap();
    }
    dir
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn help_shows_examples_and_exit_codes() {
    finctl()
        .args(["images", "build", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("finctl images build --offline"));
    finctl()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes:"));
}

#[test]
fn an_unknown_image_suggests_the_closest_name_and_exits_2() {
    let project = project_root();
    finctl()
        .args([
            "--project-dir",
            arg(&project),
            "images",
            "build",
            "postgress",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no image recipe named \"postgress\"",
        ))
        .stderr(predicate::str::contains("hint: did you mean `postgres`?"));
}

#[test]
fn a_bad_recipe_names_file_line_and_value_before_touching_docker() {
    let project = project_with(&[
        (
            "base",
            "tag = \"t/base:1\"\n[debootstrap]\nsuite = \"bookworm\"\n",
        ),
        (
            "redis",
            "tag = \"t/redis:1\"\nfrom = \"base\"\napt = [\"redis-server\"]\nfrm = \"base\"\n",
        ),
    ]);
    // An unreachable engine proves the recipe is rejected first: exit 2, not a Docker error.
    finctl()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["--project-dir", arg(project.path()), "images", "build"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "compose/images/redis/image.toml:4:",
        ))
        .stderr(predicate::str::contains("frm"));
}

#[test]
fn a_parent_that_does_not_exist_is_named() {
    let project = project_with(&[("redis", "tag = \"t/redis:1\"\nfrom = \"bsae\"\n")]);
    finctl()
        .args(["--project-dir", arg(project.path()), "images", "list"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "`from = \"bsae\"` names no recipe",
        ));
}

#[test]
fn an_unreachable_engine_gives_a_cause_and_a_hint() {
    let project = project_root();
    finctl()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["--project-dir", arg(&project), "images", "list"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("the Docker engine is not running"))
        .stderr(predicate::str::contains("hint: start Docker"));
}

#[test]
fn list_json_reports_every_recipe_with_its_state() {
    let project = project_root();
    let output = finctl()
        .args([
            "--project-dir",
            arg(&project),
            "--json",
            "images",
            "list",
            "--offline",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    for expected in ["base", "postgres", "redis", "kafka", "idp"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert_eq!(names[0], "base", "parents come first");
    for image in list.as_array().unwrap() {
        let state = image["state"].as_str().unwrap();
        assert!(
            ["up-to-date", "stale", "missing", "present"].contains(&state),
            "{state}"
        );
    }
}

/// A throwaway project whose `base` is the real one (same inputs, so the cached root
/// filesystem and the existing base image are reused) plus the given child recipes.
fn project_on_real_base(children: &[(&str, &str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("compose/images");
    std::fs::create_dir_all(images.join("base")).unwrap();
    std::fs::write(
        dir.path().join("compose/docker-compose.yml"),
        "services: {}\n",
    )
    .unwrap();
    std::fs::copy(
        project_root().join("compose/images/base/image.toml"),
        images.join("base/image.toml"),
    )
    .unwrap();
    for (name, toml, dockerfile) in children {
        std::fs::create_dir_all(images.join(name)).unwrap();
        std::fs::write(images.join(name).join("image.toml"), toml).unwrap();
        std::fs::write(images.join(name).join("Dockerfile"), dockerfile).unwrap();
    }
    dir
}

fn image_id(tag: &str) -> Option<String> {
    let output = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", tag])
        .output()
        .unwrap();
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn remove_image(tag: &str) {
    let _ = Command::new("docker")
        .args(["image", "rm", "-f", tag])
        .output();
}

#[test]
fn a_package_that_cannot_be_fetched_fails_with_apt_s_words() {
    let tag = format!("finctl-test/nopkg:{}", std::process::id());
    let toml = format!("tag = \"{tag}\"\nfrom = \"base\"\napt = [\"finctl-no-such-package\"]\n");
    let project = project_on_real_base(&[("nopkg", &toml, "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")]);
    finctl()
        .args([
            "--project-dir",
            arg(project.path()),
            "images",
            "build",
            "nopkg",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "downloading Debian packages finctl-no-such-package failed",
        ))
        .stderr(predicate::str::contains(
            "Unable to locate package finctl-no-such-package",
        ))
        .stderr(predicate::str::contains("hint:"));
    assert_eq!(image_id(&tag), None, "nothing tagged");
}

#[test]
fn a_failed_build_never_replaces_the_image_under_the_tag() {
    let tag = format!("finctl-test/keep:{}", std::process::id());
    let toml = format!("tag = \"{tag}\"\nfrom = \"base\"\n");
    let good = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo one > /version\n";
    let project = project_on_real_base(&[("keep", &toml, good)]);
    let dockerfile = project.path().join("compose/images/keep/Dockerfile");
    let build_keep = || {
        let mut cmd = finctl();
        cmd.args([
            "--project-dir",
            arg(project.path()),
            "images",
            "build",
            "keep",
        ]);
        cmd
    };
    build_keep().assert().success();
    let before = image_id(&tag).expect("first build tags the image");

    // A second build with unchanged inputs says so and rebuilds nothing.
    build_keep()
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "All images are up to date; nothing was rebuilt.",
        ));

    std::fs::write(
        &dockerfile,
        format!("{good}RUN echo two > /version && exit 3\n"),
    )
    .unwrap();
    build_keep()
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "docker build of {tag} failed"
        )))
        .stderr(
            predicate::str::contains("exit 3").or(predicate::str::contains("non-zero code: 3")),
        );
    assert_eq!(
        image_id(&tag).as_deref(),
        Some(before.as_str()),
        "the good image is still tagged"
    );

    // A fixed recipe builds again, and the replaced image does not linger untagged.
    std::fs::write(&dockerfile, format!("{good}RUN echo two > /version\n")).unwrap();
    build_keep().assert().success();
    let after = image_id(&tag).expect("rebuilt");
    assert_ne!(after, before);
    assert_eq!(image_id(&before), None, "the previous image was removed");
    remove_image(&tag);
}
