-- The payment saga: the payer's and payee's wallets (ledger accounts), the conversion, the
-- holds, why it failed, and every state it went through.
ALTER TABLE payments ADD COLUMN IF NOT EXISTS payer_name TEXT;
ALTER TABLE payments ADD COLUMN IF NOT EXISTS payer_wallet_id UUID;
ALTER TABLE payments ADD COLUMN IF NOT EXISTS payee_wallet_id UUID;
ALTER TABLE payments ADD COLUMN IF NOT EXISTS payee_currency TEXT;
ALTER TABLE payments ADD COLUMN IF NOT EXISTS payee_amount BIGINT;
ALTER TABLE payments ADD COLUMN IF NOT EXISTS quote_id UUID;
ALTER TABLE payments ADD COLUMN IF NOT EXISTS rate_e8 BIGINT;
ALTER TABLE payments ADD COLUMN IF NOT EXISTS hold_ids UUID[];
ALTER TABLE payments ADD COLUMN IF NOT EXISTS failure_reason TEXT;
ALTER TABLE payments ADD COLUMN IF NOT EXISTS updated_at TIMESTAMPTZ NOT NULL DEFAULT now();
CREATE INDEX IF NOT EXISTS payments_status ON payments (status, updated_at);
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS payment_id UUID;
CREATE TABLE IF NOT EXISTS payment_history (
    payment_id UUID NOT NULL,
    seq INT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (payment_id, seq)
);
