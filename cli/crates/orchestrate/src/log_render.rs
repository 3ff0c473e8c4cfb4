//! How one container log line is shown: the services' JSON lines (platform-common's
//! tracing-subscriber JSON layer: `timestamp`, `level`, `message` or `fields.message`, the
//! event's fields, `target`, the current `span` with `request_id`/`trace_id`) as one readable
//! line, as the original bytes, or as one JSON object per line that names its service.

use std::str::FromStr;

use owo_colors::{AnsiColors, OwoColorize};
use serde_json::{Map, Value};

/// A log level, in order of severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// The spellings `--level` accepts.
    pub const NAMES: [&'static str; 5] = ["trace", "debug", "info", "warn", "error"];

    fn label(self) -> &'static str {
        match self {
            Self::Trace => "TRACE",
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
        }
    }

    fn color(self) -> AnsiColors {
        match self {
            Self::Trace => AnsiColors::Magenta,
            Self::Debug => AnsiColors::Blue,
            Self::Info => AnsiColors::Green,
            Self::Warn => AnsiColors::Yellow,
            Self::Error => AnsiColors::Red,
        }
    }
}

impl FromStr for Level {
    type Err = ();

    /// Any case; also the spellings other loggers write (`warning`, `fatal`, `critical`).
    fn from_str(text: &str) -> Result<Self, ()> {
        match text.to_ascii_lowercase().as_str() {
            "trace" => Ok(Self::Trace),
            "debug" => Ok(Self::Debug),
            "info" => Ok(Self::Info),
            "warn" | "warning" => Ok(Self::Warn),
            "error" | "err" | "fatal" | "critical" => Ok(Self::Error),
            _ => Err(()),
        }
    }
}

/// What a line becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `HH:MM:SS.mmm LEVEL message key=value ...` behind the service prefix.
    #[default]
    Readable,
    /// The line as the container wrote it, behind the service prefix.
    Raw,
    /// One JSON object per line with `"service"` added; no prefix.
    Json,
}

/// The settings of `finctl logs` that decide how lines are shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogView {
    pub format: LogFormat,
    /// Only lines at this level or above; lines without a level are always kept.
    pub min_level: Option<Level>,
    /// Colour the level (the caller decides: `NO_COLOR`, a terminal).
    pub color: bool,
}

/// The top-level keys of an event that are shown in their own place, not as `key=value`.
const PLACED: [&str; 6] = ["timestamp", "level", "message", "fields", "span", "spans"];

impl LogView {
    /// `text` (one line, no newline) of `service` as it is shown, `prefix` in front unless the
    /// format is JSON; `None` if the level filter drops it.
    pub fn render(&self, service: &str, prefix: &str, text: &str) -> Option<String> {
        let event = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(event)) => Some(event),
            _ => None,
        };
        if let (Some(min), Some(event)) = (self.min_level, &event) {
            if level_of(event).is_some_and(|level| level < min) {
                return None;
            }
        }
        Some(match (self.format, event) {
            (LogFormat::Raw, _) | (LogFormat::Readable, None) => format!("{prefix} {text}"),
            (LogFormat::Readable, Some(event)) => {
                format!("{prefix} {}", self.readable(&event))
            }
            (LogFormat::Json, Some(event)) => {
                let mut object = Map::new();
                object.insert("service".into(), service.into());
                object.extend(event.into_iter().filter(|(key, _)| key != "service"));
                Value::Object(object).to_string()
            }
            (LogFormat::Json, None) => {
                let mut object = Map::new();
                object.insert("service".into(), service.into());
                object.insert("message".into(), text.into());
                Value::Object(object).to_string()
            }
        })
    }

    fn readable(&self, event: &Map<String, Value>) -> String {
        let mut out = String::new();
        if let Some(time) = event
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(clock_time)
        {
            out.push_str(&time);
        }
        match (level_of(event), event.get("level").and_then(Value::as_str)) {
            (Some(level), _) => {
                let label = format!("{:<5}", level.label());
                push_word(
                    &mut out,
                    &if self.color {
                        label.color(level.color()).to_string()
                    } else {
                        label
                    },
                );
            }
            // A level finctl does not know (e.g. `NOTICE`) is shown as written.
            (None, Some(other)) => push_word(&mut out, other),
            (None, None) => {}
        }
        let fields = event.get("fields").and_then(Value::as_object);
        let message = fields
            .and_then(|fields| fields.get("message"))
            .or_else(|| event.get("message"));
        if let Some(message) = message {
            let message = match message {
                Value::String(text) => text.replace('\n', "\\n"),
                other => other.to_string(),
            };
            push_word(&mut out, &message);
        }
        let mut pairs: Vec<(&str, &Value)> = Vec::new();
        pairs.extend(
            fields
                .into_iter()
                .flatten()
                .filter(|(key, _)| *key != "message")
                .map(|(key, value)| (key.as_str(), value)),
        );
        pairs.extend(
            event
                .iter()
                .filter(|(key, _)| !PLACED.contains(&key.as_str()) && *key != "target")
                .map(|(key, value)| (key.as_str(), value)),
        );
        // The current span's fields (request_id, trace_id, ...); with only a span list, those of
        // every span in it.
        let spans: Vec<&Map<String, Value>> = match event.get("span") {
            Some(Value::Object(span)) => vec![span],
            _ => event
                .get("spans")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
                .collect(),
        };
        for span in spans {
            for (key, value) in span {
                if key == "name" {
                    continue;
                }
                pairs.retain(|(seen, _)| seen != key);
                pairs.push((key, value));
            }
        }
        if let Some(target) = event.get("target") {
            pairs.push(("target", target));
        }
        for (key, value) in pairs {
            push_word(&mut out, &format!("{key}={}", field_value(value)));
        }
        out
    }
}

/// `level` as the line spells it, if it is one.
fn level_of(event: &Map<String, Value>) -> Option<Level> {
    event.get("level")?.as_str()?.parse().ok()
}

fn push_word(out: &mut String, word: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(word);
}

/// `HH:MM:SS.mmm` of an RFC 3339 timestamp, as written (no time-zone conversion).
fn clock_time(stamp: &str) -> Option<String> {
    let (_, time) = stamp.split_once(['T', ' '])?;
    let clock = time.get(..8)?;
    let valid = clock.bytes().enumerate().all(|(i, b)| {
        if i == 2 || i == 5 {
            b == b':'
        } else {
            b.is_ascii_digit()
        }
    });
    if !valid {
        return None;
    }
    let mut millis: String = time[8..]
        .strip_prefix('.')
        .unwrap_or("")
        .chars()
        .take_while(char::is_ascii_digit)
        .take(3)
        .collect();
    while millis.len() < 3 {
        millis.push('0');
    }
    Some(format!("{clock}.{millis}"))
}

/// A field's value: bare when it is one word, otherwise quoted with JSON's escapes.
fn field_value(value: &Value) -> String {
    let text = match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let bare = !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '=' || c.is_control());
    if bare {
        text
    } else {
        Value::String(text).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line as platform-common writes it (flattened event, current span, target).
    const SERVICE_LINE: &str = r#"{"timestamp":"2026-12-02T06:58:52.123456Z","level":"INFO","message":"request finished","status":200,"latency_ms":3,"target":"svc_wallet::http","span":{"request_id":"req-1","trace_id":"4bf92f3577b34da6","name":"request"}}"#;

    fn readable() -> LogView {
        LogView::default()
    }

    fn show(view: LogView, text: &str) -> Option<String> {
        view.render("wallet", "wallet |", text)
    }

    #[test]
    fn a_service_line_reads_as_time_level_message_and_fields() {
        assert_eq!(
            show(readable(), SERVICE_LINE).unwrap(),
            "wallet | 06:58:52.123 INFO  request finished latency_ms=3 status=200 \
             request_id=req-1 trace_id=4bf92f3577b34da6 target=svc_wallet::http"
        );
    }

    #[test]
    fn nested_fields_are_flattened_and_spaces_quoted() {
        let line = r#"{"timestamp":"2026-12-02T06:58:52Z","level":"warn","fields":{"message":"slow query","sql":"SELECT 1","empty":""},"spans":[{"name":"a","request_id":"r 2"}]}"#;
        assert_eq!(
            show(readable(), line).unwrap(),
            r#"wallet | 06:58:52.000 WARN  slow query empty="" sql="SELECT 1" request_id="r 2""#
        );
    }

    #[test]
    fn missing_fields_are_left_out() {
        assert_eq!(
            show(readable(), r#"{"message":"hello"}"#).unwrap(),
            "wallet | hello"
        );
        assert_eq!(
            show(readable(), r#"{"level":"ERROR","code":7}"#).unwrap(),
            "wallet | ERROR code=7"
        );
        assert_eq!(
            show(readable(), r#"{"timestamp":"yesterday","message":"m"}"#).unwrap(),
            "wallet | m"
        );
        assert_eq!(
            show(readable(), r#"{"level":"NOTICE","message":"m"}"#).unwrap(),
            "wallet | NOTICE m"
        );
    }

    #[test]
    fn plain_and_non_object_json_lines_are_unchanged() {
        for line in ["plain text", "[1,2]", "42", "\"text\"", "{not json", ""] {
            assert_eq!(show(readable(), line).unwrap(), format!("wallet | {line}"));
        }
    }

    #[test]
    fn raw_keeps_the_original_bytes() {
        let raw = LogView {
            format: LogFormat::Raw,
            ..LogView::default()
        };
        assert_eq!(
            show(raw, SERVICE_LINE).unwrap(),
            format!("wallet | {SERVICE_LINE}")
        );
    }

    #[test]
    fn json_adds_the_service_and_wraps_other_lines() {
        let json = LogView {
            format: LogFormat::Json,
            ..LogView::default()
        };
        let event: Value = serde_json::from_str(&show(json, SERVICE_LINE).unwrap()).unwrap();
        assert_eq!(event["service"], "wallet");
        assert_eq!(event["message"], "request finished");
        assert_eq!(event["span"]["request_id"], "req-1");
        for line in ["plain text", "[1,2]"] {
            let wrapped: Value = serde_json::from_str(&show(json, line).unwrap()).unwrap();
            assert_eq!(
                wrapped,
                serde_json::json!({"service": "wallet", "message": line})
            );
        }
    }

    #[test]
    fn the_level_filter_keeps_lines_at_or_above_it_and_lines_without_one() {
        let warn = LogView {
            min_level: Some(Level::Warn),
            ..LogView::default()
        };
        assert_eq!(show(warn, SERVICE_LINE), None);
        assert!(show(warn, r#"{"level":"WARN","message":"w"}"#).is_some());
        assert!(show(warn, r#"{"level":"error","message":"e"}"#).is_some());
        assert!(show(warn, r#"{"message":"no level"}"#).is_some());
        assert!(show(warn, "plain").is_some());
        let json = LogView {
            format: LogFormat::Json,
            ..warn
        };
        assert_eq!(show(json, SERVICE_LINE), None);
    }

    #[test]
    fn colour_is_off_unless_asked_for() {
        let plain = show(readable(), SERVICE_LINE).unwrap();
        assert!(!plain.contains('\x1b'));
        let coloured = show(
            LogView {
                color: true,
                ..LogView::default()
            },
            SERVICE_LINE,
        )
        .unwrap();
        assert!(coloured.contains("\x1b[32mINFO \x1b[39m"), "{coloured:?}");
    }

    #[test]
    fn levels_parse_in_any_case_and_order_by_severity() {
        assert_eq!("WARNING".parse(), Ok(Level::Warn));
        assert_eq!("Info".parse(), Ok(Level::Info));
        assert!("loud".parse::<Level>().is_err());
        assert!(Level::Trace < Level::Debug && Level::Warn < Level::Error);
        for name in Level::NAMES {
            assert!(name.parse::<Level>().is_ok());
        }
    }
}
