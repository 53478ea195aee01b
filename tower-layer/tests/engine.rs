//! The task engine against the in-process simulated backend, on virtual time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use sora2api_core::machine::{Checkpoint, MachineConfig};
use sora2api_core::pool::{PoolConfig, Strategy, TokenPool, TokenRecord, TokenState};
use sora2api_core::record::TaskRecord;
use sora2api_core::request::ClientCall;
use sora2api_core::sim::{AccountSpec, MintedAccount, Sim, SimConfig, Timings};
use sora2api_core::task::{Event, TaskId, TaskStatus};
use sora2api_core::translate::{self, Limits};
use sora2api_core::upstream::{TransportError, UpstreamConfig, UpstreamReply, UpstreamRequest};
use sora2api_core::Error;
use sora2api_tower::clock;
use sora2api_tower::sim_upstream::SimUpstream;
use sora2api_tower::{
    BoxFuture, Engine, EngineConfig, FetchError, MemoryStore, TaskStore, Upstream,
};
use tokio::sync::broadcast;

const SIM: &str = "http://sim.test";

struct World {
    engine: Engine,
    sim: SimUpstream,
    store: Arc<MemoryStore>,
    accounts: Vec<MintedAccount>,
}

fn engine_config() -> EngineConfig {
    EngineConfig {
        machine: MachineConfig {
            upstream: UpstreamConfig::at_origin(SIM),
            ..MachineConfig::default()
        },
        ..EngineConfig::default()
    }
}

fn sim(timings: Option<Timings>) -> Sim {
    let mut cfg = SimConfig {
        start_ms: clock::now_ms(),
        media_origin: format!("{SIM}/media"),
        ..SimConfig::fast()
    };
    if let Some(timings) = timings {
        cfg.instant = false;
        cfg.timings = timings;
    }
    Sim::new(cfg)
}

/// A pool over the accounts' tokens (round robin, long queue waits), `tune`d per record.
fn pool(accounts: &[MintedAccount], tune: impl Fn(&mut TokenRecord)) -> TokenPool {
    let mut pool = TokenPool::new(PoolConfig {
        strategy: Strategy::RoundRobin,
        max_wait_ms: 3_600_000,
        ..PoolConfig::default()
    });
    for account in accounts {
        let mut record = account.token_record(true);
        tune(&mut record);
        pool.add(record);
    }
    pool
}

fn world_with(
    specs: &[AccountSpec],
    timings: Option<Timings>,
    latency: Duration,
    store: Arc<MemoryStore>,
    tune: impl Fn(&mut TokenRecord),
) -> World {
    let sim = SimUpstream::new(sim(timings)).with_latency(latency);
    let accounts: Vec<_> =
        specs.iter().map(|spec| sim.with_sim(|s| s.add_account(spec.clone()))).collect();
    let engine =
        Engine::new(engine_config(), Arc::new(sim.clone()), store.clone(), pool(&accounts, tune));
    World { engine, sim, store, accounts }
}

fn world(n: usize) -> World {
    let specs: Vec<_> = (0..n).map(|i| AccountSpec::pro(&format!("u{i}@example.com"))).collect();
    world_with(&specs, None, Duration::ZERO, Arc::new(MemoryStore::new()), |_| {})
}

fn call(model: &str, prompt: &str) -> ClientCall {
    let body = serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
    });
    translate::chat(body.to_string().as_bytes(), &Limits::default()).unwrap()
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

async fn stored(store: &MemoryStore, id: &TaskId) -> TaskRecord {
    store.get(id).await.unwrap().expect("stored")
}

fn count_path(sim: &SimUpstream, path: &str) -> usize {
    sim.with_sim(|s| s.requests().iter().filter(|r| r.path() == path).count())
}

// === tests ===

#[tokio::test(start_paused = true)]
async fn image_and_video_tasks_complete() {
    let w = world(1);
    for model in ["gpt-image", "sora2-landscape-10s"] {
        let submitted = w.engine.submit(call(model, "A cat on a mat")).await.unwrap();
        assert_eq!(submitted.record.status, TaskStatus::Processing);
        let events = drain(submitted.events).await;
        assert!(matches!(events.first(), Some(Event::Started(_))), "{events:?}");
        assert!(matches!(events.last(), Some(Event::Completed(_))), "{events:?}");
        assert_eq!(events.iter().filter(|e| e.is_terminal()).count(), 1);
        let record = stored(&w.store, &submitted.id).await;
        assert_eq!(record.status, TaskStatus::Completed);
        assert_eq!(record.progress, 100.0);
        assert!(record.result.is_some());
        assert_eq!(w.engine.get(&submitted.id).await.unwrap(), Some(record));
    }
    assert_eq!(w.engine.live_tasks(), 0);
    assert_eq!(w.engine.with_pool(|p| p.total_in_flight()), 0);
}

#[tokio::test(start_paused = true)]
async fn async_submit_then_get_until_completed() {
    let w = world_with(
        &[AccountSpec::pro("a@example.com")],
        Some(Timings::observed().scaled(10)),
        Duration::ZERO,
        Arc::new(MemoryStore::new()),
        |_| {},
    );
    let engine = w.engine;
    let submitted = engine.submit(call("sora2-landscape-10s", "A dog")).await.unwrap();
    drop(submitted.events);
    let mut polls = 0;
    let record = loop {
        let record = engine.get(&submitted.id).await.unwrap().unwrap();
        if record.is_finished() {
            break record;
        }
        assert!(record.progress <= 100.0);
        polls += 1;
        // A client polling GET /v1/tasks/{id}: virtual time.
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(record.status, TaskStatus::Completed, "{:?}", record.error);
    assert!(polls > 3, "the task ran over several client polls ({polls})");
}

#[tokio::test(start_paused = true)]
async fn cancel_mid_poll_releases_the_lease_and_stops_sending() {
    let w = world_with(
        &[AccountSpec::pro("a@example.com")],
        Some(Timings::observed()),
        Duration::ZERO,
        Arc::new(MemoryStore::new()),
        |_| {},
    );
    let submitted = w.engine.submit(call("sora2-landscape-10s", "A slow cat")).await.unwrap();
    let mut events = submitted.events;
    loop {
        if let Event::VideoProgress { .. } = events.recv().await.unwrap() {
            break;
        }
    }
    assert_eq!(w.engine.with_pool(|p| p.total_in_flight()), 1);
    assert!(w.engine.cancel(&submitted.id));
    let rest = drain(events).await;
    assert!(matches!(rest.last(), Some(Event::Failed(Error::Cancelled))), "{rest:?}");
    assert_eq!(w.engine.with_pool(|p| p.total_in_flight()), 0);
    let sent = w.sim.with_sim(|s| s.requests().len());
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(w.sim.with_sim(|s| s.requests().len()), sent, "nothing sent after the cancel");
    let record = stored(&w.store, &submitted.id).await;
    assert_eq!(record.status, TaskStatus::Failed);
    assert!(!w.engine.cancel(&submitted.id), "a finished task cannot be cancelled");
}

#[tokio::test(start_paused = true)]
async fn a_failing_store_refuses_the_task_before_any_upstream_call() {
    let w = world_with(
        &[AccountSpec::pro("a@example.com")],
        None,
        Duration::ZERO,
        Arc::new(MemoryStore::failing()),
        |_| {},
    );
    let err = w.engine.submit(call("gpt-image", "A cat")).await.unwrap_err();
    assert_eq!(err, Error::StoreUnavailable);
    assert_eq!(err.status(), 503);
    assert!(w.sim.with_sim(|s| s.requests().is_empty()));
    assert_eq!(w.engine.live_tasks(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_restarted_engine_resumes_an_accepted_task_without_resubmitting() {
    let store = Arc::new(MemoryStore::new());
    let w = world_with(
        &[AccountSpec::pro("a@example.com")],
        Some(Timings::observed().scaled(10)),
        Duration::ZERO,
        store.clone(),
        |_| {},
    );
    let submitted = w.engine.submit(call("sora2-landscape-10s", "A resumable cat")).await.unwrap();
    let id = submitted.id.clone();
    let mut events = submitted.events;
    loop {
        let _ = events.recv().await.unwrap();
        let record = stored(&store, &id).await;
        let checkpoint = record.checkpoint.as_deref().and_then(Checkpoint::from_json);
        if checkpoint.is_some_and(|c| c.accepted()) {
            break;
        }
    }
    w.engine.abort();
    assert_eq!(w.engine.live_tasks(), 0);
    assert_eq!(w.sim.with_sim(|s| s.creates()), 1);

    // A new process: same store, a fresh pool with the same tokens.
    let engine = Engine::new(
        engine_config(),
        Arc::new(w.sim.clone()),
        store.clone(),
        pool(&w.accounts, |_| {}),
    );
    assert_eq!(engine.resume_unfinished().await.unwrap(), 1);
    let events = drain(engine.subscribe(&id).expect("resumed task is live")).await;
    assert!(matches!(events.last(), Some(Event::Completed(_))), "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, Event::Started(_))), "a resume does not restart");
    assert_eq!(stored(&store, &id).await.status, TaskStatus::Completed);
    assert_eq!(w.sim.with_sim(|s| s.creates()), 1, "exactly one create");
    assert_eq!(engine.with_pool(|p| p.total_in_flight()), 0);
}

#[tokio::test(start_paused = true)]
async fn a_429_rotates_to_another_token() {
    let w = world(2);
    let submitted = w.engine.submit(call("gpt-image", "A cat #fail=429")).await.unwrap();
    let events = drain(submitted.events).await;
    assert!(events.iter().any(|e| matches!(e, Event::Retrying { .. })), "{events:?}");
    assert!(matches!(events.last(), Some(Event::Completed(_))), "{events:?}");
    let bearers: Vec<String> = w.sim.with_sim(|s| {
        s.requests()
            .iter()
            .filter(|r| r.path() == "/backend/video_gen")
            .map(|r| r.header("authorization").unwrap_or_default().to_owned())
            .collect()
    });
    assert_eq!(bearers.len(), 2, "one refused and one accepted create");
    assert_ne!(bearers[0], bearers[1], "the retry ran on the other token");
    let cooling = w.engine.with_pool(|p| {
        p.records().filter(|r| matches!(r.state, TokenState::CoolingDown { .. })).count()
    });
    assert_eq!(cooling, 1);
}

#[tokio::test(start_paused = true)]
async fn concurrent_401s_on_one_token_share_one_refresh() {
    let spec = AccountSpec { with_session_token: false, ..AccountSpec::pro("a@example.com") };
    let w =
        world_with(&[spec], None, Duration::from_millis(50), Arc::new(MemoryStore::new()), |r| {
            r.session_token = None
        });
    let a = w.engine.submit(call("gpt-image", "Two cats #fail=401x2")).await.unwrap();
    let b = w.engine.submit(call("gpt-image", "Two cats #fail=401x2")).await.unwrap();
    let (ea, eb) = tokio::join!(drain(a.events), drain(b.events));
    for events in [&ea, &eb] {
        assert!(matches!(events.last(), Some(Event::Completed(_))), "{events:?}");
    }
    let refused = w.sim.with_sim(|s| {
        s.requests()
            .iter()
            .filter(|r| r.path() == "/backend/video_gen" && r.status == Some(401))
            .count()
    });
    assert_eq!(refused, 2, "both tasks hit a 401");
    assert_eq!(count_path(&w.sim, "/oauth/token"), 1, "one refresh for both tasks");
    let token = w.engine.with_pool(|p| p.records().next().unwrap().access_token.clone());
    assert_ne!(token.expose(), w.accounts[0].access_token, "the pool holds the new AT");
}

/// Counts how many leases are out whenever a request goes upstream.
struct Probe {
    sim: SimUpstream,
    engine: OnceLock<Engine>,
    most: AtomicU32,
}

impl Upstream for Probe {
    fn send(&self, req: UpstreamRequest) -> BoxFuture<'_, Result<UpstreamReply, TransportError>> {
        if let Some(engine) = self.engine.get() {
            let now = engine.with_pool(|p| p.total_in_flight());
            self.most.fetch_max(now, Ordering::SeqCst);
        }
        self.sim.send(req)
    }

    fn fetch(&self, url: String) -> BoxFuture<'_, Result<Bytes, FetchError>> {
        self.sim.fetch(url)
    }
}

#[tokio::test(start_paused = true)]
async fn fifty_image_tasks_on_two_tokens_queue_and_all_complete() {
    let sim = SimUpstream::new(sim(Some(Timings::observed().scaled(10))));
    let accounts: Vec<_> = (0..2)
        .map(|i| sim.with_sim(|s| s.add_account(AccountSpec::pro(&format!("u{i}@example.com")))))
        .collect();
    let probe =
        Arc::new(Probe { sim: sim.clone(), engine: OnceLock::new(), most: AtomicU32::new(0) });
    let store = Arc::new(MemoryStore::new());
    let engine = Engine::new(
        engine_config(),
        probe.clone(),
        store.clone(),
        pool(&accounts, |r| r.image_concurrency = Some(1)),
    );
    probe.engine.set(engine.clone()).unwrap();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let submitted = engine.submit(call("gpt-image", &format!("Cat number {i}"))).await.unwrap();
        tasks.push((submitted.id, tokio::spawn(drain(submitted.events))));
    }
    for (id, events) in tasks {
        let events = events.await.unwrap();
        assert!(matches!(events.last(), Some(Event::Completed(_))), "{id}: {events:?}");
        assert_eq!(stored(&store, &id).await.status, TaskStatus::Completed);
    }
    assert!(probe.most.load(Ordering::SeqCst) <= 2, "more than 2 leases out");
    assert_eq!(probe.most.load(Ordering::SeqCst), 2, "both tokens were used at once");
    assert_eq!(engine.with_pool(|p| (p.total_in_flight(), p.waiting())), (0, 0));
    assert_eq!(engine.live_tasks(), 0);
    assert_eq!(sim.with_sim(|s| s.creates()), 50);
}

#[tokio::test(start_paused = true)]
async fn cancel_while_queued_withdraws_the_waiter() {
    let w = world_with(
        &[AccountSpec::pro("a@example.com")],
        Some(Timings::observed().scaled(10)),
        Duration::ZERO,
        Arc::new(MemoryStore::new()),
        |r| r.image_concurrency = Some(1),
    );
    let first = w.engine.submit(call("gpt-image", "First cat")).await.unwrap();
    let second = w.engine.submit(call("gpt-image", "Second cat")).await.unwrap();
    // Let both drivers run until the second one waits in the pool's queue.
    while w.engine.with_pool(|p| p.waiting()) == 0 {
        tokio::task::yield_now().await;
    }
    assert!(w.engine.cancel(&second.id));
    let events = drain(second.events).await;
    assert!(matches!(events.last(), Some(Event::Failed(Error::Cancelled))), "{events:?}");
    assert_eq!(w.engine.with_pool(|p| p.waiting()), 0);
    let events = drain(first.events).await;
    assert!(matches!(events.last(), Some(Event::Completed(_))), "{events:?}");
    assert_eq!(w.engine.with_pool(|p| p.total_in_flight()), 0);
    assert_eq!(w.sim.with_sim(|s| s.creates()), 1, "the cancelled task never went upstream");
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_that_never_reads_does_not_hold_the_task_up() {
    let w = world(1);
    let engine = Engine::new(
        EngineConfig { event_capacity: 1, ..engine_config() },
        Arc::new(w.sim.clone()),
        w.store.clone(),
        pool(&w.accounts, |_| {}),
    );
    let submitted = engine.submit(call("sora2-landscape-10s", "A cat")).await.unwrap();
    let _idle = engine.subscribe(&submitted.id).unwrap();
    let mut events = submitted.events;
    // The first receive reports the lag: the task ran on without waiting for us.
    let terminal = loop {
        match events.recv().await {
            Ok(event) if event.is_terminal() => break event,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => panic!("closed before the end"),
        }
    };
    assert!(matches!(terminal, Event::Completed(_)), "{terminal:?}");
    assert_eq!(stored(&w.store, &submitted.id).await.status, TaskStatus::Completed);
}

#[tokio::test(start_paused = true)]
async fn submits_beyond_the_task_cap_are_refused_before_anything_is_stored() {
    let sim = SimUpstream::new(sim(Some(sora2api_core::sim::Timings::observed())));
    let account = sim.with_sim(|s| s.add_account(AccountSpec::pro("cap@example.com")));
    let store = Arc::new(MemoryStore::new());
    let cfg = EngineConfig { max_live_tasks: 1, ..engine_config() };
    let engine = Engine::new(cfg, Arc::new(sim.clone()), store.clone(), pool(&[account], |_| {}));
    let first = engine.submit(call("sora2-landscape-10s", "A slow cat")).await.unwrap();
    let refused = engine.submit(call("gpt-image", "A cat")).await.unwrap_err();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.retry_after_secs(), Some(5));
    assert_eq!(refused.code(), "overloaded");
    assert_eq!(store.len(), 1, "the refused call left no record");
    drain(first.events).await;
    assert_eq!(engine.live_tasks(), 0);
    let again = engine.submit(call("gpt-image", "A cat")).await.unwrap();
    assert!(matches!(drain(again.events).await.last(), Some(Event::Completed(_))));
}

/// Forwards to the simulator, but the answer of every create is lost: the create happens
/// upstream, then the process "dies" before it hears back (the request never returns).
struct LosesCreateAnswers {
    sim: SimUpstream,
    lost: tokio::sync::Notify,
}

impl Upstream for LosesCreateAnswers {
    fn send(&self, req: UpstreamRequest) -> BoxFuture<'_, Result<UpstreamReply, TransportError>> {
        let create = ["/backend/nf/create", "/backend/video_gen"].contains(&req.path_and_query());
        Box::pin(async move {
            let reply = self.sim.send(req).await;
            if create {
                self.lost.notify_one();
                std::future::pending::<()>().await;
            }
            reply
        })
    }

    fn fetch(&self, url: String) -> BoxFuture<'_, Result<Bytes, FetchError>> {
        self.sim.fetch(url)
    }
}

#[tokio::test(start_paused = true)]
async fn a_restarted_engine_finds_the_create_whose_answer_was_lost() {
    for (model, prompt) in [("sora2-landscape-10s", "A lost video"), ("gpt-image", "A lost image")]
    {
        let store = Arc::new(MemoryStore::new());
        let sim = SimUpstream::new(sim(Some(Timings::observed().scaled(10))));
        let accounts = vec![sim.with_sim(|s| s.add_account(AccountSpec::pro("a@example.com")))];
        let losing =
            Arc::new(LosesCreateAnswers { sim: sim.clone(), lost: tokio::sync::Notify::new() });
        let engine =
            Engine::new(engine_config(), losing.clone(), store.clone(), pool(&accounts, |_| {}));
        let submitted = engine.submit(call(model, prompt)).await.unwrap();
        losing.lost.notified().await;
        engine.abort();
        assert_eq!(sim.with_sim(|s| s.creates()), 1);
        let record = stored(&store, &submitted.id).await;
        let checkpoint = record.checkpoint.as_deref().and_then(Checkpoint::from_json).unwrap();
        assert!(!checkpoint.accepted(), "the answer never arrived");
        assert!(!record.media_dropped());

        // A new process on the same store.
        let engine = Engine::new(
            engine_config(),
            Arc::new(sim.clone()),
            store.clone(),
            pool(&accounts, |_| {}),
        );
        assert_eq!(engine.resume_unfinished().await.unwrap(), 1);
        let events = drain(engine.subscribe(&submitted.id).expect("resumed")).await;
        assert!(matches!(events.last(), Some(Event::Completed(_))), "{model}: {events:?}");
        assert_eq!(stored(&store, &submitted.id).await.status, TaskStatus::Completed);
        assert_eq!(sim.with_sim(|s| s.creates()), 1, "{model}: found upstream, not created again");
        assert_eq!(engine.with_pool(|p| p.total_in_flight()), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn an_end_the_store_refuses_stays_in_memory_until_it_is_stored() {
    let w = world(1);
    let submitted = w.engine.submit(call("gpt-image", "A cat kept in memory")).await.unwrap();
    let id = submitted.id.clone();
    let mut events = submitted.events;
    // The record is stored; from now on every write fails.
    w.store.set_fail_writes(true);
    while !events.recv().await.unwrap().is_terminal() {}
    // Long after the end (virtual time), the store still says processing, but the task
    // answers its ending from memory.
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(stored(&w.store, &id).await.status, TaskStatus::Processing);
    let live = w.engine.get(&id).await.unwrap().unwrap();
    assert_eq!(live.status, TaskStatus::Completed);
    assert_eq!(w.engine.live_tasks(), 1);

    w.store.set_fail_writes(false);
    let rest = drain(events).await;
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(stored(&w.store, &id).await.status, TaskStatus::Completed);
    assert_eq!(w.engine.live_tasks(), 0);
}
