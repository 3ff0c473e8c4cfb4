//! Named throttling policies, counted per (API, policy, subject) with governor's GCRA.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gateway_routes::Throttle;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// The answer for one request: allowed or not, and the numbers for the `RateLimit-*` headers.
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the quota is full again (allowed) or until the next request may pass.
    pub reset_seconds: u64,
}

/// One limiter per distinct quota, shared across route table swaps so a republish does not
/// reset anyone's count.
#[derive(Default)]
pub struct Throttles {
    limiters: Mutex<HashMap<(u32, u32), Arc<Limiter>>>,
}

impl Throttles {
    pub fn check(&self, api: &str, policy: &Throttle, subject: &str) -> Decision {
        let limiter = self.limiter(policy);
        let key = format!("{api}\u{0}{}\u{0}{subject}", policy.policy);
        let per_request =
            Duration::from_secs(u64::from(policy.period_seconds)) / policy.requests.max(1);
        match limiter.check_key(&key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = policy.requests.saturating_sub(remaining);
                Decision {
                    allowed: true,
                    limit: policy.requests,
                    remaining,
                    reset_seconds: (per_request * used).as_secs_f64().ceil() as u64,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Decision {
                    allowed: false,
                    limit: policy.requests,
                    remaining: 0,
                    reset_seconds: wait.as_secs_f64().ceil().max(1.0) as u64,
                }
            }
        }
    }

    fn limiter(&self, policy: &Throttle) -> Arc<Limiter> {
        let key = (policy.requests, policy.period_seconds);
        let mut map = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(key)
            .or_insert_with(|| {
                let burst = NonZeroU32::new(policy.requests.max(1)).expect("non-zero");
                let period =
                    Duration::from_secs(u64::from(policy.period_seconds.max(1))) / burst.get();
                let quota = Quota::with_period(period)
                    .expect("non-zero period")
                    .allow_burst(burst);
                Arc::new(RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>())
            })
            .clone()
    }

    /// Forgets subjects whose quota is full again: keeps memory bounded by recent callers.
    pub fn forget_idle(&self) {
        let limiters: Vec<_> = self
            .limiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for l in limiters {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_per_subject() {
        let t = Throttles::default();
        let p = Throttle {
            policy: "tiny".into(),
            requests: 2,
            period_seconds: 60,
        };
        assert!(t.check("a", &p, "u1").allowed);
        let second = t.check("a", &p, "u1");
        assert!(second.allowed);
        assert_eq!(second.remaining, 0);
        let third = t.check("a", &p, "u1");
        assert!(!third.allowed);
        assert!(third.reset_seconds >= 1 && third.reset_seconds <= 30);
        assert!(t.check("a", &p, "u2").allowed);
        assert!(t.check("b", &p, "u1").allowed);
    }
}
