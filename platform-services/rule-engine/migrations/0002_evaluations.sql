-- Every evaluated payment, once: the velocity window is read from here (it was a Redis
-- sorted set per username and currency, whose entries expire with their window; the first
-- windows after this migration start empty), keyed by the payer's subject, and a payment
-- evaluated again gets the decision it got the first time.
CREATE TABLE IF NOT EXISTS evaluations (
    payment_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount BIGINT NOT NULL,
    decision TEXT NOT NULL,
    reasons TEXT[] NOT NULL,
    -- In the payer's velocity window: every payment that passed the limits.
    counted BOOLEAN NOT NULL,
    evaluated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS evaluations_by_payer ON evaluations (user_id, currency, evaluated_at);
