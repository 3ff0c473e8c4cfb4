//! Images a test makes for itself, and what the engine knows about a tag.

use std::process::Command;

/// The id of the image tagged `tag`, if there is one.
pub fn image_id(tag: &str) -> Option<String> {
    let output = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", tag])
        .output()
        .unwrap();
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Removes a test's own image tag when dropped, whatever the test's outcome (the image itself
/// goes only if no other tag holds it).
pub struct ImageGuard(pub String);

impl ImageGuard {
    /// `source` tagged again as `tag`, removed on drop.
    pub fn tag(source: &str, tag: &str) -> Self {
        let tagged = Command::new("docker")
            .args(["tag", source, tag])
            .output()
            .unwrap();
        assert!(
            tagged.status.success(),
            "docker tag {source} {tag}: {tagged:?}"
        );
        Self(tag.to_owned())
    }
}

impl Drop for ImageGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}
