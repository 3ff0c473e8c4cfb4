//! Many containers' output as one stream: whole lines only, each behind a prefix whose colour
//! is stable per service, following containers across restarts and recreation. How each line
//! is shown (readable, raw, JSON; a level filter) is [`LogView`]'s.

use std::collections::HashMap;

use finctl_engine::{Engine, LogLine, LogOptions, follow_logs};

use crate::log_render::LogView;
use owo_colors::{AnsiColors, OwoColorize};
use tokio::sync::mpsc;

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

/// Streams the logs of `containers` (service name, container name) into `sink`, one line at a
/// time as `view` shows it, until they end, or with `follow` until Ctrl-C. `sink` returns false
/// to stop (e.g. stdout was closed).
pub async fn stream(
    engine: &Engine,
    containers: Vec<(String, String)>,
    options: LogOptions,
    view: LogView,
    sink: &mut dyn FnMut(&str) -> bool,
) -> anyhow::Result<()> {
    let width = containers.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
    let (tx, mut rx) = mpsc::channel::<LogLine>(1024);
    let mut tasks = tokio::task::JoinSet::new();
    for (service, container) in containers {
        let tx = tx.clone();
        let engine = engine.clone();
        let options = options.clone();
        tasks.spawn(async move { follow_logs(&engine, &service, &container, &options, &tx).await });
    }
    drop(tx);
    let printer = async {
        let mut prefixes: HashMap<String, String> = HashMap::new();
        while let Some(LogLine { source, text }) = rx.recv().await {
            let prefix = prefixes.entry(source.clone()).or_insert_with(|| {
                let padded = format!("{source:<width$} |");
                if view.color {
                    padded.color(color_of(&source)).to_string()
                } else {
                    padded
                }
            });
            if let Some(line) = view.render(&source, prefix, &text) {
                if !sink(&line) {
                    return;
                }
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
