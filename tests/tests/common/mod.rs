//! The end-to-end harness: the simulated backend served over HTTP, the gateway (the
//! `Sora2ApiLayer` around a fallback service, served by hyper-util's `TowerToHyperService`)
//! with an `HttpUpstream` pointed at it, both on `127.0.0.1:0`, and a small HTTP/1 client.
//! [`admin_gateway`] mounts the admin API at `/api` too.
//!
//! Waiting is always on a signal (the task's event channel) or a bounded poll, never a fixed
//! sleep. Each test binary includes this module and uses part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use serde_json::Value;
use sora2api_core::machine::MachineConfig;
use sora2api_core::pool::{PoolConfig, Strategy, TokenPool};
use sora2api_core::sim::{AccountSpec, LoggedRequest, MintedAccount, SimConfig};
use sora2api_core::task::TaskId;
use sora2api_tower::sim_server::{SimHandle, SimServer};
use sora2api_tower::{
    Admin, AdminConfig, ApiKeys, Builder, Engine, EngineConfig, FetchPolicy, HttpUpstream,
    HttpUpstreamConfig, MemoryStore, MemoryTokenStore, Sora2ApiLayer,
};
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tower::Layer;

/// The API key every gateway here accepts (the original's default).
pub const KEY: &str = "han1234";

/// The admin username and password of [`admin_gateway`].
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "e2e-admin-password-7f3a9c";

/// The longest any test waits for a task or a response; far beyond what the fast sim needs.
pub const LIMIT: Duration = Duration::from_secs(20);

/// A valid 1x1 PNG.
pub const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// A tiny MP4: an `ftyp` box (mp42) and an empty `mdat` box.
pub const MP4: &[u8] = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom\0\0\0\x08mdat";

pub fn png_data_uri() -> String {
    format!("data:image/png;base64,{PNG_B64}")
}

pub fn mp4_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(MP4)
}

pub fn mp4_data_uri() -> String {
    format!("data:video/mp4;base64,{}", mp4_b64())
}

// === the simulated backend ===

/// The sim with every task finished at its first poll and a trivial proof of work.
pub fn fast_sim() -> SimHandle {
    sim_with(SimConfig::fast())
}

/// The sim with this configuration, served on `127.0.0.1:0`.
pub fn sim_with(config: SimConfig) -> SimHandle {
    SimServer::bind("127.0.0.1:0".parse().unwrap(), config).unwrap().spawn()
}

/// Every request the sim received on `path` (without query), in order.
pub fn sim_requests(sim: &SimHandle, path: &str) -> Vec<LoggedRequest> {
    sim.with_sim(|s| s.requests().iter().filter(|r| r.path() == path).cloned().collect())
}

/// The creates (sentinel-protected POSTs) the sim received, with their answers.
pub fn sim_creates(sim: &SimHandle) -> Vec<LoggedRequest> {
    sim.with_sim(|s| s.requests().iter().filter(|r| r.is_sentinel_route()).cloned().collect())
}

/// A logged request's JSON body.
pub fn body_json(req: &LoggedRequest) -> Value {
    serde_json::from_slice(&req.body).unwrap_or_else(|e| panic!("{e}: {:?}", req.body))
}

/// The bearer a logged request carried.
pub fn bearer(req: &LoggedRequest) -> &str {
    req.header("authorization").and_then(|a| a.strip_prefix("Bearer ")).unwrap_or_default()
}

// === the gateway ===

/// A pool of `accounts` (each with whether the pool should treat it as Pro), round robin,
/// waiting at most `max_wait_ms` for a free token.
pub fn pool_of(accounts: &[(&MintedAccount, bool)], max_wait_ms: u64) -> TokenPool {
    let mut pool = TokenPool::new(PoolConfig {
        strategy: Strategy::RoundRobin,
        max_wait_ms,
        ..PoolConfig::default()
    });
    for (account, pro) in accounts {
        pool.add(account.token_record(*pro));
    }
    pool
}

/// The machine settings of every gateway here: the sim's hosts, fast polls and backoffs.
pub fn machine_config(sim: &SimHandle) -> MachineConfig {
    MachineConfig {
        upstream: sim.upstream_config(),
        poll_interval_ms: 40,
        cameo_poll_interval_ms: 40,
        backoff_base_ms: 40,
        backoff_max_ms: 200,
        // A create lost to a reset or timeout is looked for this long before it is sent again.
        create_recovery_window_ms: 200,
        ..MachineConfig::default()
    }
}

/// A layer builder over `sim` with `pool`: an `HttpUpstream` at the sim's origin (loopback
/// video URLs allowed), fast machine settings, key [`KEY`], in-memory task store. Tests add
/// or override settings and build.
pub fn builder(sim: &SimHandle, pool: TokenPool) -> Builder {
    Sora2ApiLayer::builder()
        .upstream(http_upstream())
        .token_pool(pool)
        .engine_config(engine_config(sim))
        .api_keys(ApiKeys::new([KEY]))
}

/// An `HttpUpstream` that may fetch result files from loopback (the sim's media).
pub fn http_upstream() -> Arc<HttpUpstream> {
    let upstream = HttpUpstream::new(HttpUpstreamConfig {
        fetch: FetchPolicy { allow_loopback: true, ..FetchPolicy::default() },
        ..HttpUpstreamConfig::default()
    })
    .unwrap();
    Arc::new(upstream)
}

/// The engine settings of every gateway here ([`machine_config`]).
pub fn engine_config(sim: &SimHandle) -> EngineConfig {
    EngineConfig { machine: machine_config(sim), ..EngineConfig::default() }
}

/// A gateway like [`builder`]'s with the admin API mounted at `/api`: the engine is built
/// first, the admin API ([`ADMIN_USER`], [`ADMIN_PASSWORD`], an in-memory token store) loads
/// `pool`'s tokens from it, and the layer shares the engine and the key set [`KEY`].
pub async fn admin_gateway(sim: &SimHandle, pool: TokenPool) -> Gateway {
    let engine =
        Engine::new(engine_config(sim), http_upstream(), Arc::new(MemoryStore::new()), pool);
    let keys = ApiKeys::new([KEY]);
    let admin = Admin::new(
        AdminConfig::new(ADMIN_USER, ADMIN_PASSWORD),
        engine.clone(),
        Arc::new(MemoryTokenStore::new()),
        keys.clone(),
    )
    .await
    .unwrap();
    let layer = Sora2ApiLayer::builder()
        .engine(engine)
        .api_keys(keys)
        .admin_api("/api", admin)
        .build()
        .unwrap();
    Gateway::start(layer).await
}

/// A sim with one Pro account and a gateway over it.
pub async fn one_account_world() -> (SimHandle, MintedAccount, Gateway) {
    let sim = fast_sim();
    let account = sim.add_account(AccountSpec::pro("ada@example.com"));
    let gw =
        Gateway::start(builder(&sim, pool_of(&[(&account, true)], 2_000)).build().unwrap()).await;
    (sim, account, gw)
}

/// What the gateway wraps: answers everything it is given with 200 `fallback saw <path>`.
pub fn fallback(
    req: Request<Incoming>,
) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>> {
    let body = format!("fallback saw {}", req.uri().path());
    std::future::ready(Ok(Response::new(Full::from(body))))
}

/// A running gateway: the layer (for its engine) and its HTTP server.
pub struct Gateway {
    pub layer: Sora2ApiLayer,
    pub addr: SocketAddr,
    pub client: TestClient,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Gateway {
    /// Serves `layer` around [`fallback`] on `127.0.0.1:0`.
    pub async fn start(layer: Sora2ApiLayer) -> Gateway {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = layer.layer(tower::service_fn(fallback));
        let (stop, mut stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let stream = tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                };
                let service = TowerToHyperService::new(service.clone());
                connections.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
            // Every connection (and the service clone it holds) is gone when this returns.
            connections.shutdown().await;
        });
        Gateway {
            layer,
            addr,
            client: TestClient::new(addr),
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops serving and waits until the listener and every connection are dropped. The
    /// engine runs on.
    pub async fn stop_server(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
    }

    /// Waits for the task's end on its event channel (a signal, not a poll), then reads it
    /// over HTTP as a client would: `GET /v1/tasks/{id}`, which must be finished.
    pub async fn finished_task(&self, id: &str) -> Value {
        let task_id = TaskId::parse(id).unwrap();
        if let Some(mut events) = self.layer.engine().subscribe(&task_id) {
            tokio::time::timeout(LIMIT, async {
                loop {
                    match events.recv().await {
                        Ok(event) if event.is_terminal() => break,
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => break,
                    }
                }
            })
            .await
            .unwrap_or_else(|_| panic!("task {id} did not finish within {LIMIT:?}"));
        }
        let (status, task) = self.client.get_json(&format!("/v1/tasks/{id}")).await;
        assert_eq!(status, 200, "{task}");
        assert_ne!(task["status"], "processing", "a finished task reads as finished: {task}");
        task
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

// === the client ===

/// A plain HTTP/1 client of one gateway, with the API key unless told otherwise.
#[derive(Clone)]
pub struct TestClient {
    http: Client<HttpConnector, Full<Bytes>>,
    origin: String,
}

/// A whole response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as text (lossy: result files are binary).
    pub body: String,
    pub bytes: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The `X-Task-Id` header.
    pub fn task_id(&self) -> String {
        self.headers
            .get("x-task-id")
            .unwrap_or_else(|| panic!("no x-task-id: {self:?}"))
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// The SSE events (`data:` payloads) in order, after checking the framing: every frame is
    /// a `data:` event or a comment, and the body ends with the one `data: [DONE]`.
    pub fn sse(&self) -> Vec<String> {
        assert_eq!(self.headers["content-type"], "text/event-stream", "{self:?}");
        assert!(self.body.ends_with("\n\n"), "unterminated frame: {}", self.body);
        let mut events = Vec::new();
        for frame in self.body.split("\n\n").filter(|f| !f.is_empty()) {
            if frame.starts_with(':') {
                continue;
            }
            let data = frame.strip_prefix("data: ").unwrap_or_else(|| panic!("frame {frame:?}"));
            assert!(!data.contains('\n'), "one line per event: {frame:?}");
            events.push(data.to_owned());
        }
        assert_eq!(
            events.iter().filter(|e| *e == "[DONE]").count(),
            1,
            "exactly one [DONE]: {}",
            self.body
        );
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "{}", self.body);
        events
    }

    /// The SSE chunks (every event but `[DONE]`) as JSON.
    pub fn chunks(&self) -> Vec<Value> {
        let events = self.sse();
        events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect()
    }
}

impl TestClient {
    pub fn new(addr: SocketAddr) -> TestClient {
        TestClient {
            http: Client::builder(TokioExecutor::new()).build_http(),
            origin: format!("http://{addr}"),
        }
    }

    /// Sends `req` (a path-only URI is made absolute) and reads the whole response.
    pub async fn send(&self, mut req: Request<Full<Bytes>>) -> Reply {
        if req.uri().authority().is_none() {
            *req.uri_mut() = format!("{}{}", self.origin, req.uri()).parse().unwrap();
        }
        let exchange = async {
            let response = self.http.request(req).await.unwrap();
            let (parts, body) = response.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            Reply {
                status: parts.status,
                headers: parts.headers,
                body: String::from_utf8_lossy(&body).into_owned(),
                bytes: body,
            }
        };
        tokio::time::timeout(LIMIT, exchange).await.expect("no response in time")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(post(path, body)).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(get(path)).await
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let reply = self.get(path).await;
        (reply.status, reply.json())
    }

    /// Fetches an absolute URL (a result file) without credentials.
    pub async fn fetch(&self, url: &str) -> Reply {
        self.send(Request::get(url).body(Full::default()).unwrap()).await
    }
}

/// `POST path` with the key and a JSON body.
pub fn post(path: &str, body: &Value) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .body(Full::from(body.to_string()))
        .unwrap()
}

/// `GET path` with the key.
pub fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("authorization", format!("Bearer {KEY}"))
        .body(Full::default())
        .unwrap()
}

/// Checks the OpenAI error envelope: exactly `message`, `type`, `param`, `code`.
pub fn assert_envelope(reply: &Reply, status: u16, kind: &str) -> Value {
    assert_eq!(reply.status.as_u16(), status, "{reply:?}");
    assert_eq!(reply.headers["content-type"], "application/json", "{reply:?}");
    let body = reply.json();
    let error = body["error"].as_object().unwrap_or_else(|| panic!("no envelope: {body}"));
    let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "message", "param", "type"], "{body}");
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
    assert_eq!(error["type"], kind, "{body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body["error"].clone()
}
