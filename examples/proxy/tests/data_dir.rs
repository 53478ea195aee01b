//! `DataDir` and `RedbTokenStore`: one database for both stores, reopening keeps tokens,
//! settings and tasks, removal, corrupt records, and the errors of a directory that cannot be
//! used (not a directory, locked, not writable).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use sora2api_proxy::{DataDir, RedbTaskStore};
use sora2api_tower::core::pool::{DisableReason, TokenId, TokenRecord, TokenState};
use sora2api_tower::core::record::TaskRecord;
use sora2api_tower::core::secret::Secret;
use sora2api_tower::core::task::TaskId;
use sora2api_tower::core::translate::{self, Limits};
use sora2api_tower::{StoreError, TaskStore, TokenStore};

/// A fresh path under the system temp dir (not created), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("sora2api-datadir-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700));
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn token(id: u64) -> TokenRecord {
    let mut rec = TokenRecord::new(Secret::new(format!("eyJ.at-{id}.sig")));
    rec.id = TokenId(id);
    rec.refresh_token = Some(Secret::new(format!("rt-{id}")));
    rec.email = Some(format!("user{id}@example.com"));
    rec.video_concurrency = Some(3);
    rec
}

fn task(n: u128) -> TaskRecord {
    let body = br#"{"model":"gpt-image","messages":[{"role":"user","content":"A cat"}]}"#;
    let call = translate::chat(body, &Limits::default()).unwrap();
    TaskRecord::new(TaskId::new(1_700_000_000_000, n), &call, 1_700_000_000_000)
}

fn unavailable(result: Result<DataDir, StoreError>) -> String {
    match result {
        Err(StoreError::Unavailable(why)) => why,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn reopening_keeps_tokens_settings_and_tasks() {
    let dir = TempDir::new();
    let nested = dir.0.join("a").join("data");
    let mut disabled = token(7);
    disabled.state = TokenState::Disabled(DisableReason::ErrorLimit);
    disabled.stats.consecutive_errors = 3;
    {
        let data = DataDir::open(&nested).unwrap();
        assert_eq!(data.path(), nested);
        assert_eq!(data.db_path(), nested.join(DataDir::DB_FILE));
        let tokens = data.token_store();
        assert_eq!(tokens.tokens().await.unwrap(), vec![]);
        assert_eq!(tokens.setting("admin").await.unwrap(), None);
        tokens.put_token(disabled.clone()).await.unwrap();
        tokens.put_tokens(vec![token(3), token(12)]).await.unwrap();
        tokens.put_setting("admin", b"{\"error_ban_threshold\":5}".to_vec()).await.unwrap();
        tokens.put_setting("keys", b"one".to_vec()).await.unwrap();
        tokens.put_setting("keys", b"two".to_vec()).await.unwrap();
        data.task_store().put(task(1)).await.unwrap();
    }
    let data = DataDir::open(&nested).unwrap();
    let tokens = data.token_store();
    // In id order, every field back (state, stats and secrets included).
    assert_eq!(tokens.tokens().await.unwrap(), vec![token(3), disabled, token(12)]);
    assert_eq!(
        tokens.setting("admin").await.unwrap().as_deref(),
        Some(&b"{\"error_ban_threshold\":5}"[..])
    );
    assert_eq!(tokens.setting("keys").await.unwrap().as_deref(), Some(&b"two"[..]));
    assert_eq!(tokens.setting("Keys").await.unwrap(), None);
    assert_eq!(data.task_store().get(&task(1).id).await.unwrap(), Some(task(1)));
    assert_eq!(data.task_store().unfinished().await.unwrap(), vec![task(1)]);
}

#[tokio::test]
async fn remove_and_replace() {
    let dir = TempDir::new();
    let data = DataDir::open(&dir.0).unwrap();
    let store = data.token_store();
    store.put_tokens(vec![token(1), token(2)]).await.unwrap();
    let mut changed = token(2);
    changed.access_token = Secret::new("eyJ.new.sig");
    changed.state = TokenState::QuotaWait { until_ms: 1_700_000_060_000 };
    store.put_token(changed.clone()).await.unwrap();
    store.remove_token(TokenId(1)).await.unwrap();
    // Removing an unknown id is not an error.
    store.remove_token(TokenId(99)).await.unwrap();
    assert_eq!(store.tokens().await.unwrap(), vec![changed.clone()]);
    drop((store, data));
    let again = DataDir::open(&dir.0).unwrap().token_store();
    assert_eq!(again.tokens().await.unwrap(), vec![changed]);
}

#[tokio::test]
async fn a_corrupt_record_is_reported_after_reopening() {
    let dir = TempDir::new();
    {
        let store = DataDir::open(&dir.0).unwrap().token_store();
        store.put_tokens(vec![token(1), token(2)]).await.unwrap();
    }
    // Another program (or a disk) damages record 2.
    {
        let db = redb::Database::create(dir.0.join(DataDir::DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        let table: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("tokens");
        txn.open_table(table).unwrap().insert(2, &b"{\"v\":9}"[..]).unwrap();
        txn.commit().unwrap();
    }
    let store = DataDir::open(&dir.0).unwrap().token_store();
    match store.tokens().await {
        Err(StoreError::Corrupt(why)) => {
            assert!(why.contains("token 2") && why.contains("version 9"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    let shown = store.tokens().await.unwrap_err().to_string();
    assert!(shown.starts_with("stored record unreadable: token 2"), "{shown}");
}

#[test]
fn a_data_directory_is_opened_once() {
    let dir = TempDir::new();
    let data = DataDir::open(&dir.0).unwrap();
    let why = unavailable(DataDir::open(&dir.0));
    assert!(why.contains("is locked") && why.contains(DataDir::DB_FILE), "{why}");
    // The task store alone on the same file is refused the same way.
    match RedbTaskStore::open(data.db_path()) {
        Err(StoreError::Unavailable(why)) => assert!(why.contains("is locked"), "{why}"),
        other => panic!("{other:?}"),
    }
    // A store keeps the database open after the DataDir is dropped; the last one closes it.
    let store = data.token_store();
    drop(data);
    assert!(unavailable(DataDir::open(&dir.0)).contains("is locked"));
    drop(store);
    DataDir::open(&dir.0).unwrap();
}

#[test]
fn unusable_paths_are_clear_errors() {
    let dir = TempDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    let file = dir.0.join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let why = unavailable(DataDir::open(&file));
    assert!(why.contains("is not a directory") && why.contains("a-file"), "{why}");
    let why = unavailable(DataDir::open(file.join("below")));
    assert!(why.contains("cannot be created") && why.contains("below"), "{why}");

    // A database file that is not a redb database.
    let bogus = dir.0.join("bogus");
    std::fs::create_dir_all(&bogus).unwrap();
    std::fs::write(bogus.join(DataDir::DB_FILE), vec![0x5a; 4096]).unwrap();
    let why = unavailable(DataDir::open(&bogus));
    assert!(why.contains(DataDir::DB_FILE), "{why}");
}

#[cfg(unix)]
#[test]
fn created_paths_are_private_and_a_read_only_directory_is_refused() {
    use std::os::unix::fs::PermissionsExt;

    let dir = TempDir::new();
    let data = DataDir::open(&dir.0).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.0), 0o700);
    assert_eq!(mode(data.db_path()), 0o600);
    drop(data);

    let read_only = dir.0.join("read-only");
    std::fs::create_dir(&read_only).unwrap();
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o500)).unwrap();
    // root ignores permissions: only check where they apply.
    let probe = read_only.join("probe");
    if std::fs::write(&probe, b"").is_ok() {
        let _ = std::fs::remove_file(&probe);
        return;
    }
    let why = unavailable(DataDir::open(&read_only));
    assert!(why.contains("not writable"), "{why}");
    let why = unavailable(DataDir::open(read_only.join("sub")));
    assert!(why.contains("cannot be created, not writable"), "{why}");
}
