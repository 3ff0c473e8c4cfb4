//! The ledger's part of the payment saga: hold, post and void a payment's funds on command
//! (`payment.hold_requested`, `payment.post_requested`, `payment.void_requested`), and void
//! holds whose timeout passed. Each reply is an outbox event in the same transaction as the
//! transfers and the consumer's inbox row.

use platform_common::db::{DbError, Retryable, Transaction};
use platform_common::events::{self, EventEnvelope, EventHandler};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::LedgerError;
use crate::book::{self, NewTransfer};

pub const HOLD_REQUESTED: &str = "payment.hold_requested";
pub const POST_REQUESTED: &str = "payment.post_requested";
pub const VOID_REQUESTED: &str = "payment.void_requested";
pub const HOLD_PLACED: &str = "ledger.hold_placed";
pub const HOLD_FAILED: &str = "ledger.hold_failed";
pub const POSTED: &str = "ledger.posted";
pub const POST_FAILED: &str = "ledger.post_failed";
pub const VOIDED: &str = "ledger.voided";

/// What the ledger consumes.
pub const COMMANDS: &[&str] = &[HOLD_REQUESTED, POST_REQUESTED, VOID_REQUESTED];
/// What it answers with.
pub const REPLIES: &[&str] = &[HOLD_PLACED, HOLD_FAILED, POSTED, POST_FAILED, VOIDED];

/// The transfers' reference: which payment they belong to.
pub fn reference(payment_id: Uuid) -> String {
    format!("payment:{payment_id}")
}

#[derive(Debug, Deserialize)]
struct HoldRequested {
    payment_id: Uuid,
    payer_account_id: Uuid,
    payee_account_id: Uuid,
    amount: i64,
    currency: String,
    payee_amount: i64,
    payee_currency: String,
    timeout_seconds: u32,
}

#[derive(Debug, Deserialize)]
struct Resolve {
    payment_id: Uuid,
    transfer_ids: Vec<Uuid>,
    #[serde(default)]
    reason: Option<String>,
}

/// The saga's reason code for a refusal; `None` for errors that are not the payment's fault
/// (the database): those fail the event so it is delivered again.
pub fn refusal(e: &LedgerError) -> Option<&'static str> {
    match e {
        LedgerError::ExceedsCredits(_) => Some("insufficient_funds"),
        LedgerError::Frozen(_) => Some("wallet_frozen"),
        LedgerError::AccountNotFound(_) => Some("wallet_not_found"),
        LedgerError::CurrencyMismatch { .. } => Some("currency_mismatch"),
        LedgerError::Overflow(_) | LedgerError::ExceedsDebits(_) => Some("limit_exceeded"),
        LedgerError::PendingExpired(_) => Some("hold_expired"),
        LedgerError::PendingNotFound(_) => Some("hold_not_found"),
        LedgerError::PendingResolved(..) => Some("hold_resolved"),
        LedgerError::SameAccount => Some("same_wallet"),
        LedgerError::ExistsWithDifferentFields(_) => Some("conflicting_transfer"),
        LedgerError::Common(c @ platform_common::CommonError::Validation { .. })
            if !c.is_retryable() =>
        {
            Some("invalid_amount")
        }
        _ => None,
    }
}

/// The consumer's handler.
pub struct PaymentCommands {
    pub service: String,
}

impl EventHandler for PaymentCommands {
    async fn handle<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        event: &'a EventEnvelope,
    ) -> Result<(), String> {
        {
            let outcome: Result<(), LedgerError> = async {
                match event.kind.as_str() {
                    HOLD_REQUESTED => {
                        let cmd: HoldRequested = parse(&event.payload)?;
                        hold(tx, &self.service, &cmd).await
                    }
                    POST_REQUESTED => {
                        let cmd: Resolve = parse(&event.payload)?;
                        resolve(tx, &self.service, &cmd, true).await
                    }
                    VOID_REQUESTED => {
                        let cmd: Resolve = parse(&event.payload)?;
                        resolve(tx, &self.service, &cmd, false).await
                    }
                    other => {
                        tracing::debug!(kind = other, "not a ledger command; ignored");
                        Ok(())
                    }
                }
            }
            .await;
            // The consumer runs a conflict again (without counting it) when it says 40001.
            outcome.map_err(|e| {
                if e.is_retryable() {
                    format!("40001: {e}")
                } else {
                    e.to_string()
                }
            })
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(payload: &Value) -> Result<T, LedgerError> {
    serde_json::from_value(payload.clone()).map_err(|e| {
        platform_common::CommonError::validation("payload", format!("not a saga command: {e}"))
            .into()
    })
}

async fn reply(
    tx: &Transaction<'_>,
    service: &str,
    kind: &str,
    payment_id: Uuid,
    payload: Value,
) -> Result<(), LedgerError> {
    let event = EventEnvelope::new(kind, service, payload);
    events::record(tx, &payment_id.to_string(), &event).await?;
    Ok(())
}

/// Runs `batch` in a savepoint: a refusal rolls back only the batch, and is returned as
/// `Ok(Err(reason))` for the saga; a database error fails the whole event.
async fn in_savepoint(
    tx: &Transaction<'_>,
    batch: &[NewTransfer],
) -> Result<Result<Vec<Uuid>, &'static str>, LedgerError> {
    tx.batch_execute("SAVEPOINT saga")
        .await
        .map_err(DbError::from)?;
    match book::create_transfers(tx, batch, "ledger").await {
        Ok(done) => {
            tx.batch_execute("RELEASE SAVEPOINT saga")
                .await
                .map_err(DbError::from)?;
            Ok(Ok(done.into_iter().map(|t| t.id).collect()))
        }
        Err(e) => match refusal(&e) {
            Some(reason) => {
                tx.batch_execute("ROLLBACK TO SAVEPOINT saga")
                    .await
                    .map_err(DbError::from)?;
                Ok(Err(reason))
            }
            None => Err(e),
        },
    }
}

async fn hold(tx: &Transaction<'_>, service: &str, c: &HoldRequested) -> Result<(), LedgerError> {
    let reference = reference(c.payment_id);
    let r = Some(reference.as_str());
    let batch = if c.currency == c.payee_currency {
        vec![NewTransfer::pending(
            book::derived_id(c.payment_id, "hold"),
            c.payer_account_id,
            c.payee_account_id,
            c.amount,
            &c.currency,
            r,
            c.timeout_seconds,
        )]
    } else {
        book::ensure_system_accounts(tx, &c.currency).await?;
        book::ensure_system_accounts(tx, &c.payee_currency).await?;
        // Linked: the payer pays into the source currency's pool, the target currency's
        // pool pays the payee; both hold, or neither.
        vec![
            NewTransfer::pending(
                book::derived_id(c.payment_id, "hold-debit"),
                c.payer_account_id,
                book::liquidity_account_id(&c.currency),
                c.amount,
                &c.currency,
                r,
                c.timeout_seconds,
            ),
            NewTransfer::pending(
                book::derived_id(c.payment_id, "hold-credit"),
                book::liquidity_account_id(&c.payee_currency),
                c.payee_account_id,
                c.payee_amount,
                &c.payee_currency,
                r,
                c.timeout_seconds,
            ),
        ]
    };
    match in_savepoint(tx, &batch).await? {
        Ok(ids) => {
            let payload = json!({"payment_id": c.payment_id, "transfer_ids": ids});
            reply(tx, service, HOLD_PLACED, c.payment_id, payload).await
        }
        Err(reason) => {
            let payload = json!({"payment_id": c.payment_id, "reason": reason});
            reply(tx, service, HOLD_FAILED, c.payment_id, payload).await
        }
    }
}

async fn resolve(
    tx: &Transaction<'_>,
    service: &str,
    c: &Resolve,
    post: bool,
) -> Result<(), LedgerError> {
    let reference = reference(c.payment_id);
    let mut batch = Vec::with_capacity(c.transfer_ids.len());
    for pending in &c.transfer_ids {
        if !post {
            // A hold voided or expired already needs nothing more.
            let state = book::transfer(tx, *pending).await?.and_then(|t| t.state);
            if state.as_deref() != Some("pending") {
                continue;
            }
        }
        let label = if post { "post" } else { "void" };
        batch.push(NewTransfer::resolve(
            book::derived_id(*pending, label),
            *pending,
            post,
            Some(&reference),
        ));
    }
    let outcome = in_savepoint(tx, &batch).await?;
    let (kind, payload) = match (post, outcome) {
        (true, Ok(ids)) => (
            POSTED,
            json!({"payment_id": c.payment_id, "transfer_ids": ids}),
        ),
        (true, Err(reason)) => (
            POST_FAILED,
            json!({"payment_id": c.payment_id, "reason": reason}),
        ),
        (false, Ok(_)) => (
            VOIDED,
            json!({"payment_id": c.payment_id, "reason": c.reason.as_deref().unwrap_or("voided")}),
        ),
        (false, Err(reason)) => {
            // Only a hold resolved meanwhile can refuse a void: it is released either way.
            tracing::warn!(payment_id = %c.payment_id, reason, "void found nothing to release");
            (
                VOIDED,
                json!({"payment_id": c.payment_id, "reason": c.reason.as_deref().unwrap_or(reason)}),
            )
        }
    };
    reply(tx, service, kind, c.payment_id, payload).await
}

/// Voids the holds whose timeout passed (at most `limit`) and tells each payment:
/// `ledger.voided` with reason `hold_expired`. Returns how many holds expired.
pub async fn expire_holds(
    tx: &Transaction<'_>,
    service: &str,
    limit: i64,
) -> Result<usize, LedgerError> {
    let expired = book::expire_pending(tx, limit).await?;
    let mut told: Vec<Uuid> = Vec::new();
    for t in &expired {
        let Some(payment_id) = t
            .reference
            .as_deref()
            .and_then(|r| r.strip_prefix("payment:"))
            .and_then(|id| id.parse::<Uuid>().ok())
        else {
            continue;
        };
        if told.contains(&payment_id) {
            continue;
        }
        told.push(payment_id);
        let payload = json!({"payment_id": payment_id, "reason": "hold_expired"});
        reply(tx, service, VOIDED, payment_id, payload).await?;
    }
    Ok(expired.len())
}
