//! The payment saga: every state change is one transaction with the events it sends.
//!
//! ```text
//! initiated -> rejected | pending_review | screened
//! pending_review -> screened | rejected            (an ops_user or admin decides)
//! screened -> converted                            (forex, when the currencies differ)
//! screened | converted -> held                     (the ledger holds the payer's funds)
//! held -> completed                                (the ledger posts the hold)
//! held -> voiding -> failed                        (posting was refused: the hold is voided)
//! any step before held -> failed                   (with a reason code)
//! ```
//! Replies arrive as events (`forex.*`, `ledger.*`) through the worker's idempotent consumer;
//! a reply for a payment no longer in the state it answers is stale and ignored.

use platform_common::db::{DbError, Transaction};
use platform_common::events::{self, EventEnvelope, EventHandler};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::payments::Payment;
use crate::store::{self, Changes};

pub const INITIATED: &str = "payment.initiated";
pub const SCREENED: &str = "payment.screened";
pub const HOLD_REQUESTED: &str = "payment.hold_requested";
pub const POST_REQUESTED: &str = "payment.post_requested";
pub const VOID_REQUESTED: &str = "payment.void_requested";
pub const COMPLETED: &str = "payment.completed";
pub const FAILED: &str = "payment.failed";

/// Every topic the payment service writes to its outbox.
pub const PUBLISHES: &[&str] = &[
    INITIATED,
    SCREENED,
    HOLD_REQUESTED,
    POST_REQUESTED,
    VOID_REQUESTED,
    COMPLETED,
    FAILED,
];

/// The replies the saga consumes.
pub const REPLIES: &[&str] = &[
    "forex.converted",
    "forex.conversion_failed",
    "ledger.hold_placed",
    "ledger.hold_failed",
    "ledger.posted",
    "ledger.post_failed",
    "ledger.voided",
];

/// The saga's settings.
#[derive(Debug, Clone)]
pub struct Saga {
    pub service: String,
    pub hold_timeout_seconds: u32,
}

impl Saga {
    async fn emit(
        &self,
        tx: &Transaction<'_>,
        kind: &str,
        p: &Payment,
        payload: Value,
    ) -> Result<(), DbError> {
        let event = EventEnvelope::new(kind, self.service.clone(), payload);
        events::record(tx, &p.id.to_string(), &event).await
    }

    /// What every saga event says about the payment.
    fn facts(p: &Payment) -> Value {
        json!({
            "payment_id": p.id,
            "payer": p.owner,
            "payer_account_id": p.payer_wallet_id,
            "payee_account_id": p.payee_wallet_id,
            "amount": p.amount,
            "currency": p.currency,
            "payee_currency": p.payee_currency,
        })
    }

    /// A new payment: `payment.initiated`.
    pub async fn initiated(&self, tx: &Transaction<'_>, p: &Payment) -> Result<(), DbError> {
        let body = serde_json::to_value(p).expect("serialises");
        let event = EventEnvelope::new(INITIATED, self.service.clone(), body);
        events::record(tx, &p.id.to_string(), &event).await
    }

    /// The screening's outcome, from `initiated` (or `pending_review` for a reviewer's
    /// decision). `None` when the payment had moved on already.
    pub async fn screened(
        &self,
        tx: &Transaction<'_>,
        id: Uuid,
        from: &str,
        decision: Decision<'_>,
    ) -> Result<Option<Payment>, DbError> {
        let (to, changes) = match decision {
            Decision::Allow(reasons) => (
                "screened",
                Changes {
                    reasons: Some(reasons),
                    ..Changes::default()
                },
            ),
            Decision::Review(reasons) => (
                "pending_review",
                Changes {
                    reasons: Some(reasons),
                    ..Changes::default()
                },
            ),
            Decision::Reject(reason, reasons) => (
                "rejected",
                Changes {
                    failure_reason: Some(reason),
                    reasons: Some(reasons),
                    ..Changes::default()
                },
            ),
        };
        let Some(p) = store::transition(tx, id, &[from], to, &changes).await? else {
            return Ok(None);
        };
        match to {
            "screened" => {
                self.emit(tx, SCREENED, &p, Self::facts(&p)).await?;
                if p.payee_currency.as_deref() == Some(p.currency.as_str()) {
                    self.request_hold(tx, &p, p.amount).await?;
                }
            }
            "rejected" => self.ended(tx, &p).await?,
            _ => {}
        }
        Ok(Some(p))
    }

    async fn request_hold(
        &self,
        tx: &Transaction<'_>,
        p: &Payment,
        payee_amount: i64,
    ) -> Result<(), DbError> {
        let mut payload = Self::facts(p);
        payload["payee_amount"] = json!(payee_amount);
        payload["timeout_seconds"] = json!(self.hold_timeout_seconds);
        self.emit(tx, HOLD_REQUESTED, p, payload).await
    }

    /// `payment.completed` or `payment.failed` (also for `rejected`).
    async fn ended(&self, tx: &Transaction<'_>, p: &Payment) -> Result<(), DbError> {
        let kind = if p.status == "completed" {
            COMPLETED
        } else {
            FAILED
        };
        let mut payload = Self::facts(p);
        payload["status"] = json!(p.status);
        payload["failure_reason"] = json!(p.failure_reason);
        payload["payee_amount"] = json!(p.payee_amount);
        self.emit(tx, kind, p, payload).await
    }

    async fn fail(
        &self,
        tx: &Transaction<'_>,
        id: Uuid,
        from: &[&str],
        reason: &str,
    ) -> Result<Option<Payment>, DbError> {
        let changes = Changes {
            failure_reason: Some(reason),
            ..Changes::default()
        };
        let Some(p) = store::transition(tx, id, from, "failed", &changes).await? else {
            return Ok(None);
        };
        self.ended(tx, &p).await?;
        Ok(Some(p))
    }

    /// Fails payments whose screening was interrupted and never retried.
    pub async fn fail_stuck(
        &self,
        tx: &Transaction<'_>,
        older_than_seconds: i64,
    ) -> Result<usize, DbError> {
        let ids = store::stuck_initiated(tx, older_than_seconds, 100).await?;
        let mut n = 0;
        for id in ids {
            if self
                .fail(tx, id, &["initiated"], "screening_incomplete")
                .await?
                .is_some()
            {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Applies one reply; the payment it names moves on, or the reply is stale.
    pub async fn on_reply(
        &self,
        tx: &Transaction<'_>,
        event: &EventEnvelope,
    ) -> Result<(), DbError> {
        let Ok(r) = serde_json::from_value::<Reply>(event.payload.clone()) else {
            tracing::warn!(kind = %event.kind, event_id = %event.event_id, "reply without a payment_id; ignored");
            return Ok(());
        };
        let reason = r.reason.as_deref().unwrap_or("unknown");
        let id = r.payment_id;
        let moved = match event.kind.as_str() {
            "forex.converted" => {
                let changes = Changes {
                    payee_amount: r.buy_amount,
                    quote_id: r.quote_id,
                    rate_e8: r.rate_e8,
                    ..Changes::default()
                };
                match store::transition(tx, id, &["screened"], "converted", &changes).await? {
                    Some(p) => {
                        let amount = p.payee_amount.unwrap_or_default();
                        self.request_hold(tx, &p, amount).await?;
                        true
                    }
                    None => false,
                }
            }
            "forex.conversion_failed" => self.fail(tx, id, &["screened"], reason).await?.is_some(),
            "ledger.hold_placed" => {
                let changes = Changes {
                    hold_ids: Some(&r.transfer_ids),
                    ..Changes::default()
                };
                match store::transition(tx, id, &["screened", "converted"], "held", &changes)
                    .await?
                {
                    Some(p) => {
                        let payload = json!({"payment_id": p.id, "transfer_ids": p.hold_ids});
                        self.emit(tx, POST_REQUESTED, &p, payload).await?;
                        true
                    }
                    None => false,
                }
            }
            "ledger.hold_failed" => self
                .fail(tx, id, &["screened", "converted"], reason)
                .await?
                .is_some(),
            "ledger.posted" => {
                match store::transition(tx, id, &["held"], "completed", &Changes::default()).await?
                {
                    Some(p) => {
                        self.ended(tx, &p).await?;
                        true
                    }
                    None => false,
                }
            }
            "ledger.post_failed" => {
                let changes = Changes {
                    failure_reason: Some(reason),
                    ..Changes::default()
                };
                match store::transition(tx, id, &["held"], "voiding", &changes).await? {
                    Some(p) => {
                        let payload = json!({"payment_id": p.id, "transfer_ids": p.hold_ids, "reason": reason});
                        self.emit(tx, VOID_REQUESTED, &p, payload).await?;
                        true
                    }
                    None => false,
                }
            }
            "ledger.voided" => {
                // A void we asked for keeps the reason that made us ask; an expiry names itself.
                let current = store::get(tx, id).await?;
                let reason = match current.as_ref() {
                    Some(p) if p.status == "voiding" => p
                        .failure_reason
                        .clone()
                        .unwrap_or_else(|| reason.to_owned()),
                    _ => reason.to_owned(),
                };
                self.fail(
                    tx,
                    id,
                    &["held", "voiding", "screened", "converted"],
                    &reason,
                )
                .await?
                .is_some()
            }
            other => {
                tracing::debug!(kind = other, "not a saga reply; ignored");
                false
            }
        };
        if !moved {
            tracing::debug!(payment_id = %id, kind = %event.kind, "stale reply ignored");
        }
        Ok(())
    }
}

/// The rule engine's (or a reviewer's) decision.
pub enum Decision<'a> {
    Allow(&'a [String]),
    Review(&'a [String]),
    Reject(&'a str, &'a [String]),
}

#[derive(Debug, Deserialize)]
struct Reply {
    payment_id: Uuid,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    transfer_ids: Vec<Uuid>,
    #[serde(default)]
    quote_id: Option<Uuid>,
    #[serde(default)]
    buy_amount: Option<i64>,
    #[serde(default)]
    rate_e8: Option<i64>,
}

impl EventHandler for Saga {
    async fn handle<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        event: &'a EventEnvelope,
    ) -> Result<(), String> {
        self.on_reply(tx, event).await.map_err(|e| e.to_string())
    }
}
