//! Tokens that passed full verification, so that a client reusing its token costs one RS256
//! check per token rather than one per request.
//!
//! Keyed by the SHA-256 of the exact token string: the token itself is never stored, and any
//! change to it (one byte of header, payload or signature) is a different key, so it goes
//! through full verification again. An entry is served only while `nbf <= now < valid_until`,
//! which is never more lenient than the verifier (no leeway is applied here); outside that
//! window the token takes the full path, which decides with its own leeway.

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::User;

const SHARDS: usize = 16;

/// SHA-256 of a token; the only form in which a token is kept.
pub type TokenHash = [u8; 32];

pub fn token_hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Debug, Clone)]
struct Entry {
    user: User,
    /// Unix seconds: the earlier of the token's `exp` and the age limit of the entry.
    valid_until: u64,
    /// Unix seconds: the token's `nbf`, if any.
    not_before: Option<u64>,
}

/// A bounded map of verified tokens, split into shards so concurrent requests rarely share a
/// lock. Each shard holds at most `capacity / SHARDS` entries; a full shard first drops its
/// expired entries, then the entry closest to expiry.
pub struct VerifiedTokens {
    shards: Box<[Mutex<HashMap<TokenHash, Entry>>]>,
    per_shard: usize,
}

impl VerifiedTokens {
    /// `capacity` 0 disables the cache.
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard,
        }
    }

    fn shard(&self, key: &TokenHash) -> &Mutex<HashMap<TokenHash, Entry>> {
        // The key is already a uniform hash: its first byte picks the shard.
        &self.shards[usize::from(key[0]) % SHARDS]
    }

    /// The user of a cached token, if it is inside its validity window at `now`.
    pub fn get(&self, key: &TokenHash, now: u64) -> Option<User> {
        let mut shard = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        let entry = shard.get(key)?;
        if now >= entry.valid_until {
            shard.remove(key);
            return None;
        }
        if entry.not_before.is_some_and(|nbf| now < nbf) {
            return None;
        }
        Some(entry.user.clone())
    }

    /// Remember a token that just passed full verification.
    pub fn insert(
        &self,
        key: TokenHash,
        user: User,
        valid_until: u64,
        not_before: Option<u64>,
        now: u64,
    ) {
        if self.per_shard == 0 || now >= valid_until {
            return;
        }
        let mut shard = self.shard(&key).lock().unwrap_or_else(|e| e.into_inner());
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            shard.retain(|_, e| now < e.valid_until);
            if shard.len() >= self.per_shard {
                // Cheap enough: only a full shard of a few hundred entries is scanned, and only
                // when a new token arrives, which costs an RSA verification anyway.
                if let Some(oldest) = shard
                    .iter()
                    .min_by_key(|(_, e)| e.valid_until)
                    .map(|(k, _)| *k)
                {
                    shard.remove(&oldest);
                }
            }
        }
        shard.insert(
            key,
            Entry {
                user,
                valid_until,
                not_before,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> User {
        User {
            id: name.into(),
            username: name.into(),
            email: None,
            roles: vec!["user".into()],
        }
    }

    #[test]
    fn served_only_before_expiry() {
        let c = VerifiedTokens::new(100);
        let k = token_hash("t");
        c.insert(k, user("a"), 1_000, None, 900);
        assert_eq!(c.get(&k, 999).unwrap().username, "a");
        assert!(c.get(&k, 1_000).is_none());
        // An expired entry is dropped, not kept for later.
        assert!(c.get(&k, 999).is_none());
    }

    #[test]
    fn not_served_before_nbf() {
        let c = VerifiedTokens::new(100);
        let k = token_hash("t");
        c.insert(k, user("a"), 1_000, Some(500), 400);
        assert!(c.get(&k, 499).is_none());
        assert!(c.get(&k, 500).is_some());
    }

    #[test]
    fn already_expired_is_not_stored() {
        let c = VerifiedTokens::new(100);
        c.insert(token_hash("t"), user("a"), 1_000, None, 1_000);
        assert!(c.is_empty());
    }

    #[test]
    fn key_is_the_exact_token() {
        let c = VerifiedTokens::new(100);
        c.insert(token_hash("abc.def.ghi"), user("a"), 1_000, None, 0);
        assert!(c.get(&token_hash("abc.def.ghj"), 1).is_none());
        assert!(c.get(&token_hash("abc.def.ghi "), 1).is_none());
    }

    #[test]
    fn size_is_bounded_and_evicts_soonest_expiring() {
        let c = VerifiedTokens::new(64);
        for i in 0..10_000u64 {
            c.insert(token_hash(&i.to_string()), user("u"), 10_000 + i, None, 0);
        }
        assert!(c.len() <= 64, "len {}", c.len());
        assert!(c.len() >= 48, "len {}", c.len());
        // The newest token survives: the one evicted is always the one expiring first.
        assert!(c.get(&token_hash("9999"), 1).is_some());
        assert!(c.get(&token_hash("0"), 1).is_none());
    }

    #[test]
    fn expired_entries_make_room_first() {
        let c = VerifiedTokens::new(SHARDS);
        let mut keys = Vec::new();
        // Fill every shard with an entry that expires at 100.
        let mut i = 0u64;
        while keys.len() < SHARDS {
            let k = token_hash(&i.to_string());
            if !keys
                .iter()
                .any(|o: &TokenHash| o[0] as usize % SHARDS == k[0] as usize % SHARDS)
            {
                c.insert(k, user("old"), 100, None, 0);
                keys.push(k);
            }
            i += 1;
        }
        assert_eq!(c.len(), SHARDS);
        let fresh = token_hash("fresh");
        c.insert(fresh, user("new"), 1_000, None, 200);
        assert_eq!(c.len(), SHARDS);
        assert_eq!(c.get(&fresh, 201).unwrap().username, "new");
    }

    #[test]
    fn zero_capacity_disables() {
        let c = VerifiedTokens::new(0);
        c.insert(token_hash("t"), user("a"), 1_000, None, 0);
        assert!(c.is_empty());
    }
}
