CREATE TABLE IF NOT EXISTS limits (
    role TEXT NOT NULL,
    currency TEXT NOT NULL,
    max_amount BIGINT NOT NULL CHECK (max_amount > 0),
    review_above BIGINT CHECK (review_above > 0),
    updated_by TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (role, currency)
);
CREATE TABLE IF NOT EXISTS velocity_rules (
    currency TEXT PRIMARY KEY,
    window_seconds BIGINT NOT NULL CHECK (window_seconds > 0),
    max_count BIGINT NOT NULL CHECK (max_count > 0),
    max_total BIGINT NOT NULL CHECK (max_total > 0),
    updated_by TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO limits (role, currency, max_amount, review_above, updated_by) VALUES
    ('user', 'USD', 1000000, 500000, 'migration'),
    ('user', 'EUR', 1000000, 500000, 'migration'),
    ('user', 'GBP', 1000000, 500000, 'migration'),
    ('finance', 'USD', 100000000, 50000000, 'migration'),
    ('finance', 'EUR', 100000000, 50000000, 'migration'),
    ('admin', 'USD', 1000000000, NULL, 'migration'),
    ('admin', 'EUR', 1000000000, NULL, 'migration')
ON CONFLICT (role, currency) DO NOTHING;
INSERT INTO velocity_rules (currency, window_seconds, max_count, max_total, updated_by) VALUES
    ('USD', 3600, 10, 2000000, 'migration'),
    ('EUR', 3600, 10, 2000000, 'migration')
ON CONFLICT (currency) DO NOTHING;
