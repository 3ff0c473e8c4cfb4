//! Path safety: a request path that could normalise outside its API is refused before routing.

use percent_encoding::percent_decode_str;

/// Why a path is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UnsafePath {
    #[error("the path must start with `/`")]
    Relative,
    #[error("empty path segments (`//`) are not allowed")]
    EmptySegment,
    #[error("dot segments (`.`, `..`, also percent-encoded) are not allowed")]
    DotSegment,
    #[error("encoded slashes, backslashes and NUL are not allowed")]
    EncodedSeparator,
}

/// Checks the raw (still percent-encoded) path. Nothing is rewritten: a safe path is
/// forwarded byte for byte.
pub fn check(path: &str) -> Result<(), UnsafePath> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(UnsafePath::Relative);
    };
    if rest.is_empty() {
        return Ok(());
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    for (i, raw) in segments.iter().enumerate() {
        // A trailing slash is fine (`/a/`), an empty segment elsewhere is not.
        if raw.is_empty() {
            if i == last {
                continue;
            }
            return Err(UnsafePath::EmptySegment);
        }
        if raw.contains('\\') {
            return Err(UnsafePath::EncodedSeparator);
        }
        let decoded: Vec<u8> = percent_decode_str(raw).collect();
        if decoded.iter().any(|b| matches!(b, b'/' | b'\\' | 0)) {
            return Err(UnsafePath::EncodedSeparator);
        }
        if decoded == b"." || decoded == b".." {
            return Err(UnsafePath::DotSegment);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths_pass() {
        for p in [
            "/",
            "/api/forex/1.0.0/health",
            "/a/",
            "/a/b%20c",
            "/a/..b",
            "/a/.well-known",
        ] {
            assert_eq!(check(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn traversal_is_refused() {
        for p in [
            "/a/../b",
            "/a/%2e%2e/b",
            "/a/%2E%2e",
            "/a/.%2E/x",
            "/a/./b",
            "/a//b",
            "//admin",
        ] {
            assert!(check(p).is_err(), "{p}");
        }
        assert_eq!(check("/a/%2fadmin"), Err(UnsafePath::EncodedSeparator));
        assert_eq!(check("/a/%5C.."), Err(UnsafePath::EncodedSeparator));
        assert_eq!(check("/a/b\\..\\c"), Err(UnsafePath::EncodedSeparator));
    }
}
