//! Edits to the project's own files that keep everything else as it was: the workspace
//! manifest through `toml_edit` (comments, order and layout kept, as `cargo new` does), and
//! the YAML files (Compose, api-config, topics) as text, so that every comment and anchor
//! stays byte for byte. An added entry is text the template rendered, inserted after the last
//! entry of a top-level block; taking it out again restores the file exactly.

use std::ops::Range;

use toml_edit::{Array, DocumentMut, Item, Value};

/// Why an edit cannot be made; the caller adds the file's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditError(pub String);

impl std::error::Error for EditError {}

impl std::fmt::Display for EditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(message: impl Into<String>) -> EditError {
    EditError(message.into())
}

// ---- Cargo.toml `[workspace] members` ---------------------------------------------------

fn members_mut(doc: &mut DocumentMut) -> Result<&mut Array, EditError> {
    doc.get_mut("workspace")
        .and_then(|w| w.get_mut("members"))
        .and_then(Item::as_array_mut)
        .ok_or_else(|| err("it has no `[workspace] members = [...]` array"))
}

fn parse_manifest(text: &str) -> Result<DocumentMut, EditError> {
    text.parse::<DocumentMut>()
        .map_err(|e| err(format!("it is not valid TOML: {}", e.to_string().trim())))
}

/// The workspace's members, as written.
pub fn members(text: &str) -> Result<Vec<String>, EditError> {
    let mut doc = parse_manifest(text)?;
    Ok(members_mut(&mut doc)?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect())
}

/// Adds `member`: at its sorted place when the list is sorted, else at the end, formatted
/// like its neighbours (one per line stays one per line).
pub fn add_member(text: &str, member: &str) -> Result<String, EditError> {
    let mut doc = parse_manifest(text)?;
    let array = members_mut(&mut doc)?;
    let existing: Vec<String> = array
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    if existing.iter().any(|m| m == member) {
        return Ok(text.to_owned());
    }
    let sorted = existing.windows(2).all(|w| w[0] <= w[1]);
    let index = if sorted {
        existing.partition_point(|m| m.as_str() < member)
    } else {
        existing.len()
    };
    let mut value = Value::from(member);
    // The neighbour's layout: in a one-per-line list its prefix is "\n    ".
    let neighbour = array.get(index).or_else(|| array.iter().last());
    if let Some(prefix) = neighbour
        .and_then(|n| n.decor().prefix())
        .and_then(|p| p.as_str())
    {
        let prefix = prefix.to_owned();
        value.decor_mut().set_prefix(prefix);
    }
    if let Some(suffix) = neighbour
        .and_then(|n| n.decor().suffix())
        .and_then(|s| s.as_str())
    {
        let suffix = suffix.to_owned();
        value.decor_mut().set_suffix(suffix);
    }
    if array.is_empty() {
        array.push(member);
    } else {
        array.insert_formatted(index, value);
    }
    Ok(doc.to_string())
}

/// Takes `member` out; the rest is left as written.
pub fn remove_member(text: &str, member: &str) -> Result<String, EditError> {
    let mut doc = parse_manifest(text)?;
    let array = members_mut(&mut doc)?;
    let Some(index) = array.iter().position(|v| v.as_str() == Some(member)) else {
        return Ok(text.to_owned());
    };
    array.remove(index);
    Ok(doc.to_string())
}

// ---- YAML: top-level blocks and their entries ------------------------------------------

/// One line of a file: its byte range (newline included) and text (without it).
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    range: (usize, usize),
    text: &'a str,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for piece in text.split_inclusive('\n') {
        let end = start + piece.len();
        out.push(Line {
            range: (start, end),
            text: piece.trim_end_matches(['\n', '\r']),
        });
        start = end;
    }
    out
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Content: not blank, not a comment.
fn is_content(line: &str) -> bool {
    !is_blank(line) && !is_comment(line)
}

/// The lines of top-level `key:`'s block: from the line after its header to the next
/// top-level key (exclusive).
fn block(lines: &[Line<'_>], key: &str) -> Result<Range<usize>, EditError> {
    let header = lines
        .iter()
        .position(|l| {
            l.text
                .strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(':'))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
        })
        .ok_or_else(|| err(format!("it has no top-level `{key}:` block")))?;
    let end = lines[header + 1..]
        .iter()
        .position(|l| is_content(l.text) && indent(l.text) == 0 && !l.text.starts_with('-'))
        .map_or(lines.len(), |i| header + 1 + i);
    Ok(header + 1..end)
}

/// One entry of a block (a mapping key or a `- ` list item) with the comments and the blank
/// line that introduce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Byte range in the file, leading comments and blank line included.
    pub span: Range<usize>,
    /// The entry's own text, from its first line to its last content line.
    pub text: String,
    /// A mapping entry's key (`fx-audit` of `  fx-audit:`); `None` for a list item.
    pub key: Option<String>,
}

/// The entries of top-level `block_key:`, in order.
pub fn entries(text: &str, block_key: &str) -> Result<Vec<Entry>, EditError> {
    let lines = lines(text);
    let range = block(&lines, block_key)?;
    let Some(first) = range.clone().find(|&i| is_content(lines[i].text)) else {
        return Ok(Vec::new());
    };
    let item_indent = indent(lines[first].text);
    let starts: Vec<usize> = range
        .clone()
        .filter(|&i| is_content(lines[i].text) && indent(lines[i].text) == item_indent)
        .collect();
    let mut out = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let limit = starts.get(n + 1).copied().unwrap_or(range.end);
        let last = (start..limit)
            .rev()
            .find(|&i| is_content(lines[i].text) || indent(lines[i].text) > item_indent)
            .filter(|&i| !is_blank(lines[i].text))
            .unwrap_or(start);
        // Comments at the item's indentation right above it, and one blank line above those.
        let mut lead = start;
        while lead > range.start
            && is_comment(lines[lead - 1].text)
            && indent(lines[lead - 1].text) == item_indent
        {
            lead -= 1;
        }
        if lead > range.start && is_blank(lines[lead - 1].text) {
            lead -= 1;
        }
        let own = lines[start].text.trim_start();
        let key = (!own.starts_with('-'))
            .then(|| own.split(':').next().unwrap_or_default().trim().to_owned());
        out.push(Entry {
            span: lines[lead].range.0..lines[last].range.1,
            text: text[lines[start].range.0..lines[last].range.1].to_owned(),
            key,
        });
    }
    Ok(out)
}

/// Inserts `chunk` (whole lines, as the template rendered them) after the last entry of
/// top-level `block_key:`.
pub fn append_to_block(text: &str, block_key: &str, chunk: &str) -> Result<String, EditError> {
    let lines = lines(text);
    let range = block(&lines, block_key)?;
    if let Some(header) = range.start.checked_sub(1) {
        let rest = lines[header].text[block_key.len() + 1..].trim();
        if !rest.is_empty() && !rest.starts_with('#') {
            return Err(err(format!(
                "`{block_key}:` is written inline (`{rest}`); write it as a block, one entry per line"
            )));
        }
    }
    let last = range
        .clone()
        .rev()
        .find(|&i| {
            // Column-0 comments after the block introduce the next key.
            let top_comment = is_comment(lines[i].text) && indent(lines[i].text) == 0;
            !(is_blank(lines[i].text) || top_comment)
        })
        .unwrap_or(range.start - 1);
    let at = lines[last].range.1;
    let mut out = String::with_capacity(text.len() + chunk.len() + 1);
    out.push_str(&text[..at]);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(chunk);
    if !chunk.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&text[at..]);
    Ok(out)
}

/// Where `chunk` stands in `text` as [`append_to_block`] put it: whole lines.
pub fn find_chunk(text: &str, chunk: &str) -> Option<Range<usize>> {
    if chunk.is_empty() {
        return None;
    }
    let mut from = 0;
    while let Some(found) = text[from..].find(chunk) {
        let start = from + found;
        if start == 0 || text.as_bytes()[start - 1] == b'\n' {
            return Some(start..start + chunk.len());
        }
        from = start + 1;
    }
    None
}

/// `text` with `range` replaced by `with`.
pub fn splice(text: &str, range: Range<usize>, with: &str) -> String {
    format!("{}{with}{}", &text[..range.start], &text[range.end..])
}

/// The mapping keys a rendered snippet adds at its top indentation (`fx-audit`,
/// `fx-audit-worker` of a Compose snippet).
pub fn snippet_keys(snippet: &str) -> Vec<String> {
    let lines = lines(snippet);
    let Some(top) = lines
        .iter()
        .filter(|l| is_content(l.text))
        .map(|l| indent(l.text))
        .min()
    else {
        return Vec::new();
    };
    lines
        .iter()
        .filter(|l| {
            is_content(l.text) && indent(l.text) == top && !l.text.trim_start().starts_with('-')
        })
        .filter_map(|l| l.text.trim_start().split(':').next())
        .map(|k| k.trim().to_owned())
        .collect()
}

/// The value of `field:` on a list item's lines (`context` of an API, `name` of a topic),
/// quotes removed.
pub fn item_field(item: &str, field: &str) -> Option<String> {
    item.lines().find_map(|line| {
        let line = line.trim_start().trim_start_matches("- ").trim_start();
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let value = rest.split(" #").next().unwrap_or(rest).trim();
        Some(value.trim_matches(['"', '\'']).to_owned())
    })
}

/// The span covering the given entries when they stand next to each other in the file, one
/// region; `None` when any is missing.
pub fn region(entries: &[&Entry]) -> Option<Range<usize>> {
    let first = entries.first()?;
    let mut span = first.span.clone();
    for e in &entries[1..] {
        if e.span.start != span.end {
            return None;
        }
        span.end = e.span.end;
    }
    Some(span)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"[workspace]
resolver = "3"
members = [
    "cli",
    # the fleet
    "platform-services/common",
    "platform-services/wallet",
]

[workspace.dependencies]
serde = "1" # pinned once
"#;

    #[test]
    fn a_member_is_added_like_its_neighbours_and_removed_byte_for_byte() {
        let added = add_member(MANIFEST, "platform-services/fx-audit").unwrap();
        assert_eq!(
            added,
            MANIFEST.replace(
                "    \"platform-services/wallet\",\n",
                "    \"platform-services/fx-audit\",\n    \"platform-services/wallet\",\n"
            ),
            "sorted list: sorted place"
        );
        assert_eq!(
            remove_member(&added, "platform-services/fx-audit").unwrap(),
            MANIFEST
        );
        assert_eq!(
            add_member(&added, "platform-services/fx-audit").unwrap(),
            added
        );
    }

    #[test]
    fn an_unsorted_list_gets_the_member_at_its_end() {
        let unsorted = MANIFEST.replace("\"cli\"", "\"zz\"");
        let added = add_member(&unsorted, "platform-services/aa").unwrap();
        assert!(
            added.contains("    \"platform-services/wallet\",\n    \"platform-services/aa\",\n]"),
            "{added}"
        );
        assert_eq!(
            remove_member(&added, "platform-services/aa").unwrap(),
            unsorted
        );
    }

    #[test]
    fn a_manifest_without_members_is_an_error() {
        assert!(
            add_member("[package]\nname = \"x\"\n", "a")
                .unwrap_err()
                .0
                .contains("members")
        );
        assert!(
            add_member("[workspace\n", "a")
                .unwrap_err()
                .0
                .contains("not valid TOML")
        );
    }

    const COMPOSE: &str = "\
x-api: &api
  restart: unless-stopped

services:
  # the database
  db:
    image: postgres
    ports:
      - \"5432:5432\"

  app:
    <<: *api
    image: app
    # trailing comment inside app

# --- volumes
volumes:
  data:
";

    #[test]
    fn a_chunk_goes_after_the_last_entry_and_comes_out_exactly() {
        let chunk = "\n  # fx\n  fx:\n    <<: *api\n  fx-worker:\n    <<: *api\n";
        let added = append_to_block(COMPOSE, "services", chunk).unwrap();
        assert!(
            added.contains("    # trailing comment inside app\n\n  # fx\n  fx:\n"),
            "{added}"
        );
        assert!(added.contains("  fx-worker:\n    <<: *api\n\n# --- volumes\nvolumes:"));
        let found = find_chunk(&added, chunk).unwrap();
        assert_eq!(splice(&added, found, ""), COMPOSE);
    }

    #[test]
    fn entries_carry_their_comments_and_keys() {
        let e = entries(COMPOSE, "services").unwrap();
        let keys: Vec<_> = e.iter().map(|e| e.key.clone().unwrap()).collect();
        assert_eq!(keys, ["db", "app"]);
        assert_eq!(
            &COMPOSE[e[0].span.clone()],
            "  # the database\n  db:\n    image: postgres\n    ports:\n      - \"5432:5432\"\n"
        );
        assert_eq!(
            &COMPOSE[e[1].span.clone()],
            "\n  app:\n    <<: *api\n    image: app\n    # trailing comment inside app\n"
        );
        assert_eq!(
            region(&[&e[0], &e[1]]),
            Some(e[0].span.start..e[1].span.end)
        );
        assert_eq!(region(&[&e[1], &e[0]]), None);
    }

    #[test]
    fn list_items_are_entries_too() {
        let text = "roles: [a]\nrest_apis:\n  - name: \"A\"\n    context: \"/api/a\"\n  # b's\n  - name: B\n    context: /api/b # here\ngraphql_apis: []\n";
        let e = entries(text, "rest_apis").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].key, None);
        assert_eq!(item_field(&e[0].text, "context").as_deref(), Some("/api/a"));
        assert_eq!(item_field(&e[1].text, "context").as_deref(), Some("/api/b"));
        assert_eq!(
            &text[e[1].span.clone()],
            "  # b's\n  - name: B\n    context: /api/b # here\n"
        );
        let err = append_to_block(text, "graphql_apis", "  - x\n").unwrap_err();
        assert!(err.0.contains("inline"), "{}", err.0);
        assert!(
            append_to_block(text, "kafka", "x")
                .unwrap_err()
                .0
                .contains("no top-level `kafka:`")
        );
    }

    #[test]
    fn snippet_keys_are_the_top_level_keys() {
        assert_eq!(
            snippet_keys("\n  # c\n  fx:\n    a: 1\n  fx-worker:\n    b: [x]\n"),
            ["fx", "fx-worker"]
        );
    }
}
