//! The benchmarked world: the simulated backend and the gateway, each on a runtime of its own
//! (so the CPU of each is read from its threads), and the load generator's runtime.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use sora2api_tower::core::machine::MachineConfig;
use sora2api_tower::core::pool::{PoolConfig, Strategy, TokenPool};
use sora2api_tower::core::sim::{AccountSpec, SimConfig};
use sora2api_tower::core::upstream::{TransportError, UpstreamReply, UpstreamRequest};
use sora2api_tower::sim_server::{SimHandle, SimServer};
use sora2api_tower::{
    ApiKeys, BoxFuture, BuildError, EngineConfig, FetchError, FetchPolicy, HttpUpstream,
    HttpUpstreamConfig, MemoryStore, Sora2ApiLayer, Upstream,
};
use tokio::runtime::Runtime;

use crate::measure::{now, CLIENT_THREADS, GATEWAY_THREADS, SIM_THREADS};

/// The API key the benchmark gateway accepts.
pub const KEY: &str = "bench-key";

/// How the world is set up.
#[derive(Debug, Clone)]
pub struct WorldConfig {
    pub sim: SimConfig,
    /// Accounts in the pool.
    pub accounts: usize,
    /// Per-token image concurrency (`None`: unlimited).
    pub image_concurrency: Option<u32>,
    pub poll_interval_ms: u64,
    /// Worker threads of the gateway's runtime.
    pub gateway_threads: usize,
    /// Worker threads of the load generator's runtime.
    pub client_threads: usize,
}

/// The three runtimes, the running sim and gateway, and the timing upstream.
pub struct World {
    pub client_rt: Runtime,
    /// Kept for the life of the world (the gateway and the sim run on them).
    _gateway_rt: Runtime,
    _sim_rt: Runtime,
    _sim: SimHandle,
    pub gateway: SocketAddr,
    pub timing: Arc<TimingUpstream>,
    pub layer: Sora2ApiLayer,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn runtime(name: &str, workers: usize) -> Result<Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime {name}: {e}"))
}

impl World {
    pub fn start(cfg: WorldConfig) -> Result<World, String> {
        let sim_rt = runtime(SIM_THREADS, 1)?;
        let gateway_rt = runtime(GATEWAY_THREADS, cfg.gateway_threads)?;
        let client_rt = runtime(CLIENT_THREADS, cfg.client_threads)?;

        let server = SimServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), cfg.sim.clone())
            .map_err(|e| format!("binding the sim: {e}"))?
            .with_log_limit(1_000);
        let mut pool = TokenPool::new(PoolConfig {
            strategy: Strategy::RoundRobin,
            max_wait_ms: 60_000,
            max_waiters: 1_000_000,
            ..PoolConfig::default()
        });
        for i in 0..cfg.accounts {
            let mut spec = AccountSpec::pro(&format!("bench{i}@example.com"));
            spec.quota = u32::MAX;
            let account = server.add_account(spec);
            let mut record = account.token_record(true);
            record.image_concurrency = cfg.image_concurrency;
            pool.add(record);
        }
        let sim = {
            let _guard = sim_rt.enter();
            server.spawn()
        };

        let http = HttpUpstream::new(HttpUpstreamConfig {
            fetch: FetchPolicy { allow_loopback: true, ..FetchPolicy::default() },
            ..HttpUpstreamConfig::default()
        })
        .map_err(|e| format!("the HTTP client: {e}"))?;
        let timing = Arc::new(TimingUpstream::new(http));
        let engine = EngineConfig {
            machine: MachineConfig {
                upstream: sim.upstream_config(),
                poll_interval_ms: cfg.poll_interval_ms,
                cameo_poll_interval_ms: cfg.poll_interval_ms,
                ..MachineConfig::default()
            },
            ..EngineConfig::default()
        };
        let _guard = gateway_rt.enter();
        let layer = Sora2ApiLayer::builder()
            .upstream(timing.clone())
            .engine_config(engine)
            .task_store(Arc::new(MemoryStore::new()))
            .token_pool(pool)
            .api_keys(ApiKeys::new([KEY]))
            .build()
            .map_err(|e| format!("the layer: {e}"))?;
        let listener = gateway_rt
            .block_on(tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))))
            .map_err(|e| format!("binding the gateway: {e}"))?;
        let gateway = listener.local_addr().map_err(|e| e.to_string())?;
        let service = tower::Layer::layer(&layer, sora2api_proxy::server::not_found());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        gateway_rt.spawn(sora2api_proxy::server::serve(
            listener,
            service,
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(1),
        ));
        drop(_guard);
        Ok(World {
            client_rt,
            _gateway_rt: gateway_rt,
            _sim_rt: sim_rt,
            _sim: sim,
            gateway,
            timing,
            layer,
            stop: Some(stop),
        })
    }

    /// Runs `fut` on the load generator's runtime (not on the calling thread).
    pub fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, String> {
        let handle = self.client_rt.spawn(fut);
        self.client_rt.block_on(handle).map_err(|e| format!("the load generator failed: {e}"))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.layer.engine().abort();
    }
}

// === impl TimingUpstream ===

/// An [`Upstream`] that forwards to [`HttpUpstream`] and adds the time each call took to the
/// task it belongs to. Tasks are told apart by a nonce in the prompt (`bnonce<N>x`), seen in
/// the create request's body; the calls of one task are tied to it through the bearer token,
/// which (with a per-token concurrency of 1) serves one task at a time: calls before the
/// create (the sentinel) wait in a per-token bucket, calls after it go to the token's current
/// task.
pub struct TimingUpstream {
    inner: HttpUpstream,
    books: Mutex<Books>,
}

#[derive(Default)]
struct Books {
    /// Nonce -> total upstream wait, ns.
    by_nonce: HashMap<u64, u64>,
    /// Bearer -> the nonce of its current task.
    current: HashMap<String, u64>,
    /// Bearer -> upstream wait of calls made before its task's create.
    pending: HashMap<String, u64>,
    /// Calls and their total time, whatever task.
    calls: u64,
    total_ns: u64,
}

/// The nonce in a body: the digits after `bnonce`.
pub fn nonce_in(body: &[u8]) -> Option<u64> {
    let at = body.windows(6).position(|w| w == b"bnonce")? + 6;
    let digits: Vec<u8> = body[at..].iter().take_while(|b| b.is_ascii_digit()).copied().collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

impl TimingUpstream {
    fn new(inner: HttpUpstream) -> Self {
        TimingUpstream { inner, books: Mutex::new(Books::default()) }
    }

    /// The upstream wait of the task with this nonce, ns.
    pub fn waited_ns(&self, nonce: u64) -> Option<u64> {
        self.books.lock().unwrap_or_else(PoisonError::into_inner).by_nonce.get(&nonce).copied()
    }

    /// Calls made and their total time, ns.
    pub fn totals(&self) -> (u64, u64) {
        let books = self.books.lock().unwrap_or_else(PoisonError::into_inner);
        (books.calls, books.total_ns)
    }

    fn book(&self, bearer: String, nonce: Option<u64>, sentinel: bool, ns: u64) {
        let mut books = self.books.lock().unwrap_or_else(PoisonError::into_inner);
        books.calls += 1;
        books.total_ns += ns;
        if let Some(nonce) = nonce {
            let before = books.pending.remove(&bearer).unwrap_or(0);
            *books.by_nonce.entry(nonce).or_insert(0) += before + ns;
            books.current.insert(bearer, nonce);
        } else if let (false, Some(&nonce)) = (sentinel, books.current.get(&bearer)) {
            *books.by_nonce.entry(nonce).or_insert(0) += ns;
        } else {
            *books.pending.entry(bearer).or_insert(0) += ns;
        }
    }
}

impl Upstream for TimingUpstream {
    fn send(&self, req: UpstreamRequest) -> BoxFuture<'_, Result<UpstreamReply, TransportError>> {
        let bearer = req.header("authorization").unwrap_or_default().to_owned();
        let nonce = nonce_in(&req.body);
        let sentinel = req.path_and_query().contains("sentinel");
        Box::pin(async move {
            let start = now();
            let reply = self.inner.send(req).await;
            let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.book(bearer, nonce, sentinel, ns);
            reply
        })
    }

    fn fetch(&self, url: String) -> BoxFuture<'_, Result<Bytes, FetchError>> {
        self.inner.fetch(url)
    }

    fn set_global_proxy(&self, url: Option<&str>) -> Result<(), BuildError> {
        self.inner.set_global_proxy(url)
    }
}
