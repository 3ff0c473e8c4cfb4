//! Where each key of a block-style YAML document is written, so errors found after parsing
//! (serde_yaml keeps no positions) can still name a line.
//!
//! A line scanner, not a parser: it understands block mappings, block sequences (`- item`,
//! `- key: value`), quoted keys and block scalars (`|`, `>`), which is what Compose files are
//! made of. Anything it does not follow (flow collections, values that came through an anchor)
//! is located at its nearest written ancestor instead.

use std::collections::HashMap;

/// One step of a path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Key(String),
    Index(usize),
}

impl Segment {
    pub fn key(key: &str) -> Self {
        Self::Key(key.to_owned())
    }
}

/// Formats a path the way users write it: `services.redis.ports[0]`.
pub fn display_path(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// Key paths and sequence items of one file, with their 1-based line numbers.
#[derive(Debug, Default, Clone)]
pub struct LineIndex {
    paths: HashMap<Vec<Segment>, usize>,
    /// (parent path, item text without quotes, line)
    items: Vec<(Vec<Segment>, String, usize)>,
}

struct Frame {
    indent: usize,
    path: Vec<Segment>,
    is_item: bool,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut index = Self::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut next_item: HashMap<Vec<Segment>, usize> = HashMap::new();
        // Lines indented deeper than this belong to a block scalar.
        let mut block_scalar: Option<usize> = None;

        for (number, raw) in text.lines().enumerate() {
            let line = number + 1;
            let indent = raw.len() - raw.trim_start_matches(' ').len();
            let content = raw[indent..].trim_end();
            if let Some(block_indent) = block_scalar {
                if content.is_empty() || indent > block_indent {
                    continue;
                }
                block_scalar = None;
            }
            if content.is_empty() || content.starts_with('#') || content == "---" {
                continue;
            }

            let mut indent = indent;
            let mut content = content;
            // Sequence items: "- x", possibly "- key: value" opening a mapping.
            while let Some(rest) =
                content
                    .strip_prefix("- ")
                    .or(if content == "-" { Some("") } else { None })
            {
                while stack
                    .last()
                    .is_some_and(|f| f.indent > indent || (f.indent == indent && f.is_item))
                {
                    stack.pop();
                }
                let parent = stack.last().map(|f| f.path.clone()).unwrap_or_default();
                let counter = next_item.entry(parent.clone()).or_insert(0);
                let mut path = parent.clone();
                path.push(Segment::Index(*counter));
                *counter += 1;
                index.paths.entry(path.clone()).or_insert(line);
                let item_text = rest.trim_start();
                if split_key(item_text).is_none() {
                    index
                        .items
                        .push((parent, scalar_text(item_text).to_owned(), line));
                    if is_block_scalar_start(item_text) {
                        block_scalar = Some(indent);
                    }
                }
                stack.push(Frame {
                    indent,
                    path,
                    is_item: true,
                });
                let offset = content.len() - item_text.len();
                indent += offset;
                content = item_text;
            }
            if content.is_empty() {
                continue;
            }

            let Some((key, value)) = split_key(content) else {
                continue;
            };
            while stack.last().is_some_and(|f| f.indent >= indent) {
                stack.pop();
            }
            let mut path = stack.last().map(|f| f.path.clone()).unwrap_or_default();
            path.push(Segment::Key(key));
            index.paths.entry(path.clone()).or_insert(line);
            if is_block_scalar_start(value) {
                block_scalar = Some(indent);
            }
            stack.push(Frame {
                indent,
                path,
                is_item: false,
            });
        }
        index
    }

    /// The line where `path` is written, if it is.
    pub fn line_of(&self, path: &[Segment]) -> Option<usize> {
        self.paths.get(path).copied()
    }

    /// The line of `path`, else of its nearest written ancestor; with the length of the
    /// prefix that was found (0 when nothing was).
    pub fn nearest(&self, path: &[Segment]) -> (usize, Option<usize>) {
        (0..=path.len())
            .rev()
            .find_map(|len| self.line_of(&path[..len]).map(|line| (len, Some(line))))
            .unwrap_or((0, None))
    }

    /// Every scalar item under `parent`, with its line.
    pub fn items_under(&self, parent: &[Segment]) -> Vec<(String, usize)> {
        self.items
            .iter()
            .filter(|(p, _, _)| p == parent)
            .map(|(_, t, line)| (t.clone(), *line))
            .collect()
    }

    /// The line of a sequence item under `parent` whose text is `text`.
    pub fn item_line(&self, parent: &[Segment], text: &str) -> Option<usize> {
        self.items
            .iter()
            .find(|(p, t, _)| p == parent && t == text)
            .map(|(_, _, line)| *line)
    }
}

fn is_block_scalar_start(value: &str) -> bool {
    let value = value.trim_start();
    let value = value
        .strip_prefix('&')
        .map_or(value, |rest| rest.split_once(' ').map_or("", |(_, v)| v));
    value.starts_with('|') || value.starts_with('>')
}

/// `key: value` or `key:` (plain or quoted key); `None` for anything else.
fn split_key(content: &str) -> Option<(String, &str)> {
    if content.starts_with('{') || content.starts_with('[') {
        return None;
    }
    if let Some(quote) = content.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let rest = &content[1..];
        let end = rest.find(quote)?;
        let after = &rest[end + 1..];
        let value = after.strip_prefix(':')?;
        if !(value.is_empty() || value.starts_with(' ')) {
            return None;
        }
        return Some((rest[..end].to_owned(), value.trim()));
    }
    let (key, value) = match content.find(": ") {
        Some(at) => (&content[..at], &content[at + 2..]),
        None => (content.strip_suffix(':')?, ""),
    };
    if key.is_empty() || key.contains(" #") {
        return None;
    }
    Some((key.trim_end().to_owned(), value.trim()))
}

/// An item's text as the parsed value reads: without quotes or a trailing comment.
fn scalar_text(item: &str) -> &str {
    let item = item.trim();
    for quote in ['"', '\''] {
        if let Some(rest) = item.strip_prefix(quote) {
            return rest.rfind(quote).map_or(rest, |end| &rest[..end]);
        }
    }
    item.split(" #").next().unwrap_or(item).trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(parts: &[&str]) -> Vec<Segment> {
        parts
            .iter()
            .map(|p| match p.parse::<usize>() {
                Ok(i) => Segment::Index(i),
                Err(_) => Segment::key(p),
            })
            .collect()
    }

    const DOC: &str = "\
x-anchor: &a
  cpus: \"1\"
services:
  # comment
  redis:
    image: redis:7
    command: >-
      redis-server
      --port: 6379
    ports:
      - \"127.0.0.1:6379:6379\"
      - 8000 # api
    volumes:
    - type: tmpfs
      target: /tmp
    \"quoted key\": 1
  web:
    depends_on:
      - redis
";

    #[test]
    fn finds_keys_items_and_skips_block_scalars() {
        let index = LineIndex::new(DOC);
        assert_eq!(
            index.line_of(&path(&["services", "redis", "image"])),
            Some(6)
        );
        assert_eq!(
            index.line_of(&path(&["services", "redis", "command"])),
            Some(7)
        );
        // The block scalar's "--port: 6379" is text, not a key.
        assert_eq!(
            index.line_of(&path(&["services", "redis", "command", "--port"])),
            None
        );
        assert_eq!(
            index.line_of(&path(&["services", "redis", "ports", "1"])),
            Some(12)
        );
        assert_eq!(
            index.item_line(
                &path(&["services", "redis", "ports"]),
                "127.0.0.1:6379:6379"
            ),
            Some(11)
        );
        assert_eq!(
            index.item_line(&path(&["services", "redis", "ports"]), "8000"),
            Some(12)
        );
        assert_eq!(
            index.line_of(&path(&["services", "redis", "volumes", "0", "target"])),
            Some(15)
        );
        assert_eq!(
            index.line_of(&path(&["services", "redis", "quoted key"])),
            Some(16)
        );
        assert_eq!(
            index.item_line(&path(&["services", "web", "depends_on"]), "redis"),
            Some(19)
        );
        assert_eq!(index.line_of(&path(&["x-anchor", "cpus"])), Some(2));
    }

    #[test]
    fn nearest_falls_back_to_the_written_ancestor() {
        let index = LineIndex::new(DOC);
        let (len, line) = index.nearest(&path(&["services", "web", "healthcheck", "interval"]));
        assert_eq!((len, line), (2, Some(17)));
        assert_eq!(
            display_path(&path(&["services", "redis", "ports", "1"])),
            "services.redis.ports[1]"
        );
    }
}
