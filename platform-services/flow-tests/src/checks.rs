//! The money checks, over SQL on the fleet's one database, reusable after any test: each
//! returns what it found wrong (empty when it holds) so a test can print every violation at once.
//!
//! Written against issue 15's ledger (`ledger::book`): accounts of kind wallet, settlement or
//! liquidity with `debits_pending`, `debits_posted`, `credits_pending`, `credits_posted`;
//! deposits are transfers settlement -> wallet, withdrawals wallet -> settlement.

use std::collections::BTreeMap;
use std::fmt;

use tokio_postgres::Client;

/// One currency's totals over every ledger account, in minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub accounts: i64,
    /// Sum over all accounts of `credits_posted - debits_posted`: zero when money is conserved.
    pub net_posted: i64,
    /// Sum of the posted balances of every account but the settlement ones: wallets and
    /// liquidity (and any `general` account finance opened).
    pub wallets_and_liquidity: i64,
    /// Posted balance of the settlement account(s).
    pub settlement: i64,
    /// Posted transfers settlement -> wallet, and wallet -> settlement.
    pub deposits: i64,
    pub withdrawals: i64,
    /// Sums of `debits_pending` and `credits_pending`: what holds in flight reserve.
    pub debits_pending: i64,
    pub credits_pending: i64,
}

/// What the checks found, per currency, and every violation.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub currencies: BTreeMap<String, Totals>,
    pub violations: Vec<String>,
}

impl Report {
    pub fn holds(&self) -> bool {
        self.violations.is_empty()
    }

    /// Panics with every violation and the totals when something does not hold.
    pub fn assert_holds(&self) {
        assert!(self.holds(), "money checks failed:\n{self}");
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (cur, t) in &self.currencies {
            writeln!(
                f,
                "{cur}: {} accounts, net posted {}, wallets+liquidity {}, settlement {}, deposits {} - withdrawals {} = {}, pending debits {} credits {}",
                t.accounts,
                t.net_posted,
                t.wallets_and_liquidity,
                t.settlement,
                t.deposits,
                t.withdrawals,
                t.deposits - t.withdrawals,
                t.debits_pending,
                t.credits_pending
            )?;
        }
        for v in &self.violations {
            writeln!(f, "VIOLATION: {v}")?;
        }
        Ok(())
    }
}

/// Whether `table.column` exists (the checks adapt to what the ledger has).
pub async fn has_column(db: &Client, table: &str, column: &str) -> anyhow::Result<bool> {
    let row = db
        .query_one(
            "SELECT count(*) FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2",
            &[&table, &column],
        )
        .await?;
    Ok(row.get::<_, i64>(0) > 0)
}

/// Conservation per currency: the sum over all accounts of `credits_posted - debits_posted`
/// is zero, and wallets + liquidity = deposits - withdrawals = -(settlement balance); no
/// account's pending columns are negative.
pub async fn conservation(db: &Client, report: &mut Report) -> anyhow::Result<()> {
    if !has_column(db, "accounts", "credits_posted").await? {
        report
            .violations
            .push("no ledger accounts table (accounts.credits_posted) in the database".into());
        return Ok(());
    }
    let rows = db
        .query(
            "SELECT currency, count(*)::BIGINT, \
                    COALESCE(sum(credits_posted - debits_posted), 0)::BIGINT \
             FROM accounts GROUP BY currency ORDER BY currency",
            &[],
        )
        .await?;
    for r in rows {
        let cur: String = r.get(0);
        let t = report.currencies.entry(cur.clone()).or_default();
        t.accounts = r.get(1);
        t.net_posted = r.get(2);
        if t.net_posted != 0 {
            report.violations.push(format!(
                "{cur}: the sum over all accounts of credits_posted - debits_posted is {}, not 0",
                t.net_posted
            ));
        }
    }
    if !has_column(db, "accounts", "kind").await? {
        // A ledger without account kinds (before issue 15): only the sum can be checked.
        return Ok(());
    }
    let rows = db
        .query(
            "SELECT currency, \
               COALESCE(sum(CASE WHEN kind <> 'settlement' THEN credits_posted - debits_posted ELSE 0 END), 0)::BIGINT, \
               COALESCE(sum(CASE WHEN kind = 'settlement' THEN credits_posted - debits_posted ELSE 0 END), 0)::BIGINT, \
               COALESCE(sum(debits_pending), 0)::BIGINT, COALESCE(sum(credits_pending), 0)::BIGINT, \
               count(*) FILTER (WHERE debits_pending < 0 OR credits_pending < 0 OR debits_posted < 0 OR credits_posted < 0) \
             FROM accounts GROUP BY currency",
            &[],
        )
        .await?;
    for r in rows {
        let cur: String = r.get(0);
        let t = report.currencies.entry(cur.clone()).or_default();
        t.wallets_and_liquidity = r.get(1);
        t.settlement = r.get(2);
        t.debits_pending = r.get(3);
        t.credits_pending = r.get(4);
        let negative: i64 = r.get(5);
        if negative > 0 {
            report.violations.push(format!(
                "{cur}: {negative} account(s) with a negative total"
            ));
        }
        if t.wallets_and_liquidity != -t.settlement {
            report.violations.push(format!(
                "{cur}: wallets+liquidity hold {} but the settlement account's balance is {}",
                t.wallets_and_liquidity, t.settlement
            ));
        }
    }
    if has_column(db, "transfers", "amount").await? {
        let posted = posted_rows(two_phase(db).await?);
        let rows = db
            .query(
                &format!(
                    "SELECT d.currency, \
                       COALESCE(sum(t.amount) FILTER (WHERE d.kind = 'settlement' AND c.kind = 'wallet'), 0)::BIGINT, \
                       COALESCE(sum(t.amount) FILTER (WHERE d.kind = 'wallet' AND c.kind = 'settlement'), 0)::BIGINT \
                     FROM transfers t JOIN accounts d ON d.id = t.debit_account_id \
                       JOIN accounts c ON c.id = t.credit_account_id \
                     WHERE {posted} GROUP BY d.currency"
                ),
                &[],
            )
            .await?;
        for r in rows {
            let cur: String = r.get(0);
            let t = report.currencies.entry(cur.clone()).or_default();
            t.deposits = r.get(1);
            t.withdrawals = r.get(2);
            if t.wallets_and_liquidity != t.deposits - t.withdrawals {
                report.violations.push(format!(
                    "{cur}: wallets+liquidity hold {} but deposits - withdrawals = {}",
                    t.wallets_and_liquidity,
                    t.deposits - t.withdrawals
                ));
            }
        }
    }
    Ok(())
}

/// Whether the ledger has two-phase transfers (`transfers.kind`, `transfers.state`).
async fn two_phase(db: &Client) -> anyhow::Result<bool> {
    Ok(has_column(db, "transfers", "kind").await? && has_column(db, "transfers", "state").await?)
}

/// The rows that moved posted money: single-phase transfers and the posts of pending ones
/// (a post copies its pending transfer's accounts and amount); every row before two-phase.
fn posted_rows(two_phase: bool) -> &'static str {
    if two_phase {
        "t.kind IN ('posted', 'post_pending')"
    } else {
        "true"
    }
}

/// The rows that reserve money now: pending transfers not yet posted, voided or expired.
const PENDING_ROWS: &str = "t.kind = 'pending' AND t.state = 'pending'";

/// Every transfer is balanced: its debit and credit accounts are in one currency (a
/// cross-currency movement is two transfers through the liquidity accounts), and every
/// account's totals are exactly the sums of its posted and pending transfers.
pub async fn transfers_balanced(db: &Client, report: &mut Report) -> anyhow::Result<()> {
    if !has_column(db, "transfers", "amount").await? {
        return Ok(());
    }
    let row = db
        .query_one(
            "SELECT count(*) FROM transfers t JOIN accounts d ON d.id = t.debit_account_id \
               JOIN accounts c ON c.id = t.credit_account_id \
             WHERE d.currency <> c.currency OR t.amount <= 0",
            &[],
        )
        .await?;
    let bad: i64 = row.get(0);
    if bad > 0 {
        report.violations.push(format!(
            "{bad} transfer(s) between accounts of different currencies or of a non-positive amount"
        ));
    }
    let two_phase = two_phase(db).await?;
    let posted = posted_rows(two_phase);
    let pending = if two_phase { PENDING_ROWS } else { "false" };
    let rows = db
        .query(
            &format!(
                "SELECT a.id::TEXT, a.debits_posted, a.credits_posted, \
                   COALESCE((SELECT sum(amount) FROM transfers t WHERE t.debit_account_id = a.id AND {posted}), 0)::BIGINT, \
                   COALESCE((SELECT sum(amount) FROM transfers t WHERE t.credit_account_id = a.id AND {posted}), 0)::BIGINT, \
                   {dp}, {cp}, \
                   COALESCE((SELECT sum(amount) FROM transfers t WHERE t.debit_account_id = a.id AND {pending}), 0)::BIGINT, \
                   COALESCE((SELECT sum(amount) FROM transfers t WHERE t.credit_account_id = a.id AND {pending}), 0)::BIGINT \
                 FROM accounts a",
                dp = if two_phase { "a.debits_pending" } else { "0::BIGINT" },
                cp = if two_phase { "a.credits_pending" } else { "0::BIGINT" },
            ),
            &[],
        )
        .await?;
    journal_matches(&rows, report);
    if two_phase {
        // A linked batch posts together or not at all: a payment's holds end alike.
        let rows = db
            .query(
                "SELECT reference, count(DISTINCT state) FROM transfers t \
                 WHERE t.kind = 'pending' AND t.reference IS NOT NULL AND t.state <> 'pending' \
                 GROUP BY reference HAVING count(DISTINCT state) > 1 LIMIT 20",
                &[],
            )
            .await?;
        for r in rows {
            let reference: String = r.get(0);
            report.violations.push(format!(
                "{reference}: its linked holds ended differently (some posted, some not)"
            ));
        }
    }
    Ok(())
}

fn journal_matches(rows: &[tokio_postgres::Row], report: &mut Report) {
    let mut shown = 0;
    for r in rows {
        let id: String = r.get(0);
        let cols = [
            ("debits_posted", r.get::<_, i64>(1), r.get::<_, i64>(3)),
            ("credits_posted", r.get::<_, i64>(2), r.get::<_, i64>(4)),
            ("debits_pending", r.get::<_, i64>(5), r.get::<_, i64>(7)),
            ("credits_pending", r.get::<_, i64>(6), r.get::<_, i64>(8)),
        ];
        for (name, total, journal) in cols {
            if total != journal {
                shown += 1;
                if shown <= 20 {
                    report.violations.push(format!(
                        "account {id}: {name} is {total} but its transfers sum to {journal}"
                    ));
                }
            }
        }
    }
    if shown > 20 {
        report
            .violations
            .push(format!("... {} more account totals off", shown - 20));
    }
}

/// No hold (pending transfer) is still pending more than `grace` past its timeout.
pub async fn no_expired_holds(
    db: &Client,
    grace: std::time::Duration,
    report: &mut Report,
) -> anyhow::Result<()> {
    if !two_phase(db).await? {
        return Ok(());
    }
    let grace_secs = grace.as_secs_f64();
    let rows = db
        .query(
            &format!(
                "SELECT t.id::TEXT, COALESCE(t.reference, ''), \
                   EXTRACT(EPOCH FROM now() - t.timeout_at)::FLOAT8 \
                 FROM transfers t WHERE {PENDING_ROWS} \
                 AND t.timeout_at + make_interval(secs => $1) < now() ORDER BY t.timeout_at"
            ),
            &[&grace_secs],
        )
        .await?;
    for r in rows.iter().take(20) {
        let (id, reference, late): (String, String, f64) = (r.get(0), r.get(1), r.get(2));
        report.violations.push(format!(
            "hold {id} ({reference}) still pending {late:.0} s past its timeout"
        ));
    }
    if rows.len() > 20 {
        report.violations.push(format!(
            "... {} more holds past their timeout",
            rows.len() - 20
        ));
    }
    Ok(())
}

/// No payment was posted twice: no hold is posted more than once, no wallet is debited twice
/// for one payment, a completed payment has exactly one post per hold, and a payment that did
/// not complete has none. Transfers name their payment in `reference` (`payment:<id>`).
pub async fn no_double_posting(db: &Client, report: &mut Report) -> anyhow::Result<()> {
    if !two_phase(db).await? {
        return Ok(());
    }
    let rows = db
        .query(
            "SELECT t.pending_id::TEXT, count(*) FROM transfers t \
             WHERE t.kind = 'post_pending' GROUP BY t.pending_id HAVING count(*) > 1 LIMIT 20",
            &[],
        )
        .await?;
    for r in rows {
        let (hold, n): (String, i64) = (r.get(0), r.get(1));
        report
            .violations
            .push(format!("hold {hold} posted {n} times"));
    }
    let rows = db
        .query(
            &format!(
                "SELECT t.reference, t.debit_account_id::TEXT, count(*) \
                 FROM transfers t JOIN accounts d ON d.id = t.debit_account_id \
                 WHERE {} AND t.reference LIKE 'payment:%' AND d.kind = 'wallet' \
                 GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 20",
                posted_rows(true)
            ),
            &[],
        )
        .await?;
    for r in rows {
        let (payment, account, n): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
        report.violations.push(format!(
            "{payment}: {n} posted transfers out of wallet {account}"
        ));
    }
    if !has_column(db, "payments", "hold_ids").await? {
        return Ok(());
    }
    let rows = db
        .query(
            "SELECT p.id::TEXT, p.status, \
               (SELECT count(*) FROM transfers t WHERE t.kind = 'post_pending' \
                  AND t.reference = 'payment:' || p.id::TEXT), \
               (SELECT count(*) FROM transfers t WHERE t.kind = 'pending' \
                  AND t.reference = 'payment:' || p.id::TEXT) \
             FROM payments p",
            &[],
        )
        .await?;
    let mut shown = 0;
    for r in rows {
        let (id, status, posts, holds): (String, String, i64, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let wrong = match status.as_str() {
            "completed" => posts != holds || holds == 0,
            // Not final yet: a post may be on its way to the payment.
            "held" => false,
            _ => posts > 0,
        };
        if wrong {
            shown += 1;
            if shown <= 20 {
                report.violations.push(format!(
                    "payment {id} is `{status}` with {posts} post(s) of {holds} hold(s)"
                ));
            }
        }
    }
    if shown > 20 {
        report
            .violations
            .push(format!("... {} more payments posted wrongly", shown - 20));
    }
    Ok(())
}

/// Every check, with `grace` past a hold's timeout allowed for the sweeper.
pub async fn all(db: &Client, grace: std::time::Duration) -> anyhow::Result<Report> {
    let mut report = Report::default();
    conservation(db, &mut report).await?;
    transfers_balanced(db, &mut report).await?;
    no_expired_holds(db, grace, &mut report).await?;
    no_double_posting(db, &mut report).await?;
    Ok(report)
}
