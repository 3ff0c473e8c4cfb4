//! Which Debian mirror to fetch from: the one this machine's apt uses, never a name written
//! into the repository.

use std::path::PathBuf;

use finctl_env as env;
use finctl_error::UserError;

/// The Debian mirror: `$FINCTL_DEBIAN_MIRROR`, else the first main-archive source apt uses here.
pub fn debian_mirror() -> Result<String, UserError> {
    if let Ok(mirror) = std::env::var(env::FINCTL_DEBIAN_MIRROR) {
        if !mirror.trim().is_empty() {
            return Ok(mirror.trim().to_string());
        }
    }
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let found = match file.extension().and_then(|e| e.to_str()) {
            Some("sources") => mirror_from_deb822(&text),
            Some("list") => mirror_from_one_line(&text),
            _ => None,
        };
        if let Some(mirror) = found {
            return Ok(mirror);
        }
    }
    Err(UserError::failure(
        "found no Debian mirror in /etc/apt/sources.list or /etc/apt/sources.list.d",
        format!("set {} to a Debian mirror URL", env::FINCTL_DEBIAN_MIRROR),
    ))
}

/// `deb [options] URI SUITE COMPONENTS` lines; security archives are skipped.
fn mirror_from_one_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| line.starts_with("deb "))
        .find_map(|line| {
            let mut words = line.split_whitespace().skip(1);
            let mut uri = words.next()?;
            if uri.starts_with('[') {
                // Options: `[a=b c=d]`, possibly spread over several words.
                if !uri.ends_with(']') {
                    words.find(|w| w.ends_with(']'))?;
                }
                uri = words.next()?;
            }
            (!uri.contains("security")).then(|| uri.to_string())
        })
}

/// deb822 stanzas: `Types: deb` with `URIs:`; security archives are skipped.
fn mirror_from_deb822(text: &str) -> Option<String> {
    text.split("\n\n").find_map(|stanza| {
        let field = |name: &str| {
            stanza.lines().find_map(|line| {
                line.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .map(|v| v.trim().to_string())
            })
        };
        let types = field("Types")?;
        let uri = field("URIs")?.split_whitespace().next()?.to_string();
        let suites = field("Suites").unwrap_or_default();
        (types.split_whitespace().any(|t| t == "deb")
            && !uri.contains("security")
            && !suites.contains("security"))
        .then_some(uri)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_mirror_from_deb822_skipping_security() {
        let text = "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n\nTypes: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n";
        assert_eq!(
            mirror_from_deb822(text).as_deref(),
            Some("http://mirror.example/debian")
        );
    }

    #[test]
    fn reads_the_mirror_from_one_line_sources() {
        let text = "# comment\ndeb [signed-by=/x.gpg] http://mirror.example/debian bookworm main\n";
        assert_eq!(
            mirror_from_one_line(text).as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(
            mirror_from_one_line(
                "deb http://mirror.example/debian-security bookworm-security main"
            ),
            None
        );
    }
}
