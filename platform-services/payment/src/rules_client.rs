use std::time::Duration;

use platform_common::telemetry;
use serde::{Deserialize, Serialize};

use crate::PaymentError;

/// rule-engine's `POST /evaluate`, called with the caller's own token.
#[derive(Clone)]
pub struct RuleEngine {
    base: String,
    http: reqwest::Client,
}

#[derive(Serialize)]
pub struct Request<'a> {
    pub user: &'a str,
    pub roles: &'a [String],
    pub amount: i64,
    pub currency: &'a str,
    pub payment_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    /// `allow`, `deny` or `review`.
    pub decision: String,
    pub reasons: Vec<String>,
}

impl RuleEngine {
    pub fn new(base: String, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("reqwest client builds");
        Self {
            base: base.trim_end_matches('/').to_string(),
            http,
        }
    }

    pub async fn evaluate(
        &self,
        token: &str,
        req: &Request<'_>,
    ) -> Result<Evaluation, PaymentError> {
        let resp = self
            .http
            .post(format!("{}/evaluate", self.base))
            .bearer_auth(token)
            // rule-engine's request span joins this request's trace (when export is on).
            .headers(telemetry::trace_headers())
            .json(req)
            .send()
            .await
            .map_err(|e| PaymentError::RuleEngineUnavailable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(PaymentError::RuleEngineUnavailable(format!(
                "HTTP {}",
                resp.status()
            )));
        }
        resp.json()
            .await
            .map_err(|e| PaymentError::RuleEngineUnavailable(e.to_string()))
    }
}
