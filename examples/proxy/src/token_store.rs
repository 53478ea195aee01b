//! [`RedbTokenStore`]: the durable [`TokenStore`] of the proxy (the token pool's records and
//! the admin settings), in the data directory's database ([`crate::DataDir`]).
//!
//! Two tables:
//!
//! - `tokens`: token id (`u64`) -> [`TokenRecord::to_bytes`] (secrets included);
//! - `settings`: name -> the bytes the admin API stored under it.
//!
//! Every write commits with [`Durability::Immediate`]: it is on disk when the call returns
//! `Ok`. That is one fsync per write, so persist a token when something that must survive a
//! restart changed (credentials, state, an admin edit), not on every lease; several tokens
//! at once go in one commit with [`RedbTokenStore::put_tokens`]. Every transaction runs on
//! Tokio's blocking pool.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, Durability, ReadableTable, TableDefinition};
use sora2api_tower::core::pool::{TokenId, TokenRecord};
use sora2api_tower::{BoxFuture, StoreError, TokenStore};

use crate::redb_store::{blocking, unavailable};

/// Token id -> record bytes ([`TokenRecord::to_bytes`]).
const TOKENS: TableDefinition<u64, &[u8]> = TableDefinition::new("tokens");
/// Setting name -> opaque bytes.
const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings");

/// A [`TokenStore`] in the data directory's redb database. Cheap to clone (the database is
/// shared); made by [`DataDir::token_store`](crate::DataDir::token_store).
///
/// Contract: every write is durable when it returns `Ok`; reads see every write that
/// returned `Ok`. A stored token that does not read back, or is stored under another id than
/// its own, is [`StoreError::Corrupt`] naming the id (and [`TokenStore::tokens`] fails as a
/// whole: a token silently missing from the pool would be worse); redb failures are
/// [`StoreError::Unavailable`].
#[derive(Clone)]
pub struct RedbTokenStore {
    db: Arc<Database>,
    path: Arc<PathBuf>,
}

impl fmt::Debug for RedbTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbTokenStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl RedbTokenStore {
    /// The store in an open database whose tables exist ([`RedbTokenStore::create_tables`]).
    pub(crate) fn new(db: Arc<Database>, path: Arc<PathBuf>) -> Self {
        RedbTokenStore { db, path }
    }

    /// Creates the token store's tables if they are missing.
    pub(crate) fn create_tables(db: &Database) -> Result<(), StoreError> {
        let txn = db.begin_write().map_err(|e| unavailable("begin write", e))?;
        {
            txn.open_table(TOKENS).map_err(|e| unavailable("open table tokens", e))?;
            txn.open_table(SETTINGS).map_err(|e| unavailable("open table settings", e))?;
        }
        txn.commit().map_err(|e| unavailable("commit", e))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores (or replaces) several tokens in one durable commit: all of them or, on error,
    /// none.
    pub async fn put_tokens(&self, recs: Vec<TokenRecord>) -> Result<(), StoreError> {
        let db = self.db.clone();
        blocking(move || {
            write(&db, |txn| {
                let mut tokens = open_tokens(txn)?;
                for rec in &recs {
                    tokens
                        .insert(rec.id.0, rec.to_bytes().as_slice())
                        .map_err(|e| unavailable("write", e))?;
                }
                Ok(())
            })
        })
        .await
    }
}

fn open_tokens(
    txn: &redb::WriteTransaction,
) -> Result<redb::Table<'_, u64, &'static [u8]>, StoreError> {
    txn.open_table(TOKENS).map_err(|e| unavailable("open table tokens", e))
}

/// Runs `f` in a write transaction committed with [`Durability::Immediate`].
fn write(
    db: &Database,
    f: impl FnOnce(&redb::WriteTransaction) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut txn = db.begin_write().map_err(|e| unavailable("begin write", e))?;
    txn.set_durability(Durability::Immediate);
    f(&txn)?;
    txn.commit().map_err(|e| unavailable("commit", e))
}

/// Decodes the stored value of token `key`, checking it is the record of that id.
fn decode(key: u64, bytes: &[u8]) -> Result<TokenRecord, StoreError> {
    let rec = TokenRecord::from_bytes(bytes)
        .map_err(|err| StoreError::Corrupt(format!("token {key}: {err}")))?;
    if rec.id != TokenId(key) {
        return Err(StoreError::Corrupt(format!("token {key}: the stored record is {}", rec.id)));
    }
    Ok(rec)
}

fn tokens_blocking(db: &Database) -> Result<Vec<TokenRecord>, StoreError> {
    let txn = db.begin_read().map_err(|e| unavailable("begin read", e))?;
    let tokens = txn.open_table(TOKENS).map_err(|e| unavailable("open table tokens", e))?;
    let mut recs = Vec::new();
    // Keys iterate in ascending order: the trait's id order.
    for entry in tokens.iter().map_err(|e| unavailable("read", e))? {
        let (key, value) = entry.map_err(|e| unavailable("read", e))?;
        recs.push(decode(key.value(), value.value())?);
    }
    Ok(recs)
}

fn setting_blocking(db: &Database, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let txn = db.begin_read().map_err(|e| unavailable("begin read", e))?;
    let settings = txn.open_table(SETTINGS).map_err(|e| unavailable("open table settings", e))?;
    let value = settings.get(name).map_err(|e| unavailable("read", e))?;
    Ok(value.map(|v| v.value().to_vec()))
}

impl TokenStore for RedbTokenStore {
    fn tokens(&self) -> BoxFuture<'_, Result<Vec<TokenRecord>, StoreError>> {
        let db = self.db.clone();
        Box::pin(blocking(move || tokens_blocking(&db)))
    }

    fn put_token(&self, rec: TokenRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.put_tokens(vec![rec]))
    }

    fn remove_token(&self, id: TokenId) -> BoxFuture<'_, Result<(), StoreError>> {
        let db = self.db.clone();
        Box::pin(blocking(move || {
            write(&db, |txn| {
                open_tokens(txn)?.remove(id.0).map_err(|e| unavailable("write", e))?;
                Ok(())
            })
        }))
    }

    fn setting(&self, name: &str) -> BoxFuture<'_, Result<Option<Vec<u8>>, StoreError>> {
        let (db, name) = (self.db.clone(), name.to_owned());
        Box::pin(blocking(move || setting_blocking(&db, &name)))
    }

    fn put_setting(&self, name: &str, value: Vec<u8>) -> BoxFuture<'_, Result<(), StoreError>> {
        let (db, name) = (self.db.clone(), name.to_owned());
        Box::pin(blocking(move || {
            write(&db, |txn| {
                let mut settings =
                    txn.open_table(SETTINGS).map_err(|e| unavailable("open table settings", e))?;
                settings
                    .insert(name.as_str(), value.as_slice())
                    .map_err(|e| unavailable("write", e))?;
                Ok(())
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use sora2api_tower::core::secret::Secret;

    use super::*;
    use crate::DataDir;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir()
                .join(format!("sora2api-tokens-unit-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn write_raw(store: &RedbTokenStore, key: u64, value: &[u8]) {
        let txn = store.db.begin_write().unwrap();
        txn.open_table(TOKENS).unwrap().insert(key, value).unwrap();
        txn.commit().unwrap();
    }

    fn token(id: u64) -> TokenRecord {
        TokenRecord { id: TokenId(id), ..TokenRecord::new(Secret::new(format!("at-{id}"))) }
    }

    #[tokio::test]
    async fn corrupt_records_are_corrupt_errors_naming_the_id() {
        let dir = TempDir::new("corrupt");
        let store = DataDir::open(&dir.0).unwrap().token_store();
        store.put_token(token(1)).await.unwrap();
        store.put_token(token(2)).await.unwrap();
        write_raw(&store, 2, b"{\"v\":1,\"id\":");
        match store.tokens().await {
            Err(StoreError::Corrupt(why)) => {
                assert!(why.starts_with("token 2: "), "{why}");
                assert!(why.contains("truncated"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        // A record stored under another id is corrupt too.
        write_raw(&store, 2, &token(1).to_bytes());
        match store.tokens().await {
            Err(StoreError::Corrupt(why)) => assert!(why.contains("token 2"), "{why}"),
            other => panic!("{other:?}"),
        }
        // Replacing or removing the bad record repairs the store.
        store.remove_token(TokenId(2)).await.unwrap();
        assert_eq!(store.tokens().await.unwrap(), vec![token(1)]);
    }
}
