//! The route table on disk: one JSON file on a volume, replaced atomically.
//!
//! A file rather than the stack's database: the gateway must start and route with only the
//! IdP up, and the table is a few kilobytes written only when APIs are published.

use std::io::Write;
use std::path::{Path, PathBuf};

use gateway_routes::RouteTable;

/// What was found at start.
pub enum Loaded {
    /// No file yet: nothing was ever published.
    Missing,
    Table(RouteTable),
    /// Unreadable or invalid; the file was moved to `set_aside` (`routes.json.corrupt`).
    Corrupt {
        reason: String,
        set_aside: PathBuf,
    },
}

pub struct Store {
    path: PathBuf,
}

impl Store {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn load(&self) -> Loaded {
        let raw = match std::fs::read(&self.path) {
            Ok(raw) => raw,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Missing,
            Err(e) => return self.set_aside(e.to_string()),
        };
        let table: RouteTable = match serde_json::from_slice(&raw) {
            Ok(t) => t,
            Err(e) => return self.set_aside(e.to_string()),
        };
        match crate::table::validate_table(&table) {
            Ok(()) => Loaded::Table(table),
            Err(e) => self.set_aside(e.to_string()),
        }
    }

    fn set_aside(&self, reason: String) -> Loaded {
        let mut aside = self.path.clone().into_os_string();
        aside.push(".corrupt");
        let aside = PathBuf::from(aside);
        if let Err(e) = std::fs::rename(&self.path, &aside) {
            tracing::error!(error = %e, path = %self.path.display(), "could not set the corrupt route table aside");
        }
        Loaded::Corrupt {
            reason,
            set_aside: aside,
        }
    }

    /// Writes `table` to a temporary file beside the target, fsyncs it, renames it over the
    /// target and fsyncs the directory: a crash leaves the old table or the new one.
    pub fn save(&self, table: &RouteTable) -> std::io::Result<()> {
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(format!(".tmp-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(table).expect("a table serialises"))?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        std::fs::File::open(dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corrupt_file_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("sub/routes.json"));
        assert!(matches!(store.load(), Loaded::Missing));
        store.save(&RouteTable::default()).unwrap();
        assert!(matches!(store.load(), Loaded::Table(t) if t.apis.is_empty()));
        std::fs::write(store.path(), b"{not json").unwrap();
        let Loaded::Corrupt { set_aside, .. } = store.load() else {
            panic!("corrupt file loaded")
        };
        assert!(set_aside.exists());
        assert!(!store.path().exists());
    }
}
