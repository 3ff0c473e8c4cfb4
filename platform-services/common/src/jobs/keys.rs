/// The Redis keys of one service's queue. All start with `<service>-tasks`.
#[derive(Debug, Clone)]
pub struct JobKeys {
    prefix: String,
}

impl JobKeys {
    /// `service` is the short name: `profile`, `rule-engine`, ...
    pub fn new(service: &str) -> Self {
        Self {
            prefix: format!("{service}-tasks"),
        }
    }

    /// LIST of job envelopes: producers `LPUSH`, workers take from the right.
    pub fn queue(&self) -> &str {
        &self.prefix
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// ZSET of envelopes waiting for a retry, scored by due time (ms since the epoch).
    pub fn scheduled(&self) -> String {
        format!("{}:scheduled", self.prefix)
    }

    /// LIST of envelopes that will not be tried again, newest first.
    pub fn dead(&self) -> String {
        format!("{}:dead", self.prefix)
    }

    /// SET of live worker ids.
    pub fn workers(&self) -> String {
        format!("{}:workers", self.prefix)
    }

    /// LIST of the envelopes one worker holds.
    pub fn processing(&self, worker: &str) -> String {
        format!("{}:processing:{worker}", self.prefix)
    }

    /// The worker's lease: a key with a TTL the worker keeps renewing.
    pub fn heartbeat(&self, worker: &str) -> String {
        format!("{}:heartbeat:{worker}", self.prefix)
    }

    /// HASH job id -> times delivered, to bury jobs that keep killing workers.
    pub fn deliveries(&self) -> String {
        format!("{}:deliveries", self.prefix)
    }

    /// HASH job id -> fencing token of the one delivery that may record its outcome
    /// (`<worker>:<n>`). Claiming a job sets it; recording the outcome and reaping the
    /// worker delete it, so a worker whose lease was reaped cannot record a result.
    pub fn leases(&self) -> String {
        format!("{}:leases", self.prefix)
    }

    /// STRING with the [`super::JobResult`] JSON, expiring after the result TTL.
    pub fn result(&self, id: &str) -> String {
        format!("{}:result:{id}", self.prefix)
    }

    /// LIST holding one element once the job is finished, for blocking waits.
    pub fn done(&self, id: &str) -> String {
        format!("{}:done:{id}", self.prefix)
    }
}
