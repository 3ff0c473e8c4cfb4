//! Many containers' output as one stream: whole lines only, each behind a prefix whose colour
//! is stable per service, following containers across restarts and recreation.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, SystemTime};

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;
use owo_colors::{AnsiColors, OwoColorize};
use tokio::sync::mpsc;

use super::inventory;
use crate::docker::Engine;

#[derive(Debug, Clone)]
pub struct LogOptions {
    pub follow: bool,
    /// Lines from the end of each container's log; `None`: all.
    pub tail: Option<u64>,
    /// Only lines after this time.
    pub since: Option<SystemTime>,
    pub color: bool,
}

/// A colour per service name, the same in every run.
fn color_of(name: &str) -> AnsiColors {
    const PALETTE: [AnsiColors; 6] = [
        AnsiColors::Cyan,
        AnsiColors::Yellow,
        AnsiColors::Green,
        AnsiColors::Magenta,
        AnsiColors::Blue,
        AnsiColors::BrightRed,
    ];
    // FNV-1a: stable across runs and platforms, unlike std's hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    PALETTE[(hash % PALETTE.len() as u64) as usize]
}

/// Streams the logs of `containers` (service name, container name) to stdout until they end,
/// or with `follow` until Ctrl-C.
pub async fn stream(
    engine: &Engine,
    containers: Vec<(String, String)>,
    options: LogOptions,
) -> anyhow::Result<()> {
    let width = containers.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
    let (tx, mut rx) = mpsc::channel::<(String, String)>(1024);
    let mut tasks = tokio::task::JoinSet::new();
    for (service, container) in containers {
        let tx = tx.clone();
        let engine = engine.clone();
        let options = options.clone();
        tasks.spawn(async move { follow_one(&engine, &service, &container, &options, &tx).await });
    }
    drop(tx);
    let printer = async {
        let mut prefixes: HashMap<String, String> = HashMap::new();
        while let Some((service, line)) = rx.recv().await {
            let prefix = prefixes.entry(service.clone()).or_insert_with(|| {
                let padded = format!("{service:<width$} |");
                if options.color {
                    padded.color(color_of(&service)).to_string()
                } else {
                    padded
                }
            });
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{prefix} {line}").is_err() {
                // stdout closed (e.g. piped into head): stop quietly.
                return;
            }
        }
    };
    tokio::select! {
        () = printer => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tasks.abort_all();
    Ok(())
}

async fn follow_one(
    engine: &Engine,
    service: &str,
    container: &str,
    options: &LogOptions,
    tx: &mpsc::Sender<(String, String)>,
) {
    let mut last_seen: Option<SystemTime> = None;
    let mut first = true;
    loop {
        let info = inventory::inspect(engine, container).await.ok().flatten();
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
    tx: &mpsc::Sender<(String, String)>,
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
    tx.send((service.to_owned(), line.to_owned())).await.is_ok()
}
