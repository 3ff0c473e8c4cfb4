//! A build context tarball, assembled in memory: the recipe folder, fetched inputs, binaries.

use std::path::Path;

use finctl_error::UserError;

/// A build context tarball, assembled in memory.
pub(crate) struct Context {
    tar: tar::Builder<Vec<u8>>,
}

impl Context {
    pub(crate) fn new() -> Self {
        let mut tar = tar::Builder::new(Vec::new());
        tar.follow_symlinks(false);
        tar.mode(tar::HeaderMode::Deterministic);
        Self { tar }
    }

    pub(crate) fn folder(&mut self, at: &str, dir: &Path) -> Result<(), UserError> {
        let result = if at.is_empty() {
            std::fs::read_dir(dir).and_then(|entries| {
                for entry in entries {
                    let entry = entry?;
                    let name = entry.file_name();
                    if entry.file_type()?.is_dir() {
                        self.tar.append_dir_all(&name, entry.path())?;
                    } else {
                        self.tar.append_path_with_name(entry.path(), &name)?;
                    }
                }
                Ok(())
            })
        } else {
            self.tar.append_dir_all(at, dir)
        };
        result.map_err(|err| context_error(dir, err))
    }

    /// Only the .deb files of a download folder.
    pub(crate) fn debs(&mut self, at: &str, dir: &Path) -> Result<(), UserError> {
        let entries = std::fs::read_dir(dir).map_err(|err| context_error(dir, err))?;
        let mut count = 0;
        for entry in entries.filter_map(Result::ok) {
            if entry.path().extension().is_some_and(|ext| ext == "deb") {
                self.tar
                    .append_path_with_name(
                        entry.path(),
                        format!("{at}/{}", entry.file_name().to_string_lossy()),
                    )
                    .map_err(|err| context_error(dir, err))?;
                count += 1;
            }
        }
        if count == 0 {
            // An empty folder still satisfies `COPY debs/`; nothing was missing from the base.
            self.bytes(&format!("{at}/.keep"), b"", 0o644)?;
        }
        Ok(())
    }

    pub(crate) fn file(&mut self, name: &str, path: &Path) -> Result<(), UserError> {
        self.tar
            .append_path_with_name(path, name)
            .map_err(|err| context_error(path, err))
    }

    pub(crate) fn file_mode(
        &mut self,
        name: &str,
        path: &Path,
        mode: u32,
    ) -> Result<(), UserError> {
        let mut file = std::fs::File::open(path).map_err(|err| context_error(path, err))?;
        let len = file
            .metadata()
            .map_err(|err| context_error(path, err))?
            .len();
        let mut header = tar::Header::new_gnu();
        header.set_size(len);
        header.set_mode(mode);
        header.set_cksum();
        self.tar
            .append_data(&mut header, name, &mut file)
            .map_err(|err| context_error(path, err))
    }

    pub(crate) fn bytes(&mut self, name: &str, data: &[u8], mode: u32) -> Result<(), UserError> {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_cksum();
        self.tar
            .append_data(&mut header, name, data)
            .map_err(|err| context_error(Path::new(name), err))
    }

    pub(crate) fn finish(self) -> Result<Vec<u8>, UserError> {
        self.tar
            .into_inner()
            .map_err(|err| context_error(Path::new("build context"), err))
    }
}

fn context_error(path: &Path, err: std::io::Error) -> UserError {
    UserError::failure(
        format!("cannot add {} to the build context: {err}", path.display()),
        "check free disk space and file permissions",
    )
}
