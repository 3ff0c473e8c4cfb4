-- Every wallet is a ledger account with the same id (numbered after the ledger's migrations,
-- 101 and up, whose tables it writes). For wallets opened before the ledger held their money:
-- - their account is opened as `ledger::book::open_wallet_account` opens one, frozen when the
--   wallet was (`wallets.status`, no longer read);
-- - a balance they held (`wallets.balance`, no longer read or written, kept as the record)
--   is NOT moved into the ledger by itself, because money enters the ledger only as an
--   approved deposit: it becomes a credit request `pending_approval` for that amount,
--   requested by `system:wallet-migration-1001`, which any finance or admin user other than
--   the wallet's owner approves (GET /credit-requests?status=pending_approval lists them).
--   Until then the wallet shows balance 0.
-- Idempotent: accounts by id, requests by (wallet_id, reference).
INSERT INTO accounts (id, kind, owner, currency, frozen, debits_must_not_exceed_credits,
    credits_must_not_exceed_debits, reference, created_by)
SELECT id, 'wallet', owner, currency, status = 'frozen', true, false, 'wallet',
    'system:wallet-migration-1001'
FROM wallets
ON CONFLICT (id) DO NOTHING;
INSERT INTO credit_requests (id, wallet_id, amount, currency, reference, requested_by)
SELECT gen_random_uuid(), id, balance, currency, 'opening balance (wallet migration 1001)',
    'system:wallet-migration-1001'
FROM wallets
WHERE balance > 0
ON CONFLICT (wallet_id, reference) DO NOTHING;
