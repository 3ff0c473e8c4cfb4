-- Money moves only through the ledger (issue 15). A wallet's balance is its ledger account's;
-- `wallets.balance`, `wallets.status` and `wallet_entries` are no longer read or written (kept
-- as the record of what was there before; see 1001 for how old balances reach the ledger).
CREATE TABLE IF NOT EXISTS credit_requests (
    id UUID PRIMARY KEY,
    wallet_id UUID NOT NULL REFERENCES wallets (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    reference TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending_approval',
    requested_by TEXT NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    decided_by TEXT,
    decided_at TIMESTAMPTZ,
    decision_reason TEXT,
    transfer_id UUID,
    UNIQUE (wallet_id, reference)
);
CREATE INDEX IF NOT EXISTS credit_requests_by_status ON credit_requests (status, requested_at);
CREATE TABLE IF NOT EXISTS withdrawals (
    id UUID PRIMARY KEY,
    wallet_id UUID NOT NULL REFERENCES wallets (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    reference TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (wallet_id, reference)
);
