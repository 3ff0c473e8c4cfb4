//! Benchmark: `finctl new-service`, from the command to a service that answers through the
//! gateway and has passed its smoke cases, step by step, against the seeds' manual recipe
//! scripted in the same run.
//!
//! `cargo bench -p finctl --bench new_service` (needs the offline platform running:
//! `finctl up --offline --build`). It works in a copy of this repository kept under
//! `$FINCTL_CACHE_DIR/bench-new-service`, built in `bench-new-service-target` beside it (only
//! changed files are rewritten, so its build cache stays warm between runs: the benchmark is
//! of a warm build cache), and uses the
//! platform's project, so generated services run beside the fleet.
//!
//! - finctl: `finctl new-service bench-N` (render and write, build its image, start API and
//!   worker, publish, smoke-test), the step times as the command prints them; then
//!   `--remove`, untimed.
//! - The manual recipe (the seeds' "Adding New Service"), scripted as a script would do it:
//!   copy `platform-services/wallet` to `manual-N` and rename it (package, binary, service
//!   name), add the workspace member, paste the API and worker entries into the Compose file
//!   and the API into `api-config.yaml`, `finctl up --build` the two services, `publish-apis`,
//!   then poll `GET /api/manual-N/1.0.0/health` through the gateway until 200. A person typing
//!   these steps takes minutes more; only the machine's time is measured. Then it is undone,
//!   untimed.
//!
//! One untimed warm-up builds the copy's workspace crates in release. `FINCTL_BENCH_ROUNDS`
//! (default 1) sets the rounds of each; medians are reported. Nothing is asserted: the table
//! shows each time next to the target (under 2 minutes from the command to a routed, tested
//! service).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use comfy_table::Table;
use comfy_table::presets::UTF8_BORDERS_ONLY;

const TARGET: Duration = Duration::from_secs(120);
const STEPS: [&str; 5] = [
    "render and write",
    "build",
    "start",
    "publish",
    "smoke-test",
];

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let rounds: usize = std::env::var("FINCTL_BENCH_ROUNDS")
        .ok()
        .map(|r| r.parse())
        .transpose()
        .context("FINCTL_BENCH_ROUNDS must be a whole number")?
        .unwrap_or(1)
        .max(1);
    let cache = std::env::var_os("FINCTL_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/finctl")))
        .context("set FINCTL_CACHE_DIR or HOME")?;
    let copy = cache.join("bench-new-service");
    // Its own build folder: `cargo bench` holds the lock of this build's release folder while
    // the benchmark runs, and this one stays warm from run to run.
    let target = cache.join("bench-new-service-target");
    let bench = Bench { root, copy, target };

    ensure!(
        bench.finctl(&bench.root, &["health", "--offline"])?.0,
        "the offline platform is not running: `finctl up --offline --build` first"
    );
    eprintln!("preparing: sync the copy, build its workspace crates in release (not timed)");
    bench.sync()?;
    bench.cargo(&["build", "--release", "-p", "wallet"])?;

    let mut finctl_rounds: Vec<Vec<f64>> = Vec::new();
    let mut manual_rounds: Vec<Vec<f64>> = Vec::new();
    for round in 1..=rounds {
        let name = format!("bench-{round}");
        eprintln!("round {round}/{rounds}: finctl new-service {name}");
        let steps = bench.new_service(&name);
        bench.finctl(&bench.copy, &["new-service", "--remove", &name])?;
        finctl_rounds.push(steps?);

        let name = format!("manual-{round}");
        eprintln!("round {round}/{rounds}: the manual recipe for {name}");
        let steps = bench.manual(&name, 8090 + round as u16);
        bench.undo_manual(&name)?;
        manual_rounds.push(steps?);
    }
    let finctl = medians(&finctl_rounds);
    let manual = medians(&manual_rounds);

    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header([
        "step",
        "finctl new-service",
        "manual recipe (scripted)",
    ]);
    let manual_steps = [
        "copy, rename, paste",
        "build",
        "start",
        "publish",
        "(none: one curl)",
    ];
    for (i, step) in STEPS.iter().enumerate() {
        table.add_row([
            format!("{step} / {}", manual_steps[i]),
            format!("{:.1}s", finctl[i]),
            format!("{:.1}s", manual[i]),
        ]);
    }
    let total_finctl: f64 = finctl.iter().sum();
    let total_manual: f64 = manual.iter().sum();
    table.add_row([
        "total".to_owned(),
        format!("{total_finctl:.1}s"),
        format!("{total_manual:.1}s"),
    ]);
    println!("{table}");
    println!(
        "finctl new-service: {total_finctl:.1}s to a routed, smoke-tested service (target < {}s: {}); \
         {:.2}x the scripted manual recipe's machine time, which routes an untested copy of wallet.",
        TARGET.as_secs(),
        if total_finctl < TARGET.as_secs_f64() {
            "met"
        } else {
            "NOT met"
        },
        total_finctl / total_manual,
    );
    println!("rounds: {rounds} (medians)");
    Ok(())
}

fn medians(rounds: &[Vec<f64>]) -> Vec<f64> {
    (0..STEPS.len())
        .map(|i| {
            let mut values: Vec<f64> = rounds.iter().map(|r| r[i]).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        })
        .collect()
}

struct Bench {
    root: PathBuf,
    copy: PathBuf,
    target: PathBuf,
}

impl Bench {
    /// Runs finctl on `dir`; (success, stdout).
    fn finctl(&self, dir: &Path, args: &[&str]) -> anyhow::Result<(bool, String)> {
        let out = Command::new(env!("CARGO_BIN_EXE_finctl"))
            .arg("--project-dir")
            .arg(dir)
            .args(args)
            .env("NO_COLOR", "1")
            .env("CARGO_TARGET_DIR", &self.target)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("finctl {args:?}"))?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ))
    }

    fn cargo(&self, args: &[&str]) -> anyhow::Result<()> {
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(&self.copy)
            .args(args)
            .env("CARGO_TARGET_DIR", &self.target)
            .stdout(Stdio::null())
            .status()?;
        ensure!(status.success(), "cargo {args:?} failed");
        Ok(())
    }

    /// The repository's files into the copy; unchanged files are left as they are (their
    /// modification times keep cargo's build cache valid).
    fn sync(&self) -> anyhow::Result<()> {
        let listed = Command::new("git")
            .current_dir(&self.root)
            .args([
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ])
            .output()?;
        ensure!(listed.status.success(), "git ls-files failed");
        for path in listed.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
            let path = Path::new(std::str::from_utf8(path)?);
            let from = self.root.join(path);
            let Ok(content) = std::fs::read(&from) else {
                continue;
            };
            let to = self.copy.join(path);
            if std::fs::read(&to).ok().as_ref() != Some(&content) {
                std::fs::create_dir_all(to.parent().unwrap())?;
                std::fs::write(&to, content)?;
            }
        }
        // The copy is a git repository of its own: new-service records the template's tree.
        if !self.copy.join(".git").exists() {
            let ok = Command::new("git")
                .current_dir(&self.copy)
                .args(["init", "-q"])
                .status()?
                .success();
            ensure!(ok, "git init failed");
        }
        Ok(())
    }

    /// `finctl new-service NAME`: the step times it prints.
    fn new_service(&self, name: &str) -> anyhow::Result<Vec<f64>> {
        let (ok, stdout) = self.finctl(&self.copy, &["new-service", name])?;
        ensure!(ok, "finctl new-service {name} failed");
        STEPS
            .iter()
            .map(|step| step_seconds(&stdout, step))
            .collect()
    }

    /// The seeds' recipe, scripted: (copy and edit, build, start, publish, check) seconds.
    fn manual(&self, name: &str, port: u16) -> anyhow::Result<Vec<f64>> {
        let snake = name.replace('-', "_");
        let t = Instant::now();
        let dir = self.copy.join("platform-services").join(name);
        let wallet = self.copy.join("platform-services/wallet");
        for entry in walk(&wallet)? {
            let relative = entry.strip_prefix(&wallet)?;
            let text = std::fs::read_to_string(&entry)?
                .replace("wallet::spec()", &format!("{snake}::spec()"))
                .replace("name = \"wallet\"", &format!("name = \"{name}\""))
                .replace("image = \"wallet\"", &format!("image = \"{name}\""))
                .replace("name: \"wallet\"", &format!("name: \"{name}\""));
            std::fs::create_dir_all(dir.join(relative).parent().unwrap())?;
            std::fs::write(dir.join(relative), text)?;
        }
        self.edit("Cargo.toml", |s| {
            s.replace(
                "    \"platform-services/bench\",\n",
                &format!("    \"platform-services/bench\",\n    \"platform-services/{name}\",\n"),
            )
        })?;
        self.edit("compose/docker-compose.yml", |s| {
            s.replace(
                "\nvolumes:\n",
                &format!(
                    "\n  {name}:\n    <<: *api\n    image: finctl/{name}:${{FINCTL_TAG:-latest}}\n    environment:\n      <<: *service-env\n      SERVICE_NAME: svc-{name}\n    ports:\n      - \"127.0.0.1:{port}:8000\"\n\n  {name}-worker:\n    <<: *worker\n    image: finctl/{name}:${{FINCTL_TAG:-latest}}\n    environment:\n      <<: *service-env\n      SERVICE_NAME: svc-{name}-worker\n\nvolumes:\n"
                ),
            )
        })?;
        self.edit("api-config.yaml", |s| {
            s.replace(
                "\n# GraphQL:",
                &format!(
                    "  - name: \"{name}\"\n    context: \"/api/{name}\"\n    version: \"1.0.0\"\n    backend_url: \"http://{name}:8000\"\n    operations:\n      - {{ method: GET, path: /health, access: {{ anonymous: true }}, throttle: public }}\n\n# GraphQL:"
                ),
            )
        })?;
        let write = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let (ok, _) = self.finctl(&self.copy, &["images", "build", name])?;
        ensure!(ok, "building {name} failed");
        let build = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let worker = format!("{name}-worker");
        let (ok, _) = self.finctl(
            &self.copy,
            &["up", "--offline", "--no-publish", name, &worker],
        )?;
        ensure!(ok, "starting {name} failed");
        let start = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let (ok, _) = self.finctl(&self.copy, &["publish-apis", "--offline"])?;
        ensure!(ok, "publishing failed");
        let url = format!("http://127.0.0.1:8280/api/{name}/1.0.0/health");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &url])
                .output()?;
            if out.stdout == b"200" {
                break;
            }
            if Instant::now() > deadline {
                bail!("{url} never answered 200");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let publish = t.elapsed().as_secs_f64();
        Ok(vec![write, build, start, publish, 0.0])
    }

    fn undo_manual(&self, name: &str) -> anyhow::Result<()> {
        for service in [name.to_owned(), format!("{name}-worker")] {
            let ids = Command::new("docker")
                .args(["ps", "-aq", "--filter"])
                .arg(format!("label=com.docker.compose.service={service}"))
                .output()?;
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = Command::new("docker")
                    .args(["rm", "-f", id])
                    .stdout(Stdio::null())
                    .status();
            }
        }
        let _ = std::fs::remove_dir_all(self.copy.join("platform-services").join(name));
        // The edited files as the repository has them.
        for file in [
            "Cargo.toml",
            "compose/docker-compose.yml",
            "api-config.yaml",
        ] {
            std::fs::copy(self.root.join(file), self.copy.join(file))?;
        }
        self.finctl(&self.copy, &["publish-apis", "--offline", "--prune"])?;
        Ok(())
    }

    fn edit(&self, file: &str, change: impl Fn(&str) -> String) -> anyhow::Result<()> {
        let path = self.copy.join(file);
        let text = std::fs::read_to_string(&path)?;
        let changed = change(&text);
        ensure!(changed != text, "{file}: the recipe's anchor was not found");
        std::fs::write(path, changed)?;
        Ok(())
    }
}

fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(walk(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

/// A step's seconds from new-service's closing table (`│ build   ok   45.2s │`).
fn step_seconds(stdout: &str, step: &str) -> anyhow::Result<f64> {
    stdout
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .trim_matches(|c: char| c == '│' || c.is_whitespace())
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            (cells.first() == Some(&step)).then(|| cells.last().copied())?
        })
        .next_back()
        .and_then(|time| time.strip_suffix('s')?.parse().ok())
        .with_context(|| format!("no `{step}` row in new-service's output:\n{stdout}"))
}
