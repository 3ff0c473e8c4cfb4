//! The chaos monkey: every few seconds, `kill -9` one random process among the targets, start
//! it again and wait until it is ready, until stopped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::fleet::Fleet;

/// One kill and what followed.
#[derive(Debug, Clone)]
pub struct Kill {
    pub process: String,
    /// When, from the monkey's start.
    pub at: Duration,
    /// How long the restart took until ready, or why it failed.
    pub restart: Result<Duration, String>,
}

pub struct Monkey {
    stop: watch::Sender<bool>,
    task: JoinHandle<Vec<Kill>>,
}

impl Monkey {
    /// Kills one of `targets` (process indexes) every `every`, starting after one period.
    pub fn start(fleet: Arc<Fleet>, targets: Vec<usize>, every: Duration, seed: u64) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed);
            let started = Instant::now();
            let mut kills = Vec::new();
            if targets.is_empty() {
                return kills;
            }
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stopped.wait_for(|s| *s) => return kills,
                }
                let i = targets[rng.usize(..targets.len())];
                let process = fleet.processes()[i].name.clone();
                let at = started.elapsed();
                let t = Instant::now();
                let restart = match fleet.kill(i).await {
                    Err(e) => Err(format!("kill: {e:#}")),
                    Ok(()) => {
                        // Dead for a moment: requests and events pile up meanwhile.
                        tokio::time::sleep(Duration::from_millis(rng.u64(0..500))).await;
                        fleet
                            .restart(i)
                            .await
                            .map(|()| t.elapsed())
                            .map_err(|e| format!("{e:#}"))
                    }
                };
                eprintln!(
                    "flow-tests: chaos: kill -9 {process} at {:.1} s; {}",
                    at.as_secs_f64(),
                    match &restart {
                        Ok(d) => format!("ready again after {:.1} s", d.as_secs_f64()),
                        Err(e) => format!("restart FAILED: {e}"),
                    }
                );
                kills.push(Kill {
                    process,
                    at,
                    restart,
                });
            }
        });
        Self { stop, task }
    }

    /// Stops killing (a restart in progress finishes first) and returns every kill.
    pub async fn stop(self) -> Vec<Kill> {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}
