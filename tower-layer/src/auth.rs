//! API keys: the set of keys a client may present (`Authorization: Bearer <key>`), shared
//! between the service (which checks them) and the admin API (which adds and removes them).
//!
//! The comparison does not leak timing (client-api.md "Authentication"): every stored key is
//! compared with the presented one over the full length of the longer of the two, and the
//! loop does not stop at the first match.

use std::sync::{Arc, PoisonError, RwLock};

use sora2api_core::secret::Secret;

/// The accepted API keys. Cheap to clone; every clone is the same set.
#[derive(Clone, Default)]
pub struct ApiKeys {
    keys: Arc<RwLock<Vec<Secret>>>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys").field("count", &self.len()).finish()
    }
}

impl ApiKeys {
    /// A set of keys (empty ones are skipped: an empty key would accept `Bearer `).
    pub fn new<I, K>(keys: I) -> ApiKeys
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        let set = ApiKeys::default();
        for key in keys {
            set.add(key);
        }
        set
    }

    /// Whether `presented` is one of the keys, in time that depends only on the lengths.
    pub fn check(&self, presented: &str) -> bool {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let mut found = false;
        for key in keys.iter() {
            found |= constant_time_eq(key.expose().as_bytes(), presented.as_bytes());
        }
        found
    }

    /// Adds a key; `false` if it is empty or already present.
    pub fn add(&self, key: impl Into<String>) -> bool {
        let key = Secret::new(key);
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if key.is_empty() || keys.contains(&key) {
            return false;
        }
        keys.push(key);
        true
    }

    /// Replaces every key at once (a client never sees an empty set in between); empty keys
    /// and duplicates are skipped. Returns how many keys there are now.
    pub fn replace<I, K>(&self, keys: I) -> usize
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        let mut fresh: Vec<Secret> = Vec::new();
        for key in keys {
            let key = Secret::new(key);
            if !key.is_empty() && !fresh.contains(&key) {
                fresh.push(key);
            }
        }
        let count = fresh.len();
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        count
    }

    /// Removes the key with this value or this fingerprint ([`Secret::fingerprint`]); `false`
    /// if none matched.
    pub fn remove(&self, key_or_fingerprint: &str) -> bool {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        let before = keys.len();
        keys.retain(|k| {
            !(constant_time_eq(k.expose().as_bytes(), key_or_fingerprint.as_bytes())
                || k.fingerprint() == key_or_fingerprint)
        });
        keys.len() != before
    }

    /// The keys, masked ([`Secret::masked`]) for display.
    pub fn masked(&self) -> Vec<String> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        keys.iter().map(Secret::masked).collect()
    }

    /// The keys themselves (for persisting them; never for a response or a log).
    pub fn secrets(&self) -> Vec<Secret> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether there are no keys (then every request is refused).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `a == b` in time that depends only on the lengths: every byte of the longer input is
/// looked at, and the lengths are compared without a branch on the contents.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_every_key() {
        let keys = ApiKeys::new(["han1234", "", "second-key"]);
        assert_eq!(keys.len(), 2);
        assert!(keys.check("han1234") && keys.check("second-key"));
        for wrong in ["", "han123", "han12345", "HAN1234", "second-key "] {
            assert!(!keys.check(wrong), "{wrong:?}");
        }
        assert!(!keys.add("han1234"), "duplicate");
        let fp = Secret::new("second-key").fingerprint();
        assert!(keys.remove(&fp));
        assert!(!keys.check("second-key"));
        assert!(keys.masked().iter().all(|m| !m.contains("han1234")));
        assert_eq!(keys.replace(["new-key", "", "new-key", "other-key"]), 2);
        assert!(!keys.check("han1234") && keys.check("new-key") && keys.check("other-key"));
    }

    #[test]
    fn constant_time_eq_matches_eq() {
        let cases: [(&[u8], &[u8]); 5] =
            [(b"", b""), (b"a", b""), (b"abc", b"abc"), (b"abc", b"abd"), (b"ab", b"abc")];
        for (a, b) in cases {
            assert_eq!(constant_time_eq(a, b), a == b, "{a:?} {b:?}");
        }
    }
}
