-- Quotes belong to the caller's stable subject (`sub`), not to a username, which can change.
-- `owner` stays as the display name. Rows written before this migration have no `owner_id`:
-- nobody can convert them any more (they expired seconds after they were made); they stay as
-- history.
ALTER TABLE quotes ADD COLUMN IF NOT EXISTS owner_id TEXT;
-- A quote made by the payment saga (`payment.screened`): the payment it converted. Its id is
-- derived from the payment id, so a payment is converted at most once.
ALTER TABLE quotes ADD COLUMN IF NOT EXISTS payment_id UUID;
