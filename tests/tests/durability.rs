//! Tasks outlive their clients and the process (architecture property 4): a client that
//! drops a stream, and a gateway that is aborted and started again on the same redb file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sora2api_core::machine::Checkpoint;
use sora2api_core::sim::{AccountSpec, SimConfig, Timings};
use sora2api_core::task::TaskId;
use sora2api_proxy::RedbTaskStore;
use sora2api_tower::TaskStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_drops_the_stream_does_not_stop_the_task() {
    let (sim, _, gw) = one_account_world().await;
    // Queued for 15 polls (about 0.6 s at the harness's 40 ms poll interval).
    let body = json!({"prompt": "A cat #queue=15", "stream": true}).to_string();
    // A bare TCP client, so the disconnect is certain: the socket is closed after the first
    // event, nothing pooled keeps it open.
    let mut socket = TcpStream::connect(gw.addr).await.unwrap();
    let request = format!(
        "POST /v1/videos/generate HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {KEY}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        gw.addr,
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let first_event = tokio::time::timeout(LIMIT, async {
        loop {
            let mut buf = [0u8; 4096];
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the first event: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen).into_owned();
            if let Some(at) = text.find("data: {") {
                if text[at..].contains("\n\n") {
                    return text;
                }
            }
        }
    })
    .await
    .unwrap();
    assert!(first_event.starts_with("HTTP/1.1 200 OK\r\n"), "{first_event}");
    let id = first_event
        .lines()
        .find_map(|l| l.strip_prefix("x-task-id: "))
        .unwrap_or_else(|| panic!("{first_event}"))
        .trim()
        .to_owned();
    assert!(first_event.contains(&format!("\"chatcmpl-{id}\"")), "{first_event}");
    drop(socket);

    // Gone mid-task: still processing, then it completes all the same.
    let (_, task) = gw.client.get_json(&format!("/v1/tasks/{id}")).await;
    assert_eq!(task["status"], "processing", "dropped before the end: {task}");
    let task = gw.finished_task(&id).await;
    assert_eq!(task["status"], "completed", "{task}");
    assert!(task["result_urls"][0].as_str().unwrap().contains("/media/"), "{task}");
    assert_eq!(sim.with_sim(|s| s.creates()), 1);
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("sora2api-e2e-{tag}-{}-{n}", std::process::id()));
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

/// Opens the redb file once the previous gateway's last handle is gone: its aborted tasks
/// are dropped by the runtime shortly after the abort (bounded wait).
async fn reopen(path: &std::path::Path) -> RedbTaskStore {
    for _ in 0..500 {
        match RedbTaskStore::open(path) {
            Ok(store) => return store,
            Err(err) if err.to_string().contains("already has it open") => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(err) => panic!("{err}"),
        }
    }
    panic!("the first gateway never let go of {}", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_gateway_resumes_the_task_without_a_second_create() {
    let dir = TempDir::new("restart");
    let path = dir.0.join("tasks.redb");
    // Real (scaled) phases: about 1.5 s from create to draft.
    let sim = sim_with(SimConfig {
        instant: false,
        timings: Timings::observed().scaled(1),
        ..SimConfig::fast()
    });
    let account = sim.add_account(AccountSpec::pro("ada@example.com"));

    // The first gateway accepts the task and gets it created upstream.
    let store = Arc::new(RedbTaskStore::open(&path).unwrap());
    let layer = builder(&sim, pool_of(&[(&account, true)], 2_000))
        .task_store(store.clone())
        .build()
        .unwrap();
    let mut first = Gateway::start(layer).await;
    let reply = first
        .client
        .post("/v1/videos/generate", &json!({"prompt": "A lighthouse", "async_mode": true}))
        .await;
    assert_eq!(reply.status, 200);
    let id = reply.task_id();
    let task_id = TaskId::parse(&id).unwrap();
    // Wait until the acceptance is durable (the checkpoint the resume relies on).
    let mut accepted = false;
    for _ in 0..500 {
        let record = store.get(&task_id).await.unwrap().unwrap();
        let checkpoint = record.checkpoint.as_deref().and_then(Checkpoint::from_json);
        if checkpoint.is_some_and(|c| c.accepted()) {
            assert!(!record.is_finished(), "{record:?}");
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(accepted, "the create was never recorded");
    assert_eq!(sim.with_sim(|s| s.creates()), 1);

    // A crash: every driver stops, the server goes away, nothing more is written.
    first.layer.engine().abort();
    first.stop_server().await;
    drop(first);
    drop(store);
    let record = {
        let store = reopen(&path).await;
        let record = store.get(&task_id).await.unwrap().unwrap();
        assert_eq!(store.unfinished().await.unwrap().len(), 1);
        record
    };
    assert!(!record.is_finished(), "the task was still running at the crash: {record:?}");

    // The second gateway on the same file: the task is queryable before the resume, and
    // the resume only polls it to its end.
    let store = Arc::new(reopen(&path).await);
    let layer = builder(&sim, pool_of(&[(&account, true)], 2_000))
        .task_store(store.clone())
        .build()
        .unwrap();
    let second = Gateway::start(layer).await;
    let (status, task) = second.client.get_json(&format!("/v1/tasks/{id}")).await;
    assert_eq!((status.as_u16(), task["status"].as_str()), (200, Some("processing")), "{task}");
    assert_eq!(second.layer.engine().resume_unfinished().await.unwrap(), 1);
    let task = second.finished_task(&id).await;
    assert_eq!(task["status"], "completed", "{task}");
    assert!(task["result_urls"][0].as_str().unwrap().starts_with(&sim.origin()), "{task}");
    assert_eq!(sim.with_sim(|s| s.creates()), 1, "exactly one create across the restart");
    assert!(store.unfinished().await.unwrap().is_empty());
    let stored = store.get(&task_id).await.unwrap().unwrap();
    assert!(stored.is_finished() && stored.result.is_some(), "{stored:?}");
}
