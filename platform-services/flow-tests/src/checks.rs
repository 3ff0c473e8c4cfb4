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
    /// Sum over wallet and liquidity accounts of their posted balances.
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

/// The first of `candidates` that `table` has.
pub async fn first_column(
    db: &Client,
    table: &str,
    candidates: &[&str],
) -> anyhow::Result<Option<String>> {
    for c in candidates {
        if has_column(db, table, c).await? {
            return Ok(Some(c.to_string()));
        }
    }
    Ok(None)
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
               COALESCE(sum(CASE WHEN kind IN ('wallet', 'liquidity') THEN credits_posted - debits_posted ELSE 0 END), 0)::BIGINT, \
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
    if let Some(state) = transfer_state_column(db).await? {
        let posted = posted_condition(&state);
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

/// The transfers table's state column, when the ledger has two-phase transfers.
async fn transfer_state_column(db: &Client) -> anyhow::Result<Option<String>> {
    if !has_column(db, "transfers", "amount").await? {
        return Ok(None);
    }
    first_column(db, "transfers", &["state", "status"]).await
}

fn posted_condition(state_column: &str) -> String {
    format!("t.{state_column} = 'posted'")
}

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
    let Some(state) = transfer_state_column(db).await? else {
        // Single-phase transfers: every row is posted.
        let rows = db
            .query(
                "SELECT a.id::TEXT, a.debits_posted, a.credits_posted, \
                   COALESCE((SELECT sum(amount) FROM transfers WHERE debit_account_id = a.id), 0)::BIGINT, \
                   COALESCE((SELECT sum(amount) FROM transfers WHERE credit_account_id = a.id), 0)::BIGINT \
                 FROM accounts a",
                &[],
            )
            .await?;
        journal_matches(&rows, false, report);
        return Ok(());
    };
    let rows = db
        .query(
            &format!(
                "SELECT a.id::TEXT, a.debits_posted, a.credits_posted, \
                   COALESCE((SELECT sum(amount) FROM transfers t WHERE t.debit_account_id = a.id AND t.{state} = 'posted'), 0)::BIGINT, \
                   COALESCE((SELECT sum(amount) FROM transfers t WHERE t.credit_account_id = a.id AND t.{state} = 'posted'), 0)::BIGINT, \
                   a.debits_pending, a.credits_pending, \
                   COALESCE((SELECT sum(amount) FROM transfers t WHERE t.debit_account_id = a.id AND t.{state} = 'pending'), 0)::BIGINT, \
                   COALESCE((SELECT sum(amount) FROM transfers t WHERE t.credit_account_id = a.id AND t.{state} = 'pending'), 0)::BIGINT \
                 FROM accounts a"
            ),
            &[],
        )
        .await?;
    journal_matches(&rows, true, report);
    Ok(())
}

fn journal_matches(rows: &[tokio_postgres::Row], pending: bool, report: &mut Report) {
    let mut shown = 0;
    for r in rows {
        let id: String = r.get(0);
        let mut cols = vec![
            ("debits_posted", r.get::<_, i64>(1), r.get::<_, i64>(3)),
            ("credits_posted", r.get::<_, i64>(2), r.get::<_, i64>(4)),
        ];
        if pending {
            cols.push(("debits_pending", r.get::<_, i64>(5), r.get::<_, i64>(7)));
            cols.push(("credits_pending", r.get::<_, i64>(6), r.get::<_, i64>(8)));
        }
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
    let Some(state) = transfer_state_column(db).await? else {
        return Ok(());
    };
    let Some(expiry) =
        first_column(db, "transfers", &["expires_at", "timeout_at", "deadline"]).await?
    else {
        return Ok(());
    };
    let grace_secs = grace.as_secs_f64();
    let row = db
        .query_one(
            &format!(
                "SELECT count(*) FROM transfers t WHERE t.{state} = 'pending' \
                 AND t.{expiry} IS NOT NULL AND t.{expiry} + make_interval(secs => $1) < now()"
            ),
            &[&grace_secs],
        )
        .await?;
    let n: i64 = row.get(0);
    if n > 0 {
        report.violations.push(format!(
            "{n} hold(s) still pending more than {grace_secs} s past their timeout"
        ));
    }
    Ok(())
}

/// No payment was posted twice: for each payment, at most one posted transfer out of the
/// payer's account (cross-currency: one per leg), found by the transfer's payment reference.
pub async fn no_double_posting(db: &Client, report: &mut Report) -> anyhow::Result<()> {
    let Some(state) = transfer_state_column(db).await? else {
        return Ok(());
    };
    let Some(reference) = first_column(
        db,
        "transfers",
        &["payment_id", "reference", "user_data", "code"],
    )
    .await?
    else {
        return Ok(());
    };
    let rows = db
        .query(
            &format!(
                "SELECT t.{reference}::TEXT, t.debit_account_id::TEXT, count(*) \
                 FROM transfers t JOIN accounts d ON d.id = t.debit_account_id \
                 WHERE t.{state} = 'posted' AND t.{reference} IS NOT NULL AND d.kind = 'wallet' \
                 GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 20"
            ),
            &[],
        )
        .await?;
    for r in rows {
        let (payment, account, n): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
        report.violations.push(format!(
            "payment {payment}: {n} posted transfers out of wallet {account}"
        ));
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
