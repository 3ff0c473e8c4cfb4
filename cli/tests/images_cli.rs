//! `finctl images` as a user meets it: the real binary, real recipe files, a real engine.

use std::path::PathBuf;

mod common;
use common::{ImageGuard, Project, Test, image_id};

fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A throwaway project with the given recipes (name -> image.toml) and a trivial Dockerfile each.
fn project_with(recipes: &[(&str, &str)]) -> Project {
    recipes.iter().fold(
        Project::new("finctl-images", "services: {}\n"),
        |project, (name, toml)| {
            project
                .file(&format!("compose/images/{name}/image.toml"), toml)
                .file(
                    &format!("compose/images/{name}/Dockerfile"),
                    "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
                )
        },
    )
}

#[test]
fn help_shows_examples_and_exit_codes() {
    Test::new()
        .args(["images", "build", "--help"])
        .assert_status(0)
        .stdout_contains("finctl images build --offline");
    Test::new()
        .arg("--help")
        .assert_status(0)
        .stdout_contains("Exit codes:");
}

#[test]
fn an_unknown_image_suggests_the_closest_name_and_exits_2() {
    Test::new()
        .project_dir(project_root())
        .args(["images", "build", "postgress"])
        .assert_status(2)
        .stderr_contains("no image recipe named \"postgress\"")
        .stderr_contains("hint: did you mean `postgres`?");
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
    project
        .finctl()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["images", "build"])
        .assert_status(2)
        .stderr_contains("compose/images/redis/image.toml:4:")
        .stderr_contains("frm");
}

#[test]
fn a_parent_that_does_not_exist_is_named() {
    let project = project_with(&[("redis", "tag = \"t/redis:1\"\nfrom = \"bsae\"\n")]);
    project
        .finctl()
        .args(["images", "list"])
        .assert_status(2)
        .stderr_contains("`from = \"bsae\"` names no recipe");
}

#[test]
fn an_unreachable_engine_gives_a_cause_and_a_hint() {
    Test::new()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .project_dir(project_root())
        .args(["images", "list"])
        .assert_status(1)
        .stderr_contains("the Docker engine is not running")
        .stderr_contains("hint: start Docker");
}

#[test]
fn list_json_reports_every_recipe_with_its_state() {
    let list = Test::new()
        .project_dir(project_root())
        .args(["--json", "images", "list", "--offline"])
        .assert_status(0)
        .json();
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
fn project_on_real_base(children: &[(&str, &str, &str)]) -> Project {
    let base =
        std::fs::read_to_string(project_root().join("compose/images/base/image.toml")).unwrap();
    children.iter().fold(
        Project::new("finctl-images", "services: {}\n")
            .file("compose/images/base/image.toml", &base),
        |project, (name, toml, dockerfile)| {
            project
                .file(&format!("compose/images/{name}/image.toml"), toml)
                .file(&format!("compose/images/{name}/Dockerfile"), dockerfile)
        },
    )
}

#[test]
fn a_package_that_cannot_be_fetched_fails_with_apt_s_words() {
    let tag = format!("finctl-test/nopkg:{}", std::process::id());
    let toml = format!("tag = \"{tag}\"\nfrom = \"base\"\napt = [\"finctl-no-such-package\"]\n");
    let project = project_on_real_base(&[("nopkg", &toml, "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")]);
    project
        .finctl()
        .args(["images", "build", "nopkg"])
        .assert_status(1)
        .stderr_contains("downloading Debian packages finctl-no-such-package failed")
        .stderr_contains("Unable to locate package finctl-no-such-package")
        .stderr_contains("hint:");
    assert_eq!(image_id(&tag), None, "nothing tagged");
}

#[test]
fn a_failed_build_never_replaces_the_image_under_the_tag() {
    let tag = format!("finctl-test/keep:{}", std::process::id());
    let _guard = ImageGuard(tag.clone());
    let toml = format!("tag = \"{tag}\"\nfrom = \"base\"\n");
    let good = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo one > /version\n";
    let project = project_on_real_base(&[("keep", &toml, good)]);
    let dockerfile = project.dir().join("compose/images/keep/Dockerfile");
    let build_keep = || project.finctl().args(["images", "build", "keep"]);
    build_keep().assert_status(0);
    let before = image_id(&tag).expect("first build tags the image");

    // A second build with unchanged inputs says so and rebuilds nothing.
    build_keep()
        .assert_status(0)
        .stderr_contains("All images are up to date; nothing was rebuilt.");

    std::fs::write(
        &dockerfile,
        format!("{good}RUN echo two > /version && exit 3\n"),
    )
    .unwrap();
    let failed = build_keep()
        .assert_status(1)
        .stderr_contains(&format!("docker build of {tag} failed"));
    if !(failed.stderr().contains("exit 3") || failed.stderr().contains("non-zero code: 3")) {
        failed.fail("the step's exit code 3 is not named");
    }
    assert_eq!(
        image_id(&tag).as_deref(),
        Some(before.as_str()),
        "the good image is still tagged"
    );

    // A fixed recipe builds again, and the replaced image does not linger untagged.
    std::fs::write(&dockerfile, format!("{good}RUN echo two > /version\n")).unwrap();
    build_keep().assert_status(0);
    let after = image_id(&tag).expect("rebuilt");
    assert_ne!(after, before);
    assert_eq!(image_id(&before), None, "the previous image was removed");
}
