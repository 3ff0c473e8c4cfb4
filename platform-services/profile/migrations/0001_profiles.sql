CREATE TABLE IF NOT EXISTS profiles (
    username TEXT PRIMARY KEY,
    email TEXT,
    full_name TEXT NOT NULL,
    kyc_status TEXT NOT NULL DEFAULT 'pending',
    kyc_reviewed_by TEXT,
    kyc_reason TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
