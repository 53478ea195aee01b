//! `sora2api --demo`: the whole gateway against the simulated backend, in one process.
//!
//! The simulator serves every host of the real service on a loopback port with a Pro
//! account already in the pool; its schedule is the observed one at 5 % (a video takes about
//! 8 s, an image half a second), its proof of work is real but easy, and it accepts any
//! well-formed share id as a remix target (the founding document's examples use one that
//! exists only on the real service). Tasks live in memory: a demo keeps nothing.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use sora2api_tower::core::machine::MachineConfig;
use sora2api_tower::core::pool::{PoolConfig, TokenPool};
use sora2api_tower::core::sim::{AccountSpec, SimConfig, Timings};
use sora2api_tower::sim_server::{SimHandle, SimServer};
use sora2api_tower::{
    ApiKeys, Builder, EngineConfig, FetchPolicy, HttpUpstream, HttpUpstreamConfig, MemoryStore,
    Sora2ApiLayer,
};

/// The founding document's API key, which the demo accepts.
pub const DEMO_API_KEY: &str = "han1234";

/// The simulator's settings in demo mode.
pub fn sim_config() -> SimConfig {
    SimConfig {
        timings: Timings::observed().scaled(5),
        instant: false,
        pow_difficulty: "0fffff".into(),
        accept_any_remix_target: true,
        seeded_posts: 3,
        ..SimConfig::default()
    }
}

/// A running demo backend and the gateway's pieces against it.
#[derive(Debug)]
pub struct Demo {
    /// The simulated backend (stops when dropped).
    pub sim: SimHandle,
    /// The email of the demo's Pro account.
    pub account: String,
}

impl Demo {
    /// Starts the simulated backend on a free loopback port with one Pro account. Must run
    /// inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// Binding the loopback port failed.
    pub fn start() -> io::Result<(Demo, TokenPool)> {
        let server = SimServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), sim_config())?;
        let account = server.add_account(AccountSpec::pro("demo@example.com"));
        let mut pool = TokenPool::new(PoolConfig::default());
        pool.add(account.token_record(true));
        let email = account.email.clone();
        Ok((Demo { sim: server.spawn(), account: email }, pool))
    }

    /// The engine settings against this backend: its hosts, and a 1 s poll interval.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            machine: MachineConfig {
                upstream: self.sim.upstream_config(),
                poll_interval_ms: 1_000,
                cameo_poll_interval_ms: 1_000,
                ..MachineConfig::default()
            },
            ..EngineConfig::default()
        }
    }

    /// A layer builder with everything set for the demo: the upstream (loopback fetches
    /// allowed, so character videos can come from the simulator's own result URLs), the
    /// engine settings, an in-memory task store, the pool and the demo key.
    ///
    /// # Errors
    ///
    /// The HTTP client could not be built (no TLS roots on this machine).
    pub fn builder(&self, pool: TokenPool) -> Result<Builder, sora2api_tower::BuildError> {
        let upstream = HttpUpstream::new(HttpUpstreamConfig {
            fetch: FetchPolicy { allow_loopback: true, ..FetchPolicy::default() },
            ..HttpUpstreamConfig::default()
        })?;
        Ok(Sora2ApiLayer::builder()
            .upstream(Arc::new(upstream))
            .engine_config(self.engine_config())
            .task_store(Arc::new(MemoryStore::new()))
            .token_pool(pool)
            .api_keys(ApiKeys::new([DEMO_API_KEY])))
    }
}

/// The curl lines the demo prints: one per endpoint, runnable as shown against `base`
/// (`http://127.0.0.1:8000`).
pub fn curl_examples(base: &str) -> String {
    // A 1x1 PNG and the first bytes of an MP4, enough for the simulator's format checks.
    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    const MP4: &str = "AAAAIGZ0eXBpc29tAAACAGlzb21pc28yYXZjMW1wNDE=";
    let auth = format!("-H \"Authorization: Bearer {DEMO_API_KEY}\"");
    let json = "-H \"Content-Type: application/json\"";
    let post = |path: &str, body: &str| {
        format!("curl -N -X POST \"{base}{path}\" {auth} {json} -d '{body}'")
    };
    [
        format!("curl \"{base}/v1/models\" {auth}"),
        post("/v1/images/generate", r#"{"prompt":"A cute kitten","model":"gpt-image","stream":true}"#),
        post("/v1/images/transform", &format!(r#"{{"prompt":"Make it an oil painting","image":"data:image/png;base64,{PNG}","model":"gpt-image"}}"#)),
        post("/v1/videos/generate", r#"{"prompt":"A cat running on the grass","model":"sora2-landscape-10s","style":"anime","stream":true}"#),
        post("/v1/videos/transform", &format!(r#"{{"prompt":"The cat jumps","image":"data:image/png;base64,{PNG}","model":"sora2-landscape-10s","stream":true}}"#)),
        post("/v1/videos/remix", r#"{"prompt":"Turn it into ink painting style","remix_target_id":"s_68e3a06dcd888191b150971da152c1f5","model":"sora2-landscape-10s","stream":true}"#),
        post("/v1/videos/storyboard", r#"{"prompt":"[5.0s]The cat jumps out of the plane [5.0s]The cat lands [10.0s]The cat runs across the field","model":"sora2-landscape-10s","stream":true}"#),
        post("/v1/characters/create", &format!(r#"{{"video":"data:video/mp4;base64,{MP4}","stream":true}}"#)),
        post("/v1/characters/generate", &format!(r#"{{"prompt":"The character dances","video":"data:video/mp4;base64,{MP4}","model":"sora2-landscape-10s","stream":true}}"#)),
        post("/v1/videos/generate", r#"{"prompt":"A cat running on the grass","async_mode":true}"#),
        format!("curl \"{base}/v1/tasks/TASK_ID\" {auth}   # TASK_ID from the line above"),
        post("/v1/chat/completions", r#"{"model":"sora2-landscape-10s","messages":[{"role":"user","content":"{anime}A cat running on the grass"}],"stream":true}"#),
    ]
    .join("\n")
}

/// Runs the demo until ctrl-c or SIGTERM: the simulator, then the gateway on `listen`, with
/// a banner and the curl lines on `out`.
///
/// # Errors
///
/// Binding `listen` or the simulator's port failed, or the HTTP client could not be built.
pub async fn run(listen: SocketAddr, out: &mut dyn io::Write) -> io::Result<()> {
    let (demo, pool) = Demo::start()?;
    let layer = demo.builder(pool).map_err(io::Error::other)?.build().map_err(io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    writeln!(
        out,
        "sora2api demo: gateway on {base}, simulated Sora backend on {} (Pro account {}).\n\
         API key: {DEMO_API_KEY}. Try:\n\n{}\n\nctrl-c stops it.",
        demo.sim.origin(),
        demo.account,
        curl_examples(&base)
    )?;
    out.flush()?;
    let service = tower::Layer::layer(&layer, crate::server::not_found());
    crate::server::serve(listener, service, crate::server::shutdown_signal(), SHUTDOWN_GRACE)
        .await?;
    layer.engine().abort();
    Ok(())
}

/// How long connections may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
