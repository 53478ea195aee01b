//! The simulated Sora backend ([`sora2api_core::sim::Sim`]) served over HTTP: what
//! `sora2api sim` runs, and the upstream of the end-to-end tests.
//!
//! Every host of the real service lives at one origin under its real path
//! ([`UpstreamConfig::at_origin`]): the backend under `/backend/…`, the sentinel at
//! `/backend-api/sentinel/req`, the session exchange at `/api/auth/session`, the OAuth exchange
//! at `/oauth/token`, and the result files under `/media/…` (the sim's
//! [`SimConfig::media_origin`], set to `{origin}/media` by [`SimServer::bind`]).
//!
//! Each HTTP request becomes one [`UpstreamRequest`] (absolute URL at the origin, lower-case
//! header names, the whole body up to [`SimServer::with_body_limit`]); the
//! [`SimResponse`] goes back as it is: a reply is written with its status, headers and body; a
//! [`TransportError::Timeout`] (`#hang`) holds the connection without answering until the
//! client gives up (at most [`SimServer::with_hang_limit`], cut at shutdown); a
//! [`TransportError::Reset`] (`#reset`) resets the connection (TCP RST). Methods the sim does
//! not know (`HEAD`, `PATCH`, …) get 405 and an oversized body 413, both in the OpenAI error
//! envelope.
//!
//! A test that must act at an exact point of the protocol (kill the client process when the
//! create arrives, or after the sim performed it but before the reply is written) registers
//! an [`Observer`] with [`SimServer::with_observer`]: it sees every request twice, at
//! [`Stage::Received`] and [`Stage::Answered`], and its [`Verdict`] may drop the request
//! there (closed without a reply, at the first stage before the sim ever saw it).
//!
//! The simulator sits behind a [`std::sync::Mutex`] held only for [`Sim::handle`] (no await
//! inside); its time is the shell's clock ([`crate::clock::now_ms`], the crate's one clock
//! read), so the sim's virtual time is the real time.
//!
//! ```
//! # async fn demo() -> std::io::Result<()> {
//! use sora2api_core::sim::{AccountSpec, SimConfig};
//! use sora2api_tower::sim_server::SimServer;
//!
//! let server = SimServer::bind("127.0.0.1:0".parse().unwrap(), SimConfig::fast())?;
//! let account = server.add_account(AccountSpec::pro("ada@example.com"));
//! let handle = server.spawn();
//! // Point a client at handle.origin() (or use handle.upstream_config()) with
//! // account.access_token, then look at what the backend saw:
//! assert_eq!(handle.with_sim(|sim| sim.creates()), 0);
//! handle.shutdown().await
//! # }
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use sora2api_core::sim::{
    mint_offline_token, AccountSpec, MintedAccount, Sim, SimConfig, SimResponse,
};
use sora2api_core::upstream::{
    Method, TransportError, UpstreamConfig, UpstreamReply, UpstreamRequest,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The default cap on a request body: 64 MiB (character uploads are videos).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The default longest hold of a `#hang`: 120 s, the real service's business timeout.
pub const DEFAULT_HANG_LIMIT: Duration = Duration::from_secs(120);

/// How long shutdown waits for connections to finish their current request.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Lifetime of tokens from [`mint_token`]: 10 days, like [`AccountSpec::pro`]'s.
const MINTED_TOKEN_TTL_MS: u64 = 10 * 24 * 3_600_000;

/// Now in unix milliseconds, from the shell's one clock ([`crate::clock::now_ms`]).
pub fn unix_now_ms() -> u64 {
    crate::clock::now_ms()
}

/// An access token from [`mint_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintedToken {
    /// The account's email (the token's profile claim).
    pub email: String,
    /// The plan id in the token (`chatgpt_pro`, …).
    pub plan: String,
    /// The JWT-shaped access token.
    pub access_token: String,
    /// When it expires, unix ms (whole seconds).
    pub expires_at_ms: u64,
}

/// Mints, now, a 10-day offline access token ([`mint_offline_token`]) for `email` (default
/// `sim-<unix ms>@example.com`, a new account) on plan id `plan`. Every simulator with this
/// `seed` and [`SimConfig::accept_offline_tokens`] accepts it: what `sora2api sim mint-token`
/// prints for a running `sora2api sim`.
pub fn mint_token(seed: u64, email: Option<&str>, plan: &str) -> MintedToken {
    let now = unix_now_ms();
    let email = email.map_or_else(|| format!("sim-{now}@example.com"), str::to_owned);
    let expires_at_ms = now.saturating_add(MINTED_TOKEN_TTL_MS);
    MintedToken {
        access_token: mint_offline_token(seed, &email, plan, now, expires_at_ms),
        email,
        plan: plan.to_owned(),
        expires_at_ms: expires_at_ms / 1000 * 1000,
    }
}

// === observer ===

/// When an [`Observer`] sees a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The request was read in full; the simulator has not seen it yet.
    Received,
    /// The simulator handled it (its effects happened, it is in [`Sim::requests`]); the reply
    /// has not been written yet.
    Answered,
}

/// One request as an [`Observer`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// Which side of the simulator this is.
    pub stage: Stage,
    /// The request (absolute URL at the origin, lower-case header names, the whole body).
    pub request: &'a UpstreamRequest,
    /// At [`Stage::Answered`], the reply's status (`None` for a transport fault); always
    /// `None` at [`Stage::Received`].
    pub status: Option<u16>,
}

/// What an [`Observer`] wants done with the request it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on as usual.
    Serve,
    /// Close the connection without a reply: at [`Stage::Received`] the simulator never sees
    /// the request; at [`Stage::Answered`] its effects stay but the reply is not written.
    Drop,
}

/// A callback run for every request at both [`Stage`]s, on that request's connection task
/// and outside the simulator's lock: the request waits for it, nothing else does. For tests
/// that act at an exact point of a client's life (`examples/proxy/tests/crash.rs` kills the
/// gateway when the sim receives or has just performed a create, and drops that request).
/// Keep it short; it must not block on the server itself.
pub type Observer = Arc<dyn Fn(&Observed<'_>) -> Verdict + Send + Sync>;

// === shared state ===

/// What the server and its handle share: the simulator and where it listens.
#[derive(Debug)]
struct Shared {
    sim: Mutex<Sim>,
    addr: SocketAddr,
    origin: String,
}

impl Shared {
    fn sim(&self) -> MutexGuard<'_, Sim> {
        // `Sim::handle` never panics, but a caller's `with_sim` closure might: its state is
        // still plain data, so keep serving.
        self.sim.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Per-request settings.
#[derive(Debug, Clone, Copy)]
struct Settings {
    body_limit: usize,
    hang_limit: Duration,
    log_limit: Option<usize>,
}

// === impl SimServer ===

/// A bound, not yet serving, simulated backend. Call order: [`SimServer::bind`], optionally
/// the `with_*` settings and [`SimServer::add_account`], then [`SimServer::serve`] (runs until
/// a shutdown future completes) or [`SimServer::spawn`] (runs on the tokio runtime, stopped
/// through the [`SimHandle`]).
pub struct SimServer {
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    settings: Settings,
    observer: Option<Observer>,
}

impl fmt::Debug for SimServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimServer")
            .field("listener", &self.listener)
            .field("shared", &self.shared)
            .field("settings", &self.settings)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl SimServer {
    /// Binds `addr` (port 0 picks a free port) and builds the simulator from `config`, with
    /// two changes for a live server: [`SimConfig::start_ms`] becomes the current time (the
    /// sim's clock is the wall clock), and a [`SimConfig::media_origin`] left at its default
    /// becomes `http://{bound address}/media`, so the result URLs handed out point here.
    /// Needs no runtime.
    ///
    /// # Errors
    ///
    /// The bind's: address in use, not available, permission denied.
    pub fn bind(addr: SocketAddr, mut config: SimConfig) -> io::Result<SimServer> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let origin = origin_of(addr);
        if config.media_origin == SimConfig::default().media_origin {
            config.media_origin = format!("{origin}/media");
        }
        config.start_ms = unix_now_ms();
        let shared = Arc::new(Shared { sim: Mutex::new(Sim::new(config)), addr, origin });
        let settings = Settings {
            body_limit: DEFAULT_BODY_LIMIT,
            hang_limit: DEFAULT_HANG_LIMIT,
            log_limit: None,
        };
        Ok(SimServer { listener, shared, settings, observer: None })
    }

    /// Caps request bodies at `bytes` (default [`DEFAULT_BODY_LIMIT`]); larger ones get 413.
    #[must_use]
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.settings.body_limit = bytes;
        self
    }

    /// The longest a `#hang` holds its connection (default [`DEFAULT_HANG_LIMIT`]).
    #[must_use]
    pub fn with_hang_limit(mut self, limit: Duration) -> Self {
        self.settings.hang_limit = limit;
        self
    }

    /// Bounds memory of a long-running server: when the sim's request log reaches `entries`,
    /// it is emptied ([`Sim::take_requests`]). Unbounded by default, for tests that read it.
    #[must_use]
    pub fn with_log_limit(mut self, entries: usize) -> Self {
        self.settings.log_limit = Some(entries.max(1));
        self
    }

    /// Calls `observer` for every request before and after the simulator handles it (see
    /// [`Observer`]). None by default.
    #[must_use]
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://{address}` (an unspecified bind address is shown as loopback).
    pub fn origin(&self) -> String {
        self.shared.origin.clone()
    }

    /// Every host at [`Self::origin`]: the configuration a client of this server uses.
    pub fn upstream_config(&self) -> UpstreamConfig {
        UpstreamConfig::at_origin(&self.shared.origin)
    }

    /// Adds an account ([`Sim::add_account`]), minted relative to now.
    pub fn add_account(&self, spec: AccountSpec) -> MintedAccount {
        self.shared.sim().add_account(spec)
    }

    /// Runs `f` on the simulator (for assertions: request log, creates, account knobs). The
    /// server waits while `f` runs: keep it short.
    pub fn with_sim<R>(&self, f: impl FnOnce(&mut Sim) -> R) -> R {
        f(&mut self.shared.sim())
    }

    /// Serves until `shutdown` completes, then stops accepting, cuts held `#hang`
    /// connections, lets the others finish their current request (up to 10 s) and returns.
    /// Must run inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// Registering the listener with the runtime failed.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let listener = TcpListener::from_std(self.listener)?;
        let ctx =
            Arc::new(Ctx { shared: self.shared, settings: self.settings, observer: self.observer });
        let (stop_tx, stop_rx) = watch::channel(false);
        let graceful = GracefulShutdown::new();
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.keep_alive(true).timer(TokioTimer::new());
        tokio::pin!(shutdown);
        loop {
            let (stream, _) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(_) => {
                        // Out of descriptors or an aborted handshake: back off briefly.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let reset = Arc::new(AtomicBool::new(false));
            let io = TokioIo::new(ConnIo { stream, reset: Arc::clone(&reset) });
            let (ctx, stop) = (Arc::clone(&ctx), stop_rx.clone());
            let service = hyper::service::service_fn(move |req| {
                respond(Arc::clone(&ctx), req, Arc::clone(&reset), stop.clone())
            });
            let connection = graceful.watch(builder.serve_connection(io, service));
            tokio::spawn(async move {
                // A connection's end (the client left, a reset we chose) is no server error.
                let _ = connection.await;
            });
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
        Ok(())
    }

    /// Serves on the current tokio runtime; the [`SimHandle`] stops it (dropping the handle
    /// stops it too).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as [`tokio::spawn`] does).
    pub fn spawn(self) -> SimHandle {
        let shared = Arc::clone(&self.shared);
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(self.serve(async move {
            // `Err`: the handle was dropped, which stops the server as well.
            let _ = stopped.wait_for(|stop| *stop).await;
        }));
        SimHandle { shared, stop, task }
    }
}

/// `http://addr`, with an unspecified IP replaced by loopback so the origin is reachable.
fn origin_of(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

// === impl SimHandle ===

/// A running [`SimServer`] (from [`SimServer::spawn`]). Dropping it stops the server.
#[derive(Debug)]
pub struct SimHandle {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<io::Result<()>>,
}

impl SimHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://{address}`.
    pub fn origin(&self) -> String {
        self.shared.origin.clone()
    }

    /// Every host at [`Self::origin`].
    pub fn upstream_config(&self) -> UpstreamConfig {
        UpstreamConfig::at_origin(&self.shared.origin)
    }

    /// Adds an account ([`Sim::add_account`]).
    pub fn add_account(&self, spec: AccountSpec) -> MintedAccount {
        self.shared.sim().add_account(spec)
    }

    /// Runs `f` on the simulator; requests wait meanwhile.
    pub fn with_sim<R>(&self, f: impl FnOnce(&mut Sim) -> R) -> R {
        f(&mut self.shared.sim())
    }

    /// Stops the server gracefully (see [`SimServer::serve`]) and waits for it.
    ///
    /// # Errors
    ///
    /// The server's own error, or the server task panicked or was cancelled.
    pub async fn shutdown(self) -> io::Result<()> {
        let _ = self.stop.send(true);
        self.task.await.map_err(io::Error::other)?
    }
}

// === one request ===

/// What every connection's service shares.
struct Ctx {
    shared: Arc<Shared>,
    settings: Settings,
    observer: Option<Observer>,
}

impl Ctx {
    fn observe(&self, stage: Stage, request: &UpstreamRequest, status: Option<u16>) -> Verdict {
        match &self.observer {
            Some(observer) => observer(&Observed { stage, request, status }),
            None => Verdict::Serve,
        }
    }
}

/// The service's error: the connection is dropped without a reply.
#[derive(Debug)]
struct Dropped(&'static str);

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection dropped: {}", self.0)
    }
}

impl StdError for Dropped {}

async fn respond(
    ctx: Arc<Ctx>,
    req: Request<Incoming>,
    reset: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let (parts, body) = req.into_parts();
    let method = match parts.method {
        hyper::Method::GET => Method::Get,
        hyper::Method::POST => Method::Post,
        hyper::Method::PUT => Method::Put,
        hyper::Method::DELETE => Method::Delete,
        _ => return Ok(error_response(405, "Method Not Allowed", "method_not_allowed")),
    };
    let body = match Limited::new(body, ctx.settings.body_limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Ok(error_response(413, "Request body too large", "request_too_large"));
        }
        Err(_) => return Err(Dropped("the request body broke off")),
    };
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let request = UpstreamRequest {
        method,
        url: format!("{}{path_and_query}", ctx.shared.origin),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
            })
            .collect(),
        body,
        timeout_ms: u64::try_from(ctx.settings.hang_limit.as_millis()).unwrap_or(u64::MAX),
        proxy: None,
    };
    if ctx.observe(Stage::Received, &request, None) == Verdict::Drop {
        return Err(Dropped("the observer"));
    }
    let now = unix_now_ms();
    let response = {
        let mut sim = ctx.shared.sim();
        let response = sim.handle(now, &request);
        if ctx.settings.log_limit.is_some_and(|limit| sim.requests().len() >= limit) {
            drop(sim.take_requests());
        }
        response
    };
    if ctx.observe(Stage::Answered, &request, response.status()) == Verdict::Drop {
        return Err(Dropped("the observer"));
    }
    match response {
        SimResponse::Reply(reply) => Ok(reply_response(reply)),
        SimResponse::Transport(TransportError::Timeout) => {
            // Hold until the client gives up (hyper then drops this future), the limit passes
            // or the server shuts down; then close without a reply.
            tokio::select! {
                () = tokio::time::sleep(ctx.settings.hang_limit) => {}
                _ = stop.wait_for(|stop| *stop) => {}
            }
            Err(Dropped("#hang"))
        }
        SimResponse::Transport(_) => {
            reset.store(true, Ordering::Relaxed);
            Err(Dropped("#reset"))
        }
    }
}

fn reply_response(reply: UpstreamReply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(reply.body));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value))
        {
            headers.append(name, value);
        }
    }
    response
}

/// An error of the shell itself, in the envelope the sim uses.
fn error_response(status: u16, message: &str, code: &str) -> Response<Full<Bytes>> {
    let body = format!(
        r#"{{"error":{{"message":"{message}","type":"invalid_request_error","param":null,"code":"{code}"}}}}"#
    );
    reply_response(UpstreamReply::json(status, body))
}

// === connection IO ===

/// A TCP connection that, when the service asked for a reset, closes with RST instead of FIN
/// (`SO_LINGER` 0 at drop): what `#reset` means.
struct ConnIo {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Relaxed) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_reachable() {
        assert_eq!(origin_of("127.0.0.1:80".parse().unwrap()), "http://127.0.0.1:80");
        assert_eq!(origin_of("0.0.0.0:81".parse().unwrap()), "http://127.0.0.1:81");
        assert_eq!(origin_of("[::]:82".parse().unwrap()), "http://[::1]:82");
        assert_eq!(origin_of("[::1]:83".parse().unwrap()), "http://[::1]:83");
    }

    #[test]
    fn bind_points_media_and_the_clock_here() {
        let server = SimServer::bind("127.0.0.1:0".parse().unwrap(), SimConfig::fast()).unwrap();
        let origin = server.origin();
        assert_eq!(origin, format!("http://{}", server.local_addr()));
        assert_ne!(server.local_addr().port(), 0);
        let (media, start) =
            server.with_sim(|sim| (sim.config().media_origin.clone(), sim.config().start_ms));
        assert_eq!(media, format!("{origin}/media"));
        assert!(start > SimConfig::default().start_ms);
        // A media origin the caller chose is kept.
        let config =
            SimConfig { media_origin: "http://cdn.test/files".into(), ..SimConfig::fast() };
        let server = SimServer::bind("127.0.0.1:0".parse().unwrap(), config).unwrap();
        assert_eq!(server.with_sim(|s| s.config().media_origin.clone()), "http://cdn.test/files");
        assert_eq!(server.upstream_config().base_url, format!("{}/backend", server.origin()));
    }

    /// `GET /backend/me` on a connection of its own; what came back before it closed (an
    /// error reading counts as nothing more).
    async fn get_me(addr: SocketAddr) -> Vec<u8> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /backend/me HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply).await;
        reply
    }

    #[tokio::test]
    async fn the_observer_sees_each_request_before_and_after_the_sim() {
        /// Stage, path, status, requests in the sim's log at that moment.
        type Seen = Vec<(Stage, String, Option<u16>, usize)>;
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let log = Arc::clone(&seen);
        let server = SimServer::bind("127.0.0.1:0".parse().unwrap(), SimConfig::fast()).unwrap();
        let shared = Arc::clone(&server.shared);
        let server = server.with_observer(Arc::new(move |o: &Observed<'_>| {
            // How many requests the sim had logged tells the stages apart.
            let logged = shared.sim().requests().len();
            let path = o.request.path_and_query().to_owned();
            log.lock().unwrap().push((o.stage, path, o.status, logged));
            // The second request is dropped before the sim sees it.
            if logged == 1 && o.stage == Stage::Received {
                Verdict::Drop
            } else {
                Verdict::Serve
            }
        }));
        let handle = server.spawn();
        let reply = get_me(handle.local_addr()).await;
        assert!(reply.starts_with(b"HTTP/1.1 401"), "{}", String::from_utf8_lossy(&reply));
        let seen = seen.lock().unwrap().clone();
        let want = vec![
            (Stage::Received, "/backend/me".to_owned(), None, 0),
            (Stage::Answered, "/backend/me".to_owned(), Some(401), 1),
        ];
        assert_eq!(seen, want);
        // Closed without a reply (or reset): nothing read either way.
        let reply = get_me(handle.local_addr()).await;
        assert!(reply.is_empty(), "{}", String::from_utf8_lossy(&reply));
        assert_eq!(handle.with_sim(|s| s.requests().len()), 1, "the sim never saw it");
        handle.shutdown().await.unwrap();
    }

    #[test]
    fn minted_tokens_name_their_account() {
        let minted = mint_token(7, Some("a@example.com"), "chatgpt_plus");
        assert_eq!(minted.email, "a@example.com");
        assert_eq!(minted.access_token.split('.').count(), 3);
        assert!(minted.expires_at_ms > unix_now_ms());
        let fresh = mint_token(7, None, "chatgpt_pro");
        assert!(fresh.email.starts_with("sim-") && fresh.email.ends_with("@example.com"));
    }
}
