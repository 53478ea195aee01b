//! The `TaskStore` IO seam and its in-memory implementation, [`MemoryStore`]; the
//! `TokenStore` seam (tokens and admin settings) and [`MemoryTokenStore`].
//!
//! Every task is a [`TaskRecord`] in a store (architecture property 4): written before
//! anything goes upstream, at every state transition the machine asks to persist, and at the
//! end. A restarted engine resumes [`TaskStore::unfinished`] records.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use sora2api_core::pool::{TokenId, TokenRecord};
use sora2api_core::record::TaskRecord;
use sora2api_core::task::TaskId;

use crate::upstream::BoxFuture;

/// A store operation failed ([`TaskStore`] or [`TokenStore`]). The engine answers
/// [`sora2api_core::Error::StoreUnavailable`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be reached or refused the operation (disk full, I/O error, ...).
    Unavailable(String),
    /// A stored record could not be read back.
    Corrupt(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable(why) => write!(f, "store unavailable: {why}"),
            StoreError::Corrupt(why) => write!(f, "stored record unreadable: {why}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Where task records live. Object-safe: the engine holds an `Arc<dyn TaskStore>`.
///
/// Contract: `put` replaces the record with the same id and is durable when it returns `Ok`;
/// `get` returns the last record put; `unfinished` returns every record that is not
/// [`TaskRecord::is_finished`].
pub trait TaskStore: Send + Sync + 'static {
    /// Stores (or replaces) a record.
    fn put(&self, rec: TaskRecord) -> BoxFuture<'_, Result<(), StoreError>>;
    /// The record with this id, if any.
    fn get(&self, id: &TaskId) -> BoxFuture<'_, Result<Option<TaskRecord>, StoreError>>;
    /// Every record still processing (for resuming after a restart).
    fn unfinished(&self) -> BoxFuture<'_, Result<Vec<TaskRecord>, StoreError>>;
}

// === impl MemoryStore ===

/// Records in a `Mutex<HashMap>`: the store of tests, demo mode and embedders that need no
/// durability across processes. Share one between engines (`Arc`) to simulate a restart.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<TaskId, TaskRecord>>,
    fail_writes: AtomicBool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// An empty store whose writes fail (for tests of the store-failure paths).
    pub fn failing() -> Self {
        let store = MemoryStore::default();
        store.set_fail_writes(true);
        store
    }

    /// Makes `put` fail (`true`) or succeed again (`false`).
    pub fn set_fail_writes(&self, fail: bool) {
        self.fail_writes.store(fail, Ordering::SeqCst);
    }

    /// How many records are stored.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TaskId, TaskRecord>> {
        // Plain data: a panic elsewhere leaves it consistent.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TaskStore for MemoryStore {
    fn put(&self, rec: TaskRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        let result = if self.fail_writes.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("writes are failing (MemoryStore knob)".into()))
        } else {
            self.lock().insert(rec.id.clone(), rec);
            Ok(())
        };
        Box::pin(std::future::ready(result))
    }

    fn get(&self, id: &TaskId) -> BoxFuture<'_, Result<Option<TaskRecord>, StoreError>> {
        let rec = self.lock().get(id).cloned();
        Box::pin(std::future::ready(Ok(rec)))
    }

    fn unfinished(&self) -> BoxFuture<'_, Result<Vec<TaskRecord>, StoreError>> {
        let mut recs: Vec<TaskRecord> =
            self.lock().values().filter(|r| !r.is_finished()).cloned().collect();
        recs.sort_by(|a, b| a.id.cmp(&b.id));
        Box::pin(std::future::ready(Ok(recs)))
    }
}

// === TokenStore ===

/// Where the token pool's records and the admin settings live across restarts. Object-safe:
/// the admin API and the proxy hold an `Arc<dyn TokenStore>`.
///
/// Contract: `put_token` replaces the token with the same id and is durable when it returns
/// `Ok`; `tokens` returns every token put and not removed; settings are opaque bytes under a
/// name (the admin API decides their format), durable like tokens.
pub trait TokenStore: Send + Sync + 'static {
    /// Every stored token, in id order.
    fn tokens(&self) -> BoxFuture<'_, Result<Vec<TokenRecord>, StoreError>>;
    /// Stores (or replaces) a token.
    fn put_token(&self, rec: TokenRecord) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Removes a token; removing an unknown id is not an error.
    fn remove_token(&self, id: TokenId) -> BoxFuture<'_, Result<(), StoreError>>;
    /// The settings stored under `name`, if any.
    fn setting(&self, name: &str) -> BoxFuture<'_, Result<Option<Vec<u8>>, StoreError>>;
    /// Stores the settings under `name`.
    fn put_setting(&self, name: &str, value: Vec<u8>) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// Tokens and settings in memory: for tests, demo mode and embedders that load their tokens
/// from elsewhere on every start.
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    tokens: Mutex<BTreeMap<TokenId, TokenRecord>>,
    settings: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryTokenStore::default()
    }
}

impl TokenStore for MemoryTokenStore {
    fn tokens(&self) -> BoxFuture<'_, Result<Vec<TokenRecord>, StoreError>> {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        Box::pin(std::future::ready(Ok(tokens.values().cloned().collect())))
    }

    fn put_token(&self, rec: TokenRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner).insert(rec.id, rec);
        Box::pin(std::future::ready(Ok(())))
    }

    fn remove_token(&self, id: TokenId) -> BoxFuture<'_, Result<(), StoreError>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        Box::pin(std::future::ready(Ok(())))
    }

    fn setting(&self, name: &str) -> BoxFuture<'_, Result<Option<Vec<u8>>, StoreError>> {
        let settings = self.settings.lock().unwrap_or_else(PoisonError::into_inner);
        Box::pin(std::future::ready(Ok(settings.get(name).cloned())))
    }

    fn put_setting(&self, name: &str, value: Vec<u8>) -> BoxFuture<'_, Result<(), StoreError>> {
        let mut settings = self.settings.lock().unwrap_or_else(PoisonError::into_inner);
        settings.insert(name.to_owned(), value);
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use sora2api_core::task::TaskStatus;
    use sora2api_core::translate;

    use super::*;

    fn record(n: u128) -> TaskRecord {
        let body = br#"{"model":"gpt-image","messages":[{"role":"user","content":"A cat"}]}"#;
        let call = translate::chat(body, &translate::Limits::default()).unwrap();
        TaskRecord::new(TaskId::new(1_700_000_000_000, n), &call, 1_700_000_000_000)
    }

    fn block_on<T>(f: BoxFuture<'_, T>) -> T {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn put_get_unfinished() {
        let store = MemoryStore::new();
        let (a, mut b) = (record(1), record(2));
        block_on(store.put(a.clone())).unwrap();
        b.status = TaskStatus::Completed;
        block_on(store.put(b.clone())).unwrap();
        assert_eq!(block_on(store.get(&b.id)).unwrap(), Some(b));
        assert_eq!(block_on(store.unfinished()).unwrap(), vec![a]);
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn failing_writes_store_nothing() {
        let store = MemoryStore::failing();
        assert!(matches!(block_on(store.put(record(1))), Err(StoreError::Unavailable(_))));
        assert!(store.is_empty());
        store.set_fail_writes(false);
        block_on(store.put(record(1))).unwrap();
        assert_eq!(store.len(), 1);
    }
}
