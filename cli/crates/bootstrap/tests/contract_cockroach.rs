//! Recorded contract for `cockroach init` on the compose `cluster` profile: no Cockroach
//! binary exists here, so a fake [`Exec`] records every command and answers as CockroachDB
//! documents it: `Cluster successfully initialized` (exit 0) the first time, `ERROR: cluster
//! has already been initialized` (exit 1) afterwards, `ERROR: cannot dial server.` …
//! `connect: connection refused` (exit 1) while a node is not listening, and
//! `node status --format=csv` with the header
//! `id,address,sql_address,build,started_at,updated_at,locality,is_available,is_live`.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use finctl_bootstrap::Action;
use finctl_bootstrap::cockroach::{Exec, init_cluster};

const CANNOT_DIAL: &str = "ERROR: cannot dial server.
Is the server running?
If the server is running, check --host client-side and --advertise server-side.

dial tcp 172.18.0.2:26257: connect: connection refused
Failed running \"init\"
";
const HEADER: &str =
    "id,address,sql_address,build,started_at,updated_at,locality,is_available,is_live";

struct Node {
    host: &'static str,
    live: bool,
    locality: &'static str,
}

#[derive(Default)]
struct State {
    calls: Vec<(String, Vec<String>)>,
    initialized: bool,
    /// How many more commands are answered "connection refused" (roach1 still starting).
    refuse: usize,
    /// The nodes that have joined (listed by `node status`).
    joined: Vec<Node>,
}

#[derive(Default)]
struct FakeCockroach(Mutex<State>);

impl FakeCockroach {
    fn new(joined: &[&'static str]) -> Self {
        let fake = Self::default();
        fake.0.lock().unwrap().joined = joined
            .iter()
            .map(|h| Node {
                host: h,
                live: true,
                locality: "",
            })
            .collect();
        fake
    }

    fn calls(&self) -> Vec<(String, String)> {
        self.0
            .lock()
            .unwrap()
            .calls
            .iter()
            .map(|(c, cmd)| (c.clone(), cmd.join(" ")))
            .collect()
    }
}

#[async_trait]
impl Exec for FakeCockroach {
    async fn exec(&self, container: &str, cmd: &[String]) -> anyhow::Result<(i64, String)> {
        let mut s = self.0.lock().unwrap();
        s.calls.push((container.to_string(), cmd.to_vec()));
        if s.refuse > 0 {
            s.refuse -= 1;
            return Ok((1, CANNOT_DIAL.to_string()));
        }
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["cockroach", "init", ..] => {
                if s.initialized {
                    Ok((
                        1,
                        "ERROR: cluster has already been initialized\nFailed running \"init\"\n"
                            .into(),
                    ))
                } else {
                    s.initialized = true;
                    Ok((0, "Cluster successfully initialized\n".into()))
                }
            }
            ["cockroach", "node", "status", ..] => {
                let mut out = format!("{HEADER}\n");
                for (i, n) in s.joined.iter().enumerate() {
                    out.push_str(&format!(
                        "{id},{h}:26257,{h}:26257,v24.1.0,2026-12-03 07:00:00.000000,2026-12-03 07:00:0{id}.000000,\"{loc}\",{live},{live}\n",
                        id = i + 1,
                        h = n.host,
                        loc = n.locality,
                        live = n.live,
                    ));
                }
                Ok((0, out))
            }
            _ => Ok((1, format!("Error: unknown command {:?}\n", args))),
        }
    }
}

fn nodes() -> Vec<String> {
    ["roach1", "roach2", "roach3"].map(String::from).to_vec()
}

const INIT: &str = "cockroach init --insecure --host=roach1:26257";
const STATUS: &str = "cockroach node status --insecure --host=roach1:26257 --format=csv";

#[tokio::test]
async fn contract_cockroach_first_init_creates() {
    let fake = FakeCockroach::new(&["roach1", "roach2", "roach3"]);
    let change = init_cluster(&fake, &nodes(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(change.part, "database");
    assert_eq!(change.kind, "cluster");
    assert_eq!(change.action, Action::Create);
    assert_eq!(
        fake.calls(),
        vec![
            ("roach1".to_string(), INIT.to_string()),
            ("roach1".to_string(), STATUS.to_string()),
        ]
    );
}

#[tokio::test]
async fn contract_cockroach_already_initialized_is_unchanged() {
    let fake = FakeCockroach::new(&["roach1", "roach2", "roach3"]);
    init_cluster(&fake, &nodes(), Duration::from_secs(5))
        .await
        .unwrap();
    // The second run meets the documented exit 1 "already initialized": success, unchanged.
    let change = init_cluster(&fake, &nodes(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(change.action, Action::Unchanged);
    let inits = fake.calls().iter().filter(|(_, c)| c == INIT).count();
    assert_eq!(inits, 2, "init is tried once per run, never repeated");
}

#[tokio::test]
async fn contract_cockroach_node_that_never_joins_fails_after_the_timeout() {
    let fake = FakeCockroach::new(&["roach1"]);
    {
        let mut s = fake.0.lock().unwrap();
        // roach2 joined once but is down now; its locality has a comma, quoted in CSV.
        s.joined.push(Node {
            host: "roach2",
            live: false,
            locality: "region=eu,zone=a",
        });
    }
    let timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let err = init_cluster(&fake, &nodes(), timeout)
        .await
        .unwrap_err()
        .to_string();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(err.contains("roach2, roach3"), "{err}");
    assert!(err.contains("did not join"), "{err}");
    assert!(err.contains("300ms"), "{err}");
    assert!(err.contains("live: roach1"), "{err}");
    let polls = fake.calls().iter().filter(|(_, c)| c == STATUS).count();
    assert!(
        polls > 2,
        "node status is polled until the timeout ({polls})"
    );
}

#[tokio::test]
async fn contract_cockroach_refused_connection_is_retried_until_the_timeout() {
    // roach1 is still starting: three refusals, then it answers.
    let fake = FakeCockroach::new(&["roach1", "roach2", "roach3"]);
    fake.0.lock().unwrap().refuse = 3;
    let change = init_cluster(&fake, &nodes(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(change.action, Action::Create);
    let calls = fake.calls();
    assert_eq!(calls.iter().filter(|(_, c)| c == INIT).count(), 4);
    assert_eq!(calls.last().map(|(_, c)| c.as_str()), Some(STATUS));

    // Never up: an error after the timeout that says what Cockroach said.
    let fake = FakeCockroach::new(&["roach1", "roach2", "roach3"]);
    fake.0.lock().unwrap().refuse = usize::MAX;
    let started = std::time::Instant::now();
    let err = init_cluster(&fake, &nodes(), Duration::from_millis(200))
        .await
        .unwrap_err()
        .to_string();
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(err.contains("roach1"), "{err}");
    assert!(err.contains("connection refused"), "{err}");
    assert!(err.contains("200ms"), "{err}");
    assert!(fake.calls().iter().all(|(_, c)| c == INIT));
    assert!(fake.calls().len() > 2);
}

#[tokio::test]
async fn contract_cockroach_other_failures_are_not_retried() {
    struct Broken;
    #[async_trait]
    impl Exec for Broken {
        async fn exec(&self, _: &str, _: &[String]) -> anyhow::Result<(i64, String)> {
            Ok((
                1,
                "ERROR: failed to connect to the node: TLS handshake error\nFailed running \"init\"\n"
                    .into(),
            ))
        }
    }
    let err = init_cluster(&Broken, &nodes(), Duration::from_secs(5))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("exit 1"), "{err}");
    assert!(err.contains("TLS handshake error"), "{err}");
}
