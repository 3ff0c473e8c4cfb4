CREATE TABLE IF NOT EXISTS wallets (
    id UUID PRIMARY KEY,
    owner TEXT NOT NULL,
    currency TEXT NOT NULL,
    balance BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0),
    status TEXT NOT NULL DEFAULT 'active',
    status_reason TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (owner, currency)
);
CREATE TABLE IF NOT EXISTS wallet_entries (
    wallet_id UUID NOT NULL REFERENCES wallets (id),
    reference TEXT NOT NULL,
    direction TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    created_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (wallet_id, reference)
);
