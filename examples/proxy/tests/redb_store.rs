//! `RedbTaskStore`: round trips, the `unfinished` index, reopening the file, the same
//! behaviour as `MemoryStore`, and the engine running a task over it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use sora2api_proxy::redb_store::PutKind;
use sora2api_proxy::RedbTaskStore;
use sora2api_tower::core::machine::MachineConfig;
use sora2api_tower::core::pool::{PoolConfig, Strategy, TokenPool};
use sora2api_tower::core::record::TaskRecord;
use sora2api_tower::core::request::ClientCall;
use sora2api_tower::core::sim::{AccountSpec, MintedAccount, Sim, SimConfig};
use sora2api_tower::core::task::{Event, TaskId, TaskStatus};
use sora2api_tower::core::translate::{self, Limits};
use sora2api_tower::core::upstream::UpstreamConfig;
use sora2api_tower::core::Error;
use sora2api_tower::sim_upstream::SimUpstream;
use sora2api_tower::{clock, Engine, EngineConfig, MemoryStore, TaskStore};
use tokio::sync::broadcast;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("sora2api-redb-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("tasks.redb")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn call(model: &str, prompt: &str) -> ClientCall {
    let body =
        format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"{prompt}"}}]}}"#);
    translate::chat(body.as_bytes(), &Limits::default()).unwrap()
}

fn record(n: u128) -> TaskRecord {
    TaskRecord::new(
        TaskId::new(1_700_000_000_000, n),
        &call("gpt-image", "A cat"),
        1_700_000_000_000,
    )
}

fn progressed(mut rec: TaskRecord, percent: f32) -> TaskRecord {
    let now = rec.updated_at_ms + 5_000;
    rec.apply(now, &Event::EstimatedProgress { percent });
    rec
}

fn failed(mut rec: TaskRecord) -> TaskRecord {
    let now = rec.updated_at_ms + 1_000;
    assert!(rec.apply(now, &Event::Failed(Error::Internal)));
    rec
}

#[tokio::test]
async fn put_get_round_trip() {
    let dir = TempDir::new();
    let store = RedbTaskStore::open(&dir.db()).unwrap();
    let rec = record(1);
    assert_eq!(store.get(&rec.id).await.unwrap(), None);
    store.put(rec.clone()).await.unwrap();
    assert_eq!(store.get(&rec.id).await.unwrap(), Some(rec.clone()));
    let later = progressed(rec.clone(), 30.0);
    store.put(later.clone()).await.unwrap();
    store.sync().await.unwrap();
    assert_eq!(store.get(&rec.id).await.unwrap(), Some(later));
    assert_eq!(store.get(&record(2).id).await.unwrap(), None);
}

#[tokio::test]
async fn unfinished_lists_only_unfinished_sorted_and_drops_finished() {
    let dir = TempDir::new();
    let store = RedbTaskStore::open(&dir.db()).unwrap();
    let (a, b, c) = (record(3), record(1), record(2));
    for rec in [&a, &b, &c] {
        store.put(rec.clone()).await.unwrap();
    }
    assert_eq!(store.unfinished().await.unwrap(), vec![b.clone(), c.clone(), a.clone()]);
    let c_done = failed(c.clone());
    store.put(c_done.clone()).await.unwrap();
    assert_eq!(store.unfinished().await.unwrap(), vec![b.clone(), a.clone()]);
    assert_eq!(store.get(&c.id).await.unwrap(), Some(c_done));
    store.put(failed(a)).await.unwrap();
    store.put(failed(b)).await.unwrap();
    assert_eq!(store.unfinished().await.unwrap(), vec![]);
}

#[tokio::test]
async fn reopening_the_file_finds_every_record() {
    let dir = TempDir::new();
    let (a, b) = (record(1), failed(record(2)));
    let a_progress = progressed(a.clone(), 55.0);
    {
        let store = RedbTaskStore::open(&dir.db()).unwrap();
        store.put(a.clone()).await.unwrap();
        store.put(b.clone()).await.unwrap();
        // Progress only: not fsynced, but a clean close persists it.
        assert_eq!(store.put_kind(a_progress.clone()).await.unwrap(), PutKind::Deferred);
    }
    let store = RedbTaskStore::open(&dir.db()).unwrap();
    assert_eq!(store.get(&a.id).await.unwrap(), Some(a_progress.clone()));
    assert_eq!(store.get(&b.id).await.unwrap(), Some(b));
    assert_eq!(store.unfinished().await.unwrap(), vec![a_progress]);
}

#[tokio::test]
async fn progress_then_a_durable_transition_are_both_kept() {
    let dir = TempDir::new();
    let (a, b) = (record(1), record(2));
    let a_progress = progressed(a.clone(), 40.0);
    let b_done = failed(b.clone());
    {
        let store = RedbTaskStore::open(&dir.db()).unwrap();
        assert_eq!(store.put_kind(a.clone()).await.unwrap(), PutKind::Durable);
        assert_eq!(store.put_kind(b.clone()).await.unwrap(), PutKind::Durable);
        assert_eq!(store.put_kind(a_progress.clone()).await.unwrap(), PutKind::Deferred);
        // Another task's transition: fsynced, and it carries a's earlier progress with it.
        assert_eq!(store.put_kind(b_done.clone()).await.unwrap(), PutKind::Durable);
    }
    let store = RedbTaskStore::open(&dir.db()).unwrap();
    assert_eq!(store.get(&a.id).await.unwrap(), Some(a_progress.clone()));
    assert_eq!(store.get(&b.id).await.unwrap(), Some(b_done));
    assert_eq!(store.unfinished().await.unwrap(), vec![a_progress]);
}

#[tokio::test]
async fn behaves_like_the_memory_store() {
    let dir = TempDir::new();
    let redb = RedbTaskStore::open(&dir.db()).unwrap();
    let memory = MemoryStore::new();
    let (a, b, c) = (record(7), record(3), record(5));
    let mut a_checkpointed = progressed(a.clone(), 20.0);
    a_checkpointed.checkpoint = Some(r#"{"accepted":true}"#.into());
    let mut c_done = c.clone();
    c_done.apply(c.updated_at_ms + 10, &Event::ContentViolation { reason: "nope".into() });
    let ops = vec![
        a.clone(),
        b.clone(),
        progressed(a.clone(), 10.0),
        c.clone(),
        a_checkpointed.clone(),
        progressed(b.clone(), 99.0),
        c_done,
        progressed(a_checkpointed.clone(), 60.0),
        failed(b.clone()),
        // Replacing a record with an older one: both stores keep the last put.
        a.clone(),
        failed(a.clone()),
    ];
    let ids = [a.id.clone(), b.id.clone(), c.id.clone(), record(9).id];
    for (step, rec) in ops.into_iter().enumerate() {
        redb.put(rec.clone()).await.unwrap();
        memory.put(rec).await.unwrap();
        for id in &ids {
            assert_eq!(
                redb.get(id).await.unwrap(),
                memory.get(id).await.unwrap(),
                "step {step}, {id}"
            );
        }
        assert_eq!(redb.unfinished().await.unwrap(), memory.unfinished().await.unwrap());
    }
    assert_eq!(memory.unfinished().await.unwrap(), vec![]);
}

// === the engine over the redb store ===

const SIM: &str = "http://sim.test";

fn pool(accounts: &[MintedAccount]) -> TokenPool {
    let mut pool = TokenPool::new(PoolConfig {
        strategy: Strategy::RoundRobin,
        max_wait_ms: 3_600_000,
        ..PoolConfig::default()
    });
    for account in accounts {
        pool.add(account.token_record(true));
    }
    pool
}

/// Every event until the task's driver is gone (the channel closes after the final write).
async fn drain(mut events: broadcast::Receiver<Event>) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        match events.recv().await {
            Ok(event) => seen.push(event),
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return seen,
        }
    }
}

#[test]
fn the_engine_runs_a_task_over_the_redb_store() {
    let dir = TempDir::new();
    // Its own runtime, dropped with every engine task before the file is reopened.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let (id, final_record) = runtime.block_on(async {
        let store = Arc::new(RedbTaskStore::open(&dir.db()).unwrap());
        let sim = SimUpstream::new(Sim::new(SimConfig {
            start_ms: clock::now_ms(),
            media_origin: format!("{SIM}/media"),
            ..SimConfig::fast()
        }));
        let account = sim.with_sim(|s| s.add_account(AccountSpec::pro("u0@example.com")));
        let cfg = EngineConfig {
            machine: MachineConfig {
                upstream: UpstreamConfig::at_origin(SIM),
                ..MachineConfig::default()
            },
            ..EngineConfig::default()
        };
        let engine = Engine::new(cfg, Arc::new(sim), store.clone(), pool(&[account]));
        let submitted = engine.submit(call("sora2-landscape-10s", "A cat on a mat")).await.unwrap();
        // Stored before anything went upstream.
        assert_eq!(store.unfinished().await.unwrap(), vec![submitted.record.clone()]);
        let events = drain(submitted.events).await;
        assert!(matches!(events.last(), Some(Event::Completed(_))), "{events:?}");
        let record = store.get(&submitted.id).await.unwrap().unwrap();
        assert_eq!(record.status, TaskStatus::Completed);
        assert_eq!(engine.get(&submitted.id).await.unwrap(), Some(record.clone()));
        assert_eq!(store.unfinished().await.unwrap(), vec![]);
        (submitted.id, record)
    });
    drop(runtime);
    let store = RedbTaskStore::open(&dir.db()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let reread = runtime.block_on(store.get(&id)).unwrap().unwrap();
    assert_eq!(reread, final_record);
    assert_eq!(reread.progress, 100.0);
    assert!(reread.result.is_some());
    assert_eq!(runtime.block_on(store.unfinished()).unwrap(), vec![]);
}
