-- Its rows live on in `user_profiles` (0002). A migration of its own: CockroachDB refuses a
-- schema change after a write in the same transaction.
DROP TABLE IF EXISTS profiles;
