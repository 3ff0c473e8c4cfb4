CREATE TABLE IF NOT EXISTS accounts (
    id UUID PRIMARY KEY,
    currency TEXT NOT NULL,
    debits_must_not_exceed_credits BOOLEAN NOT NULL DEFAULT false,
    credits_must_not_exceed_debits BOOLEAN NOT NULL DEFAULT false,
    debits_posted BIGINT NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted BIGINT NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    reference TEXT,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS transfers (
    id UUID PRIMARY KEY,
    debit_account_id UUID NOT NULL REFERENCES accounts (id),
    credit_account_id UUID NOT NULL REFERENCES accounts (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    reference TEXT,
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS transfers_debit ON transfers (debit_account_id);
CREATE INDEX IF NOT EXISTS transfers_credit ON transfers (credit_account_id);
