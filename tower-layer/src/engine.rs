//! The task engine: runs every task's [`Generation`] with real IO.
//!
//! One Tokio task per generation drives its machine (the only loop): leases
//! come from the shared [`TokenPool`] (queued requests are answered by a small pool service
//! that calls [`TokenPool::poll`] at [`TokenPool::next_wakeup`] and after every release),
//! requests go to the [`Upstream`], proofs of work run on the blocking pool, refreshes are
//! single-flight per token, events update the task record and go to subscribers, and the
//! record goes to the [`TaskStore`] before anything goes upstream, at every transition the
//! machine persists, and at the end.
//!
//! | Output | What the driver does | Input |
//! |---|---|---|
//! | `Lease` | pool request; queued: wait for the pool service's grant; then a cached sentinel, or in external PoW mode one from the [PoW service](pow_service) | `Leased` (+ `CachedSentinel`) / `NoToken` |
//! | `Send` | [`Upstream::send`] | `Reply` / `Transport` |
//! | `Fetch` | [`Upstream::fetch`] | `Reply` (see below) |
//! | `Solve` | [`Solver::step`](sora2api_core::pow::Solver::step) in slices on the blocking pool | `Solved` |
//! | `Refresh` | single-flight refresh, credentials stored in the pool | `Refreshed` |
//! | `Release` | pool release, grants routed to waiters | - |
//! | `Event` | record updated, subscribers told (terminal: stored first) | - |
//! | `Persist` | record with the checkpoint stored | - |
//! | `Sentinel` | the shared sentinel cache | - |
//! | `Wait` | sleep until the deadline or a cancel | `Timeout` |
//!
//! **Fetch failures.** A [`FetchError`](crate::FetchError) (refused URL, private
//! address, too large, unreachable) is the client's problem, not the upstream's or the
//! token's. The driver answers it as a `200` reply with an empty body: the machine then fails
//! the task at once with a 400 (`param: video`, "not an MP4, MOV or WebM video") and releases
//! the lease as `Abandoned` (no penalty for the token). Mapping it to `Transport` would retry
//! the attempt and count against the token; a 4xx reply would too. The price: the client does
//! not see the fetch error's own wording (that needs a dedicated core input).
//!
//! **Cancel.** Every wait is raced against the task's cancel signal; on cancel the pending
//! IO is dropped (its answer is never fed), the machine is cancelled, and the driver drains
//! what it emits (the release, the `Cancelled` event, the final persist).
//!
//! ```no_run
//! # async fn demo(engine: sora2api_tower::engine::Engine, call: sora2api_core::request::ClientCall)
//! # -> Result<(), sora2api_core::Error> {
//! let mut submitted = engine.submit(call).await?; // stored before any upstream call
//! while let Ok(event) = submitted.events.recv().await {
//!     if event.is_terminal() {
//!         break;
//!     }
//! }
//! let record = engine.get(&submitted.id).await?; // from memory, or from the store
//! # Ok(()) }
//! ```

mod driver;
mod leases;
pub mod pow_service;
mod refresh;

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sora2api_core::lifecycle::RefreshError;
use sora2api_core::machine::{Checkpoint, Generation, MachineConfig, SentinelCache};
use sora2api_core::pool::{Credentials, TokenId, TokenPool};
use sora2api_core::record::TaskRecord;
use sora2api_core::request::ClientCall;
use sora2api_core::task::{Event, TaskId};
use sora2api_core::Error;
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::AbortHandle;

use crate::clock;
use crate::store::TaskStore;
use crate::upstream::Upstream;
pub use pow_service::{PowMode, PowService};

/// The default of [`EngineConfig::max_live_tasks`]: room for the 10 000 concurrent streams
/// the benchmarks hold, with headroom.
pub const DEFAULT_MAX_LIVE_TASKS: usize = 20_000;

/// How long a client refused for [`EngineConfig::max_live_tasks`] is told to wait.
const OVERLOADED_RETRY_AFTER_S: u32 = 5;

/// The engine's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// The state machine's settings (hosts, timeouts, retries, PoW budget).
    pub machine: MachineConfig,
    /// Events buffered per task for subscribers; a subscriber further behind lags (it misses
    /// events, the task is never slowed down). The buffer is allocated when the task starts
    /// (~170 bytes an event): 16 costs ~2.7 KiB per running task, 64 cost ~11 KiB, a quarter
    /// of a held stream's memory (BENCHMARKS.md). A task emits an event per poll at most, and
    /// its subscribers (an SSE body, a blocking request) read them as they come.
    pub event_capacity: usize,
    /// Progress-only record updates are written to the store at most this often (ms);
    /// transitions and the end are written at once.
    pub progress_write_interval_ms: u64,
    /// How long a cached sentinel stays valid (ms; decisions 13: 5 min).
    pub sentinel_ttl_ms: u64,
    /// PoW iterations per slice on the blocking pool (a cancelled task stops between slices).
    pub pow_slice: u32,
    /// Where sentinel tokens come from (local solving, or an external service first).
    pub pow_service: PowService,
    /// Tasks that may run at once (resumed ones included); a submit beyond it is refused
    /// with [`Error::Overloaded`] (503 + `Retry-After`) before anything is stored.
    pub max_live_tasks: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            machine: MachineConfig::default(),
            event_capacity: 16,
            progress_write_interval_ms: 5_000,
            sentinel_ttl_ms: 300_000,
            pow_slice: 10_000,
            pow_service: PowService::default(),
            max_live_tasks: DEFAULT_MAX_LIVE_TASKS,
        }
    }
}

/// A task the engine accepted.
#[derive(Debug)]
pub struct Submitted {
    /// The new task's id.
    pub id: TaskId,
    /// The record as first stored.
    pub record: TaskRecord,
    /// The task's events from the first one on.
    pub events: broadcast::Receiver<Event>,
}

/// Runs tasks. Cheap to clone (an `Arc`); every clone is the same engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine").field("live_tasks", &self.live_tasks()).finish_non_exhaustive()
    }
}

/// A running task, as the engine's other callers see it.
struct Live {
    /// The record as of the last event (what `get` answers), shared with the driver.
    record: Arc<TaskRecord>,
    events: broadcast::Sender<Event>,
    cancel: watch::Sender<bool>,
    task: Option<AbortHandle>,
}

/// What drivers, the pool service and the API share.
struct Inner {
    cfg: EngineConfig,
    /// The machine settings new tasks start with (the admin API may replace them).
    machine: Mutex<Arc<MachineConfig>>,
    /// The PoW service settings (the admin API may replace them).
    pow_service: Mutex<PowService>,
    upstream: Arc<dyn Upstream>,
    store: Arc<dyn TaskStore>,
    pool: Mutex<leases::PoolState>,
    /// Wakes the pool service (after a release, a queued request, an admin change).
    wake: Arc<Notify>,
    service: Mutex<Option<AbortHandle>>,
    sentinels: Mutex<SentinelCache>,
    refreshes: Mutex<refresh::InFlight>,
    live: Mutex<HashMap<TaskId, Live>>,
    next_waiter: AtomicU64,
}

/// Locks a mutex of plain data; a panic elsewhere cannot leave it half-changed in a way that
/// matters more than stopping the engine would.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// 64 random bits (std's per-process random hasher keys; ids need uniqueness, not secrecy).
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u64(clock::now_ms());
    h.finish()
}

// === impl Engine ===

impl Engine {
    /// An engine over `upstream`, `store` and `pool`. Nothing runs until [`Engine::submit`]
    /// or [`Engine::resume_unfinished`] (which must be called inside a Tokio runtime).
    pub fn new(
        cfg: EngineConfig,
        upstream: Arc<dyn Upstream>,
        store: Arc<dyn TaskStore>,
        pool: TokenPool,
    ) -> Engine {
        let sentinels = SentinelCache::new(cfg.sentinel_ttl_ms);
        Engine {
            inner: Arc::new(Inner {
                machine: Mutex::new(Arc::new(cfg.machine.clone())),
                pow_service: Mutex::new(cfg.pow_service.clone()),
                cfg,
                upstream,
                store,
                pool: Mutex::new(leases::PoolState::new(pool)),
                wake: Arc::new(Notify::new()),
                service: Mutex::new(None),
                sentinels: Mutex::new(sentinels),
                refreshes: Mutex::new(refresh::InFlight::default()),
                live: Mutex::new(HashMap::new()),
                next_waiter: AtomicU64::new(1),
            }),
        }
    }

    /// Accepts a task: a new id, the record stored **before** anything goes upstream, then
    /// its driver starts. A store failure is [`Error::StoreUnavailable`] and nothing runs;
    /// at [`EngineConfig::max_live_tasks`] running tasks it is [`Error::Overloaded`] (the
    /// check is not atomic with the start: concurrent submits may pass it together, so the
    /// cap can be exceeded by at most their number).
    pub async fn submit(&self, call: ClientCall) -> Result<Submitted, Error> {
        if self.live_tasks() >= self.inner.cfg.max_live_tasks {
            return Err(Error::Overloaded {
                what: "tasks in flight",
                retry_after_secs: OVERLOADED_RETRY_AFTER_S,
            });
        }
        let now = clock::now_ms();
        let random = (u128::from(random_u64()) << 64) | u128::from(random_u64());
        let id = TaskId::new(now, random);
        let record = TaskRecord::new(id.clone(), &call, now);
        self.inner.store.put(record.clone()).await.map_err(|_| Error::StoreUnavailable)?;
        let machine =
            Generation::new(now, id.clone(), call.request, self.inner.machine(), random_u64());
        let events = self.inner.start(record.clone(), machine);
        Ok(Submitted { id, record, events })
    }

    /// The events of a running task from now on; `None` once it has finished.
    pub fn subscribe(&self, id: &TaskId) -> Option<broadcast::Receiver<Event>> {
        lock(&self.inner.live).get(id).map(|l| l.events.subscribe())
    }

    /// The task's record: a running task's from memory (current to its last event), any
    /// other from the store.
    pub async fn get(&self, id: &TaskId) -> Result<Option<TaskRecord>, Error> {
        if let Some(record) = lock(&self.inner.live).get(id).map(|l| TaskRecord::clone(&l.record)) {
            return Ok(Some(record));
        }
        self.inner.store.get(id).await.map_err(|_| Error::StoreUnavailable)
    }

    /// Cancels a running task: its machine is cancelled, its lease released, nothing more is
    /// sent. `false` if the task is not running (unknown, or already finished).
    pub fn cancel(&self, id: &TaskId) -> bool {
        match lock(&self.inner.live).get(id) {
            Some(live) if !live.record.is_finished() => {
                live.cancel.send_replace(true);
                true
            }
            _ => false,
        }
    }

    /// After a start: runs every unfinished record of the store again. A record with a
    /// checkpoint resumes from it ([`Generation::resume`]: an accepted task is only polled);
    /// one without restarts its attempt. Returns how many tasks were started.
    ///
    /// A record whose media were dropped (after acceptance) but whose checkpoint does not
    /// show the acceptance cannot run again: it is failed with [`Error::Internal`].
    pub async fn resume_unfinished(&self) -> Result<usize, Error> {
        let records = self.inner.store.unfinished().await.map_err(|_| Error::StoreUnavailable)?;
        let mut started = 0;
        for mut record in records {
            if lock(&self.inner.live).contains_key(&record.id) {
                continue;
            }
            let now = clock::now_ms();
            let checkpoint = record.checkpoint.as_deref().and_then(Checkpoint::from_json);
            let accepted = checkpoint.as_ref().is_some_and(Checkpoint::accepted);
            if record.media_dropped() && !accepted {
                record.apply(now, &Event::Failed(Error::Internal));
                self.inner.store.put(record).await.map_err(|_| Error::StoreUnavailable)?;
                continue;
            }
            let (id, request, cfg) =
                (record.id.clone(), record.request.clone(), self.inner.machine());
            let machine = match checkpoint {
                Some(checkpoint) => Generation::resume(now, id, request, cfg, checkpoint),
                None => Generation::new(now, id, request, cfg, random_u64()),
            };
            drop(self.inner.start(record, machine));
            started += 1;
        }
        Ok(started)
    }

    /// Runs `f` on the token pool under its lock (admin changes), then lets waiting tasks
    /// see the change.
    pub fn with_pool<R>(&self, f: impl FnOnce(&mut TokenPool) -> R) -> R {
        let result = f(&mut lock(&self.inner.pool).pool);
        self.inner.wake.notify_one();
        result
    }

    /// The machine settings new tasks start with.
    pub fn machine_config(&self) -> Arc<MachineConfig> {
        self.inner.machine()
    }

    /// Replaces the machine settings (admin settings: retries, poll interval, timeouts).
    /// Tasks started from now on use them; running tasks keep the settings they started with.
    pub fn set_machine_config(&self, config: MachineConfig) {
        *lock(&self.inner.machine) = Arc::new(config);
    }

    /// The PoW service settings leases use from now on.
    pub fn pow_service(&self) -> PowService {
        lock(&self.inner.pow_service).clone()
    }

    /// Replaces the PoW service settings (admin settings); the next lease uses them.
    pub fn set_pow_service(&self, service: PowService) {
        *lock(&self.inner.pow_service) = service;
    }

    /// Refreshes token `token` now (ST -> AT, then RT -> AT), single-flight with the refreshes
    /// tasks ask for: a refresh of the same token already running is joined, not repeated.
    /// The new access token, its expiry and a rotated refresh token are stored in the pool
    /// (a token disabled as invalid or expired is active again, see
    /// [`TokenPool::set_credentials`]); the token store is the caller's business. A token that
    /// is not in the pool has [`RefreshError::NoMaterial`]. Must be called inside a Tokio
    /// runtime (the refresh runs in its own task, so dropping this future does not stop it).
    pub async fn refresh(&self, token: TokenId) -> Result<Credentials, RefreshError> {
        self.inner.refresh(token).await
    }

    /// The upstream the engine sends to (the admin API tests and enriches tokens with it).
    pub fn upstream(&self) -> Arc<dyn Upstream> {
        self.inner.upstream.clone()
    }

    /// Tasks running now.
    pub fn live_tasks(&self) -> usize {
        lock(&self.inner.live).len()
    }

    /// Stops every driver at once, as a crash would: nothing more is sent, released or
    /// written. The store keeps the records; a new engine resumes them with
    /// [`Engine::resume_unfinished`].
    pub fn abort(&self) {
        for (_, live) in lock(&self.inner.live).drain() {
            if let Some(task) = live.task {
                task.abort();
            }
        }
        if let Some(service) = lock(&self.inner.service).take() {
            service.abort();
        }
    }
}

// === impl Inner ===

impl Inner {
    /// Registers a task as live and spawns its driver; returns a subscription taken before
    /// the first event.
    fn start(
        self: &Arc<Self>,
        record: TaskRecord,
        machine: Generation,
    ) -> broadcast::Receiver<Event> {
        let (events, receiver) = broadcast::channel(self.cfg.event_capacity.max(1));
        let (cancel, cancel_rx) = watch::channel(false);
        let id = record.id.clone();
        let record = Arc::new(record);
        lock(&self.live).insert(
            id.clone(),
            Live { record: record.clone(), events: events.clone(), cancel, task: None },
        );
        let span = tracing::info_span!(
            "task",
            id = %record.id,
            model = %record.model,
            operation = machine.request().operation.name(),
        );
        let driver = driver::Driver::new(self.clone(), record, events, cancel_rx);
        let task =
            tokio::spawn(tracing::Instrument::instrument(driver.run(machine), span)).abort_handle();
        if let Some(live) = lock(&self.live).get_mut(&id) {
            live.task = Some(task);
        }
        receiver
    }

    /// The machine settings new tasks start with.
    fn machine(&self) -> Arc<MachineConfig> {
        lock(&self.machine).clone()
    }

    /// The PoW service settings as of now.
    fn pow_service(&self) -> PowService {
        lock(&self.pow_service).clone()
    }

    /// Credentials of the token as the pool holds them now.
    fn credentials(&self, token: TokenId) -> Option<Credentials> {
        let state = lock(&self.pool);
        let r = state.pool.get(token)?;
        Some(Credentials {
            access_token: r.access_token.clone(),
            session_token: r.session_token.clone(),
            proxy: r.proxy_url.clone(),
        })
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(service) = lock(&self.service).take() {
            service.abort();
        }
    }
}
