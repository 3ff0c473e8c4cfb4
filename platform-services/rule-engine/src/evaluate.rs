use axum::Json;
use axum::extract::State as AxState;
use deadpool_postgres::GenericClient;
use platform_common::CommonError;
use platform_common::auth::{CurrentUser, roles};
use platform_common::db;
use platform_common::http::ApiJson;
use platform_common::money;
use platform_common::money::CurrencyCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::store::{self, Payment};
use crate::{RuleError, State};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user": "8d3c1f0e-5b7a-4c2e-9f61-2a4b6c8d0e1f", "roles": ["user"], "amount": 2500,
    "currency": "USD", "payment_id": "3f2b8c1a-9d4e-4f6a-8b7c-1d2e3f4a5b6c"}))]
pub struct PaymentToEvaluate {
    /// The payer's subject (the token's `sub`, `User.id`), not their username.
    pub user: String,
    pub roles: Vec<String>,
    /// Minor units, > 0.
    #[schema(minimum = 1)]
    pub amount: i64,
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    /// When set, the payment is evaluated once: it counts once in the velocity window, and
    /// evaluating it again (same user, amount and currency) answers the first decision.
    pub payment_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
    Review,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Review => "review",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "allow" => Self::Allow,
            "deny" => Self::Deny,
            "review" => Self::Review,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"decision": "allow", "reasons": []}))]
pub struct Evaluation {
    pub decision: Decision,
    pub reasons: Vec<String>,
}

/// Evaluate a payment. Callers other than admin and ops_user can only evaluate themselves,
/// with at most the roles their token carries.
#[utoipa::path(post, path = "/evaluate", tag = "rules", operation_id = "evaluate",
    security(("bearer" = [])), request_body = PaymentToEvaluate,
    responses((status = 200, body = Evaluation),
        (status = 403, description = "another user's payment, without admin or ops_user"),
        (status = 409, description = "the payment id was evaluated before for another user, amount or currency")),
    extensions(("x-problem-codes" = json!({"403": ["forbidden"], "409": ["payment_id_reused"],
        "503": ["contention"]}))))]
pub async fn evaluate(
    AxState(s): AxState<State>,
    CurrentUser(caller): CurrentUser,
    ApiJson(p): ApiJson<PaymentToEvaluate>,
) -> Result<Json<Evaluation>, RuleError> {
    money::positive_amount("amount", p.amount)?;
    money::currency("currency", &p.currency)?;
    let privileged = caller.has_any_role(&[roles::ADMIN, roles::OPS_USER]);
    let subject_roles: Vec<String> = if privileged {
        p.roles.clone()
    } else {
        if p.user != caller.id {
            return Err(CommonError::Forbidden(
                "only admin and ops_user may evaluate payments of other users".into(),
            )
            .into());
        }
        p.roles
            .iter()
            .filter(|r| caller.has_role(r))
            .cloned()
            .collect()
    };
    // Without a payment id, every evaluation is a payment of its own.
    let payment_id = p
        .payment_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let asked = Payment {
        user_id: p.user,
        currency: p.currency,
        amount: p.amount,
    };
    // One serializable transaction reads the window and records the payment in it, so
    // concurrent payments of one payer cannot all slip under the limit, and the same payment
    // evaluated concurrently is recorded once (the others run again and find it).
    let evaluation = db::serializable(&s.ctx.db, |tx| {
        let (payment_id, asked, roles) = (payment_id.clone(), asked.clone(), subject_roles.clone());
        Box::pin(async move {
            if let Some((before, evaluation)) = store::evaluation(tx, &payment_id).await? {
                if before != asked {
                    return Err(RuleError::PaymentIdReused(payment_id));
                }
                return Ok(evaluation);
            }
            let (evaluation, counted) = decide(tx, &asked, &roles).await?;
            store::insert_evaluation(tx, &payment_id, &asked, &evaluation, counted).await?;
            Ok(evaluation)
        })
    })
    .await?;
    Ok(Json(evaluation))
}

/// The decision on a payment not evaluated before, and whether it counts in its payer's
/// velocity window (it does when it passes the limits).
async fn decide(
    c: &impl GenericClient,
    p: &Payment,
    roles: &[String],
) -> Result<(Evaluation, bool), RuleError> {
    let deny = |reason: String| {
        Ok((
            Evaluation {
                decision: Decision::Deny,
                reasons: vec![reason],
            },
            false,
        ))
    };
    // The most permissive of the user's roles applies.
    let best = store::limits_for(c, &p.currency, roles)
        .await?
        .into_iter()
        .max_by_key(|l| l.max_amount)
        .map(|l| (l.role, l.max_amount, l.review_above));
    let Some((role, max, review_above)) = best else {
        return deny(format!(
            "no limit configured for roles [{}] in {}",
            roles.join(", "),
            p.currency
        ));
    };
    if p.amount > max {
        return deny(format!(
            "amount {} exceeds the {role} limit of {max} {}",
            p.amount, p.currency
        ));
    }
    let mut reasons = Vec::new();
    if let Some(r) = review_above.filter(|r| p.amount > *r) {
        reasons.push(format!(
            "amount {} is above the review threshold of {r} {}",
            p.amount, p.currency
        ));
    }
    if let Some(v) = store::velocity_rule(c, &p.currency).await? {
        let (window, max_count, max_total) = (v.window_seconds, v.max_count, v.max_total);
        let (before, before_total) = store::window(c, &p.user_id, &p.currency, window).await?;
        // This payment is in the window too.
        let (count, total) = (before + 1, before_total.saturating_add(p.amount));
        if count > max_count {
            reasons.push(format!("{count} payments in {window}s exceeds {max_count}"));
        }
        if total > max_total {
            reasons.push(format!(
                "{total} {} in {window}s exceeds {max_total}",
                p.currency
            ));
        }
    }
    let decision = if reasons.is_empty() {
        Decision::Allow
    } else {
        Decision::Review
    };
    Ok((Evaluation { decision, reasons }, true))
}
