use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Every event on every topic has this shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// Unique per event; consumers deduplicate on it.
    pub event_id: Uuid,
    /// `payment.initiated`, `ledger.transfer_posted`, ...; also the topic name.
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    /// The emitting service, `svc-<name>`.
    pub source: String,
    pub payload: Value,
}

impl EventEnvelope {
    pub fn new(kind: impl Into<String>, source: impl Into<String>, payload: Value) -> Self {
        Self {
            event_id: Uuid::new_v4(),
            kind: kind.into(),
            occurred_at: Utc::now(),
            source: source.into(),
            payload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names() {
        let e = EventEnvelope::new(
            "payment.initiated",
            "svc-payment",
            serde_json::json!({"id": 1}),
        );
        let v = serde_json::to_value(&e).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["event_id", "occurred_at", "payload", "source", "type"]
        );
        assert_eq!(v["type"], "payment.initiated");
    }
}
