-- Profiles keyed by the user's stable subject (`sub`) instead of the renameable username,
-- which stays as a display field. Rows from `profiles` keep their username as their key: it
-- is their subject wherever the identity provider's `sub` is the user name (Canaille); under
-- an IdP with opaque subjects (Keycloak) a migrated row matches nobody, and its owner starts
-- again with a new profile rather than a renamed or recycled user name inheriting its KYC.
-- The reviewer's subject of a migrated decision is likewise the reviewer's username.
CREATE TABLE IF NOT EXISTS user_profiles (
    user_id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    email TEXT,
    full_name TEXT NOT NULL,
    kyc_status TEXT NOT NULL DEFAULT 'pending',
    kyc_reviewer_id TEXT,
    kyc_reviewed_by TEXT,
    kyc_reason TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO user_profiles (user_id, username, email, full_name, kyc_status, kyc_reviewer_id,
    kyc_reviewed_by, kyc_reason, created_at, updated_at)
SELECT username, username, email, full_name, kyc_status, kyc_reviewed_by,
    kyc_reviewed_by, kyc_reason, created_at, updated_at
FROM profiles
ON CONFLICT (user_id) DO NOTHING;
