-- Account kinds (a wallet is a ledger account), owners, freezes, and two-phase transfers
-- (pending, then post or void, with a timeout), after TigerBeetle's model.
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS kind TEXT NOT NULL DEFAULT 'general';
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS owner TEXT;
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS frozen BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS debits_pending BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS credits_pending BIGINT NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS accounts_owner ON accounts (owner, currency);
-- kind: posted (single phase), pending, post_pending, void_pending.
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS kind TEXT NOT NULL DEFAULT 'posted';
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS pending_id UUID;
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS timeout_at TIMESTAMPTZ;
-- For pending transfers: pending, posted, voided or expired.
ALTER TABLE transfers ADD COLUMN IF NOT EXISTS state TEXT;
CREATE INDEX IF NOT EXISTS transfers_pending_timeout ON transfers (state, timeout_at);
-- A pending transfer is resolved (posted or voided) once.
CREATE UNIQUE INDEX IF NOT EXISTS transfers_one_resolution ON transfers (pending_id);
