//! Issue 15's reliability tests on the whole fleet (real Postgres, Redis and tansu; every
//! service as OS processes, several per role): `cargo test -p flow-tests`.
//!
//! Each test starts its own fleet; they take turns (one fleet at a time on 2 cores) and each is
//! bounded by a hard deadline (`FLOW_DEADLINE_SECS`). Nothing here asserts a duration.
//!
//! Settings: `FLOW_CHAOS_PAYMENTS` (1,000), `FLOW_CHAOS_KILL_EVERY_MS` (3,000),
//! `FLOW_CONCURRENCY` (16), `FLOW_PAYMENT_APIS` / `FLOW_WORKERS` (2), `FLOW_KEEP_LOGS=1`.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flow_tests::api::{Api, Call};
use flow_tests::chaos::Monkey;
use flow_tests::checks;
use flow_tests::fleet::{Fleet, FleetOptions, Role};
use flow_tests::flow::{self, Kind, World};
use flow_tests::knobs;

const BIN: &str = env!("CARGO_BIN_EXE_fleet");

/// One fleet at a time: a fleet is a dozen processes and three containers.
static ONE_FLEET: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a hold may stay pending past its timeout before the check calls it left behind:
/// the sweeper's period plus slack.
const HOLD_GRACE: Duration = Duration::from_secs(30);

/// Starts a fleet and runs `body` on it, the whole bounded by `deadline`. The fleet outlives a
/// timeout, so a test that runs out of time still prints the processes' logs.
async fn with_fleet<F, Fut>(opts: FleetOptions, deadline: Duration, body: F)
where
    F: FnOnce(Arc<Fleet>, Instant) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let _one = ONE_FLEET.lock().await;
    let end = Instant::now() + deadline;
    let fleet = match tokio::time::timeout(deadline, Fleet::start(opts)).await {
        Ok(Ok(f)) => Arc::new(f),
        Ok(Err(e)) => panic!("the fleet did not start: {e:#}"),
        Err(_) => panic!("the fleet did not start within the test's deadline ({deadline:?})"),
    };
    let result = tokio::time::timeout_at(end.into(), body(fleet.clone(), end)).await;
    let exited = fleet.exited().await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e:#}"),
        Err(_) => panic!("the test ran past its hard deadline ({deadline:?}; FLOW_DEADLINE_SECS)"),
    }
    assert!(
        exited.is_empty(),
        "processes exited on their own: {exited:?}"
    );
}

/// The endpoints the flow tests need; an `--ignored` run before they land says which.
async fn require_flow_endpoints(fleet: &Fleet) -> anyhow::Result<()> {
    let missing = flow::missing_endpoints(&Api::new(fleet)).await?;
    anyhow::ensure!(
        missing.is_empty(),
        "the payment flow's endpoints are not on this branch yet: {}",
        missing.join(", ")
    );
    Ok(())
}

async fn assert_money_checks(fleet: &Fleet) -> anyhow::Result<checks::Report> {
    let db = fleet.sql().await?;
    let report = checks::all(&db, HOLD_GRACE).await?;
    eprintln!("flow-tests: money checks:\n{report}");
    anyhow::ensure!(report.holds(), "money checks failed:\n{report}");
    Ok(report)
}

/// The harness itself: the fleet starts and is ready; a killed API process refuses while the
/// other one serves; a killed process comes back on its port; the checks hold on a fresh ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_starts_the_fleet_kills_and_restarts_processes() {
    let deadline = knobs::deadline(Duration::from_secs(300));
    with_fleet(FleetOptions::new(BIN), deadline, |fleet, end| async move {
        let procs = fleet.processes().to_vec();
        for service in [
            "payment",
            "ledger",
            "wallet",
            "forex",
            "rule-engine",
            "profile",
        ] {
            assert!(
                procs
                    .iter()
                    .any(|p| p.service == service && p.role == Role::Serve),
                "no {service} API"
            );
        }
        let payment_apis: Vec<_> = procs
            .iter()
            .filter(|p| p.service == "payment" && p.role == Role::Serve)
            .cloned()
            .collect();
        assert!(payment_apis.len() >= 2, "two payment APIs by default");
        for service in ["payment", "ledger"] {
            assert!(
                procs
                    .iter()
                    .filter(|p| p.service == service && p.role == Role::Worker)
                    .count()
                    >= 2,
                "two {service} workers by default"
            );
        }

        let http = reqwest::Client::new();
        let health = |url: String| {
            let http = http.clone();
            async move { http.get(format!("{url}/health")).send().await }
        };
        // kill -9 one payment API: it stops answering, the other still serves.
        let (a, b) = (&payment_apis[0], &payment_apis[1]);
        fleet.kill(a.index).await?;
        assert!(
            health(a.base_url()).await.is_err(),
            "{} still answers",
            a.name
        );
        assert!(health(b.base_url()).await?.status().is_success());
        // A client's request rotates to the live process.
        let api = Api::new(&fleet);
        let admin = fleet.token("flow-admin", &["admin"]);
        let me = api
            .expect_ok(&Call::get("payment", "/me", &admin), end)
            .await?;
        assert_eq!(me["user"]["username"], "flow-admin", "{me}");
        // Back on the same port, ready.
        fleet.restart(a.index).await?;
        assert!(health(a.base_url()).await?.status().is_success());
        assert_eq!(fleet.starts(a.index).await, 2);

        // Every worker role survives a kill -9 and a restart too.
        for p in procs.iter().filter(|p| p.role == Role::Worker) {
            fleet.kill(p.index).await?;
            fleet.restart(p.index).await?;
        }
        assert!(fleet.exited().await.is_empty());

        // The checks run (and hold) on the fresh ledger.
        assert_money_checks(&fleet).await?;
        Ok(())
    })
    .await;
}

/// The checks are not vacuous: money created outside a transfer is caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conservation_check_catches_money_created_outside_the_ledger() {
    let deadline = knobs::deadline(Duration::from_secs(300));
    let opts = FleetOptions::new(BIN)
        .processes("payment", Role::Serve, 0)
        .processes("payment", Role::Worker, 0)
        .processes("ledger", Role::Worker, 0)
        .processes("wallet", Role::Worker, 0)
        .processes("forex", Role::Worker, 0)
        .processes("forex", Role::Serve, 0)
        .processes("profile", Role::Serve, 0)
        .processes("rule-engine", Role::Serve, 0)
        .processes("wallet", Role::Serve, 0);
    with_fleet(opts, deadline, |fleet, _end| async move {
        let db = fleet.sql().await?;
        let clean = checks::all(&db, HOLD_GRACE).await?;
        assert!(clean.holds(), "{clean}");
        // One account credited from nowhere: every required column filled by its type.
        let required = db
            .query(
                "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = 'accounts' \
                 AND (is_nullable = 'NO' AND column_default IS NULL \
                      OR column_name IN ('currency', 'credits_posted'))",
                &[],
            )
            .await?;
        let (mut cols, mut values) = (Vec::new(), Vec::new());
        for r in required {
            let (col, ty): (String, String) = (r.get(0), r.get(1));
            let value = match (col.as_str(), ty.as_str()) {
                ("currency", _) => "'USD'",
                ("kind", _) => "'wallet'",
                ("credits_posted", _) => "500",
                (_, "uuid") => "gen_random_uuid()",
                (_, "boolean") => "false",
                (_, "bigint" | "integer" | "smallint" | "numeric") => "0",
                (_, t) if t.starts_with("timestamp") => "now()",
                _ => "'flow-tests'",
            };
            cols.push(col);
            values.push(value);
        }
        db.execute(
            &format!(
                "INSERT INTO accounts ({}) VALUES ({})",
                cols.join(", "),
                values.join(", ")
            ),
            &[],
        )
        .await?;
        let dirty = checks::all(&db, HOLD_GRACE).await?;
        assert!(
            !dirty.holds(),
            "500 USD from nowhere went unnoticed:\n{dirty}"
        );
        assert!(
            dirty.violations.iter().any(|v| v.starts_with("USD")),
            "{dirty}"
        );
        Ok(())
    })
    .await;
}

/// A few payments of each kind, then every money check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conservation() {
    let deadline = knobs::deadline(Duration::from_secs(300));
    with_fleet(FleetOptions::new(BIN), deadline, |fleet, end| async move {
        require_flow_endpoints(&fleet).await?;
        let world = Arc::new(World::setup(&fleet, 3, end).await?);
        let mut plans = Vec::new();
        for (i, kind) in Kind::ALL
            .iter()
            .cycle()
            .take(3 * Kind::ALL.len())
            .enumerate()
        {
            plans.push(world.plan(*kind, i));
        }
        let outcomes = world.pay_all(plans, 5, end).await;
        let tally = flow::Tally::of(&outcomes);
        eprintln!("flow-tests: conservation payments:\n{}", tally.summary());
        anyhow::ensure!(
            tally.problems.is_empty(),
            "payments that did not end as expected:\n{}",
            tally.problems.join("\n")
        );
        assert_money_checks(&fleet).await?;
        Ok(())
    })
    .await;
}

/// 1,000 payments of every kind while a monkey kills -9 a random payment, ledger, wallet or
/// forex process (API or worker) every few seconds and restarts it.
///
/// Workers are static consumer-group members (`KAFKA_GROUP_INSTANCE_ID` = the process name):
/// a restarted worker takes its partitions back without a rebalance. With dynamic members,
/// tansu 0.6's coordinator loses partitions after a crash (a member whose session expires
/// is dropped on a heartbeat while the group stays formed with its assignment, or stays
/// leader of the next generation), and the groups stop consuming for minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos() {
    let payments = knobs::number(knobs::CHAOS_PAYMENTS, 1_000usize);
    let every = Duration::from_millis(knobs::number(knobs::CHAOS_KILL_EVERY_MS, 3_000u64));
    let concurrency = knobs::number(knobs::CONCURRENCY, 16usize);
    // About 4 minutes here (2 cores); CI-bounded at 8.
    let deadline = knobs::deadline(Duration::from_secs(480));
    with_fleet(FleetOptions::new(BIN), deadline, |fleet, end| async move {
        require_flow_endpoints(&fleet).await?;
        let world = Arc::new(World::setup(&fleet, 20, end).await?);
        let plans: Vec<_> = flow::mix(payments, 15)
            .into_iter()
            .enumerate()
            .map(|(i, k)| world.plan(k, i))
            .collect();
        let targets: Vec<usize> = fleet
            .processes()
            .iter()
            .filter(|p| ["payment", "ledger", "wallet", "forex"].contains(&p.service))
            .map(|p| p.index)
            .collect();
        let monkey = Monkey::start(fleet.clone(), targets, every, 15);
        // Clients stop with time left for the checks.
        let clients_end = end - Duration::from_secs(30).min((end - Instant::now()) / 4);
        let started = Instant::now();
        let outcomes = world.pay_all(plans, concurrency, clients_end).await;
        let kills = monkey.stop().await;
        let tally = flow::Tally::under_chaos(&outcomes);
        eprintln!(
            "flow-tests: chaos: {} payments in {:.0} s, {} kills, {} client retries:\n{}",
            outcomes.len(),
            started.elapsed().as_secs_f64(),
            kills.len(),
            world.api.retries.load(std::sync::atomic::Ordering::Relaxed),
            tally.summary()
        );
        let failed_restarts: Vec<_> = kills.iter().filter(|k| k.restart.is_err()).collect();
        anyhow::ensure!(
            failed_restarts.is_empty(),
            "processes did not come back: {failed_restarts:?}"
        );
        anyhow::ensure!(
            !kills.is_empty() || every > Duration::from_secs(60),
            "nothing was killed"
        );
        anyhow::ensure!(
            tally.problems.is_empty(),
            "{} payment(s) did not end as expected:\n{}",
            tally.problems.len(),
            tally
                .problems
                .iter()
                .take(50)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
        let ids: HashSet<_> = outcomes.iter().filter_map(|o| o.id.clone()).collect();
        anyhow::ensure!(ids.len() == outcomes.len(), "one payment per key");
        assert_money_checks(&fleet).await?;
        Ok(())
    })
    .await;
}

/// The same `Idempotency-Key` sent 20 times at once makes one payment and one velocity count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency() {
    let deadline = knobs::deadline(Duration::from_secs(300));
    with_fleet(FleetOptions::new(BIN), deadline, |fleet, end| async move {
        require_flow_endpoints(&fleet).await?;
        let world = Arc::new(World::setup(&fleet, 1, end).await?);
        let plan = world.plan(Kind::SameCurrency, 0);
        let body = plan.body();
        let sends = (0..20).map(|attempt| {
            let (world, plan, body) = (world.clone(), plan.clone(), body.clone());
            async move {
                let call = Call::post("payment", "/payments", &plan.payer.token, body)
                    .key(plan.key.clone());
                // Each attempt goes to the next API process: both payment APIs see the key.
                world.api.once(&call, attempt).await
            }
        });
        let replies = futures_util::future::join_all(sends).await;
        let mut ids = HashSet::new();
        for r in &replies {
            let r = r.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
            // A duplicate that arrives while the first is being recorded may be told so (409)
            // rather than wait; any other answer is wrong.
            anyhow::ensure!(
                r.ok() || r.status == 409,
                "a duplicate answered {}: {}",
                r.status,
                r.body
            );
            if let Some(id) = r.body.get("id").and_then(|v| v.as_str()) {
                ids.insert(id.to_string());
            }
        }
        anyhow::ensure!(ids.len() == 1, "20 sends of one key answered ids {ids:?}");
        let db = fleet.sql().await?;
        let rows: i64 = db
            .query_one("SELECT count(*) FROM payments", &[])
            .await?
            .get(0);
        anyhow::ensure!(rows == 1, "{rows} payments recorded for one key");
        // The rule engine's velocity window: one counted evaluation per payment.
        let counted: i64 = db
            .query_one(
                "SELECT count(*) FROM evaluations WHERE user_id = $1 AND currency = $2 AND counted",
                &[&plan.payer.user, &plan.currency],
            )
            .await?
            .get(0);
        anyhow::ensure!(
            counted == 1,
            "the velocity window of {} counted {counted} payments",
            plan.payer.user
        );

        // The payment still completes once, and the money checks hold.
        let out = world.pay(&plan, end).await;
        anyhow::ensure!(
            out.error.is_none() && out.state == "completed",
            "the payment ended {:?}: {:?}",
            out.state,
            out.error
        );
        anyhow::ensure!(
            ids.contains(out.id.as_deref().unwrap_or("")),
            "a retry made another payment"
        );
        assert_money_checks(&fleet).await?;
        Ok(())
    })
    .await;
}
