//! What generating, updating and removing a service change, file by file, computed from the
//! project's files and the rendered template before anything is written.

use std::path::{Path, PathBuf};

use finctl_error::UserError;

use crate::ServiceName;
use crate::answers::Recorded;
use crate::change::{Change, ChangeSet};
use crate::edit::{self, EditError, Entry};
use crate::merge::{Merged, merge3};
use crate::template::Rendered;

/// The project files a service is registered in, relative to the project root.
#[derive(Debug, Clone)]
pub struct Layout {
    pub manifest: PathBuf,
    pub compose: PathBuf,
    pub api_config: PathBuf,
    pub topics: PathBuf,
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            manifest: "Cargo.toml".into(),
            compose: "compose/docker-compose.yml".into(),
            api_config: "api-config.yaml".into(),
            topics: "compose/bootstrap/topics.yaml".into(),
        }
    }
}

/// The top-level blocks the entries go into.
const SERVICES: &str = "services";
const REST_APIS: &str = "rest_apis";
const TOPICS: &str = "topics";

/// The crate's folder, relative to the project.
pub fn crate_dir(name: &ServiceName) -> PathBuf {
    PathBuf::from("platform-services").join(name.as_str())
}

fn member(name: &ServiceName) -> String {
    format!("platform-services/{name}")
}

/// Reads a project file; a missing optional one (topics) is `None`.
fn read(root: &Path, path: &Path) -> Result<Option<String>, UserError> {
    match std::fs::read_to_string(root.join(path)) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(UserError::config(
            format!("cannot read {}: {err}", path.display()),
            "check the file's permissions",
        )),
    }
}

fn read_required(root: &Path, path: &Path) -> Result<String, UserError> {
    read(root, path)?.ok_or_else(|| {
        UserError::config(
            format!("{} is missing", path.display()),
            "finctl new-service edits the project's Cargo.toml, compose/docker-compose.yml and \
             api-config.yaml: run it in a finctl project (or pass --project-dir)",
        )
    })
}

fn edit_error(path: &Path, err: EditError) -> UserError {
    UserError::config(
        format!("cannot edit {}: {}", path.display(), err.0),
        "fix the file (or restore it with git), then run the command again; nothing was written",
    )
}

/// One registration of the service in a project file: which file, which block, and how
/// the service's entries are recognised there.
struct Slot<'a> {
    path: &'a Path,
    block: &'static str,
    kind: SlotKind,
}

enum SlotKind {
    /// Mapping entries under the block with these keys (Compose services).
    Keys(Vec<String>),
    /// The list item whose `field:` has this value.
    Item { field: &'static str, value: String },
}

impl Slot<'_> {
    fn compose<'a>(layout: &'a Layout, snippet: &str) -> Slot<'a> {
        Slot {
            path: &layout.compose,
            block: SERVICES,
            kind: SlotKind::Keys(edit::snippet_keys(snippet)),
        }
    }

    fn api<'a>(layout: &'a Layout, name: &ServiceName) -> Slot<'a> {
        Slot {
            path: &layout.api_config,
            block: REST_APIS,
            kind: SlotKind::Item {
                field: "context",
                value: name.context(),
            },
        }
    }

    fn topic<'a>(layout: &'a Layout, snippet: &str) -> Option<Slot<'a>> {
        let value = edit::item_field(snippet, "name")?;
        Some(Slot {
            path: &layout.topics,
            block: TOPICS,
            kind: SlotKind::Item {
                field: "name",
                value,
            },
        })
    }

    /// The service's entries in `text`, in file order.
    fn entries(&self, text: &str) -> Result<Vec<Entry>, UserError> {
        let all = edit::entries(text, self.block).map_err(|e| edit_error(self.path, e))?;
        Ok(all
            .into_iter()
            .filter(|e| match &self.kind {
                SlotKind::Keys(keys) => e.key.as_ref().is_some_and(|k| keys.contains(k)),
                SlotKind::Item { field, value } => {
                    e.key.is_none() && edit::item_field(&e.text, field).as_ref() == Some(value)
                }
            })
            .collect())
    }

    fn expected(&self) -> usize {
        match &self.kind {
            SlotKind::Keys(keys) => keys.len(),
            SlotKind::Item { .. } => 1,
        }
    }

    /// The one region all of the service's entries form, when they are all there and
    /// stand together.
    fn region(&self, text: &str) -> Result<Option<std::ops::Range<usize>>, UserError> {
        let entries = self.entries(text)?;
        if entries.len() != self.expected() {
            return Ok(None);
        }
        Ok(edit::region(&entries.iter().collect::<Vec<_>>()))
    }
}

/// Adds what is missing of the service: its answers, crate and smoke files that do not
/// exist yet, its workspace member, Compose entries, API and topic. On a project that has
/// all of it the plan is empty, so an interrupted run can simply be run again.
pub fn add(
    root: &Path,
    layout: &Layout,
    rendered: &Rendered,
    recorded: &Recorded,
) -> Result<ChangeSet, UserError> {
    let name = &recorded.answers.name;
    let mut set = ChangeSet::default();
    // The answers first: once anything exists, the service is known to be finctl's.
    let answers = Recorded::path(name);
    if read(root, &answers)?.is_none() {
        set.push(Change::Create {
            path: answers,
            content: recorded.to_toml(),
        });
    }
    for (path, content) in &rendered.files {
        if !root.join(path).exists() {
            set.push(Change::Create {
                path: path.clone(),
                content: content.clone(),
            });
        }
    }

    let manifest = read_required(root, &layout.manifest)?;
    let after =
        edit::add_member(&manifest, &member(name)).map_err(|e| edit_error(&layout.manifest, e))?;
    set.modify(&layout.manifest, manifest, after);

    let compose = read_required(root, &layout.compose)?;
    let slot = Slot::compose(layout, &rendered.compose);
    if slot.entries(&compose)?.is_empty() {
        let after = edit::append_to_block(&compose, SERVICES, &rendered.compose)
            .map_err(|e| edit_error(&layout.compose, e))?;
        set.modify(&layout.compose, compose, after);
    }

    let api_config = read_required(root, &layout.api_config)?;
    if Slot::api(layout, name).entries(&api_config)?.is_empty() {
        let after = edit::append_to_block(&api_config, REST_APIS, &rendered.api)
            .map_err(|e| edit_error(&layout.api_config, e))?;
        set.modify(&layout.api_config, api_config, after);
    }

    if let Some(topic) = &rendered.topic {
        let slot = Slot::topic(layout, topic).ok_or_else(|| {
            UserError::config(
                "the template's stack/topic.yaml.j2 renders an item without `name:`",
                "fix the template",
            )
        })?;
        let topics = read(root, &layout.topics)?.unwrap_or_else(|| "topics:\n".to_owned());
        if slot.entries(&topics)?.is_empty() {
            let after = edit::append_to_block(&topics, TOPICS, topic)
                .map_err(|e| edit_error(&layout.topics, e))?;
            match read(root, &layout.topics)? {
                Some(before) => set.modify(&layout.topics, before, after),
                None => set.push(Change::Create {
                    path: layout.topics.clone(),
                    content: after,
                }),
            }
        }
    }
    Ok(set)
}

/// Takes the service's entry out of `text`: the exact text one of `renders` inserted when
/// it is still there (the file then reads byte for byte as before), else the entries found
/// by key, with the comments that introduce them.
fn take_out(text: &str, slot: &Slot<'_>, renders: &[&str]) -> Result<String, UserError> {
    for chunk in renders {
        if let Some(range) = edit::find_chunk(text, chunk) {
            return Ok(edit::splice(text, range, ""));
        }
    }
    let mut out = text.to_owned();
    // Last first, so earlier ranges stay valid.
    for entry in slot.entries(text)?.iter().rev() {
        out = edit::splice(&out, entry.span.clone(), "");
    }
    Ok(out)
}

/// Everything of the service: the crate folder (all of it), its smoke cases, and its
/// entries in the project files. `renders` are the template's renderings of the service
/// (the version it was made from first), used to take entries out exactly as they went in.
pub fn remove(
    root: &Path,
    layout: &Layout,
    name: &ServiceName,
    renders: &[&Rendered],
) -> Result<ChangeSet, UserError> {
    let mut set = ChangeSet::default();
    let dir = crate_dir(name);
    if root.join(&dir).is_dir() {
        let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root.join(&dir))
            .sort_by_file_name()
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                e.path()
                    .strip_prefix(root)
                    .expect("below root")
                    .to_path_buf()
            })
            .collect();
        files.sort();
        for path in files {
            let before = std::fs::read(root.join(&path)).map_err(|err| {
                UserError::failure(
                    format!("cannot read {}: {err}", path.display()),
                    "check permissions",
                )
            })?;
            set.push(Change::Delete {
                path,
                before: String::from_utf8_lossy(&before).into_owned(),
            });
        }
    }
    let mut smoke: Vec<PathBuf> = renders
        .iter()
        .flat_map(|r| r.files.keys())
        .filter(|p| !p.starts_with(&dir))
        .cloned()
        .collect();
    smoke.sort();
    smoke.dedup();
    for path in smoke {
        if let Some(before) = read(root, &path)? {
            set.push(Change::Delete { path, before });
        }
    }

    let manifest = read_required(root, &layout.manifest)?;
    let after = edit::remove_member(&manifest, &member(name))
        .map_err(|e| edit_error(&layout.manifest, e))?;
    set.modify(&layout.manifest, manifest, after);

    let compose = read_required(root, &layout.compose)?;
    let first = renders
        .first()
        .map(|r| r.compose.as_str())
        .unwrap_or_default();
    let slot = Slot::compose(layout, first);
    let chunks: Vec<&str> = renders.iter().map(|r| r.compose.as_str()).collect();
    let after = take_out(&compose, &slot, &chunks)?;
    set.modify(&layout.compose, compose, after);

    let api_config = read_required(root, &layout.api_config)?;
    let chunks: Vec<&str> = renders.iter().map(|r| r.api.as_str()).collect();
    let after = take_out(&api_config, &Slot::api(layout, name), &chunks)?;
    set.modify(&layout.api_config, api_config, after);

    let topic_chunks: Vec<&str> = renders.iter().filter_map(|r| r.topic.as_deref()).collect();
    if let (Some(topic), Some(topics)) = (topic_chunks.first(), read(root, &layout.topics)?) {
        if let Some(slot) = Slot::topic(layout, topic) {
            let after = take_out(&topics, &slot, &topic_chunks)?;
            set.modify(&layout.topics, topics, after);
        }
    }
    Ok(set)
}

/// What `--update` did not do by itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateReport {
    /// Files now holding conflict markers.
    pub conflicts: Vec<PathBuf>,
    /// Things left alone, and why.
    pub notes: Vec<String>,
}

/// Brings the service from the template version `base` rendered to the one `theirs`
/// renders: each file merged three ways with what the project has now (ours).
pub fn update(
    root: &Path,
    layout: &Layout,
    base: &Rendered,
    theirs: &Rendered,
    recorded: &Recorded,
) -> Result<(ChangeSet, UpdateReport), UserError> {
    let mut set = ChangeSet::default();
    let mut report = UpdateReport::default();
    let mut paths: Vec<&PathBuf> = base.files.keys().chain(theirs.files.keys()).collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        let ours = read(root, path)?;
        match (base.files.get(path), theirs.files.get(path), ours) {
            (Some(b), Some(t), Some(o)) => {
                merged_into(&mut set, &mut report, path, b, o, t);
            }
            (None, Some(t), None) => set.push(Change::Create {
                path: path.clone(),
                content: t.clone(),
            }),
            (None, Some(t), Some(o)) => merged_into(&mut set, &mut report, path, "", o, t),
            (Some(b), None, Some(o)) => {
                if &o == b {
                    set.push(Change::Delete {
                        path: path.clone(),
                        before: o,
                    });
                } else {
                    report.notes.push(format!(
                        "{}: the template no longer has this file; kept, since it was changed here",
                        path.display()
                    ));
                }
            }
            (Some(b), Some(t), None) if b != t => report.notes.push(format!(
                "{}: deleted here, and the template changed it; not recreated",
                path.display()
            )),
            _ => {}
        }
    }

    let name = &recorded.answers.name;
    let compose = Slot::compose(layout, &base.compose);
    merge_entries(
        root,
        &mut set,
        &mut report,
        &compose,
        Some(&base.compose),
        Some(&theirs.compose),
    )?;
    let api = Slot::api(layout, name);
    merge_entries(
        root,
        &mut set,
        &mut report,
        &api,
        Some(&base.api),
        Some(&theirs.api),
    )?;
    let topic_snippet = base.topic.as_deref().or(theirs.topic.as_deref());
    if let Some(slot) = topic_snippet.and_then(|t| Slot::topic(layout, t)) {
        merge_entries(
            root,
            &mut set,
            &mut report,
            &slot,
            base.topic.as_deref(),
            theirs.topic.as_deref(),
        )?;
    }

    let answers = Recorded::path(name);
    let before = read_required(root, &answers)?;
    set.modify(answers, before, recorded.to_toml());
    Ok((set, report))
}

fn merged_into(
    set: &mut ChangeSet,
    report: &mut UpdateReport,
    path: &Path,
    base: &str,
    ours: String,
    theirs: &str,
) {
    let merged = merge3(base, &ours, theirs);
    if matches!(merged, Merged::Conflicts(_)) {
        report.conflicts.push(path.to_path_buf());
    }
    let after = merged.text().to_owned();
    set.modify(path, ours, after);
}

/// Merges the service's entries in one project file (a region of it) the same way.
fn merge_entries(
    root: &Path,
    set: &mut ChangeSet,
    report: &mut UpdateReport,
    slot: &Slot<'_>,
    base: Option<&str>,
    theirs: Option<&str>,
) -> Result<(), UserError> {
    if base == theirs {
        return Ok(());
    }
    let path = slot.path;
    // Earlier edits in this set (none today) would be the text to work on.
    let Some(text) = read(root, path)? else {
        report.notes.push(format!(
            "{}: missing; the template's change to it is not applied",
            path.display()
        ));
        return Ok(());
    };
    let after = match (base, theirs) {
        (None, Some(theirs)) => {
            edit::append_to_block(&text, slot.block, theirs).map_err(|e| edit_error(path, e))?
        }
        (Some(base), theirs) => {
            let range = edit::find_chunk(&text, base)
                .map(Some)
                .unwrap_or(slot.region(&text)?);
            let Some(range) = range else {
                report.notes.push(format!(
                    "{}: the service's entries were not found together, so the template's change \
                     to them is not applied; compare with templates/service/stack/",
                    path.display()
                ));
                return Ok(());
            };
            let ours = &text[range.clone()];
            let merged = merge3(base, ours, theirs.unwrap_or_default());
            if matches!(merged, Merged::Conflicts(_)) {
                report.conflicts.push(path.to_path_buf());
            }
            edit::splice(&text, range, merged.text())
        }
        (None, None) => return Ok(()),
    };
    set.modify(path, text, after);
    Ok(())
}
