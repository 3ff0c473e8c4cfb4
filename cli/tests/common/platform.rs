//! The project's own offline platform (the README's first command), for the tests that check
//! it end to end: a guard that takes it down again if the test brought it up, and `docker`.

use std::path::PathBuf;

use super::Test;

/// finctl on this repository (not a throwaway project).
pub fn repo_finctl() -> Test {
    Test::new().project_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
}

/// Takes the stack down again if this test brought it up (also when an assertion fails).
pub struct Teardown {
    pub active: bool,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if self.active {
            let _ = repo_finctl()
                .args(["down", "--offline", "--volumes"])
                .command()
                .output();
        }
    }
}

impl Teardown {
    /// The offline platform up (`up --offline --build`, a no-op when it already runs), and a
    /// guard that takes it down again only if this test brought it up.
    pub fn up_offline() -> Self {
        let already_up = repo_finctl().args(["health", "--offline"]).run().code() == Some(0);
        let guard = Self {
            active: !already_up,
        };
        repo_finctl()
            .args(["up", "--offline", "--build", "--timeout", "5m"])
            .run()
            .status(0);
        guard
    }
}

/// Runs the docker CLI; a failure fails the test with its stderr.
pub fn docker(args: &[&str]) {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
