use std::sync::LazyLock;

use axum::Json;
use axum::extract::State as AxState;
use platform_common::CommonError;
use platform_common::auth::{CurrentUser, roles};
use platform_common::http::ApiJson;
use platform_common::money;
use platform_common::money::CurrencyCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{RuleError, State, store};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user": "user", "roles": ["user"], "amount": 2500, "currency": "USD",
    "payment_id": "3f2b8c1a-9d4e-4f6a-8b7c-1d2e3f4a5b6c"}))]
pub struct PaymentToEvaluate {
    pub user: String,
    pub roles: Vec<String>,
    /// Minor units, > 0.
    #[schema(minimum = 1)]
    pub amount: i64,
    #[schema(value_type = CurrencyCode)]
    pub currency: String,
    /// When set, evaluating the same payment again does not count twice in the window.
    pub payment_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
    Review,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"decision": "allow", "reasons": []}))]
pub struct Evaluation {
    pub decision: Decision,
    pub reasons: Vec<String>,
}

/// Sliding window per user and currency. Members are `<payment id>:<amount>`.
/// KEYS: window. ARGV: now ms, window ms, member. Returns {count, total}.
static VELOCITY: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local total = 0
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, m in ipairs(members) do
  total = total + tonumber(string.match(m, ':(%-?%d+)$'))
end
return {#members, total}
",
    )
});

/// Evaluate a payment. Callers other than admin and ops_user can only evaluate themselves,
/// with at most the roles their token carries.
#[utoipa::path(post, path = "/evaluate", tag = "rules", operation_id = "evaluate",
    security(("bearer" = [])), request_body = PaymentToEvaluate,
    responses((status = 200, body = Evaluation),
        (status = 403, description = "another user's payment, without admin or ops_user")),
    extensions(("x-problem-codes" = json!({"403": ["forbidden"]}))))]
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
        if p.user != caller.username {
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

    let client = s.ctx.db.get().await?;
    // The most permissive of the user's roles applies.
    let best = store::limits_for(&client, &p.currency, &subject_roles)
        .await?
        .into_iter()
        .max_by_key(|l| l.max_amount)
        .map(|l| (l.role, l.max_amount, l.review_above));
    let Some((role, max, review_above)) = best else {
        return Ok(Json(Evaluation {
            decision: Decision::Deny,
            reasons: vec![format!(
                "no limit configured for roles [{}] in {}",
                subject_roles.join(", "),
                p.currency
            )],
        }));
    };
    if p.amount > max {
        return Ok(Json(Evaluation {
            decision: Decision::Deny,
            reasons: vec![format!(
                "amount {} exceeds the {role} limit of {max} {}",
                p.amount, p.currency
            )],
        }));
    }
    let mut reasons = Vec::new();
    if let Some(r) = review_above.filter(|r| p.amount > *r) {
        reasons.push(format!(
            "amount {} is above the review threshold of {r} {}",
            p.amount, p.currency
        ));
    }

    if let Some(v) = store::velocity_rule(&client, &p.currency).await? {
        let (window, max_count, max_total) = (v.window_seconds, v.max_count, v.max_total);
        let mut c = s.ctx.redis.conn().await?;
        let member = format!(
            "{}:{}",
            p.payment_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            p.amount
        );
        let (count, total): (i64, i64) = VELOCITY
            .key(format!("rule-engine:velocity:{}:{}", p.user, p.currency))
            .arg(chrono::Utc::now().timestamp_millis())
            .arg(window * 1000)
            .arg(member)
            .invoke_async(&mut c)
            .await?;
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
    Ok(Json(Evaluation { decision, reasons }))
}
