//! Sentinel tokens cached per (token, proxy) with a TTL (decisions 13), shared by the tasks
//! of one shell. Sans-IO: the shell passes the time in.
//!
//! ```
//! use sora2api_core::machine::SentinelCache;
//! use sora2api_core::pool::TokenId;
//! use sora2api_core::upstream::SentinelToken;
//!
//! let mut cache = SentinelCache::new(300_000);
//! let key = (TokenId(1), None);
//! cache.put(1_000, key.clone(), SentinelToken::new("{\"p\":\"…\"}", "device-id"));
//! assert!(cache.get(2_000, &key).is_some());
//! assert!(cache.get(301_000, &key).is_none(), "expired after the TTL");
//! ```

use std::collections::HashMap;

use crate::pool::TokenId;
use crate::upstream::SentinelToken;

/// Which sentinel: the token and the egress proxy it was fetched through.
pub type SentinelKey = (TokenId, Option<String>);

/// Ready sentinel tokens by (token, proxy), each valid for the TTL after it was fetched.
#[derive(Debug, Clone, Default)]
pub struct SentinelCache {
    ttl_ms: u64,
    entries: HashMap<SentinelKey, (u64, SentinelToken)>,
}

impl SentinelCache {
    /// A cache whose entries live `ttl_ms` (decisions 13: 5 minutes by default).
    pub fn new(ttl_ms: u64) -> Self {
        SentinelCache { ttl_ms, entries: HashMap::new() }
    }

    /// A sentinel fetched less than the TTL ago, if any; drops an expired one.
    pub fn get(&mut self, now_ms: u64, key: &SentinelKey) -> Option<SentinelToken> {
        match self.entries.get(key) {
            Some((at, token)) if now_ms < at.saturating_add(self.ttl_ms) => Some(token.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remembers a freshly fetched sentinel.
    pub fn put(&mut self, now_ms: u64, key: SentinelKey, token: SentinelToken) {
        self.entries.insert(key, (now_ms, token));
    }

    /// Forgets a sentinel the upstream called stale.
    pub fn invalidate(&mut self, key: &SentinelKey) {
        self.entries.remove(key);
    }

    /// Cached entries (expired ones included until looked up).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
