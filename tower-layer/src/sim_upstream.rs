//! [`SimUpstream`]: the simulated backend ([`Sim`]) in-process behind the [`Upstream`]
//! trait, for tests and demo mode. No sockets: each request is one [`Sim::handle`] call at
//! the shell's time ([`crate::clock::now_ms`], or an injected clock).
//!
//! A `#hang` answers [`TransportError::Timeout`] after the request's `timeout_ms` (virtual
//! under `tokio::time::pause()`), as the network would. An optional latency delays every
//! request, so concurrent tasks overlap the way they would over HTTP. A global proxy can be
//! set (the admin API's proxy setting): it is checked and remembered, and has no effect.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use sora2api_core::sim::{Sim, SimResponse};
use sora2api_core::upstream::{Method, TransportError, UpstreamReply, UpstreamRequest};

use crate::fetch::FetchError;
use crate::upstream::{check_proxy_url, BoxFuture, BuildError, Upstream};

/// The simulated backend as an [`Upstream`]. Cheap to clone; clones share the simulator.
#[derive(Clone)]
pub struct SimUpstream {
    sim: Arc<Mutex<Sim>>,
    now_ms: Arc<dyn Fn() -> u64 + Send + Sync>,
    latency: Duration,
    global_proxy: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for SimUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimUpstream").field("latency", &self.latency).finish_non_exhaustive()
    }
}

impl SimUpstream {
    /// Serves `sim` at the shell's clock.
    pub fn new(sim: Sim) -> Self {
        SimUpstream {
            sim: Arc::new(Mutex::new(sim)),
            now_ms: Arc::new(crate::clock::now_ms),
            latency: Duration::ZERO,
            global_proxy: Arc::new(Mutex::new(None)),
        }
    }

    /// Uses `now_ms` instead of the shell's clock.
    pub fn with_clock(mut self, now_ms: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.now_ms = Arc::new(now_ms);
        self
    }

    /// Delays every request by `latency` before the simulator sees it.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Runs `f` on the simulator (add accounts, read the request log).
    pub fn with_sim<R>(&self, f: impl FnOnce(&mut Sim) -> R) -> R {
        f(&mut self.sim.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The global proxy last set with [`Upstream::set_global_proxy`] (it routes nothing).
    pub fn global_proxy(&self) -> Option<String> {
        self.global_proxy.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    async fn handle(&self, req: UpstreamRequest) -> Result<UpstreamReply, TransportError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let now = (self.now_ms)();
        let response = self.with_sim(|sim| sim.handle(now, &req));
        match response {
            SimResponse::Reply(reply) => Ok(reply),
            SimResponse::Transport(TransportError::Timeout) => {
                tokio::time::sleep(Duration::from_millis(req.timeout_ms)).await;
                Err(TransportError::Timeout)
            }
            SimResponse::Transport(error) => Err(error),
        }
    }
}

impl Upstream for SimUpstream {
    fn send(&self, req: UpstreamRequest) -> BoxFuture<'_, Result<UpstreamReply, TransportError>> {
        Box::pin(self.handle(req))
    }

    /// Answers from the simulator's media routes: a 2xx body, else the status as an error.
    fn fetch(&self, url: String) -> BoxFuture<'_, Result<Bytes, FetchError>> {
        Box::pin(async move {
            let req = UpstreamRequest {
                method: Method::Get,
                url,
                headers: vec![],
                body: Bytes::new(),
                timeout_ms: 30_000,
                proxy: None,
            };
            match self.handle(req).await {
                Ok(reply) if (200..300).contains(&reply.status) => Ok(reply.body),
                Ok(reply) => Err(FetchError::Status(reply.status)),
                Err(TransportError::Timeout) => Err(FetchError::Timeout),
                Err(_) => Err(FetchError::Connect),
            }
        })
    }

    /// Checks the URL like [`crate::HttpUpstream`] and remembers it; the simulator is
    /// in-process, so nothing is routed through it.
    fn set_global_proxy(&self, url: Option<&str>) -> Result<(), BuildError> {
        if let Some(url) = url {
            check_proxy_url(url)?;
        }
        *self.global_proxy.lock().unwrap_or_else(PoisonError::into_inner) = url.map(str::to_owned);
        Ok(())
    }
}
