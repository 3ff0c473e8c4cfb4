//! What a person reads from a running stack, as insta snapshots under `cli/tests/snapshots/`:
//! `up`'s table and summary, the `ps`, `health` and `urls` tables, `doctor` on a healthy stack,
//! and the `images list` table, on throwaway projects of the offline images (finctl/base,
//! finctl/postgres, finctl/redis). Temp paths, project names, ports, durations, ids, sizes and
//! timestamps are redacted (`common::Redact`), keeping the tables aligned.
//!
//! Updating snapshots after an intended change of output:
//!   cargo insta test -p finctl --test tables --review    (if cargo-insta is installed)
//! or
//!   INSTA_UPDATE=always cargo test -p finctl --test tables && git diff cli/tests/snapshots
//! With `CI=true` a mismatch fails and nothing is written. Leave no `*.snap.new` behind.

mod common;
use common::{ImageGuard, Project, Redact, stacks::DB_BOOTSTRAP_CACHE as STACK};

/// `up`'s stderr from its verdict on: the progress lines before it come in whatever order the
/// services happen to reach each step.
fn summary(stderr: &str) -> &str {
    let start = ["Ready in ", "Nothing to change"]
        .iter()
        .filter_map(|verdict| stderr.find(verdict))
        .min()
        .unwrap_or_else(|| panic!("no verdict in up's stderr:\n{stderr}"));
    &stderr[start..]
}

#[test]
fn up_ps_health_urls_and_doctor_of_a_healthy_stack() {
    let project = Project::new("finctl-tables", STACK);
    let redact = Redact::project(&project);

    let up = project
        .finctl()
        .args(["up", "--timeout", "2m"])
        .assert_status(0);
    insta::assert_snapshot!("up_table", redact.apply(up.stdout()));
    insta::assert_snapshot!("up_summary", redact.apply(summary(up.stderr())));

    let ps = project.finctl().arg("ps").assert_status(0);
    insta::assert_snapshot!("ps_table", redact.apply(ps.stdout()));

    let health = project.finctl().arg("health").assert_status(0);
    insta::assert_snapshot!("health_table", redact.apply(health.stdout()));

    let urls = project.finctl().arg("urls").assert_status(0);
    insta::assert_snapshot!("urls_table", redact.apply(urls.stdout()));

    let doctor = project.finctl().arg("doctor").assert_status(0);
    let machine = redact
        .clone()
        .pattern(r"engine \S+, API \S+", "engine [VERSION], API [VERSION]");
    insta::assert_snapshot!("doctor", machine.apply(doctor.stdout()));

    // A second `up` changes nothing and says so.
    let again = project.finctl().arg("up").assert_status(0);
    insta::assert_snapshot!("up_again_summary", redact.apply(summary(again.stderr())));
}

#[test]
fn images_list_table() {
    let project = Project::new("finctl-tables", "services: {}\n");
    let name = project.name.clone();
    // A stale image: the real base under this project's tag, built from other inputs than
    // this project's recipe for it.
    let stale = format!("finctl-snap/stale:{name}");
    let _guard = ImageGuard::tag("finctl/base:bookworm", &stale);
    let debootstrap = "\n[debootstrap]\nsuite = \"bookworm\"\n";
    let project = project
        .file(
            "compose/images/base/image.toml",
            &format!("tag = \"finctl-snap/base:{name}\"\n{debootstrap}"),
        )
        .file(
            "compose/images/app/image.toml",
            &format!(
                "tag = \"finctl-snap/app:{name}\"\nfrom = \"base\"\napt = [\"redis-server\"]\n"
            ),
        )
        .file(
            "compose/images/stale/image.toml",
            &format!("tag = \"{stale}\"\n{debootstrap}"),
        );
    for recipe in ["base", "app", "stale"] {
        std::fs::write(
            project
                .dir()
                .join(format!("compose/images/{recipe}/Dockerfile")),
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
        )
        .unwrap();
    }

    let list = project.finctl().args(["images", "list"]).assert_status(0);
    insta::assert_snapshot!(
        "images_list_table",
        Redact::project(&project).apply(list.stdout())
    );
}
