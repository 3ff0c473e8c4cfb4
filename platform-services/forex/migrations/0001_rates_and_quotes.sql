CREATE TABLE IF NOT EXISTS rates (
    currency TEXT PRIMARY KEY,
    per_usd_e8 BIGINT NOT NULL CHECK (per_usd_e8 > 0),
    source TEXT NOT NULL,
    as_of TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS quotes (
    id UUID PRIMARY KEY,
    owner TEXT NOT NULL,
    sell_currency TEXT NOT NULL,
    buy_currency TEXT NOT NULL,
    sell_amount BIGINT NOT NULL CHECK (sell_amount > 0),
    buy_amount BIGINT NOT NULL CHECK (buy_amount > 0),
    rate_e8 BIGINT NOT NULL,
    mid_rate_e8 BIGINT NOT NULL,
    spread_bps BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    converted_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
