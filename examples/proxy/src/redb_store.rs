//! [`RedbTaskStore`]: the durable [`TaskStore`] of the proxy, in the redb file of the data
//! directory.
//!
//! Two tables, always written in the same write transaction:
//!
//! - `tasks`: task id -> [`TaskRecord::to_bytes`];
//! - `unfinished`: task id -> `()`, exactly the ids whose stored record is not
//!   [`TaskRecord::is_finished`], so [`TaskStore::unfinished`] (run once at start to resume
//!   tasks) reads only those and never scans finished tasks.
//!
//! redb is synchronous: every transaction runs on Tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]), never on an async worker thread. (Only
//! [`RedbTaskStore::open`] and [`DataDir::open`](crate::DataDir::open) are plain blocking
//! calls: they run once, at start.)
//!
//! The gateway's task store lives in the data directory's one database file, beside the
//! token store ([`crate::DataDir`]); its tables are the two above, whatever else the file
//! holds.
//!
//! # Durability
//!
//! [`TaskStore::put`] reads the stored record in the same write transaction and commits with
//! [`Durability::Immediate`] (fsynced before `put` returns) when there is no stored record
//! (or it is unreadable), or when the record's `status`, finished-ness or `checkpoint`
//! differs from the stored one: the initial record, every state transition and every
//! `Persist` of the machine are durable when `put` returns `Ok`. Any other change (progress,
//! `updated_at_ms`, dropped media) is committed with [`Durability::None`]: it is visible at
//! once to every later read of this process, but it reaches the disk only with the next
//! immediate commit of *any* task or token-store write in the same file (redb commits are
//! ordered, an immediate commit persists every earlier one) or with [`RedbTaskStore::sync`]. A crash (process kill, power loss)
//! therefore loses at most the progress-only updates made since the last durable commit;
//! each record then reads back as its last durably written state, which has the same status
//! and checkpoint as the lost updates, so resuming from it is correct. Dropping the last
//! handle on the database (every store clone and the [`DataDir`](crate::DataDir)) closes
//! it, and redb's close commits and flushes: a reopen
//! then sees the deferred updates too (tested in-process only, which cannot tell an fsync
//! from the page cache; call [`RedbTaskStore::sync`] before a planned exit to be sure).
//!
//! # Group commit
//!
//! Concurrent `put`s share transactions: each queues its record, and whoever holds the one
//! writer permit commits the whole queue (up to [`MAX_BATCH`] records) in one transaction on
//! one blocking thread, durable if any record in it needs it, then answers every `put` of the
//! batch. Each `put` still returns only after its record is committed (and fsynced, when its
//! own change needs it); records are applied in queue order; the [`PutKind`] each returns is
//! the one it would have had alone; a failed batch is retried one record per transaction, so
//! errors reach the `put`s they belong to. Without it every waiting `put` parked a blocking
//! thread on redb's write lock (515 threads with 10 000 streams starting at once) and paid an
//! fsync of its own.
//!
//! This is the one exception to the trait's "durable when `put` returns `Ok`": it covers
//! only fields whose loss a resumed task repairs by itself (the next poll reports progress
//! again), and it keeps progress updates (at most one per task every 5 s) from fsyncing.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{
    Database, DatabaseError, Durability, ReadableTable, ReadableTableMetadata, StorageError,
    TableDefinition,
};
use sora2api_tower::core::record::TaskRecord;
use sora2api_tower::core::task::TaskId;
use sora2api_tower::{BoxFuture, StoreError, TaskStore};

/// Task id -> record bytes ([`TaskRecord::to_bytes`]).
const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks");
/// Task id -> `()` for every stored record that is not finished.
const UNFINISHED: TableDefinition<&str, ()> = TableDefinition::new("unfinished");

/// A [`TaskStore`] in a redb database file. Cheap to clone (the database is shared).
///
/// Contract: see the module documentation for which writes are durable when
/// [`TaskStore::put`] returns. [`TaskStore::get`] and [`TaskStore::unfinished`] always see
/// every `put` that returned `Ok`, durable or not. A stored value that does not read back is
/// [`StoreError::Corrupt`] naming the task id; redb failures are
/// [`StoreError::Unavailable`].
#[derive(Clone)]
pub struct RedbTaskStore {
    db: Arc<Database>,
    path: Arc<PathBuf>,
    writes: Arc<Writes>,
}

/// `put`s waiting to be committed, and who commits them (group commit).
///
/// redb runs one write transaction at a time, and a durable one costs an fsync. Handing every
/// `put` to the blocking pool parked one thread per waiting `put` on redb's lock (515 threads
/// with 10 000 streams starting together) and paid one fsync each. Now a `put` queues its
/// record and waits for the leader permit; whoever holds it takes the whole queue (at most
/// [`MAX_BATCH`]) and commits it in one transaction on one blocking thread, fsynced if any
/// record in it needs it, then answers every `put` of the batch. Each record's [`PutKind`] is
/// what it would have been alone; records are applied in queue order, so two `put`s of the
/// same task keep their order. A batch that fails is retried one record per transaction, so a
/// failure is reported to the `put`s it belongs to.
struct Writes {
    queue: std::sync::Mutex<Vec<Job>>,
    leader: tokio::sync::Semaphore,
}

/// One queued `put` and where its answer goes.
type Job = (TaskRecord, tokio::sync::oneshot::Sender<Result<PutKind, StoreError>>);

/// The most records one commit takes; the rest wait for the next one.
pub const MAX_BATCH: usize = 1_024;

impl fmt::Debug for RedbTaskStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbTaskStore").field("path", &self.path).finish_non_exhaustive()
    }
}

/// How a `put` was committed (for tests and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutKind {
    /// Fsynced before `put` returned (new record, transition, checkpoint).
    Durable,
    /// Committed without fsync (progress-only); durable with the next durable commit.
    Deferred,
}

/// A redb failure as [`StoreError::Unavailable`], saying what was being done.
pub(crate) fn unavailable(what: &str, err: impl fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{what}: {err}"))
}

/// redb's page cache (reads and the write buffer). redb's default is 1 GiB, and every page a
/// commit writes stays in it: with the default the gateway's resident memory grew by
/// ~100 KiB per task written (1 000 streamed videos: 11 -> 120 MiB) and kept it after the
/// tasks ended. The live working set is small (one record per running task, a few KiB with
/// its B-tree path), and pages out of the cache are read back from the OS page cache.
pub const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Opens (or creates) the redb file at `path`; `what` names it in errors ("task store",
/// "data directory ..."). A file held by another process, or already open in this one, is
/// a "locked" error; a permission or read-only failure says the file is not writable.
pub(crate) fn open_database(path: &Path, what: &str) -> Result<Database, StoreError> {
    let shown = path.display();
    redb::Builder::new().set_cache_size(CACHE_BYTES).create(path).map_err(|err| match err {
        DatabaseError::DatabaseAlreadyOpen => StoreError::Unavailable(format!(
            "{what} {shown} is locked: another process (another sora2api on this data \
             directory?) or this one already has it open"
        )),
        DatabaseError::Storage(StorageError::Io(io))
            if matches!(
                io.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            StoreError::Unavailable(format!("{what} {shown} is not writable: {io}"))
        }
        other => unavailable(&format!("{what} {shown}"), other),
    })
}

impl RedbTaskStore {
    /// Opens (or creates) a database file of its own at `path` and the task tables.
    ///
    /// The gateway opens its data directory with [`DataDir::open`](crate::DataDir::open)
    /// instead, which shares one database between the task and the token store (redb allows
    /// one open `Database` per file and process). This is for a task store alone (tests,
    /// embedders).
    ///
    /// Blocking (file IO, and a repair after an unclean shutdown, which walks the whole
    /// file): call it at start, before serving, or inside `spawn_blocking`.
    ///
    /// Errors ([`StoreError::Unavailable`]): the parent directory does not exist; the file is
    /// locked by another process (another `sora2api` on the same data directory) or already
    /// open in this one; the file is not a redb database, or is one redb cannot repair.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !parent.is_dir() {
            return Err(StoreError::Unavailable(format!(
                "task store {}: the data directory {} does not exist",
                path.display(),
                parent.display()
            )));
        }
        let db = Arc::new(open_database(path, "task store")?);
        RedbTaskStore::with_database(db, path)
    }

    /// The task store in an open database (shared with other stores): creates its tables.
    pub(crate) fn with_database(db: Arc<Database>, path: &Path) -> Result<Self, StoreError> {
        let txn = db.begin_write().map_err(|e| unavailable("begin write", e))?;
        {
            txn.open_table(TASKS).map_err(|e| unavailable("open table tasks", e))?;
            txn.open_table(UNFINISHED).map_err(|e| unavailable("open table unfinished", e))?;
        }
        txn.commit().map_err(|e| unavailable("commit", e))?;
        Ok(RedbTaskStore {
            db,
            path: Arc::new(path.to_path_buf()),
            writes: Arc::new(Writes {
                queue: std::sync::Mutex::new(Vec::new()),
                leader: tokio::sync::Semaphore::new(1),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every earlier `put` durable (an empty commit with [`Durability::Immediate`]),
    /// e.g. before a planned shutdown that might not drop the store.
    pub async fn sync(&self) -> Result<(), StoreError> {
        let db = self.db.clone();
        blocking(move || {
            let mut txn = db.begin_write().map_err(|e| unavailable("begin write", e))?;
            txn.set_durability(Durability::Immediate);
            txn.commit().map_err(|e| unavailable("commit", e))
        })
        .await
    }

    /// [`TaskStore::put`], telling how the write was committed. Concurrent `put`s share
    /// commits (group commit, see the module documentation).
    pub async fn put_kind(&self, rec: TaskRecord) -> Result<PutKind, StoreError> {
        let (answer, mut answered) = tokio::sync::oneshot::channel();
        lock(&self.writes.queue).push((rec, answer));
        let stopped = || unavailable("task store writer", "stopped");
        loop {
            // Either a leader (maybe an earlier turn of this one) committed this record, or
            // this put leads: it commits what is queued, its own record among the first
            // MAX_BATCH, or in a later turn.
            let leader = tokio::select! {
                biased;
                done = &mut answered => return done.unwrap_or_else(|_| Err(stopped())),
                // Never closed; `Unavailable` if it were.
                permit = self.writes.leader.acquire() => {
                    permit.map_err(|e| unavailable("task store writer", e))?
                }
            };
            let jobs = {
                let mut queue = lock(&self.writes.queue);
                let n = queue.len().min(MAX_BATCH);
                queue.drain(..n).collect::<Vec<Job>>()
            };
            if !jobs.is_empty() {
                let db = self.db.clone();
                blocking(move || {
                    let answers = put_batch(&db, jobs);
                    // The database is released before anyone hears back: once every `put`
                    // has returned, dropping the store closes the file.
                    drop(db);
                    for (answer, result) in answers {
                        let _ = answer.send(result);
                    }
                    Ok(())
                })
                .await?;
            }
            drop(leader);
        }
    }
}

/// Runs `f` on the blocking pool; a task that panicked or was cancelled is `Unavailable`.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|join| Err(unavailable("task store worker", join)))
}

/// Whether replacing `old` (the stored bytes, if any) with `new` must be fsynced.
fn needs_durable(old: Option<&[u8]>, new: &TaskRecord) -> bool {
    let Some(bytes) = old else { return true };
    let Ok(old) = TaskRecord::from_bytes(bytes) else { return true };
    old.status != new.status
        || old.is_finished() != new.is_finished()
        || old.checkpoint != new.checkpoint
}

/// Locks the queue (a panic while holding it leaves a plain `Vec`).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An answer to send: where, and what.
type Answer =
    (tokio::sync::oneshot::Sender<Result<PutKind, StoreError>>, Result<PutKind, StoreError>);

/// Commits `jobs` in one transaction; if that fails, one record per transaction, so a
/// failure reaches only the `put`s it belongs to. Returns the answers to send.
fn put_batch(db: &Database, jobs: Vec<Job>) -> Vec<Answer> {
    let recs: Vec<&TaskRecord> = jobs.iter().map(|(rec, _)| rec).collect();
    match put_many(db, &recs) {
        Ok(kinds) => {
            jobs.into_iter().zip(kinds).map(|((_, answer), kind)| (answer, Ok(kind))).collect()
        }
        Err(error) if jobs.len() == 1 => {
            jobs.into_iter().map(|(_, answer)| (answer, Err(error.clone()))).collect()
        }
        Err(_) => jobs
            .into_iter()
            .map(|(rec, answer)| {
                let kind = put_many(db, &[&rec]).and_then(|kinds| {
                    kinds.into_iter().next().ok_or_else(|| unavailable("task store", "no result"))
                });
                (answer, kind)
            })
            .collect(),
    }
}

/// Writes `recs` in order in one transaction, fsynced if any of them needs it; the kind each
/// would have had alone.
fn put_many(db: &Database, recs: &[&TaskRecord]) -> Result<Vec<PutKind>, StoreError> {
    let mut txn = db.begin_write().map_err(|e| unavailable("begin write", e))?;
    let mut kinds = Vec::with_capacity(recs.len());
    {
        let mut tasks = txn.open_table(TASKS).map_err(|e| unavailable("open table tasks", e))?;
        let mut unfinished =
            txn.open_table(UNFINISHED).map_err(|e| unavailable("open table unfinished", e))?;
        for rec in recs {
            let id = rec.id.as_str();
            let durable = {
                let old = tasks.get(id).map_err(|e| unavailable("read", e))?;
                needs_durable(old.as_ref().map(|g| g.value()), rec)
            };
            tasks.insert(id, rec.to_bytes().as_slice()).map_err(|e| unavailable("write", e))?;
            if rec.is_finished() {
                unfinished.remove(id).map_err(|e| unavailable("write", e))?;
            } else {
                unfinished.insert(id, ()).map_err(|e| unavailable("write", e))?;
            }
            kinds.push(if durable { PutKind::Durable } else { PutKind::Deferred });
        }
    }
    let durable = kinds.contains(&PutKind::Durable);
    txn.set_durability(if durable { Durability::Immediate } else { Durability::None });
    txn.commit().map_err(|e| unavailable("commit", e))?;
    Ok(kinds)
}

/// Decodes a stored value of `key`, checking it is the record of that id.
fn decode(key: &str, bytes: &[u8]) -> Result<TaskRecord, StoreError> {
    let rec = TaskRecord::from_bytes(bytes)
        .map_err(|err| StoreError::Corrupt(format!("task {key}: {err}")))?;
    if rec.id.as_str() != key {
        return Err(StoreError::Corrupt(format!("task {key}: the stored record is {}", rec.id)));
    }
    Ok(rec)
}

fn get_blocking(db: &Database, id: &str) -> Result<Option<TaskRecord>, StoreError> {
    let txn = db.begin_read().map_err(|e| unavailable("begin read", e))?;
    let tasks = txn.open_table(TASKS).map_err(|e| unavailable("open table tasks", e))?;
    let value = tasks.get(id).map_err(|e| unavailable("read", e))?;
    value.map(|v| decode(id, v.value())).transpose()
}

fn unfinished_blocking(db: &Database) -> Result<Vec<TaskRecord>, StoreError> {
    let txn = db.begin_read().map_err(|e| unavailable("begin read", e))?;
    let tasks = txn.open_table(TASKS).map_err(|e| unavailable("open table tasks", e))?;
    let unfinished =
        txn.open_table(UNFINISHED).map_err(|e| unavailable("open table unfinished", e))?;
    let len = unfinished.len().map_err(|e| unavailable("read", e))?;
    let mut recs = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // Keys iterate in byte order, which is `TaskId`'s order (it compares the strings).
    for entry in unfinished.iter().map_err(|e| unavailable("read", e))? {
        let (key, ()) = entry.map_err(|e| unavailable("read", e)).map(|(k, v)| (k, v.value()))?;
        let key = key.value();
        let value = tasks.get(key).map_err(|e| unavailable("read", e))?.ok_or_else(|| {
            StoreError::Corrupt(format!("task {key}: listed as unfinished but not stored"))
        })?;
        recs.push(decode(key, value.value())?);
    }
    Ok(recs)
}

impl TaskStore for RedbTaskStore {
    fn put(&self, rec: TaskRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { self.put_kind(rec).await.map(|_| ()) })
    }

    fn get(&self, id: &TaskId) -> BoxFuture<'_, Result<Option<TaskRecord>, StoreError>> {
        let (db, id) = (self.db.clone(), id.as_str().to_owned());
        Box::pin(blocking(move || get_blocking(&db, &id)))
    }

    fn unfinished(&self) -> BoxFuture<'_, Result<Vec<TaskRecord>, StoreError>> {
        let db = self.db.clone();
        Box::pin(blocking(move || unfinished_blocking(&db)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use sora2api_tower::core::task::TaskStatus;
    use sora2api_tower::core::translate;

    use super::*;

    fn record(n: u128) -> TaskRecord {
        let body = br#"{"model":"gpt-image","messages":[{"role":"user","content":"A cat"}]}"#;
        let call = translate::chat(body, &translate::Limits::default()).unwrap();
        TaskRecord::new(TaskId::new(1_700_000_000_000, n), &call, 1_700_000_000_000)
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            // Unique per process (pid) and per test (tag); a leftover of a killed run with
            // the same pid is cleared first.
            let dir = std::env::temp_dir()
                .join(format!("sora2api-redb-unit-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn write_raw(store: &RedbTaskStore, table: TableDefinition<&str, &[u8]>, key: &str, v: &[u8]) {
        let txn = store.db.begin_write().unwrap();
        txn.open_table(table).unwrap().insert(key, v).unwrap();
        txn.commit().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_puts_share_commits_and_keep_their_order() {
        // More than one batch at once, so some puts wait for a later turn.
        const TASKS_AT_ONCE: u128 = MAX_BATCH as u128 + 100;
        let dir = TempDir::new("group");
        let store = RedbTaskStore::open(&dir.0.join("tasks.redb")).unwrap();
        let mut set = tokio::task::JoinSet::new();
        for n in 0..TASKS_AT_ONCE {
            let store = store.clone();
            set.spawn(async move {
                let mut rec = record(n);
                let first = store.put_kind(rec.clone()).await.unwrap();
                rec.progress = 50.0;
                let second = store.put_kind(rec.clone()).await.unwrap();
                rec.apply(
                    1_700_000_000_001,
                    &sora2api_tower::core::task::Event::Failed(
                        sora2api_tower::core::Error::Internal,
                    ),
                );
                let third = store.put_kind(rec.clone()).await.unwrap();
                (first, second, third)
            });
        }
        while let Some(kinds) = set.join_next().await {
            assert_eq!(kinds.unwrap(), (PutKind::Durable, PutKind::Deferred, PutKind::Durable));
        }
        assert!(store.unfinished().await.unwrap().is_empty());
        for n in 0..TASKS_AT_ONCE {
            let got = store.get(&record(n).id).await.unwrap().unwrap();
            assert!(got.is_finished(), "task {n}");
        }
        // Every put has returned: dropping the store closes the file, which reopens at once.
        drop(store);
        let reopened = RedbTaskStore::open(&dir.0.join("tasks.redb")).unwrap();
        assert!(reopened.get(&record(0).id).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn corrupt_values_are_corrupt_errors_naming_the_id() {
        let dir = TempDir::new("corrupt");
        let store = RedbTaskStore::open(&dir.0.join("tasks.redb")).unwrap();
        let rec = record(1);
        store.put(rec.clone()).await.unwrap();
        write_raw(&store, TASKS, rec.id.as_str(), b"{not a record");
        match store.get(&rec.id).await {
            Err(StoreError::Corrupt(why)) => assert!(why.contains(rec.id.as_str()), "{why}"),
            other => panic!("{other:?}"),
        }
        match store.unfinished().await {
            Err(StoreError::Corrupt(why)) => assert!(why.contains(rec.id.as_str()), "{why}"),
            other => panic!("{other:?}"),
        }
        // A record stored under another id is corrupt too.
        let other = record(2);
        write_raw(&store, TASKS, other.id.as_str(), &rec.to_bytes());
        assert!(matches!(store.get(&other.id).await, Err(StoreError::Corrupt(_))));
        // A corrupt record is replaced by a durable put.
        assert_eq!(store.put_kind(rec.clone()).await.unwrap(), PutKind::Durable);
        assert_eq!(store.get(&rec.id).await.unwrap(), Some(rec));
    }

    #[tokio::test]
    async fn put_kinds_follow_status_and_checkpoint() {
        let dir = TempDir::new("kinds");
        let store = RedbTaskStore::open(&dir.0.join("tasks.redb")).unwrap();
        let mut rec = record(1);
        assert_eq!(store.put_kind(rec.clone()).await.unwrap(), PutKind::Durable);
        rec.progress = 40.0;
        rec.updated_at_ms += 5_000;
        assert_eq!(store.put_kind(rec.clone()).await.unwrap(), PutKind::Deferred);
        rec.checkpoint = Some("{}".into());
        assert_eq!(store.put_kind(rec.clone()).await.unwrap(), PutKind::Durable);
        assert_eq!(store.put_kind(rec.clone()).await.unwrap(), PutKind::Deferred);
        rec.status = TaskStatus::Failed;
        assert_eq!(store.put_kind(rec.clone()).await.unwrap(), PutKind::Durable);
    }

    #[test]
    fn missing_directory_and_locked_file_are_clear_errors() {
        let dir = TempDir::new("errors");
        match RedbTaskStore::open(&dir.0.join("missing").join("tasks.redb")) {
            Err(StoreError::Unavailable(why)) => assert!(why.contains("does not exist"), "{why}"),
            other => panic!("{other:?}"),
        }
        let path = dir.0.join("tasks.redb");
        let _first = RedbTaskStore::open(&path).unwrap();
        match RedbTaskStore::open(&path) {
            Err(StoreError::Unavailable(why)) => assert!(why.contains("locked"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
