//! The payment flow as clients drive it: users with funded wallets (a manual credit requested
//! by one finance user and approved by another), payments of every kind the issue names, and
//! each payment followed until it ends.
//!
//! API shapes (issue 15): wallet `POST /wallets {currency}`, `POST /wallets/{id}/credit-requests
//! {amount, reference}`, `POST /credit-requests/{id}/approve`; payment `POST /payments {amount,
//! currency, payee_wallet_id, description}` with `Idempotency-Key`, `GET /payments/{id}` ->
//! `{id, state, failure_reason, history}`, `POST /payments/{id}/review {decision}`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::api::{Api, Call, Reply};
use crate::fleet::Fleet;

/// The endpoints the flow needs, by service: a test whose endpoints are missing says which.
pub const NEEDED: &[(&str, &str)] = &[
    ("wallet", "/wallets"),
    ("wallet", "/wallets/{id}/credit-requests"),
    ("wallet", "/credit-requests/{id}/approve"),
    ("payment", "/payments"),
    ("payment", "/payments/{id}"),
    ("payment", "/payments/{id}/review"),
];

/// The endpoints of [`NEEDED`] the running fleet does not serve (from each `/openapi.json`).
pub async fn missing_endpoints(api: &Api) -> anyhow::Result<Vec<String>> {
    let mut missing = Vec::new();
    let mut cache: HashMap<&str, Vec<String>> = HashMap::new();
    for (service, path) in NEEDED {
        if !cache.contains_key(service) {
            cache.insert(service, api.paths(service).await?);
        }
        if !cache[service].iter().any(|p| p == path) {
            missing.push(format!("{service} {path}"));
        }
    }
    Ok(missing)
}

/// Final payment states.
pub const FINAL: &[&str] = &["completed", "failed", "rejected"];

/// Minor units every payer wallet is credited with (per currency).
pub const FUNDING: i64 = 50_000_000;
/// An ordinary payment's amount range (below the user role's review threshold).
const SMALL: std::ops::Range<i64> = 100..20_000;
/// Above the user role's review threshold (500,000) and below its limit (1,000,000).
const REVIEWED: i64 = 600_000;
/// Above the user role's limit: denied by the rule engine.
const DENIED: i64 = 2_000_000;

/// The kinds of payment the chaos test mixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    SameCurrency,
    CrossCurrency,
    Rejected,
    ReviewApproved,
    InsufficientFunds,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::SameCurrency,
        Kind::CrossCurrency,
        Kind::Rejected,
        Kind::ReviewApproved,
        Kind::InsufficientFunds,
    ];

    /// The state this kind of payment must end in.
    pub fn expected(self) -> &'static str {
        match self {
            Kind::SameCurrency | Kind::CrossCurrency | Kind::ReviewApproved => "completed",
            Kind::Rejected => "rejected",
            Kind::InsufficientFunds => "failed",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SameCurrency => "same-currency",
            Kind::CrossCurrency => "cross-currency",
            Kind::Rejected => "rejected",
            Kind::ReviewApproved => "review-then-approved",
            Kind::InsufficientFunds => "insufficient funds",
        }
    }
}

/// `n` kinds in a fixed, shuffled mix: 45 % same-currency, 25 % cross-currency, 10 % each of
/// rejected, reviewed-then-approved and insufficient funds (at least one of each when n >= 5).
pub fn mix(n: usize, seed: u64) -> Vec<Kind> {
    let share = |pct: usize| (n * pct / 100).max(usize::from(n >= 5));
    let mut kinds = Vec::with_capacity(n);
    for (kind, pct) in [
        (Kind::CrossCurrency, 25),
        (Kind::Rejected, 10),
        (Kind::ReviewApproved, 10),
        (Kind::InsufficientFunds, 10),
    ] {
        kinds.extend(std::iter::repeat_n(kind, share(pct)));
    }
    kinds.truncate(n);
    kinds.resize(n, Kind::SameCurrency);
    fastrand::Rng::with_seed(seed).shuffle(&mut kinds);
    kinds
}

/// A user and their wallets, by currency.
#[derive(Debug, Clone)]
pub struct Party {
    pub user: String,
    pub token: String,
    pub wallets: HashMap<String, String>,
}

/// Everyone the flow needs, set up and funded.
pub struct World {
    pub api: Api,
    pub payers: Vec<Party>,
    /// A payer whose wallets hold nothing.
    pub broke: Party,
    pub payee: Party,
    pub finance: String,
    pub finance_approver: String,
    pub ops: String,
    pub admin: String,
    /// Distinguishes this run's idempotency keys.
    pub run: String,
    /// How often a client looks at its payment: the first interval, growing by half to the
    /// second.
    pub poll: (Duration, Duration),
}

/// Currencies payers hold; cross-currency payments go from one to the other.
pub const CURRENCIES: [&str; 2] = ["USD", "EUR"];

impl World {
    /// Creates `payers` paying users with a USD and a EUR wallet each, funded through
    /// two-person manual credits, a broke user, a payee, and lifts the velocity limits so the
    /// run's volume is not itself reviewed (the idempotency test checks velocity counts).
    pub async fn setup(fleet: &Fleet, payers: usize, deadline: Instant) -> anyhow::Result<Self> {
        let api = Api::new(fleet);
        let admin = fleet.token("flow-admin", &["admin"]);
        let finance = fleet.token("flow-finance-a", &["finance"]);
        let finance_approver = fleet.token("flow-finance-b", &["finance"]);
        let ops = fleet.token("flow-ops", &["ops_user"]);
        for cur in CURRENCIES {
            api.expect_ok(
                &Call::put(
                    "rule-engine",
                    format!("/rules/velocity/{cur}"),
                    &admin,
                    json!({"window_seconds": 3600, "max_count": 1_000_000_000i64,
                           "max_total": 1_000_000_000_000_000i64}),
                ),
                deadline,
            )
            .await
            .context("lift the velocity limits")?;
        }
        let party = |name: String| {
            let api = api.clone();
            let token = fleet.token(&name, &["user"]);
            async move {
                let mut wallets = HashMap::new();
                for cur in CURRENCIES {
                    let w = api
                        .expect_ok(
                            &Call::post("wallet", "/wallets", &token, json!({"currency": cur})),
                            deadline,
                        )
                        .await
                        .with_context(|| format!("create {name}'s {cur} wallet"))?;
                    let id = w
                        .get("id")
                        .and_then(Value::as_str)
                        .context("a wallet has an id")?;
                    wallets.insert(cur.to_string(), id.to_string());
                }
                anyhow::Ok(Party {
                    user: name,
                    token,
                    wallets,
                })
            }
        };
        let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        let mut created = Vec::new();
        for i in 0..payers {
            created.push(party(format!("flow-payer-{i}")));
        }
        let payers = futures_util::future::try_join_all(created).await?;
        let broke = party("flow-broke".into()).await?;
        let payee = party("flow-payee".into()).await?;
        let world = Self {
            api,
            payers,
            broke,
            payee,
            finance,
            finance_approver,
            ops,
            admin,
            run,
            poll: (Duration::from_millis(50), Duration::from_millis(500)),
        };
        let credits = world.payers.iter().flat_map(|p| {
            p.wallets
                .values()
                .map(|w| world.credit(w, FUNDING, deadline))
        });
        futures_util::future::try_join_all(credits).await?;
        Ok(world)
    }

    /// A manual credit of `amount` to `wallet`: requested by one finance user, approved by
    /// another.
    pub async fn credit(&self, wallet: &str, amount: i64, deadline: Instant) -> anyhow::Result<()> {
        let reference = format!("flow-funding-{}", uuid::Uuid::new_v4().simple());
        let request = self
            .api
            .expect_ok(
                &Call::post(
                    "wallet",
                    format!("/wallets/{wallet}/credit-requests"),
                    &self.finance,
                    json!({"amount": amount, "reference": reference}),
                )
                .key(reference.clone()),
                deadline,
            )
            .await
            .context("request a manual credit")?;
        let id = request
            .get("id")
            .and_then(Value::as_str)
            .context("a credit request has an id")?;
        let approved = self
            .api
            .send(
                &Call::post(
                    "wallet",
                    format!("/credit-requests/{id}/approve"),
                    &self.finance_approver,
                    json!({}),
                ),
                deadline,
            )
            .await?;
        // 409: an earlier attempt of this approval went through.
        if !approved.ok() && approved.status != 409 {
            bail!(
                "approving credit request {id} answered {}: {}",
                approved.status,
                approved.body
            );
        }
        Ok(())
    }

    /// The payer, currencies and amount of payment `i` of `kind`.
    pub fn plan(&self, kind: Kind, i: usize) -> Plan {
        let mut rng = fastrand::Rng::with_seed(i as u64);
        let payer = match kind {
            Kind::InsufficientFunds => self.broke.clone(),
            _ => self.payers[i % self.payers.len()].clone(),
        };
        let currency = CURRENCIES[i % 2];
        let payee_currency = match kind {
            Kind::CrossCurrency => CURRENCIES[(i + 1) % 2],
            _ => currency,
        };
        let amount = match kind {
            Kind::Rejected => DENIED,
            Kind::ReviewApproved => REVIEWED,
            _ => rng.i64(SMALL),
        };
        Plan {
            key: format!("flow-{}-{i}", self.run),
            payee_wallet: self.payee.wallets[payee_currency].clone(),
            payer,
            currency: currency.to_string(),
            amount,
            kind,
        }
    }

    /// Drives one payment like a client: initiates it (sent again with the same
    /// `Idempotency-Key` until the API answers), approves it when it waits for review and
    /// should be approved, then follows it until a final state or `deadline`.
    pub async fn pay(&self, plan: &Plan, deadline: Instant) -> Outcome {
        let started = Instant::now();
        let mut out = Outcome {
            kind: plan.kind,
            key: plan.key.clone(),
            id: None,
            state: String::new(),
            failure_reason: None,
            latency: None,
            error: None,
            history: Value::Null,
        };
        let body = plan.body();
        let created = self
            .api
            .send(
                &Call::post("payment", "/payments", &plan.payer.token, body).key(plan.key.clone()),
                deadline,
            )
            .await;
        let created = match created {
            Ok(r) if r.ok() => r,
            Ok(r) => {
                out.error = Some(format!("POST /payments answered {}: {}", r.status, r.body));
                return out;
            }
            Err(e) => {
                out.error = Some(format!("POST /payments: {e:#}"));
                return out;
            }
        };
        let Some(id) = created.body.get("id").and_then(Value::as_str) else {
            out.error = Some(format!(
                "POST /payments answered without an id: {}",
                created.body
            ));
            return out;
        };
        out.id = Some(id.to_string());
        out.state = state_of(&created).to_string();
        let mut reviewed = false;
        let mut poll = self.poll.0;
        loop {
            if out.state == "pending_review" && plan.kind == Kind::ReviewApproved && !reviewed {
                match self
                    .api
                    .send(
                        &Call::post(
                            "payment",
                            format!("/payments/{id}/review"),
                            &self.ops,
                            json!({"decision": "approve"}),
                        ),
                        deadline,
                    )
                    .await
                {
                    Ok(r) if r.ok() || r.status == 409 => reviewed = true,
                    Ok(r) => {
                        out.error = Some(format!("review answered {}: {}", r.status, r.body));
                        return out;
                    }
                    Err(e) => {
                        out.error = Some(format!("review: {e:#}"));
                        return out;
                    }
                }
            }
            if FINAL.contains(&out.state.as_str()) {
                out.latency = Some(started.elapsed());
                return out;
            }
            if Instant::now() >= deadline {
                out.error = Some(format!("still `{}` at the deadline", out.state));
                return out;
            }
            tokio::time::sleep(poll).await;
            poll = (poll * 3 / 2).min(self.poll.1);
            match self
                .api
                .send(
                    &Call::get("payment", format!("/payments/{id}"), &plan.payer.token),
                    deadline,
                )
                .await
            {
                Ok(r) if r.ok() => {
                    out.state = state_of(&r).to_string();
                    out.failure_reason = r
                        .body
                        .get("failure_reason")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    out.history = r.body.get("history").cloned().unwrap_or(Value::Null);
                }
                Ok(_) | Err(_) => {}
            }
        }
    }

    /// Runs `plans` with at most `concurrency` in flight.
    pub async fn pay_all(
        self: &Arc<Self>,
        plans: Vec<Plan>,
        concurrency: usize,
        deadline: Instant,
    ) -> Vec<Outcome> {
        use futures_util::StreamExt;
        let total = plans.len();
        let started = Instant::now();
        let mut outcomes = Vec::with_capacity(total);
        let mut ended = futures_util::stream::iter(plans)
            .map(|plan| {
                let world = self.clone();
                async move { world.pay(&plan, deadline).await }
            })
            .buffer_unordered(concurrency.max(1));
        while let Some(o) = ended.next().await {
            outcomes.push(o);
            if total >= 100 && outcomes.len() % (total / 10) == 0 {
                eprintln!(
                    "flow-tests: {}/{total} payments ended after {:.0} s",
                    outcomes.len(),
                    started.elapsed().as_secs_f64()
                );
            }
        }
        outcomes
    }
}

/// The `state` of a payment body (`status` before issue 15).
fn state_of(r: &Reply) -> &str {
    let s = r.str("state");
    if s.is_empty() { r.str("status") } else { s }
}

/// One payment to make.
#[derive(Debug, Clone)]
pub struct Plan {
    pub key: String,
    pub payer: Party,
    pub payee_wallet: String,
    pub currency: String,
    pub amount: i64,
    pub kind: Kind,
}

impl Plan {
    /// The `POST /payments` body: every retry sends exactly this.
    pub fn body(&self) -> Value {
        json!({
            "amount": self.amount,
            "currency": self.currency,
            "payee_wallet_id": self.payee_wallet,
            "description": format!("flow-tests {}", self.kind.as_str()),
        })
    }
}

/// How one payment ended, as its client saw it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub kind: Kind,
    pub key: String,
    pub id: Option<String>,
    pub state: String,
    pub failure_reason: Option<String>,
    /// From the first `POST` to seeing the final state.
    pub latency: Option<Duration>,
    /// Why the client gave up (no id, no final state by the deadline).
    pub error: Option<String>,
    pub history: Value,
}

/// What a batch of outcomes says: count per kind and state, and every outcome that is wrong
/// (no final state, another state than its kind's, two payments for one key).
#[derive(Debug, Default)]
pub struct Tally {
    pub by_kind: std::collections::BTreeMap<(Kind, String), usize>,
    /// Under chaos: payments that should have completed and failed instead, by reason.
    pub failed_by_reason: std::collections::BTreeMap<String, usize>,
    pub problems: Vec<String>,
}

impl Tally {
    /// Every payment must end in its kind's state.
    pub fn of(outcomes: &[Outcome]) -> Self {
        Self::count(outcomes, false)
    }

    /// Under chaos: a payment that should complete may end `failed` with a reason (its hold
    /// timed out while the ledger was down, say) — it ended, and the money checks still hold;
    /// every other outcome must be its kind's, and each kind must reach its state at least once.
    pub fn under_chaos(outcomes: &[Outcome]) -> Self {
        Self::count(outcomes, true)
    }

    fn count(outcomes: &[Outcome], chaos: bool) -> Self {
        let mut t = Tally::default();
        let mut ids: HashMap<&str, &str> = HashMap::new();
        for o in outcomes {
            *t.by_kind.entry((o.kind, o.state.clone())).or_default() += 1;
            if let Some(e) = &o.error {
                t.problems
                    .push(format!("{} ({}): {e}", o.key, o.kind.as_str()));
            } else if chaos
                && o.kind.expected() == "completed"
                && o.state == "failed"
                && o.failure_reason.is_some()
            {
                *t.failed_by_reason
                    .entry(o.failure_reason.clone().unwrap_or_default())
                    .or_default() += 1;
            } else if o.state != o.kind.expected()
                || (o.kind == Kind::InsufficientFunds
                    && o.failure_reason.as_deref() != Some("insufficient_funds"))
            {
                t.problems.push(format!(
                    "{} ({}, payment {}): ended `{}` (reason {:?}), expected `{}`",
                    o.key,
                    o.kind.as_str(),
                    o.id.as_deref().unwrap_or("?"),
                    o.state,
                    o.failure_reason,
                    o.kind.expected()
                ));
            }
            if let Some(id) = &o.id
                && let Some(other) = ids.insert(id, &o.key)
            {
                t.problems
                    .push(format!("payment {id} answered both {other} and {}", o.key));
            }
        }
        if chaos {
            for kind in Kind::ALL {
                let planned = outcomes.iter().any(|o| o.kind == kind);
                if planned && !t.by_kind.contains_key(&(kind, kind.expected().to_string())) {
                    t.problems.push(format!(
                        "no {} payment ended `{}`",
                        kind.as_str(),
                        kind.expected()
                    ));
                }
            }
        }
        t
    }

    pub fn summary(&self) -> String {
        let mut s = String::new();
        for ((kind, state), n) in &self.by_kind {
            s.push_str(&format!("  {:<22} {:<16} {n}\n", kind.as_str(), state));
        }
        for (reason, n) in &self.failed_by_reason {
            s.push_str(&format!("  failed instead of completed, {reason}: {n}\n"));
        }
        s
    }
}
