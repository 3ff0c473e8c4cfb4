//! `cargo bench -p flow-tests --bench flow`: issue 15's flow benchmark. The whole fleet runs
//! (release build of `fleet`, real Postgres, Redis and tansu); it measures payments from
//! initiation to `completed` (throughput, p50, p99), and in the same run the ledger's raw
//! transfer rate as the ceiling, then checks the ledger is balanced. The table goes to stdout
//! (Markdown, fleet-bench's report code), progress to stderr. Nothing is asserted: targets are
//! marked met or missed.
//!
//! Settings: `FLOW_BENCH_PAYMENTS` (2,000), `FLOW_BENCH_TRANSFERS` (5,000), `FLOW_CONCURRENCY`
//! (64 here), `FLOW_DEADLINE_SECS` (900), and the fleet's `FLOW_PAYMENT_APIS`/`FLOW_WORKERS`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use fleet_bench::latency::{Latencies, Outcome};
use fleet_bench::report::{self, FlowRun};
use flow_tests::api::{Api, Call};
use flow_tests::checks;
use flow_tests::fleet::{Fleet, FleetOptions};
use flow_tests::flow::{self, Kind, World};
use flow_tests::knobs;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_fleet");
const PAYERS: usize = 32;

fn main() -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let deadline = knobs::deadline(Duration::from_secs(900));
    let result = rt.block_on(async {
        tokio::select! {
            r = tokio::time::timeout(deadline, run(Instant::now() + deadline)) => match r {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!("ran past its deadline ({deadline:?}; FLOW_DEADLINE_SECS)")),
            },
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(end: Instant) -> anyhow::Result<()> {
    let payments = knobs::number(knobs::BENCH_PAYMENTS, 2_000usize);
    let transfers = knobs::number(knobs::BENCH_TRANSFERS, 5_000usize);
    let concurrency = knobs::number(knobs::CONCURRENCY, 64usize);

    eprintln!("flow-bench: starting the fleet");
    let fleet = Arc::new(Fleet::start(FleetOptions::new(BIN)).await?);
    let api = Api::new(&fleet);
    let missing = flow::missing_endpoints(&api).await?;
    anyhow::ensure!(
        missing.is_empty(),
        "the payment flow's endpoints are not on this branch yet: {}",
        missing.join(", ")
    );

    eprintln!("flow-bench: {PAYERS} payers with funded wallets");
    let mut world = World::setup(&fleet, PAYERS, end).await?;
    // Follow payments closely: the latency is the client's.
    world.poll = (Duration::from_millis(10), Duration::from_millis(50));
    let world = Arc::new(world);

    eprintln!("flow-bench: {transfers} direct ledger transfers, {concurrency} in flight");
    let mut ledger = Vec::new();
    match ledger_api(&fleet, &api, transfers, concurrency, end).await {
        Ok(o) => ledger.push(("POST /transfers, one ledger API process".to_string(), o)),
        Err(e) => eprintln!("flow-bench: ledger API transfers not measured: {e:#}"),
    }
    match ledger_library(&fleet, transfers, concurrency.min(16)).await {
        Ok(o) => ledger.push(("ledger::book in process, SERIALIZABLE".to_string(), o)),
        Err(e) => eprintln!("flow-bench: ledger library transfers not measured: {e:#}"),
    }

    let warm: Vec<_> = (0..concurrency.min(50))
        .map(|i| world.plan(Kind::SameCurrency, 1_000_000 + i))
        .collect();
    eprintln!("flow-bench: {} warm-up payments", warm.len());
    world.pay_all(warm, concurrency, end).await;

    eprintln!("flow-bench: {payments} payments, {concurrency} in flight");
    let plans: Vec<_> = (0..payments)
        .map(|i| {
            // Same- and cross-currency alike: what users send.
            let kind = if i % 4 == 3 {
                Kind::CrossCurrency
            } else {
                Kind::SameCurrency
            };
            world.plan(kind, i)
        })
        .collect();
    let started = Instant::now();
    let outcomes = world.pay_all(plans, concurrency, end).await;
    let elapsed = started.elapsed();
    let mut lat = Latencies::default();
    let mut errors = 0;
    for o in &outcomes {
        match (o.state.as_str(), o.latency) {
            ("completed", Some(d)) => lat.record(d),
            _ => errors += 1,
        }
    }
    let payments_outcome = Outcome::from_samples(lat, errors, elapsed);

    eprintln!("flow-bench: money checks");
    let db = fleet.sql().await?;
    let checked = checks::all(&db, Duration::from_secs(30)).await?;
    let balanced = if checked.holds() {
        Ok(())
    } else {
        Err(checked.violations.join("\n"))
    };
    let run = FlowRun {
        payments: payments_outcome,
        ledger,
        balanced,
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("# flow-bench\n");
    println!(
        "Whole fleet as processes ({} of them; release build), {concurrency} payments in flight, {payments} payments (1 in 4 cross-currency) after {} warm-up; load average after: {}.\n",
        fleet.processes().len(),
        concurrency.min(50),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("{}\n", report::flow_table(&run));
    println!("Money checks:\n\n```\n{checked}```");
    Ok(())
}

/// Accounts the direct transfers go round (so they do not all queue on two rows).
const RING: usize = 32;

/// The ledger's raw rate through its API: `n` single-phase transfers round a ring of
/// accounts (`POST /transfers`, finance), `concurrency` at a time.
async fn ledger_api(
    fleet: &Fleet,
    api: &Api,
    n: usize,
    concurrency: usize,
    end: Instant,
) -> anyhow::Result<Outcome> {
    use futures_util::StreamExt;
    let finance = fleet.token("flow-bench-finance", &["finance"]);
    let mut ring = Vec::with_capacity(RING);
    for i in 0..RING {
        let id = uuid::Uuid::new_v4();
        api.expect_ok(
            &Call::post(
                "ledger",
                "/accounts",
                &finance,
                json!({"id": id, "currency": "USD", "reference": format!("flow-bench ring {i}")}),
            ),
            end,
        )
        .await
        .context("open a ledger account")?;
        ring.push(id);
    }
    let started = Instant::now();
    let samples: Vec<(Duration, bool)> = futures_util::stream::iter(0..n)
        .map(|i| {
            let body = json!({
                "id": uuid::Uuid::new_v4(),
                "debit_account_id": ring[i % RING],
                "credit_account_id": ring[(i + 1) % RING],
                "amount": 1,
                "currency": "USD",
                "reference": format!("flow-bench-{i}"),
            });
            let finance = finance.clone();
            async move {
                let t = Instant::now();
                let ok = api
                    .send(&Call::post("ledger", "/transfers", &finance, body), end)
                    .await
                    .map(|r| r.ok())
                    .unwrap_or(false);
                (t.elapsed(), ok)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut lat = Latencies::default();
    let mut errors = 0;
    for (d, ok) in samples {
        if ok {
            lat.record(d);
        } else {
            errors += 1;
        }
    }
    Ok(Outcome::from_samples(lat, errors, elapsed))
}

/// The ledger's raw rate through its library, as its own API and saga use it: `n` posted
/// transfers round a ring of accounts, each in its own SERIALIZABLE transaction
/// (`platform_common::db::serializable`), `concurrency` at a time on one pool.
async fn ledger_library(fleet: &Fleet, n: usize, concurrency: usize) -> anyhow::Result<Outcome> {
    use futures_util::StreamExt;
    use ledger::book::{self, AccountKind, AccountSpec, NewTransfer};
    let pool = platform_common::db::pool(&fleet.db, concurrency);
    let mut ring = Vec::with_capacity(RING);
    for _ in 0..RING {
        let id = uuid::Uuid::new_v4();
        let spec = AccountSpec {
            id,
            kind: AccountKind::General,
            owner: None,
            currency: "USD",
            debits_must_not_exceed_credits: false,
            credits_must_not_exceed_debits: false,
            reference: Some("flow-bench ring"),
        };
        let client = pool.get().await?;
        book::open_account(&client, &spec, "flow-bench")
            .await
            .map_err(|e| anyhow::anyhow!("open a ledger account: {e}"))?;
        ring.push(id);
    }
    let started = Instant::now();
    let samples: Vec<(Duration, bool)> = futures_util::stream::iter(0..n)
        .map(|i| {
            let t = NewTransfer::posted(
                uuid::Uuid::new_v4(),
                ring[i % RING],
                ring[(i + 1) % RING],
                1,
                "USD",
                Some("flow-bench"),
            );
            let pool = pool.clone();
            async move {
                let start = Instant::now();
                let r = platform_common::db::serializable(&pool, |tx| {
                    let t = t.clone();
                    Box::pin(async move { book::create_transfers(tx, &[t], "flow-bench").await })
                })
                .await;
                (start.elapsed(), r.is_ok())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut lat = Latencies::default();
    let mut errors = 0;
    for (d, ok) in samples {
        if ok {
            lat.record(d);
        } else {
            errors += 1;
        }
    }
    Ok(Outcome::from_samples(lat, errors, elapsed))
}
