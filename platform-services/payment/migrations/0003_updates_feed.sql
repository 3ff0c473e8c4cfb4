-- The payment updates socket reads the payments changed in the last seconds, whichever process
-- changed them (the API screens, the worker's saga completes or fails them).
CREATE INDEX IF NOT EXISTS payments_updated_at ON payments (updated_at);
