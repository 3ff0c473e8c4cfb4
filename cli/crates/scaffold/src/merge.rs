//! The three-way merge of `--update`: the service as the old template rendered it (base), as
//! it is now (ours, with the team's edits) and as the new template renders it (theirs).

/// A merged text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merged {
    Clean(String),
    /// Both sides changed the same lines: the text holds diff3 conflict markers
    /// (`<<<<<<< ours`, `||||||| original`, `=======`, `>>>>>>> theirs`).
    Conflicts(String),
}

impl Merged {
    pub fn text(&self) -> &str {
        match self {
            Self::Clean(text) | Self::Conflicts(text) => text,
        }
    }
}

/// Merges `theirs`' changes to `base` into `ours`.
pub fn merge3(base: &str, ours: &str, theirs: &str) -> Merged {
    if ours == base {
        return Merged::Clean(theirs.to_owned());
    }
    if theirs == base || ours == theirs {
        return Merged::Clean(ours.to_owned());
    }
    match diffy::merge(base, ours, theirs) {
        Ok(text) => Merged::Clean(text),
        Err(text) => Merged::Conflicts(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "a\nb\nc\nd\ne\n";

    #[test]
    fn changes_on_different_lines_merge_cleanly() {
        let ours = "a\nb (ours)\nc\nd\ne\n";
        let theirs = "a\nb\nc\nd\ne (theirs)\n";
        assert_eq!(
            merge3(BASE, ours, theirs),
            Merged::Clean("a\nb (ours)\nc\nd\ne (theirs)\n".into())
        );
        assert_eq!(merge3(BASE, BASE, theirs), Merged::Clean(theirs.into()));
        assert_eq!(merge3(BASE, ours, BASE), Merged::Clean(ours.into()));
    }

    #[test]
    fn the_same_line_changed_twice_is_marked_and_nothing_is_lost() {
        let ours = "a\nb\nc (ours)\nd\ne\n";
        let theirs = "a\nb\nc (theirs)\nd\ne\n";
        let Merged::Conflicts(text) = merge3(BASE, ours, theirs) else {
            panic!("a conflict");
        };
        assert!(text.contains("<<<<<<< ours\nc (ours)\n"), "{text}");
        assert!(text.contains("c (theirs)\n>>>>>>> theirs\n"), "{text}");
    }
}
