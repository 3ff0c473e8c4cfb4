//! `${VAR}` interpolation in Compose values: `$VAR`, `${VAR}`, `${VAR:-default}` (unset or
//! empty), `${VAR-default}` (unset), `${VAR:?message}` / `${VAR?message}` (required), `$$` for
//! a literal `$`. Defaults and messages may themselves hold `${...}`.

use super::variables::Variables;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolationError {
    /// `${NAME:?message}` with NAME unset (or empty for `:?`).
    Required { name: String, message: String },
    /// A `$` that starts nothing Compose understands (`${`, `$1`, a lone `$`).
    Invalid { reason: String },
}

/// Replaces variables in `text`; names used but unset (no default) are pushed to `unset`.
pub fn interpolate(
    text: &str,
    vars: &Variables,
    unset: &mut Vec<String>,
) -> Result<String, InterpolationError> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = matching_brace(body).ok_or_else(|| InterpolationError::Invalid {
                reason: "`${` without a closing `}`".to_owned(),
            })?;
            out.push_str(&braced(&body[..end], vars, unset)?);
            rest = &body[end + 1..];
        } else {
            let len = name_len(after);
            if len == 0 {
                return Err(InterpolationError::Invalid {
                    reason: "`$` not followed by a variable name; write `$$` for a literal `$`"
                        .to_owned(),
                });
            }
            let name = &after[..len];
            match vars.get(name) {
                Some(value) => out.push_str(value),
                None => unset.push(name.to_owned()),
            }
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn braced(
    inner: &str,
    vars: &Variables,
    unset: &mut Vec<String>,
) -> Result<String, InterpolationError> {
    let len = name_len(inner);
    let name = &inner[..len];
    if len == 0 {
        return Err(InterpolationError::Invalid {
            reason: format!("`${{{inner}}}` does not start with a variable name"),
        });
    }
    let op = &inner[len..];
    let value = vars.get(name);
    let (operator, argument) = [":-", ":?", "-", "?"]
        .iter()
        .find_map(|o| op.strip_prefix(o).map(|arg| (*o, arg)))
        .unwrap_or(("", op));
    match operator {
        "" if argument.is_empty() => Ok(value.map_or_else(
            || {
                unset.push(name.to_owned());
                String::new()
            },
            str::to_owned,
        )),
        ":-" => match value.filter(|v| !v.is_empty()) {
            Some(v) => Ok(v.to_owned()),
            None => interpolate(argument, vars, unset),
        },
        "-" => match value {
            Some(v) => Ok(v.to_owned()),
            None => interpolate(argument, vars, unset),
        },
        ":?" | "?" => {
            let missing = match value {
                None => true,
                Some(v) => operator == ":?" && v.is_empty(),
            };
            if missing {
                let message = interpolate(argument, vars, unset)?;
                Err(InterpolationError::Required {
                    name: name.to_owned(),
                    message,
                })
            } else {
                Ok(value.unwrap_or_default().to_owned())
            }
        }
        _ => Err(InterpolationError::Invalid {
            reason: format!("`${{{inner}}}`: expected `}}`, `:-`, `-`, `:?` or `?` after `{name}`"),
        }),
    }
}

fn name_len(text: &str) -> usize {
    let mut chars = text.char_indices();
    match chars.next() {
        Some((_, c)) if c == '_' || c.is_ascii_alphabetic() => {}
        _ => return 0,
    }
    chars
        .find(|(_, c)| !(*c == '_' || c.is_ascii_alphanumeric()))
        .map_or(text.len(), |(i, _)| i)
}

/// Index of the `}` closing a `${`, allowing nested `${...}` in defaults.
fn matching_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn vars() -> Variables {
        Variables::new(BTreeMap::from([
            ("SET".to_owned(), "value".to_owned()),
            ("EMPTY".to_owned(), String::new()),
        ]))
    }

    fn run(text: &str) -> Result<String, InterpolationError> {
        interpolate(text, &vars(), &mut Vec::new())
    }

    #[test]
    fn substitutes_every_form() {
        assert_eq!(run("a ${SET} $SET b").unwrap(), "a value value b");
        assert_eq!(run("${UNSET}|$UNSET.x").unwrap(), "|.x");
        assert_eq!(
            run("${UNSET:-d}|${EMPTY:-d}|${SET:-d}").unwrap(),
            "d|d|value"
        );
        assert_eq!(run("${UNSET-d}|${EMPTY-d}|${SET-d}").unwrap(), "d||value");
        assert_eq!(run("$$SET $${SET} $$").unwrap(), "$SET ${SET} $");
        assert_eq!(run("${UNSET:-${SET}-x}").unwrap(), "value-x");
        assert_eq!(run("${EMPTY?must}").unwrap(), "");
        assert_eq!(run("no dollars").unwrap(), "no dollars");
    }

    #[test]
    fn reports_unset_names() {
        let mut unset = Vec::new();
        interpolate("${A} $B ${C:-x}", &vars(), &mut unset).unwrap();
        assert_eq!(unset, ["A", "B"]);
    }

    #[test]
    fn required_variables() {
        assert_eq!(
            run("${UNSET:?set it in .env}"),
            Err(InterpolationError::Required {
                name: "UNSET".to_owned(),
                message: "set it in .env".to_owned()
            })
        );
        assert!(matches!(
            run("${EMPTY:?empty}"),
            Err(InterpolationError::Required { .. })
        ));
        assert!(matches!(
            run("${UNSET?x}"),
            Err(InterpolationError::Required { .. })
        ));
        assert_eq!(run("${SET:?x}").unwrap(), "value");
    }

    #[test]
    fn invalid_syntax() {
        for bad in ["${", "${SET", "${}", "${1A}", "$", "cost: $5", "${SET!x}"] {
            assert!(
                matches!(run(bad), Err(InterpolationError::Invalid { .. })),
                "{bad:?} should be invalid"
            );
        }
    }
}
