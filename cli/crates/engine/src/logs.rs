//! Container output as lines: whole lines only, following a container across restarts and
//! recreation. Lines are sent to the caller, which decides how to print them.

use std::time::{Duration, SystemTime};

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::Engine;
use crate::container::inspect;

#[derive(Debug, Clone)]
pub struct LogOptions {
    pub follow: bool,
    /// Lines from the end of each container's log; `None`: all.
    pub tail: Option<u64>,
    /// Only lines after this time.
    pub since: Option<SystemTime>,
}

/// One line of a container's output, without its trailing newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Who it belongs to (the caller's name for the container, e.g. its service).
    pub source: String,
    pub text: String,
}

/// Sends the lines of `container` to `tx` until its log ends, or with `follow` until the
/// receiver goes away; a container that stops is waited for and reattached.
pub async fn follow_logs(
    engine: &Engine,
    service: &str,
    container: &str,
    options: &LogOptions,
    tx: &mpsc::Sender<LogLine>,
) {
    let mut last_seen: Option<SystemTime> = None;
    let mut first = true;
    loop {
        let info = inspect(engine, container).await.ok().flatten();
        if info.as_ref().is_some_and(|info| first || info.running()) {
            let mut builder = LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .timestamps(true)
                .follow(options.follow);
            if first {
                if let Some(tail) = options.tail {
                    builder = builder.tail(&tail.to_string());
                }
            }
            let since = last_seen.or(options.since);
            if let Some(since) = since {
                let secs = since
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                builder = builder.since(i32::try_from(secs).unwrap_or(i32::MAX));
            }
            first = false;
            let mut stream = engine.api().logs(container, Some(builder.build()));
            let mut buffers: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
            while let Some(Ok(chunk)) = stream.next().await {
                let (index, bytes) = match chunk {
                    LogOutput::StdErr { message } => (1, message),
                    LogOutput::StdOut { message }
                    | LogOutput::Console { message }
                    | LogOutput::StdIn { message } => (0, message),
                };
                buffers[index].extend_from_slice(&bytes);
                while let Some(end) = buffers[index].iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffers[index].drain(..=end).collect();
                    if !emit(service, &line, &mut last_seen, tx).await {
                        return;
                    }
                }
            }
            for buffer in &buffers {
                if !buffer.is_empty() && !emit(service, buffer, &mut last_seen, tx).await {
                    return;
                }
            }
        }
        if !options.follow {
            return;
        }
        // The container stopped (or was recreated): wait for it to run again.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Sends one line without its timestamp, unless it was already sent before a reattach.
async fn emit(
    service: &str,
    raw: &[u8],
    last_seen: &mut Option<SystemTime>,
    tx: &mpsc::Sender<LogLine>,
) -> bool {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_end_matches(['\n', '\r']);
    let (stamp, line) = text.split_once(' ').unwrap_or((text, ""));
    if let Ok(time) = humantime::parse_rfc3339(stamp) {
        if last_seen.is_some_and(|seen| time <= seen) {
            return true;
        }
        *last_seen = Some(time);
    }
    tx.send(LogLine {
        source: service.to_owned(),
        text: line.to_owned(),
    })
    .await
    .is_ok()
}
